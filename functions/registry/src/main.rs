//! Lambda `registry`: keeps a registry's suppression index current (imports, change lists). Its environment, container
//! and handler: `dncflow_lambda::Registry`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Registry>().await
}
