//! One run per list at a time: a lease on `status/<list>/lease.json`, taken with an S3 conditional write after
//! normalize and released when the run's status is final (reconcile's SUCCESS/FAILED, the failure recorder). A second
//! execution for the same list waits for it (the state machine's Wait loop), never runs beside the first. The lease
//! expires after the state machine's own timeout, so a run that died without releasing it cannot hold it forever.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::status::mark_running;
use super::{RunRef, StepError};
use crate::adapters::store::ObjectStore;
use crate::run::{lease_key, status_key, ListStatus};

/// `status/<list>/lease.json`: which execution holds the list.
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
}

/// What the `lease` step is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseTask {
    /// The run (normalize's output).
    #[serde(flatten)]
    pub run: RunRef,
    /// The execution asking (`$$.Execution.Id`).
    pub execution: String,
    /// When the execution started (`$$.Execution.StartTime`): a SUCCESS of the same run published after it means a
    /// concurrent execution of the same object already did this run.
    #[serde(default)]
    pub started_at: Option<String>,
    /// Seconds to wait between attempts while another execution holds the list ([`LEASE_WAIT_SECS`] if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
}

/// What the `lease` step answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseOutcome {
    /// The lease is this execution's: go on.
    pub acquired: bool,
    /// Another execution of the same object verified this run while this one waited: nothing left to do.
    pub duplicate: bool,
    /// Wait this long before asking again (when neither acquired nor duplicate).
    pub wait_seconds: u64,
    /// The execution holding the lease, when another one does.
    pub held_by: Option<String>,
}

/// How long a lease lasts: the state machine's `TimeoutSeconds` (12 h) plus a margin. An execution cannot outlive it.
pub const LEASE_TTL_SECS: i64 = 43_200 + 900;

/// How long a waiting execution sleeps between attempts, by default.
pub const LEASE_WAIT_SECS: u64 = 30;

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Take the list's lease for `task`'s execution, or say how long to wait. Idempotent: the holder asking again (a
/// retried invocation) gets it again. On success the list's status says the run is in flight.
pub async fn acquire_lease(
    store: &dyn ObjectStore,
    task: &LeaseTask,
    now: DateTime<Utc>,
) -> Result<LeaseOutcome, StepError> {
    let list = &task.run.list;
    // A concurrent execution of the same object (same run id) already verified it while this one waited.
    if let Some(started) = task.started_at.as_deref().and_then(parse_time) {
        if let Some(bytes) = store.get_bytes(&status_key(list)).await? {
            if let Ok(status) = serde_json::from_slice::<ListStatus>(&bytes) {
                let after_start = parse_time(&status.updated_at).is_some_and(|t| t >= started);
                if status.run_id == task.run.run_id
                    && status.status == crate::run::RunStatus::Success
                    && status.running.is_none()
                    && after_start
                {
                    return Ok(LeaseOutcome {
                        acquired: false,
                        duplicate: true,
                        wait_seconds: 0,
                        held_by: None,
                    });
                }
            }
        }
    }
    let lease = Lease {
        execution: task.execution.clone(),
        run_id: task.run.run_id.clone(),
        acquired_at: now.to_rfc3339(),
        expires_at: (now + Duration::seconds(LEASE_TTL_SECS)).to_rfc3339(),
    };
    let body = serde_json::to_vec(&lease).expect("lease serializes");
    let key = lease_key(list);
    // A few rounds: the holder may release, or another waiter take over an expired lease, between our reads.
    for _ in 0..3 {
        if store.put_if_absent(&key, body.clone()).await? {
            tracing::info!(list = %list, run_id = %task.run.run_id, execution = %task.execution, "lease acquired");
            return acquired(store, task, now).await;
        }
        let Some((bytes, tag)) = store.get_tagged(&key).await? else {
            continue;
        };
        let held: Option<Lease> = serde_json::from_slice(&bytes).ok();
        match held {
            Some(h) if h.execution == task.execution => {
                // Our own lease (this invocation retried): the status may not have been written yet.
                tracing::info!(list = %list, run_id = %task.run.run_id, execution = %task.execution, "lease acquired");
                return acquired(store, task, now).await;
            }
            Some(h) if parse_time(&h.expires_at).is_some_and(|t| t > now) => {
                tracing::info!(list = %list, held_by = %h.execution, "list busy: waiting for its lease");
                return Ok(LeaseOutcome {
                    acquired: false,
                    duplicate: false,
                    wait_seconds: task.wait_seconds.unwrap_or(LEASE_WAIT_SECS),
                    held_by: Some(h.execution),
                });
            }
            // Expired, or unreadable (never written by us): take it over, unless someone else just did.
            _ => {
                if store.put_if_match(&key, body.clone(), &tag).await? {
                    tracing::warn!(list = %list, run_id = %task.run.run_id, execution = %task.execution, "expired lease taken over");
                    return acquired(store, task, now).await;
                }
            }
        }
    }
    Ok(LeaseOutcome {
        acquired: false,
        duplicate: false,
        wait_seconds: task.wait_seconds.unwrap_or(LEASE_WAIT_SECS),
        held_by: None,
    })
}

/// The lease is `task`'s: say RUNNING in the list's status (again, if a retried invocation already did) and answer.
async fn acquired(
    store: &dyn ObjectStore,
    task: &LeaseTask,
    now: DateTime<Utc>,
) -> Result<LeaseOutcome, StepError> {
    mark_running(
        store,
        &task.run.list,
        &task.run.run_id,
        &task.execution,
        now,
    )
    .await?;
    Ok(LeaseOutcome {
        acquired: true,
        duplicate: false,
        wait_seconds: 0,
        held_by: None,
    })
}

/// The lease of `list`, if any.
pub async fn read_lease(store: &dyn ObjectStore, list: &str) -> Result<Option<Lease>, StepError> {
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
) -> Result<bool, StepError> {
    match read_lease(store, list).await? {
        Some(l) if l.execution == execution => {
            store.delete(&lease_key(list)).await?;
            tracing::info!(list = %list, run_id = %l.run_id, execution = %execution, "lease released");
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::store::LocalStore;

    fn task(execution: &str, run_id: &str) -> LeaseTask {
        LeaseTask {
            run: RunRef {
                bucket: "b".into(),
                run_id: run_id.into(),
                list: "optouts".into(),
            },
            execution: execution.into(),
            started_at: None,
            wait_seconds: None,
        }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_retries_are_idempotent_and_an_expired_lease_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore {
            root: dir.path().to_path_buf(),
        };
        let now: DateTime<Utc> = "2026-12-02T04:30:00Z".parse().unwrap();
        let a = acquire_lease(&store, &task("exec-a", "r1"), now)
            .await
            .unwrap();
        assert!(a.acquired);
        let again = acquire_lease(&store, &task("exec-a", "r1"), now)
            .await
            .unwrap();
        assert!(again.acquired, "a retried acquire gets its own lease back");
        let b = acquire_lease(&store, &task("exec-b", "r2"), now)
            .await
            .unwrap();
        assert_eq!(
            (b.acquired, b.wait_seconds, b.held_by.as_deref()),
            (false, LEASE_WAIT_SECS, Some("exec-a"))
        );
        let status: ListStatus = serde_json::from_slice(
            &store
                .get_bytes(&status_key("optouts"))
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status.status, "RUNNING");
        assert_eq!(status.running.unwrap().run_id, "r1");
        // Only the holder releases.
        assert!(!release_lease(&store, "optouts", "exec-b").await.unwrap());
        // A crashed holder: after the TTL another execution takes over.
        let later = now + Duration::seconds(LEASE_TTL_SECS + 1);
        let b = acquire_lease(&store, &task("exec-b", "r2"), later)
            .await
            .unwrap();
        assert!(b.acquired);
        assert!(release_lease(&store, "optouts", "exec-b").await.unwrap());
        assert!(read_lease(&store, "optouts").await.unwrap().is_none());
        let c = acquire_lease(&store, &task("exec-c", "r3"), later)
            .await
            .unwrap();
        assert!(c.acquired, "a released lease is free");
    }

    /// A status that exists but does not parse holds the last known good run and the open failures: taking the
    /// list fails naming it, and the document is left as it was, never replaced by a fresh RUNNING one.
    #[tokio::test]
    async fn an_unparsable_status_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore {
            root: dir.path().to_path_buf(),
        };
        let now: DateTime<Utc> = "2026-12-02T04:30:00Z".parse().unwrap();
        let damaged = b"{\"list\":\"optouts\",\"status\":\"SUCC".to_vec();
        store
            .put_bytes(&status_key("optouts"), damaged.clone())
            .await
            .unwrap();
        let err = acquire_lease(&store, &task("exec-a", "r1"), now)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::steps::ErrorKind::Fatal);
        assert!(
            err.to_string()
                .contains("status/optouts/latest.json is unreadable"),
            "{err}"
        );
        assert_eq!(
            store
                .get_bytes(&status_key("optouts"))
                .await
                .unwrap()
                .unwrap(),
            damaged
        );
    }
}
