//! Lambda `normalize`: an S3 drop in, `runs/<runId>/` (manifest, shards, rejects) out. Its environment, container and
//! handler: `dncflow::lambda::steps::Normalize`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Normalize>().await
}
