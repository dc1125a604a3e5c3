//! Lambda `registry`: keeps a registry's suppression index current (imports, change lists). Its environment, container and
//! handler: `dncflow::lambda::steps::Registry`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Registry>().await
}
