use compact::{build_deps, function_handler, Config, Deps};
use journal_aws::AwsClients;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// The allocator `journal-bench` measures the compact path with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    journal_aws::init_lambda_tracing();
    let deps = match start().await {
        Ok(deps) => deps,
        Err(e) => {
            tracing::error!(error = %e, "compact cannot start");
            return Err(e.to_string().into());
        }
    };
    run(service_fn(|event: LambdaEvent<_>| {
        function_handler(event, &deps)
    }))
    .await
}

/// Reads and validates the configuration, builds the clients once, loads the key secret.
async fn start() -> Result<Deps, compact::StartError> {
    let config = Config::from_env()?;
    let clients = AwsClients::from_env().await;
    build_deps(config, &clients).await
}
