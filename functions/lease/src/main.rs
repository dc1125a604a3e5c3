//! Lambda `lease`: takes the list's lease for an execution, or says how long to wait. Its environment, container and
//! handler: `dncflow::lambda::functions::Lease`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Lease>().await
}
