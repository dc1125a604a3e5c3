//! Lambda `record-failure`: the target of every `Catch`: the list's status FAILED with the reason. Its environment, container and
//! handler: `dncflow::lambda::functions::RecordFailure`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::RecordFailure>().await
}
