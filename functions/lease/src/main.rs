//! Lambda `lease`: `{bucket, runId, list, execution, startedAt?}` in, `{acquired, duplicate, waitSeconds, heldBy?}`
//! out. Takes `status/<list>/lease.json` for the execution (and says RUNNING in the list's status), or tells the state
//! machine to wait while another execution holds the list. Released by reconcile and the failure recorder.
//!
//! Environment: `DNCFLOW_LEASE_WAIT_SECS` (30: how long a waiting execution sleeps between attempts).

use dncflow::lambda::{answer, diagnostic, env_or, for_container, init_logging, parse_payload};
use dncflow::stages::{acquire_lease, LeaseTask};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = for_container(dncflow::store::s3_client(None).await);
    let wait: u64 = env_or("DNCFLOW_LEASE_WAIT_SECS", dncflow::stages::LEASE_WAIT_SECS);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut task: LeaseTask = parse_payload("lease", event.payload)?;
        task.wait_seconds.get_or_insert(wait);
        let store = S3Store {
            client: s3.clone(),
            bucket: task.run.bucket.clone(),
        };
        let out = acquire_lease(&store, &task, chrono::Utc::now())
            .await
            .map_err(|e| diagnostic("lease", e))?;
        answer("lease", &out)
    }))
    .await
}
