//! Lambda `record-failure`: the target of every `Catch`. The execution state (`source`, `run?`, `error`) in; the
//! list's status set to FAILED with the reason (the last known good run kept), a FAILED report, an event.
//!
//! Environment: `DNCFLOW_BUCKET`, `DNCFLOW_EVENT_BUS` (`default`).

use dncflow::lambda::{
    answer, bucket_from_env, diagnostic, for_container, init_logging, notifier_from_env,
};
use dncflow::stages::record_failure;
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let store = for_container(S3Store {
        client: dncflow::store::s3_client(None).await,
        bucket: bucket_from_env().map_err(|e| diagnostic("record-failure", e).error_message)?,
    });
    let notifier = for_container(notifier_from_env().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let out = record_failure(store, notifier, &event.payload, chrono::Utc::now())
            .await
            .map_err(|e| diagnostic("record-failure", e))?;
        answer("record-failure", &out)
    }))
    .await
}
