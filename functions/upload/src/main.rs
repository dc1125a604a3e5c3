//! Lambda `upload`: one shard per invocation, resumable, within the invocation's deadline. Its environment, container and
//! handler: `dncflow::lambda::steps::Upload`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Upload>().await
}
