//! Lambda `cooldown`: says whether a list is ready (the cooldown after the last write, then a canary probe). Its
//! environment, container and handler: `dncflow_lambda::Cooldown`.

#[tokio::main]
async fn main() -> Result<(), dncflow_lambda::Error> {
    dncflow_lambda::run_step::<dncflow_lambda::Cooldown>().await
}
