use journal_aws::AwsClients;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use replay::{build_deps, function_handler, Config, Deps};

// The allocator `journal-bench` measures the replay path with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    journal_aws::init_lambda_tracing();
    let deps = match start().await {
        Ok(deps) => deps,
        Err(e) => {
            tracing::error!(error = %e, "replay cannot start");
            return Err(e.to_string().into());
        }
    };
    run(service_fn(|event: LambdaEvent<_>| {
        function_handler(event, &deps)
    }))
    .await
}

/// Reads and validates the configuration, builds the clients once, loads keys.
async fn start() -> Result<Deps, replay::StartError> {
    let config = Config::from_env()?;
    let clients = AwsClients::from_env().await;
    build_deps(&config, &clients).await
}
