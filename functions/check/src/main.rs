//! Lambda `check`: validates outbound numbers before they are dialed, fail-safe and audited. Its environment, container and
//! handler: `dncflow::lambda::check::CheckFunction`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::check::CheckFunction>().await
}
