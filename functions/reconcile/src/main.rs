//! Lambda `reconcile`: pages the list back, compares it with the ledger, re-queues what is missing, publishes the
//! status. Its environment, container and handler: `dncflow_lambda::Reconcile`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Reconcile>().await
}
