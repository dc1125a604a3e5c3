//! `status/<list>/lease.json`: which execution holds the list. One run per list at a time: the lease is taken with
//! an S3 conditional write after normalize and released when the run's status is final (reconcile's SUCCESS/FAILED,
//! the failure recorder). It expires after the state machine's own timeout, so a run that died without releasing it
//! cannot hold the list forever; a lease taken over from another holder says whose it was and why ([`Takeover`]).
//! When to take one over is the lease step's decision (`steps::lease::decide_lease`); the document and its
//! conditional writes are here.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{lease_key, DocumentError};
use crate::adapters::store::ObjectStore;

/// How long a lease lasts: the state machine's `TimeoutSeconds` (12 h) plus a margin. An execution cannot outlive it.
pub const LEASE_TTL_SECS: i64 = 43_200 + 900;

/// `status/<list>/lease.json`: which execution holds the list, so two runs of one list never run at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The execution holding it (Step Functions execution ARN; `local:<runId>` for `dncctl run`).
    pub execution: String,
    /// The run it is for.
    pub run_id: String,
    /// When it was taken (RFC 3339).
    pub acquired_at: String,
    /// After this (RFC 3339) another execution may take it over.
    pub expires_at: String,
    /// When this lease was taken over from another holder: whose it was and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_over: Option<Takeover>,
}

/// A lease taken from another holder: the holder's execution had ended, or the lease had expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Takeover {
    /// The execution that held it.
    pub execution: String,
    /// The run it held it for.
    pub run_id: String,
    /// Why it was taken: `holder-ended` or `expired`.
    pub reason: String,
    /// The holder's status in Step Functions when it was taken for `holder-ended` (`FAILED`, `TIMED_OUT`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_status: Option<String>,
    /// When the holder's execution ended, as Step Functions says (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_stopped_at: Option<String>,
}

impl Lease {
    /// A lease for `execution` and `run_id` taken at `now`, for [`LEASE_TTL_SECS`].
    pub fn new(execution: &str, run_id: &str, now: DateTime<Utc>) -> Lease {
        Lease {
            execution: execution.to_string(),
            run_id: run_id.to_string(),
            acquired_at: now.to_rfc3339(),
            expires_at: (now + Duration::seconds(LEASE_TTL_SECS)).to_rfc3339(),
            took_over: None,
        }
    }

    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("lease serializes")
    }
}

/// Write `lease` as `list`'s lease if the list has none: whether it was written.
pub async fn create_lease(
    store: &dyn ObjectStore,
    list: &str,
    lease: &Lease,
) -> Result<bool, DocumentError> {
    Ok(store.put_if_absent(&lease_key(list), lease.body()).await?)
}

/// The lease document of `list` as found, with its version tag (for [`replace_lease`]): `None` when there is none,
/// `Some((None, tag))` when one exists that does not parse (never written by dncflow).
pub async fn read_lease_tagged(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<(Option<Lease>, String)>, DocumentError> {
    Ok(store
        .get_tagged(&lease_key(list))
        .await?
        .map(|(bytes, tag)| (serde_json::from_slice(&bytes).ok(), tag)))
}

/// Replace `list`'s lease by `lease` if it is still the version `tag` (a compare-and-swap): whether it was replaced.
pub async fn replace_lease(
    store: &dyn ObjectStore,
    list: &str,
    lease: &Lease,
    tag: &str,
) -> Result<bool, DocumentError> {
    Ok(store
        .put_if_match(&lease_key(list), lease.body(), tag)
        .await?)
}

/// The lease of `list`, if any (one that does not parse is none: it can be taken over).
pub async fn read_lease(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<Lease>, DocumentError> {
    Ok(store
        .get_bytes(&lease_key(list))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Release `list`'s lease if `execution` holds it (a lease another execution took over is left alone). Returns
/// whether it was released.
pub async fn release_lease(
    store: &dyn ObjectStore,
    list: &str,
    execution: &str,
) -> Result<bool, DocumentError> {
    match read_lease(store, list).await? {
        Some(l) if l.execution == execution => {
            store.delete(&lease_key(list)).await?;
            tracing::info!(list = %list, run_id = %l.run_id, execution = %execution, "lease released");
            Ok(true)
        }
        _ => Ok(false),
    }
}
