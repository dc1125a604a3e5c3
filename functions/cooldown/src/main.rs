//! Lambda `cooldown`: says whether a list is ready (the cooldown after the last write, then a canary probe). Its environment, container and
//! handler: `dncflow::lambda::steps::Cooldown`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::steps::run_step::<dncflow::lambda::steps::Cooldown>().await
}
