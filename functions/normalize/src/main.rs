//! Lambda `normalize`: an S3 drop in, `runs/<runId>/` (manifest, shards, rejects) out. Its environment, container and
//! handler: `dncflow::lambda::functions::Normalize`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Normalize>().await
}
