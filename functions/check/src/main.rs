//! Lambda `check`: validates outbound numbers before they are dialed, fail-safe and audited. Its environment, container
//! and handler: `dncflow_lambda::CheckFunction`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::CheckFunction>().await
}
