//! Lambda `reconcile`: pages the list back, compares it with the ledger, re-queues what is missing, publishes the status. Its environment, container and
//! handler: `dncflow::lambda::steps::Reconcile`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Reconcile>().await
}
