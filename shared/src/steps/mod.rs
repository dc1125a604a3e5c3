//! The mission's steps, one module each, as library functions: the Lambda binaries under `functions/` call them
//! through `lambda::functions`, and `dncctl run` through the local driver (`local`).
//!
//! Each step reads what it needs from the run's objects in the bucket (through [`ObjectStore`]) and hands the state
//! machine a small payload of keys and counts, never entries: state payloads stay far below 256 KB, and phone numbers
//! never enter the execution history. A step's pure logic sits beside it (`<step>/logic.rs`), unit-tested without
//! I/O or against the [`DncApi`] boundary only. Every step fails with one [`StepError`], whose [`ErrorKind`] is what
//! the state machine matches.

pub mod check;
pub mod cooldown;
mod error;
pub mod ftc_download;
pub mod lease;
pub mod normalize;
pub mod reconcile;
pub mod record_failure;
pub mod registry;
pub mod status;
pub mod upload;

pub use check::{
    check_stage, closures_from, knowledge_markers, load_closures, load_local_knowledge,
    refresh_registries, LocalKnowledge, Webhook, VERIFIED_MAX_AGE,
};
pub use cooldown::{cooldown_stage, CooldownOutput, CooldownSettings, CooldownTask};
pub use error::{ErrorKind, PipelineError, StepError};
pub use lease::{
    acquire_lease, decide_lease, read_lease, release_lease, HolderState, Lease, LeaseDecision,
    LeaseOutcome, LeaseTask, Takeover, LEASE_TTL_SECS, LEASE_WAIT_SECS,
};
pub use normalize::{normalize_object, NormalizeOutput};
pub use reconcile::{reconcile_stage, ReconcileOutput, ReconcileTask};
pub use record_failure::{record_failure, FailureRecorded};
pub use status::{
    clear_failure, mark_running, next_status, publish_list_status, read_list_status,
    read_run_ledger, remove_received, RemovalTarget,
};
pub use upload::{
    upload_stage, CapacityDecision, ShardTask, UploadOutput, UploadSettings, CXONE_CAPACITY,
};

use serde::{Deserialize, Serialize};

use crate::adapters::cxone::DncApi;
use crate::adapters::store::ObjectStore;
use crate::run::RunKeys;

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
) -> Result<crate::adapters::cxone::DncList, StepError> {
    api.find_list(name)
        .await
        .map_err(StepError::from)?
        .ok_or_else(|| {
            StepError::from(PipelineError::ListNotFound {
                list: name.to_string(),
            })
        })
}
