//! The Lambda stages as library functions (the binaries under `functions/` only parse the event and map errors).
//!
//! Each stage reads what it needs from the run's objects in the bucket (through [`ObjectStore`]) and hands the state
//! machine a small payload of keys and counts, never entries: state payloads stay far below 256 KB, and phone numbers
//! never enter the execution history.

mod cooldown;
mod failure;
mod keys;
mod lease;
mod protect;
mod reconcile;
mod status;
mod upload;

pub use cooldown::{cooldown_stage, CooldownOutput, CooldownSettings, CooldownTask};
pub use failure::{record_failure, FailureRecorded};
pub use keys::{
    keys_version, lease_key, status_key, uploading_key, RegistryKeys, RunKeys, REGISTRY_INCOMING,
};
pub use lease::{
    acquire_lease, read_lease, release_lease, Lease, LeaseOutcome, LeaseTask, LEASE_TTL_SECS,
    LEASE_WAIT_SECS,
};
pub use protect::{
    check_stage, load_local_knowledge, refresh_registries, upload_markers, LocalKnowledge,
    UploadingMarker, Webhook, VERIFIED_MAX_AGE,
};
pub use reconcile::{reconcile_stage, ReconcileOutput, ReconcileTask};
pub use status::{
    mark_running, next_status, publish_list_status, read_run_ledger, EventBridgeNotifier,
    NoNotifier, StatusNotifier,
};
pub use upload::{
    upload_stage, CapacityDecision, ShardTask, UploadOutput, UploadSettings, CXONE_CAPACITY,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cxone::DncApi;
use crate::events::SourceObject;
use crate::normalize::{normalize_into, NormalizeError, NormalizeOptions};
use crate::pipeline::PipelineError;
use crate::store::{open_s3_object, publish_run, ObjectStore, S3Location, S3Store, StoreError};

/// Failures of a stage, named for Step Functions `Retry`/`Catch`.
#[derive(Debug, Error)]
pub enum StageError {
    /// The input cannot be processed as it is: retrying will not help.
    #[error("{0}")]
    InvalidInput(String),
    /// A dependency failed: retrying may help.
    #[error("{0}")]
    Transient(String),
    /// A bug or a broken environment.
    #[error("{0}")]
    Fatal(String),
    /// Writing would not suppress anything: the list is missing, inactive, or bound to no outbound BLOCK rule.
    #[error("{0}")]
    NotSuppressing(String),
    /// CXone failed repeatedly with 5xx and the client's circuit breaker opened: stop, do not hammer it.
    #[error("{0}")]
    CircuitOpen(String),
    /// The canary never came back suppressed within the allowed probes.
    #[error("{0}")]
    NotPropagated(String),
    /// The run holds more entries than a CXone environment can: nothing is written.
    #[error("{0}")]
    CapacityExceeded(String),
}

impl StageError {
    /// Every error name a stage can produce: what the state machine's `Retry`/`Catch` may match.
    pub const NAMES: [&'static str; 7] = [
        "InvalidInput",
        "Transient",
        "Fatal",
        "NotSuppressing",
        "CircuitOpen",
        "NotPropagated",
        "CapacityExceeded",
    ];

    /// The stable error name.
    pub fn error_name(&self) -> &'static str {
        match self {
            StageError::InvalidInput(_) => "InvalidInput",
            StageError::Transient(_) => "Transient",
            StageError::Fatal(_) => "Fatal",
            StageError::NotSuppressing(_) => "NotSuppressing",
            StageError::CircuitOpen(_) => "CircuitOpen",
            StageError::NotPropagated(_) => "NotPropagated",
            StageError::CapacityExceeded(_) => "CapacityExceeded",
        }
    }
}

impl From<PipelineError> for StageError {
    /// The kind Step Functions matches, from what failed: a breaker that opened, a failure worth retrying, a list
    /// that would not suppress, unreadable run data; anything else is fatal.
    fn from(e: PipelineError) -> Self {
        use crate::cxone::CxoneError;
        let message = e.to_string();
        match e {
            PipelineError::Cxone(CxoneError::CircuitOpen { .. }) => {
                StageError::CircuitOpen(message)
            }
            PipelineError::Cxone(c) if c.is_transient() => StageError::Transient(message),
            PipelineError::ListNotFound { .. }
            | PipelineError::ListInactive { .. }
            | PipelineError::NotSuppressing { .. } => StageError::NotSuppressing(message),
            PipelineError::Data { .. } => StageError::InvalidInput(message),
            PipelineError::Cxone(_) => StageError::Fatal(message),
        }
    }
}

/// A run in the bucket: what every stage after normalize is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    /// Bucket holding `runs/<runId>/`.
    pub bucket: String,
    /// Run id.
    pub run_id: String,
    /// List name (CXone list names are unique).
    pub list: String,
}

impl RunRef {
    /// The run's object keys.
    pub fn keys(&self) -> RunKeys {
        RunKeys::new(&self.run_id)
    }
}

/// Read and parse a JSON object of the run; a missing object is a [`StageError::Fatal`] naming it (a stage ran
/// out of order or the bucket was tampered with).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<T, StageError> {
    let bytes = store
        .get_bytes(key)
        .await?
        .ok_or_else(|| StageError::Fatal(format!("{key} does not exist")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        StageError::Fatal(format!(
            "{key} is unreadable: {}",
            crate::redact::json_error(&e)
        ))
    })
}

/// Find the CXone list by name; a missing list is [`StageError::NotSuppressing`] (nothing written could apply).
pub(crate) async fn resolve_list(
    api: &dyn DncApi,
    name: &str,
) -> Result<crate::cxone::DncList, StageError> {
    api.find_list(name)
        .await
        .map_err(|e| StageError::from(PipelineError::from(e)))?
        .ok_or_else(|| {
            StageError::from(PipelineError::ListNotFound {
                list: name.to_string(),
            })
        })
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        match e {
            // A policy that lacks a permission stays that way: retrying would only delay the FAILED status.
            StoreError::Denied { .. } => StageError::Fatal(e.to_string()),
            _ => StageError::Transient(e.to_string()),
        }
    }
}

/// What `normalize` hands to the state machine: keys and counts, never entries (state payloads stay small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NormalizeOutput {
    /// Run id (derived from the source content: a re-run of the same object is the same run).
    pub run_id: String,
    /// List name.
    pub list: String,
    /// Bucket holding the run.
    pub bucket: String,
    /// `runs/<runId>/manifest.json`.
    pub manifest_key: String,
    /// Shard keys, for the Map state.
    pub shard_keys: Vec<String>,
    /// Rows read.
    pub rows: u64,
    /// Entries accepted.
    pub accepted: u64,
    /// Rows rejected.
    pub rejected: u64,
}

/// Normalize `source` (streamed from S3) into `runs/<runId>/` of `out_bucket`, staging on local disk (`/tmp` in
/// Lambda) and uploading with multipart for large shards.
pub async fn normalize_object(
    s3: &aws_sdk_s3::Client,
    out_bucket: &str,
    source: &SourceObject,
    mut options: NormalizeOptions,
    max_reject_ratio: f64,
) -> Result<NormalizeOutput, StageError> {
    options.list = source.list.clone();
    if options.default_source.is_empty() {
        options.default_source = source.list.clone();
    }
    let location = S3Location {
        bucket: source.bucket.clone(),
        key: source.key.clone(),
        version_id: source.version_id.clone(),
    };
    let (reader, mut identity, _) = open_s3_object(s3, &location).await?;
    let staging =
        tempfile::tempdir().map_err(|e| StageError::Fatal(format!("no staging directory: {e}")))?;
    let staging_path = staging.path().to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || {
        normalize_into(reader, &mut identity, &options, &staging_path, &mut |_| {})
    })
    .await
    .map_err(|e| StageError::Fatal(format!("normalize task failed: {e}")))?
    .map_err(|e| match e {
        NormalizeError::Input(i) => StageError::InvalidInput(i.to_string()),
        NormalizeError::Output { .. } => StageError::Transient(e.to_string()),
        NormalizeError::Unbalanced { .. } => StageError::Fatal(e.to_string()),
    })?;
    let store = S3Store {
        client: s3.clone(),
        bucket: out_bucket.to_string(),
    };
    let (manifest_key, shard_keys) = publish_run(&store, staging.path(), &manifest).await?;
    // Published first, so that the manifest and rejects of a refused file can be read.
    crate::normalize::quality_gate(&manifest.counts, max_reject_ratio).map_err(|why| {
        StageError::InvalidInput(format!(
            "run {} of {} refused: {why}",
            manifest.run_id, source.key
        ))
    })?;
    tracing::info!(run_id = %manifest.run_id, rows = manifest.counts.rows, accepted = manifest.counts.accepted,
        rejected = manifest.counts.rejected, shards = shard_keys.len(), "normalized");
    Ok(NormalizeOutput {
        run_id: manifest.run_id.clone(),
        list: manifest.list.clone(),
        bucket: out_bucket.to_string(),
        manifest_key,
        shard_keys,
        rows: manifest.counts.rows,
        accepted: manifest.counts.accepted,
        rejected: manifest.counts.rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_failures_become_the_kinds_the_state_machine_matches() {
        use crate::cxone::CxoneError;
        let kind = |e: PipelineError| StageError::from(e).error_name();
        let not_suppressing = PipelineError::NotSuppressing {
            list: "l".into(),
            why: "x".into(),
        };
        assert_eq!(kind(not_suppressing), "NotSuppressing");
        assert_eq!(
            kind(PipelineError::ListNotFound { list: "l".into() }),
            "NotSuppressing"
        );
        let open = CxoneError::CircuitOpen {
            op: "x",
            failures: 5,
        };
        assert_eq!(kind(open.into()), "CircuitOpen");
        let exhausted = CxoneError::Exhausted {
            op: "x",
            attempts: 3,
            last: String::new(),
        };
        assert_eq!(kind(exhausted.into()), "Transient");
        let throttled = CxoneError::Api {
            op: "x",
            status: 429,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(kind(throttled.into()), "Transient");
        let refused = CxoneError::Unauthorized {
            op: "x",
            code: String::new(),
        };
        assert_eq!(kind(refused.into()), "Fatal");
        let bad = CxoneError::Api {
            op: "x",
            status: 400,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(kind(bad.into()), "Fatal");
        let data = PipelineError::Data {
            what: "shard".into(),
            reason: "line 3".into(),
        };
        assert_eq!(kind(data), "InvalidInput");
    }

    /// The state machine and the code agree on error names: every name a `Retry` or `Catch` matches (besides Step
    /// Functions' own `States.*` and `Lambda.*`) is one the stages produce, every name the stages produce is one
    /// `error_name` gives, and every Task that can fail with them catches everything (`States.ALL`) into the failure
    /// recorder, so no stage error ends an execution without a status.
    #[test]
    fn the_state_machine_matches_exactly_the_error_names_the_code_produces() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../../infra/statemachine.asl.json")).unwrap();
        let mut named = std::collections::BTreeSet::new();
        let mut tasks = Vec::new();
        fn walk<'a>(
            states: &'a serde_json::Value,
            named: &mut std::collections::BTreeSet<String>,
            tasks: &mut Vec<(&'a str, &'a serde_json::Value)>,
        ) {
            for (name, state) in states.as_object().unwrap() {
                for key in ["Retry", "Catch"] {
                    for rule in state[key].as_array().into_iter().flatten() {
                        for e in rule["ErrorEquals"].as_array().unwrap() {
                            named.insert(e.as_str().unwrap().to_string());
                        }
                    }
                }
                if state["Type"] == "Task" {
                    tasks.push((name.as_str(), state));
                }
                if let Some(inner) = state.get("ItemProcessor") {
                    walk(&inner["States"], named, tasks);
                }
            }
        }
        walk(&definition["States"], &mut named, &mut tasks);
        for name in &named {
            assert!(
                name.starts_with("States.")
                    || name.starts_with("Lambda.")
                    || StageError::NAMES.contains(&name.as_str()),
                "the definition matches {name}, which no stage produces"
            );
        }
        let produced = [
            StageError::InvalidInput(String::new()),
            StageError::Transient(String::new()),
            StageError::Fatal(String::new()),
            StageError::NotSuppressing(String::new()),
            StageError::CircuitOpen(String::new()),
            StageError::NotPropagated(String::new()),
            StageError::CapacityExceeded(String::new()),
        ];
        assert_eq!(
            produced
                .iter()
                .map(StageError::error_name)
                .collect::<Vec<_>>(),
            StageError::NAMES
        );
        assert!(
            named.contains("Transient"),
            "transient failures are retried"
        );
        let catches_all = |state: &serde_json::Value| {
            state["Catch"].as_array().into_iter().flatten().any(|c| {
                c["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e == "States.ALL")
            })
        };
        for (name, state) in tasks {
            // Tasks inside the Map fail the Map, whose own Catch records the failure.
            let inside_map = name == "UploadShard";
            assert!(
                inside_map || catches_all(state),
                "Task {name} can end the execution without a status"
            );
        }
        assert!(catches_all(&definition["States"]["UploadShards"]));
    }
}
