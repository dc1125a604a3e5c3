//! Lambda `registry`: keeps a registry's suppression index current (imports, change lists). Its environment, container and
//! handler: `dncflow::lambda::functions::Registry`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Registry>().await
}
