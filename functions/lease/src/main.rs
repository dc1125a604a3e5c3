//! Lambda `lease`: takes the list's lease for an execution, or says how long to wait. Its environment, container and
//! handler: `dncflow_lambda::Lease`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Lease>().await
}
