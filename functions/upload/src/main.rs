//! Lambda `upload`: one shard per invocation (`{bucket, runId, list, shardKey, round?, cursor?}`); answers the same
//! shape with the cursor moved, `done`, counts and `lastWriteAt`. Stops starting batches when the invocation's
//! deadline nears, so the state machine resumes the shard instead of the function timing out.
//!
//! Environment: see `dncflow::lambda`; `DNCFLOW_UPLOAD_MARGIN_SECS` (time kept back from the deadline, default 150:
//! one request's retry deadline plus the ledger write), `DNCFLOW_UPLOAD_CONCURRENCY` (batches in flight, default 2),
//! `DNCFLOW_CXONE_CAPACITY` (1,000,000: a run holding more entries fails `CapacityExceeded` before its first write).

use std::time::Duration;

use dncflow::lambda::{
    answer, cxone_from_env, diagnostic, env_or, env_secs, for_container, init_logging, now_ms,
    parse_payload, worker_rate,
};
use dncflow::metrics::emf;
use dncflow::stages::{upload_stage, ShardTask, UploadSettings};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = for_container(dncflow::store::s3_client(None).await);
    let api = for_container(
        cxone_from_env(worker_rate())
            .await
            .map_err(|e| diagnostic("upload", e).error_message)?,
    );
    let margin = env_secs("DNCFLOW_UPLOAD_MARGIN_SECS", 150.0);
    let concurrency: usize = env_or("DNCFLOW_UPLOAD_CONCURRENCY", 2);
    let capacity: u64 = env_or("DNCFLOW_CXONE_CAPACITY", dncflow::stages::CXONE_CAPACITY);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let task: ShardTask = parse_payload("upload", event.payload)?;
        let left = Duration::from_millis((event.context.deadline as i64 - now_ms()).max(0) as u64);
        let settings = UploadSettings {
            budget: left.saturating_sub(margin).max(Duration::from_secs(1)),
            concurrency,
            capacity,
        };
        let store = S3Store {
            client: s3.clone(),
            bucket: task.run.bucket.clone(),
        };
        let out = upload_stage(&**api, &store, &task, &settings, chrono::Utc::now)
            .await
            .map_err(|e| diagnostic("upload", e))?;
        println!(
            "{}",
            emf(
                "upload",
                &[
                    ("Created", "Count", out.created as f64),
                    ("Exists", "Count", out.exists as f64),
                    ("DeadLetters", "Count", out.rejected as f64),
                    ("Unconfirmed", "Count", out.unconfirmed as f64),
                ],
                now_ms()
            )
        );
        answer("upload", &out)
    }))
    .await
}
