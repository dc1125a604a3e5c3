//! The reconcile stage: compare what CXone holds with the run's ledger, re-queue what is missing (bounded rounds),
//! and end the run with a report and a published status.

mod logic;

pub use logic::*;

use crate::adapters::eventbridge::StatusNotifier;
use crate::run::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    probe_canary, publish_list_status, read_json, resolve_list, ErrorKind, RunRef, StepError,
};
use crate::adapters::cxone::DncApi;
use crate::adapters::store::ObjectStore;
use crate::run::canary::{read_canary, CanaryProbe};
use crate::run::lease::release_lease;
use crate::run::ledger::for_each_run_ledger_record;
use crate::run::snapshot::write_snapshot;
use crate::run::{EntryOutcome, Manifest, RunReport, ShardEntry, UploadCounts};

/// The reconcile stage's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileTask {
    /// The run being reconciled (its bucket, id and list).
    #[serde(flatten)]
    pub run: RunRef,
    /// Re-upload rounds done so far (0: only the first upload).
    #[serde(default)]
    pub round: u32,
    /// When the execution started (RFC 3339), for the report.
    #[serde(default)]
    pub started_at: Option<String>,
    /// The execution holding the list's lease, released once the status is final.
    #[serde(default)]
    pub execution: Option<String>,
    /// How many times faster than wall time `now` runs: a local run on the embedded simulator's fast clock (absent:
    /// wall time, as in AWS). The report then gives wall-clock times and says how much simulated time passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_scale: Option<f64>,
}

/// What reconcile decided, as the state machine's `Choice` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileOutput {
    /// `SUCCESS`, `FAILED` (both published), or `REUPLOAD` (upload `shardKeys` as round `round`, then come back).
    pub status: RunStatus,
    /// The round to run next (for `REUPLOAD`) or the rounds run.
    pub round: u32,
    /// For `REUPLOAD`: the re-upload shard.
    pub shard_keys: Vec<String>,
    /// Entries expected on the list.
    pub expected: usize,
    /// Of the expected entries, those found on the list (held and not expired).
    pub found: usize,
    /// Missing (or unconfirmed) at this round.
    pub missing: usize,
    /// Why the run failed.
    pub reason: Option<String>,
    /// The report's object key (`runs/<runId>/report.json`), once published (None for `REUPLOAD`).
    pub report_key: Option<String>,
}

/// The cooldown's canary probe of this round, if it made one, with its verdict on the numbers it handed over: a
/// number on the list that is still not suppressed means the list does not propagate (`NotPropagated`, the run
/// fails); one that is not on the list was lost and is re-uploaded like any missing entry.
async fn verify_canary(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    task: &ReconcileTask,
    list_id: &str,
    remote: &RemoteIndex,
) -> Result<Option<CanaryProbe>, StepError> {
    let Some(canary) = read_canary(store, &task.run.keys(), task.round).await? else {
        return Ok(None);
    };
    let held: Vec<String> = canary
        .pending
        .iter()
        .filter(|n| remote.contains(n))
        .cloned()
        .collect();
    if held.is_empty() {
        return Ok(Some(canary));
    }
    let again = probe_canary(api, list_id, &held).await?;
    tracing::info!(run_id = %task.run.run_id, round = task.round, handed_over = canary.pending.len(),
        on_list = held.len(), still_pending = again.pending.len(), "canary numbers handed over by the cooldown re-probed");
    if !again.pending.is_empty() {
        return Err(StepError::new(
            ErrorKind::NotPropagated,
            format!(
            "list {}: {} of {} canary numbers are on the list and still not suppressed (round {})",
            task.run.list,
            again.pending.len(),
            canary.probed,
            task.round
        ),
        ));
    }
    Ok(Some(canary))
}

/// Reconcile round `task.round`: read the ledger (first upload and every re-upload so far), page through the list,
/// compare. Clean → publish SUCCESS (report, dead letters, suppression snapshot, status, event). Entries missing and
/// rounds left → write the next re-upload shard and answer `REUPLOAD`. Otherwise publish FAILED with the reason.
/// CXone failures are errors (the state machine's failure recorder publishes them; a tripped breaker is
/// `CircuitOpen`).
pub async fn reconcile_stage(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    notifier: &dyn StatusNotifier,
    task: &ReconcileTask,
    max_rounds: u32,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<ReconcileOutput, StepError> {
    let keys = task.run.keys();
    let manifest: Manifest = read_json(store, &keys.manifest()).await?;
    let list = resolve_list(api, &task.run.list).await?;
    // The list as a compact index (16 bytes a number), the ledger streamed one shard at a time through the
    // comparison: only what is wrong is kept, so memory follows the list's size, not the ledger's.
    let remote = fetch_remote_index(api, &list.id).await?;
    let canary = verify_canary(api, store, task, &list.id, &remote).await?;
    let mut reconciler = Reconciler::new(&remote, list.default_expiration_date.as_deref(), now())
        .compare_metadata(api.capabilities().entry_metadata);
    let mut upload = UploadCounts::default();
    let mut dead: Vec<u8> = Vec::new();
    let mut dead_numbers: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut jurisdictions: std::collections::BTreeMap<String, u64> = Default::default();
    let mut dead_letter_reasons: std::collections::BTreeMap<String, u64> = Default::default();
    upload.reuploaded = for_each_run_ledger_record(store, &manifest, task.round, |rec| {
        upload.add(&rec);
        *jurisdictions.entry(rec.jurisdiction.clone()).or_default() += 1;
        if let EntryOutcome::Rejected { code, .. } = &rec.outcome {
            *dead_letter_reasons.entry(code.clone()).or_default() += 1;
        }
        if matches!(rec.outcome, EntryOutcome::Rejected { .. }) {
            serde_json::to_writer(&mut dead, &rec).expect("ledger records serialize");
            dead.push(b'\n');
            dead_numbers.insert(rec.phone_number.clone());
        }
        reconciler.add(&rec);
    })
    .await?;
    let r = reconciler.finish();
    let missing = r.missing.len() + r.unconfirmed.len();
    let wrong = r.wrong_expiration.len() + r.wrong_jurisdiction.len();
    tracing::info!(run_id = %task.run.run_id, round = task.round, expected = r.expected, found = r.found, missing,
        wrong_expiration = r.wrong_expiration.len(), wrong_jurisdiction = r.wrong_jurisdiction.len(),
        rejected = ?r.rejected_by_code, "reconciled");
    let mut out = ReconcileOutput {
        status: RunStatus::Failed,
        round: task.round,
        shard_keys: Vec::new(),
        expected: r.expected,
        found: r.found,
        missing,
        reason: None,
        report_key: None,
    };
    if !r.clean() && missing > 0 && task.round + 1 < max_rounds {
        let next = task.round + 1;
        let entries: Vec<ShardEntry> = r.reupload_entries(&manifest.list);
        let key = keys.reupload_shard(next);
        let mut body = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut body, e).expect("shard entries serialize");
            body.push(b'\n');
        }
        store.put_bytes(&key, body).await?;
        out.status = RunStatus::Reupload;
        out.round = next;
        out.shard_keys = vec![key];
        return Ok(out);
    }

    let mut report = RunReport::blank(
        Some(&manifest),
        &task.run.run_id,
        &task.run.list,
        task.started_at.clone(),
        now(),
    );
    report.list_id = Some(list.id.clone());
    // The timeline's "uploaded" and "propagated", from the cooldown's record of this (the last) round. A canary
    // handed over with numbers pending was shown suppressed by this reconciliation (`verify_canary`), when it found
    // every number on the list, not before.
    if let Some(c) = &canary {
        report.uploaded_at = c.last_write_at.clone();
        report.propagated_at = match (c.probed, c.pending.is_empty()) {
            (0, _) => None,
            (_, true) => c.probed_at.clone(),
            (_, false) => r.clean().then(|| now().to_rfc3339()),
        };
    }
    report.canary = canary.filter(|c| c.probed > 0).map(|c| c.result());
    report.upload = upload;
    report.reconcile_rounds = task.round + 1;
    report.expected = r.expected;
    report.found = r.found;
    report.missing = missing;
    report.wrong_expiration = r.wrong_expiration.len();
    report.wrong_jurisdiction = r.wrong_jurisdiction.len();
    report.jurisdictions = jurisdictions;
    report.dead_letter_reasons = dead_letter_reasons;
    if r.clean() {
        report.status = RunStatus::Success;
        // Each number with its record's expiration: a later upload skips a number only while CXone holds it as long
        // as that file asks.
        write_snapshot(store, &keys, remote.held()).await?;
    } else if missing > 0 {
        report.reason = Some(format!(
            "{missing} entries still missing after {} rounds",
            task.round + 1
        ));
    } else {
        report.reason = Some(format!(
            "{wrong} entries hold another expiration or jurisdiction than sent (re-sending would not fix it)"
        ));
    }
    store.put_bytes(&keys.dead_letters(), dead).await?;
    // What the check answers for the list's received numbers: a SUCCESS read CXone's whole list back, so every
    // number it holds (from this run or any earlier one) is known held and leaves the document; the run's refused
    // numbers stay as dead letters. A FAILED run's numbers stay, `run-failed:<runId>`.
    let settled = now();
    let run_id = task.run.run_id.clone();
    if report.success() {
        let (released, counts) = crate::run::update_received(store, &task.run.list, settled, |r| {
            r.run_verified(
                &run_id,
                |n, expiration| remote.holds(n, expiration, settled),
                |n| dead_numbers.contains(n),
            )
        })
        .await?;
        tracing::info!(run_id = %run_id, released, dead_letters = counts.dead_letters,
            not_held = counts.pending_propagation + counts.run_failed + counts.refused_file,
            "received numbers settled by the verified read-back");
    } else {
        crate::run::update_received(store, &task.run.list, settled, |r| r.run_failed(&run_id))
            .await?;
    }
    let finished = now();
    report.finished_at = finished.to_rfc3339();
    if let Some(clock) =
        crate::run::SimulatedClock::of(task.clock_scale, &report.started_at, finished)
    {
        report.finished_at = clock.wall_finished_at(&report.started_at).to_rfc3339();
        report.simulated_clock = Some(clock);
    }
    publish_list_status(store, notifier, &report).await?;
    if let Some(execution) = &task.execution {
        release_lease(store, &task.run.list, execution).await?;
    }
    out.status = report.status;
    out.round = report.reconcile_rounds;
    out.reason = report.reason.clone();
    out.report_key = Some(keys.report());
    Ok(out)
}
