//! Lambda `reconcile`: pages the list back, compares it with the ledger, re-queues what is missing, publishes the status. Its environment, container and
//! handler: `dncflow::lambda::functions::Reconcile`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Reconcile>().await
}
