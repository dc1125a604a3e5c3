//! Lambda `record-failure`: the target of every `Catch`: the list's status FAILED with the reason. Its environment,
//! container and handler: `dncflow_lambda::RecordFailure`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::RecordFailure>().await
}
