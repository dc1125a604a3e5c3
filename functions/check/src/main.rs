//! Lambda `check`: validates outbound numbers against the DNC lists and registries before they are dialed,
//! fail-safe and audited. The handler, its environment and its per-container knowledge: `dncflow::lambda::check`.

use dncflow::lambda::check::CheckFunction;
use dncflow::lambda::{for_container, init_logging};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let check = for_container(CheckFunction::from_env().await.map_err(|e| e.to_string())?);
    let handler = |event: LambdaEvent<Value>| async move {
        Ok::<Value, lambda_runtime::Error>(
            check
                .handle(&event.payload, &event.context.request_id)
                .await,
        )
    };
    lambda_runtime::run(service_fn(handler)).await
}
