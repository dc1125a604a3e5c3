//! Lambda `reconcile`: `{bucket, runId, list, round, startedAt?}` in; `{status: SUCCESS|FAILED|REUPLOAD, round,
//! shardKeys, …}` out. SUCCESS and FAILED are published (report, `status/<list>/latest.json`, EventBridge event).
//!
//! Environment: see `dncflow::lambda`; `DNCFLOW_RECONCILE_ROUNDS` (3), `DNCFLOW_EVENT_BUS` (`default`).

use dncflow::lambda::{cxone_from_env, diagnostic, env_or, init_logging};
use dncflow::stages::{reconcile_stage, EventBridgeNotifier, ReconcileTask, StageError};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = dncflow::store::s3_client(None).await;
    let api = cxone_from_env(env_or("DNCFLOW_TENANT_RATE", 50.0))
        .await
        .map_err(|e| diagnostic("reconcile", e).error_message)?;
    let notifier = EventBridgeNotifier::from_env(
        std::env::var("DNCFLOW_EVENT_BUS").unwrap_or_else(|_| "default".into()),
    )
    .await;
    let rounds: u32 = env_or("DNCFLOW_RECONCILE_ROUNDS", 3);
    let (api, s3, notifier) = (
        &*Box::leak(Box::new(api)),
        &*Box::leak(Box::new(s3)),
        &*Box::leak(Box::new(notifier)),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let task: ReconcileTask = serde_json::from_value(event.payload).map_err(|e| {
            diagnostic(
                "reconcile",
                StageError::InvalidInput(format!("not a reconcile task: {e}")),
            )
        })?;
        let store = S3Store {
            client: s3.clone(),
            bucket: task.run.bucket.clone(),
        };
        let out = reconcile_stage(api, &store, notifier, &task, rounds, chrono::Utc::now)
            .await
            .map_err(|e| diagnostic("reconcile", e))?;
        serde_json::to_value(out)
            .map_err(|e| diagnostic("reconcile", StageError::Fatal(e.to_string())))
    }))
    .await
}
