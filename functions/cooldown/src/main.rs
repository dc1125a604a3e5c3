//! Lambda `cooldown`: says whether a list is ready (the cooldown after the last write, then a canary probe). Its environment, container and
//! handler: `dncflow::lambda::functions::Cooldown`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dncflow::lambda::functions::run_step::<dncflow::lambda::functions::Cooldown>().await
}
