//! Lambda `upload`: one shard per invocation, resumable, within the invocation's deadline. Its environment, container and
//! handler: `dncflow::lambda::functions::Upload`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Upload>().await
}
