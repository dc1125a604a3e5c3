//! Lambda `reconcile`: `{bucket, runId, list, round, startedAt?}` in; `{status: SUCCESS|FAILED|REUPLOAD, round,
//! shardKeys, …}` out. SUCCESS and FAILED are published (report, `status/<list>/latest.json`, EventBridge event).
//!
//! Environment: see `dncflow::lambda`; `DNCFLOW_RECONCILE_ROUNDS` (3), `DNCFLOW_EVENT_BUS` (`default`).

use dncflow::lambda::{
    answer, cxone_from_env, diagnostic, env_or, for_container, init_logging, notifier_from_env,
    parse_payload,
};
use dncflow::stages::{reconcile_stage, ReconcileTask};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = for_container(dncflow::store::s3_client(None).await);
    let api = for_container(
        cxone_from_env(env_or("DNCFLOW_TENANT_RATE", 50.0))
            .await
            .map_err(|e| diagnostic("reconcile", e).error_message)?,
    );
    let notifier = for_container(notifier_from_env().await);
    let rounds: u32 = env_or("DNCFLOW_RECONCILE_ROUNDS", 3);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let task: ReconcileTask = parse_payload("reconcile", event.payload)?;
        let store = S3Store {
            client: s3.clone(),
            bucket: task.run.bucket.clone(),
        };
        let out = reconcile_stage(&**api, &store, notifier, &task, rounds, chrono::Utc::now)
            .await
            .map_err(|e| diagnostic("reconcile", e))?;
        answer("reconcile", &out)
    }))
    .await
}
