//! Lambda `lease`: takes the list's lease for an execution, or says how long to wait. Its environment, container and
//! handler: `dncflow::lambda::steps::Lease`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Lease>().await
}
