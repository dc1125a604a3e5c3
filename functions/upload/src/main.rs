//! Lambda `upload`: one shard per invocation, resumable, within the invocation's deadline. Its environment, container
//! and handler: `dncflow_lambda::Upload`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Upload>().await
}
