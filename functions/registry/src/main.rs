//! Lambda `registry`: keeps a registry's suppression index (`registry/<name>/`) current.
//! - S3 "Object Created" (EventBridge) under `incoming-registry/<name>/`: `changes/<file>` (an FTC change list) is
//!   applied; other objects are acknowledged and left (a full download's files; its `_import.json` marker starts the
//!   registry import state machine, whose steps call this function: `begin`, `importPart` per file, `assemble`).
//! - Direct: `{"action":"import","registry","prefix"|"keys","asOf","maxAgeDays"?}` (the whole batch in one
//!   invocation) or `{"action":"apply","registry","keys","force"?,"asOf"?}`.
//!
//! Out: the version report (counts of every line, the live version's freshness). Errors carry the registry error's
//! kind (`ChangeListOutOfOrder`, `RegistryConflict`, `InputUnreadable`, …). Environment: `DNCFLOW_BUCKET`.

use dncflow::lambda::{bucket_from_env, for_container, init_logging};
use dncflow::registry::{handle_event, RegistryError};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

fn diagnostic(e: RegistryError) -> Diagnostic {
    tracing::error!(error_type = e.kind(), error = %e, "registry task failed");
    Diagnostic {
        error_type: e.kind().to_string(),
        error_message: e.to_string(),
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let store = for_container(S3Store {
        client: dncflow::store::s3_client(None).await,
        bucket: bucket_from_env().map_err(|e| e.to_string())?,
    });
    let handler = |event: LambdaEvent<Value>| async move {
        handle_event(store, &store.bucket, event.payload)
            .await
            .map_err(diagnostic)
    };
    lambda_runtime::run(service_fn(handler)).await
}
