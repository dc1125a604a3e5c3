//! Lambda `normalize`: an S3 drop in, `runs/<runId>/` (manifest, shards, rejects) out. Its environment, container and
//! handler: `dncflow_lambda::Normalize`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Normalize>().await
}
