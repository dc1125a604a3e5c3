//! The Lambda stages as library functions (the binaries under `functions/` only parse the event and map errors).
//!
//! Each stage reads what it needs from the run's objects in the bucket (through [`ObjectStore`]) and hands the state
//! machine a small payload of keys and counts, never entries: state payloads stay far below 256 KB, and phone numbers
//! never enter the execution history.

mod cooldown;
mod error;
mod failure;
mod keys;
mod lease;
mod protect;
mod reconcile;
mod status;
mod upload;

pub use cooldown::{cooldown_stage, CooldownOutput, CooldownSettings, CooldownTask};
pub use error::{ErrorKind, StepError};
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

use crate::cxone::DncApi;
use crate::events::SourceObject;
use crate::normalize::{normalize_into, NormalizeError, NormalizeOptions};
use crate::pipeline::PipelineError;
use crate::store::{open_s3_object, publish_run, ObjectStore, S3Location, S3Store};

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

/// Read and parse a JSON object of the run; a missing object is a [`StepError::Fatal`] naming it (a stage ran
/// out of order or the bucket was tampered with).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<T, StepError> {
    let bytes = store
        .get_bytes(key)
        .await?
        .ok_or_else(|| StepError::new(ErrorKind::Fatal, format!("{key} does not exist")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        StepError::new(
            ErrorKind::Fatal,
            format!("{key} is unreadable: {}", crate::redact::json_error(&e)),
        )
    })
}

/// Find the CXone list by name; a missing list is [`StepError::NotSuppressing`] (nothing written could apply).
pub(crate) async fn resolve_list(
    api: &dyn DncApi,
    name: &str,
) -> Result<crate::cxone::DncList, StepError> {
    api.find_list(name)
        .await
        .map_err(StepError::from)?
        .ok_or_else(|| {
            StepError::from(PipelineError::ListNotFound {
                list: name.to_string(),
            })
        })
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
) -> Result<NormalizeOutput, StepError> {
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
    let staging = tempfile::tempdir()
        .map_err(|e| StepError::new(ErrorKind::Fatal, "no staging directory").with_source(e))?;
    let staging_path = staging.path().to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || {
        normalize_into(reader, &mut identity, &options, &staging_path, &mut |_| {})
    })
    .await
    .map_err(|e| StepError::new(ErrorKind::Fatal, "normalize task failed").with_source(e))?
    .map_err(|e| match e {
        NormalizeError::Input(_) => StepError::caused_by(ErrorKind::InvalidInput, e),
        NormalizeError::Output { .. } => StepError::caused_by(ErrorKind::Transient, e),
        NormalizeError::Unbalanced { .. } => StepError::caused_by(ErrorKind::Fatal, e),
    })?;
    let store = S3Store {
        client: s3.clone(),
        bucket: out_bucket.to_string(),
    };
    let (manifest_key, shard_keys) = publish_run(&store, staging.path(), &manifest).await?;
    // Published first, so that the manifest and rejects of a refused file can be read.
    crate::normalize::quality_gate(&manifest.counts, max_reject_ratio).map_err(|why| {
        StepError::new(
            ErrorKind::InvalidInput,
            format!("run {} of {} refused: {why}", manifest.run_id, source.key),
        )
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
        let kind = |e: PipelineError| StepError::from(e).error_name();
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
}
