//! One run per list at a time: a lease on `status/<list>/lease.json`, taken with an S3 conditional write after
//! normalize and released when the run's status is final (reconcile's SUCCESS/FAILED, the failure recorder). A second
//! execution for the same list waits for it (the state machine's Wait loop), never runs beside the first. The lease
//! expires after the state machine's own timeout, so a run that died without releasing it cannot hold it forever.
//!
//! A waiting execution also asks Step Functions about the holder ([`Executions::describe`]): a holder whose execution
//! has ended (failed without its recorder running, timed out, aborted, or succeeded without releasing) cannot release
//! the lease any more, so it is taken over at once, and the lease document says whose it was and why
//! ([`Takeover`]). Step Functions not answering (an error, no permission, no such execution) never lets a lease go:
//! the expiry rule decides then. A local run's holder (`local:…`) is never asked about.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RunRef, StepError};
use crate::adapters::sfn::{is_execution_arn, ExecutionStatus, Executions};
use crate::adapters::store::ObjectStore;
use crate::run::lease::{create_lease, read_lease_tagged, replace_lease};
pub use crate::run::lease::{read_lease, release_lease, Lease, Takeover, LEASE_TTL_SECS};
use crate::run::status::{mark_running, peek_list_status};

/// What Step Functions says of the execution holding a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderState {
    /// Not asked: a local holder, or a lease that is ours or expired anyway.
    NotAsked,
    /// Asked, and it answered this status (and, for an ended one, when it ended).
    Known {
        /// The holder's execution status, as Step Functions answered it.
        status: ExecutionStatus,
        /// When it ended (None while it runs, or when Step Functions gave no time).
        stopped_at: Option<DateTime<Utc>>,
    },
    /// Asked, and no answer could be had (error, denied, no such execution): the expiry rule decides.
    Unknown(String),
}

/// What to do about a lease found held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// It is the asking execution's own (a retried invocation).
    Own,
    /// Another execution holds it and may still be running: wait.
    Wait,
    /// Take it over (compare-and-swap on the document read), for this reason.
    TakeOver(Option<Takeover>),
}

/// The decision over a lease document found at the key (`held`: `None` when it does not parse), for the execution
/// `asking`, at `now`, given what Step Functions says of the holder. Plain: no I/O.
///
/// - the asker's own lease is its own;
/// - an expired lease is taken over (the holder cannot be running: the lease outlives the state machine's timeout);
/// - a lease whose holder's execution has ended (SUCCEEDED, FAILED, TIMED_OUT, ABORTED) is taken over at once;
/// - anything else waits: a running holder, a holder pending redrive, a status not known to this code, and above
///   all a holder Step Functions could not be asked about (never take a live run's lease on an error);
/// - a document that does not parse was never written by dncflow: taken over.
pub fn decide_lease(
    held: Option<&Lease>,
    asking: &str,
    holder: &HolderState,
    now: DateTime<Utc>,
) -> LeaseDecision {
    let Some(h) = held else {
        return LeaseDecision::TakeOver(None);
    };
    if h.execution == asking {
        return LeaseDecision::Own;
    }
    // Expired, or an expiry that does not parse (never written by dncflow).
    if parse_time(&h.expires_at).is_none_or(|t| t <= now) {
        return LeaseDecision::TakeOver(Some(Takeover {
            execution: h.execution.clone(),
            run_id: h.run_id.clone(),
            reason: "expired".into(),
            holder_status: None,
            holder_stopped_at: None,
        }));
    }
    match holder {
        HolderState::Known { status, stopped_at } if status.has_ended() => {
            LeaseDecision::TakeOver(Some(Takeover {
                execution: h.execution.clone(),
                run_id: h.run_id.clone(),
                reason: "holder-ended".into(),
                holder_status: Some(status.as_str().to_string()),
                holder_stopped_at: stopped_at.map(|t| t.to_rfc3339()),
            }))
        }
        _ => LeaseDecision::Wait,
    }
}

/// Whether Step Functions should be asked about `held`'s holder before deciding: another execution's unexpired
/// lease, held by a Step Functions execution (a local run's holder cannot be asked about).
fn worth_asking(held: &Lease, asking: &str, now: DateTime<Utc>) -> bool {
    held.execution != asking
        && parse_time(&held.expires_at).is_some_and(|t| t > now)
        && is_execution_arn(&held.execution)
}

/// What Step Functions says of `execution` (never an error: an unanswered question is [`HolderState::Unknown`]).
async fn ask_about(executions: &dyn Executions, list: &str, execution: &str) -> HolderState {
    match executions.describe(execution).await {
        Ok(e) => HolderState::Known {
            status: e.status,
            stopped_at: e.stopped_at,
        },
        Err(e) => {
            tracing::warn!(list = %list, held_by = %execution, error = %e,
                "cannot ask Step Functions about the lease's holder: its lease is kept until it expires");
            HolderState::Unknown(e.to_string())
        }
    }
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

/// How long a waiting execution sleeps between attempts, by default.
pub const LEASE_WAIT_SECS: u64 = 30;

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Take the list's lease for `task`'s execution, or say how long to wait. Idempotent: the holder asking again (a
/// retried invocation) gets it again. On success the list's status says the run is in flight. `executions` (none for
/// a local run) is asked whether another holder's execution has ended ([`decide_lease`]).
pub async fn acquire_lease(
    store: &dyn ObjectStore,
    executions: Option<&dyn Executions>,
    task: &LeaseTask,
    now: DateTime<Utc>,
) -> Result<LeaseOutcome, StepError> {
    let list = &task.run.list;
    // A concurrent execution of the same object (same run id) already verified it while this one waited.
    if let Some(started) = task.started_at.as_deref().and_then(parse_time) {
        if let Some(status) = peek_list_status(store, list).await? {
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
    let lease = Lease::new(&task.execution, &task.run.run_id, now);
    let mut held_by = None;
    // A few rounds: the holder may release, or another waiter take over an expired lease, between our reads.
    for _ in 0..3 {
        if create_lease(store, list, &lease).await? {
            tracing::info!(list = %list, run_id = %task.run.run_id, execution = %task.execution, "lease acquired");
            return acquired(store, task, now).await;
        }
        let Some((held, tag)) = read_lease_tagged(store, list).await? else {
            continue;
        };
        let holder = match (&held, executions) {
            (Some(h), Some(executions)) if worth_asking(h, &task.execution, now) => {
                ask_about(executions, list, &h.execution).await
            }
            _ => HolderState::NotAsked,
        };
        match decide_lease(held.as_ref(), &task.execution, &holder, now) {
            LeaseDecision::Own => {
                // Our own lease (this invocation retried): the status may not have been written yet.
                tracing::info!(list = %list, run_id = %task.run.run_id, execution = %task.execution, "lease acquired");
                return acquired(store, task, now).await;
            }
            LeaseDecision::Wait => {
                let holder = held.map(|h| h.execution);
                tracing::info!(list = %list, held_by = ?holder, "list busy: waiting for its lease");
                return Ok(LeaseOutcome {
                    acquired: false,
                    duplicate: false,
                    wait_seconds: task.wait_seconds.unwrap_or(LEASE_WAIT_SECS),
                    held_by: holder,
                });
            }
            // Take it over, unless someone else just did (the compare-and-swap fails; read again).
            LeaseDecision::TakeOver(took_over) => {
                let ours = Lease {
                    took_over: took_over.clone(),
                    ..lease.clone()
                };
                if replace_lease(store, list, &ours, &tag).await? {
                    match &took_over {
                        Some(t) => tracing::warn!(list = %list, run_id = %task.run.run_id,
                            execution = %task.execution, from = %t.execution, from_run_id = %t.run_id,
                            reason = %t.reason, holder_status = ?t.holder_status,
                            "lease taken over"),
                        None => tracing::warn!(list = %list, run_id = %task.run.run_id,
                            execution = %task.execution, "unreadable lease taken over"),
                    }
                    return acquired(store, task, now).await;
                }
                held_by = held.map(|h| h.execution);
            }
        }
    }
    Ok(LeaseOutcome {
        acquired: false,
        duplicate: false,
        wait_seconds: task.wait_seconds.unwrap_or(LEASE_WAIT_SECS),
        held_by,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::store::LocalStore;
    use crate::run::{status_key, ListStatus};
    use chrono::Duration;

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
        let a = acquire_lease(&store, None, &task("exec-a", "r1"), now)
            .await
            .unwrap();
        assert!(a.acquired);
        let again = acquire_lease(&store, None, &task("exec-a", "r1"), now)
            .await
            .unwrap();
        assert!(again.acquired, "a retried acquire gets its own lease back");
        let b = acquire_lease(&store, None, &task("exec-b", "r2"), now)
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
        let b = acquire_lease(&store, None, &task("exec-b", "r2"), later)
            .await
            .unwrap();
        assert!(b.acquired);
        assert!(release_lease(&store, "optouts", "exec-b").await.unwrap());
        assert!(read_lease(&store, "optouts").await.unwrap().is_none());
        let c = acquire_lease(&store, None, &task("exec-c", "r3"), later)
            .await
            .unwrap();
        assert!(c.acquired, "a released lease is free");
    }

    fn held(execution: &str, expires_at: &str) -> Lease {
        Lease {
            execution: execution.into(),
            run_id: "r1".into(),
            acquired_at: "2026-12-02T04:30:00Z".into(),
            expires_at: expires_at.into(),
            took_over: None,
        }
    }

    const HOLDER: &str = "arn:aws:states:us-east-1:123456789012:execution:dncflow-dncflow:nightly";

    #[test]
    fn an_ended_holder_loses_its_lease_at_once_a_live_or_unknown_one_keeps_it() {
        let now: DateTime<Utc> = "2026-12-02T05:00:00Z".parse().unwrap();
        let lease = held(HOLDER, "2026-12-02T16:45:00Z");
        let stopped: DateTime<Utc> = "2026-12-02T04:58:00Z".parse().unwrap();
        for (status, taken) in [
            (ExecutionStatus::Failed, true),
            (ExecutionStatus::TimedOut, true),
            (ExecutionStatus::Aborted, true),
            (ExecutionStatus::Succeeded, true),
            (ExecutionStatus::Running, false),
            (ExecutionStatus::PendingRedrive, false),
            (ExecutionStatus::Other("PAUSED".into()), false),
        ] {
            let decision = decide_lease(
                Some(&lease),
                "exec-b",
                &HolderState::Known {
                    status: status.clone(),
                    stopped_at: Some(stopped),
                },
                now,
            );
            if taken {
                assert_eq!(
                    decision,
                    LeaseDecision::TakeOver(Some(Takeover {
                        execution: HOLDER.into(),
                        run_id: "r1".into(),
                        reason: "holder-ended".into(),
                        holder_status: Some(status.as_str().into()),
                        holder_stopped_at: Some("2026-12-02T04:58:00+00:00".into()),
                    })),
                    "{status}"
                );
            } else {
                assert_eq!(decision, LeaseDecision::Wait, "{status}");
            }
        }
        // Step Functions not answering (denied, unreachable, no such execution) never frees a live lease.
        assert_eq!(
            decide_lease(
                Some(&lease),
                "exec-b",
                &HolderState::Unknown("access denied".into()),
                now
            ),
            LeaseDecision::Wait
        );
        assert_eq!(
            decide_lease(Some(&lease), "exec-b", &HolderState::NotAsked, now),
            LeaseDecision::Wait
        );
        // The holder asking again is given its own lease, whatever was said of it.
        assert_eq!(
            decide_lease(
                Some(&lease),
                HOLDER,
                &HolderState::Known {
                    status: ExecutionStatus::Aborted,
                    stopped_at: None
                },
                now
            ),
            LeaseDecision::Own
        );
    }

    #[test]
    fn an_expired_or_unreadable_lease_is_taken_over_without_asking() {
        let now: DateTime<Utc> = "2026-12-02T17:00:00Z".parse().unwrap();
        let local = held("local:r1:2026-12-02T04:30:00Z", "2026-12-02T16:45:00Z");
        let LeaseDecision::TakeOver(Some(t)) =
            decide_lease(Some(&local), "exec-b", &HolderState::NotAsked, now)
        else {
            panic!("an expired lease is taken over");
        };
        assert_eq!(
            (t.execution.as_str(), t.reason.as_str(), t.holder_status),
            ("local:r1:2026-12-02T04:30:00Z", "expired", None)
        );
        assert_eq!(
            decide_lease(None, "exec-b", &HolderState::NotAsked, now),
            LeaseDecision::TakeOver(None)
        );
        // Who is asked about: another execution's unexpired lease held by a Step Functions execution only.
        let before = "2026-12-02T05:00:00Z".parse().unwrap();
        assert!(worth_asking(
            &held(HOLDER, "2026-12-02T16:45:00Z"),
            "exec-b",
            before
        ));
        assert!(!worth_asking(
            &held(HOLDER, "2026-12-02T16:45:00Z"),
            HOLDER,
            before
        ));
        assert!(!worth_asking(
            &held(HOLDER, "2026-12-02T16:45:00Z"),
            "exec-b",
            now
        ));
        assert!(!worth_asking(&local, "exec-b", before));
    }

    /// A lease document written before `tookOver` existed still reads, and one without a takeover writes none.
    #[test]
    fn the_lease_document_keeps_its_shape() {
        let old = r#"{"execution":"e","runId":"r","acquiredAt":"a","expiresAt":"x"}"#;
        let lease: Lease = serde_json::from_str(old).unwrap();
        assert_eq!(lease.took_over, None);
        assert_eq!(serde_json::to_string(&lease).unwrap(), old);
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
        let err = acquire_lease(&store, None, &task("exec-a", "r1"), now)
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
