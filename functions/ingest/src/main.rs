use ingest::{build_deps, function_handler, Config};
use journal_aws::AwsClients;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::from_env()?;
    let clients = AwsClients::from_env().await;
    let deps = build_deps(&config, &clients).await?;
    run(service_fn(|event: LambdaEvent<_>| {
        function_handler(event, &deps)
    }))
    .await
}
