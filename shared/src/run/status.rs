//! `status/<list>/latest.json`: the list's status, what campaign launches are gated on: the last run's outcome, the
//! last known good run kept across failures, the failures still open, the run in flight, and the counts of the list's
//! received numbers not known held. Written when a run takes the list (`mark_running`), when it ends
//! (`publish_status`, with the run's report beside it) and by an operator's commands (`clear_failure`,
//! `remove_received`); never silently replaced when it does not parse.

use serde::{Deserialize, Serialize};

use super::{
    deadline, status_key, DocumentError, LedgerRecord, ReceivedCounts, RunKeys, RunReport,
    RunStatus,
};
use crate::adapters::store::ObjectStore;

/// `status/<list>/latest.json`: what campaign launches are gated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStatus {
    /// The DNC list's name.
    pub list: String,
    /// `SUCCESS`, `FAILED`, or `RUNNING` (a run in flight after a success, or the first run of a list).
    pub status: RunStatus,
    /// Why the list is FAILED (None unless it is).
    pub reason: Option<String>,
    /// The run that wrote this status last.
    pub run_id: String,
    /// When it was last written (RFC 3339).
    pub updated_at: String,
    /// Where the report is, relative to the output root.
    pub report_key: String,
    /// Entries verified on the list.
    pub verified_entries: usize,
    /// Dead letters of the list: numbers CXone refused to hold, in this run or an earlier one of any source, that no
    /// verified run has shown held since and no operator removed (`status/<list>/received.txt`). A SUCCESS with dead
    /// letters verified everything CXone accepted; the check answers these numbers `suppressed` (`dead-letter`).
    #[serde(default)]
    pub dead_letters: u64,
    /// Every number the list was given that no verified run has shown CXone holding yet, per reason (dead letters
    /// included): the check answers each `suppressed`.
    #[serde(default)]
    pub received_not_held: ReceivedCounts,
    /// The last successful run, kept across failures ("last known good").
    pub last_success: Option<LastSuccess>,
    /// The run in flight, while one holds the list's lease (`status` is then `RUNNING`, or stays `FAILED` while a
    /// failure is open). Campaign gating reads `RUNNING` with a `lastSuccess` as "last known good still valid".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<RunningRun>,
    /// Failed runs that no later success of the same source has resolved: while any is open, the status stays
    /// `FAILED`, whatever another source's run achieves. Resolved by a SUCCESS of that source, or cleared by an
    /// operator (`dncctl status clear`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_failures: Vec<OpenFailure>,
    /// Every received file not yet verified (a failed run does not stop its clock), oldest first, measured when the
    /// status was written: its receipt, deadline and business days so far.
    #[serde(default)]
    pub unverified: Vec<deadline::ReceiptDeadline>,
    /// The oldest unverified file's business days since receipt (0: every received file verified).
    #[serde(default)]
    pub oldest_unverified_business_days: u32,
}

/// A run in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningRun {
    /// The run in flight.
    pub run_id: String,
    /// The execution holding the list.
    pub execution: String,
    /// When it took the list (RFC 3339).
    pub started_at: String,
}

/// A failure not yet resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenFailure {
    /// The source object (key or path) whose run failed.
    pub source: String,
    /// The run that failed.
    pub run_id: String,
    /// The failure's kind and message, as the failure recorder received it.
    pub reason: Option<String>,
    /// When the failure was recorded (RFC 3339).
    pub at: String,
}

/// The last known good run of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSuccess {
    /// The run that succeeded.
    pub run_id: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
}

/// The status that follows `previous` after `report`: a failure keeps the last known good run and stays open until
/// a run of the same source succeeds; a success of another source does not mask it (the status stays FAILED).
pub fn next_status(previous: Option<ListStatus>, report: &RunReport) -> ListStatus {
    let source = report
        .source
        .clone()
        .unwrap_or_else(|| format!("run {}", report.run_id));
    let (mut last_success, mut open, running) = previous
        .map(|p| (p.last_success, p.open_failures, p.running))
        .unwrap_or_default();
    // Another run in flight stays said: the recorder of an execution that ended without its Catch can publish after
    // a waiting execution took the list's lease over and marked its own run RUNNING.
    let running = running.filter(|r| r.run_id != report.run_id);
    if report.success() {
        last_success = Some(LastSuccess {
            run_id: report.run_id.clone(),
            at: report.finished_at.clone(),
        });
        open.retain(|f| f.source != source);
    } else {
        open.retain(|f| f.source != source);
        open.push(OpenFailure {
            source,
            run_id: report.run_id.clone(),
            reason: report.reason.clone(),
            at: report.finished_at.clone(),
        });
    }
    let (status, reason) = match open.first() {
        None => (report.status, report.reason.clone()),
        Some(_) if !report.success() => (report.status, report.reason.clone()),
        Some(f) => (
            RunStatus::Failed,
            Some(format!(
                "run {} verified, but the failed run {} of {} is not resolved (a success of that source or an \
                 operator clears it): {}",
                report.run_id,
                f.run_id,
                f.source,
                f.reason.as_deref().unwrap_or("no reason recorded")
            )),
        ),
    };
    ListStatus {
        list: report.list.clone(),
        status,
        reason,
        run_id: report.run_id.clone(),
        updated_at: report.finished_at.clone(),
        report_key: RunKeys::new(&report.run_id).report(),
        verified_entries: report.found,
        dead_letters: report.upload.rejected,
        received_not_held: Default::default(),
        last_success,
        running,
        open_failures: open,
        unverified: Vec::new(),
        oldest_unverified_business_days: 0,
    }
}

/// `status/<list>/latest.json`, `None` when the list has none. A status that exists but does not parse is an error,
/// never "absent": it holds the last known good run and the open failures, and is never silently replaced.
pub async fn read_list_status(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<ListStatus>, DocumentError> {
    let key = status_key(list);
    match store.get_bytes(&key).await? {
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            DocumentError::unreadable(format!(
                "{key} is unreadable ({}): it is left as it is (it holds the last known good run and the open \
                 failures); repair or restore it",
                crate::redact::json_error(&e)
            ))
        }),
        None => Ok(None),
    }
}

/// `status/<list>/latest.json` when it exists and parses, else `None`: for a decision that can only skip work (the
/// lease's "already verified by a concurrent execution"); the step reads it strictly ([`read_list_status`]) before
/// it writes anything from it.
pub async fn peek_list_status(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<ListStatus>, DocumentError> {
    Ok(store
        .get_bytes(&status_key(list))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Say in `status/<list>/latest.json` that `run_id` is in flight: `RUNNING`, or still `FAILED` while a failure is
/// open (a run in flight never hides one); the last known good run is kept.
pub async fn mark_running(
    store: &dyn ObjectStore,
    list: &str,
    run_id: &str,
    execution: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ListStatus, DocumentError> {
    let key = status_key(list);
    let previous = read_list_status(store, list).await?;
    let running = RunningRun {
        run_id: run_id.to_string(),
        execution: execution.to_string(),
        started_at: now.to_rfc3339(),
    };
    let status = match previous {
        Some(p) if p.status == RunStatus::Failed => ListStatus {
            running: Some(running),
            ..p
        },
        Some(p) => ListStatus {
            status: RunStatus::Running,
            reason: None,
            running: Some(running),
            ..p
        },
        None => ListStatus {
            list: list.to_string(),
            status: RunStatus::Running,
            reason: None,
            run_id: run_id.to_string(),
            updated_at: now.to_rfc3339(),
            report_key: RunKeys::new(run_id).report(),
            verified_entries: 0,
            dead_letters: 0,
            received_not_held: Default::default(),
            last_success: None,
            running: Some(running),
            open_failures: Vec::new(),
            unverified: Vec::new(),
            oldest_unverified_business_days: 0,
        },
    };
    store.put_bytes(&key, pretty(&status)).await?;
    Ok(status)
}

/// Write the report (`report.json`, `report.md`, `report.html`) and `status/<list>/latest.json` (keeping the last
/// known good run across failures). The step announces it (`steps::publish_list_status`).
pub async fn publish_status(
    store: &dyn ObjectStore,
    report: &RunReport,
) -> Result<ListStatus, DocumentError> {
    let keys = RunKeys::new(&report.run_id);
    // The list's received document (which the step updated just before): the dead letters and every number not
    // known held, carried across runs of any source, and the files whose deadlines are running.
    let received = crate::run::load_received(store, &report.list).await;
    let calendar = crate::hours::business_days::BusinessCalendar::configured_or_default();
    let mut report = report.clone();
    if report.deadline.is_none() {
        report.deadline = run_deadline(
            calendar,
            &report,
            received.as_ref().ok().and_then(Option::as_ref),
        );
    }
    store.put_bytes(&keys.report(), pretty(&report)).await?;
    store
        .put_bytes(&keys.report_markdown(), report.markdown().into_bytes())
        .await?;
    let examples = report_examples(store, &keys).await;
    store
        .put_bytes(&keys.report_html(), report.html(&examples).into_bytes())
        .await?;
    let key = status_key(&report.list);
    let previous = read_list_status(store, &report.list).await?;
    let mut status = next_status(previous, &report);
    match received {
        Ok(received) => {
            let counts = received.as_ref().map(|r| r.counts()).unwrap_or_default();
            status.dead_letters = counts.dead_letters;
            status.received_not_held = counts;
            set_deadlines(
                &mut status,
                calendar,
                received.as_ref(),
                parse_time(&report.finished_at),
            );
        }
        // The status is still published (a run's ending must never be lost); the check answers `error` meanwhile.
        Err(e) => {
            tracing::error!(list = %report.list, error = %e, "received document unreadable: status counts left out")
        }
    }
    store.put_bytes(&key, pretty(&status)).await?;
    Ok(status)
}

/// Examples for the report's page, masked: the first few rejected values of each reason (`rejects.jsonl`) and the
/// first dead letters with CXone's answer (`dead-letters.jsonl`). What cannot be read is left out (the page says
/// the counts either way): a report is never held back for its examples.
async fn report_examples(
    store: &dyn ObjectStore,
    keys: &RunKeys,
) -> crate::run::html::ReportExamples {
    const PER_REASON: usize = 3;
    const DEAD_LETTERS: usize = 10;
    let mut examples = crate::run::html::ReportExamples::default();
    let lines = |bytes: Vec<u8>| {
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .collect::<Vec<_>>()
    };
    if let Ok(Some(bytes)) = store.get_bytes(&keys.rejects()).await {
        for v in lines(bytes) {
            let (Some(reason), Some(raw)) = (v["reason"].as_str(), v["raw"].as_str()) else {
                continue;
            };
            let shown = examples.rejects.entry(reason.to_string()).or_default();
            if shown.len() < PER_REASON {
                let raw: String = raw.chars().take(40).collect();
                shown.push(crate::phone::mask(&raw));
            }
        }
    }
    if let Ok(Some(bytes)) = store.get_bytes(&keys.dead_letters()).await {
        for v in lines(bytes).into_iter().take(DEAD_LETTERS) {
            let Ok(record) = serde_json::from_value::<LedgerRecord>(v) else {
                continue;
            };
            if let super::EntryOutcome::Rejected { code, message } = record.outcome {
                examples.dead_letters.push((
                    crate::phone::mask(&record.phone_number),
                    code,
                    message,
                ));
            }
        }
    }
    examples
}

fn parse_time(t: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now())
}

/// A run's deadline outcome: from its file's receipt in the received document (open, or closed by a verification)
/// or else the receipt time its manifest recorded; verified when the run succeeded and no number of its file waits
/// any more. `None` when no receipt time is known.
pub fn run_deadline(
    calendar: &crate::hours::business_days::BusinessCalendar,
    report: &RunReport,
    received: Option<&crate::run::Received>,
) -> Option<deadline::DeadlineOutcome> {
    use crate::run::deadline::DeadlineOutcome;
    let finished = parse_time(&report.finished_at);
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|d| d.with_timezone(&chrono::Utc))
    };
    let open = received.and_then(|r| r.open_receipt_of(&report.run_id));
    let closed = received.and_then(|r| r.closed_receipt(&report.run_id));
    let (received_at, clock_from, verified_at) = match (open, closed) {
        // Numbers of its file still wait (a failed run, or numbers a success did not show held): not verified.
        (Some(r), _) => (parse(&r.received_at)?, parse(&r.clock_from)?, None),
        (None, Some(c)) => {
            let at = parse(&c.closed_at)?;
            let verified = (report.success() || c.verified_by().is_some()).then_some(at);
            (
                parse(&c.receipt.received_at)?,
                parse(&c.receipt.clock_from)?,
                verified,
            )
        }
        (None, None) => {
            let identity = report.source_identity.as_ref();
            let t = identity
                .and_then(|i| i.received_at.as_deref())
                .or(report.normalized_at.as_deref())
                .and_then(parse)?;
            (t, t, report.success().then_some(finished))
        }
    };
    Some(DeadlineOutcome::measure(
        calendar,
        received_at,
        clock_from,
        verified_at,
        finished,
    ))
}

/// The status's unverified files and the oldest one's age, from the received document, measured at `now`.
pub fn set_deadlines(
    status: &mut ListStatus,
    calendar: &crate::hours::business_days::BusinessCalendar,
    received: Option<&crate::run::Received>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let receipts = received.map(|r| r.receipts.as_slice()).unwrap_or_default();
    status.unverified = deadline::open_deadlines(calendar, receipts, now);
    status.oldest_unverified_business_days =
        deadline::oldest_open_business_days(calendar, receipts, now);
}

/// Pretty JSON of a report or status (plain structs: serialization cannot fail).
fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// What an operator removes from a list's received numbers (`dncctl status remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalTarget {
    /// These numbers (E.164 or as written: the normalizer reads them).
    Numbers(Vec<String>),
    /// Every number of this run, or only those held for this reason (`dead-letter`, …).
    Run {
        /// The run whose numbers are removed.
        run_id: String,
        /// Only the numbers held for this reason (None: every number of the run).
        hold: Option<crate::run::Hold>,
    },
}

/// Remove numbers from `list`'s received document with a recorded reason (`status/<list>/operator.jsonl`), then
/// republish the status's counts. Answers the records written (a number that was not there is not recorded). The
/// reason is required.
pub async fn remove_received(
    store: &dyn ObjectStore,
    list: &str,
    target: &RemovalTarget,
    reason: &str,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::run::OperatorRecord>, DocumentError> {
    use crate::run::{OperatorAction, OperatorRecord};
    if reason.trim().is_empty() {
        return Err(DocumentError::Refused(
            "a removal needs a reason (--reason): it is recorded with the number".into(),
        ));
    }
    let numbers: Vec<String> = match target {
        RemovalTarget::Numbers(raw) => raw
            .iter()
            .map(|n| {
                crate::phone::Normalizer::new(crate::phone::DefaultRegion::default())
                    .normalize(n)
                    .map(|x| x.e164.to_string())
                    .map_err(|e| {
                        DocumentError::Refused(format!(
                            "{} is not a phone number ({})",
                            crate::phone::mask(n),
                            e.code()
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
        RemovalTarget::Run { .. } => Vec::new(),
    };
    let (removed, counts) = crate::run::update_received(store, list, now, |r| {
        let chosen = match target {
            RemovalTarget::Numbers(_) => numbers.clone(),
            RemovalTarget::Run { run_id, hold } => r.numbers_of(Some(run_id), *hold),
        };
        chosen
            .iter()
            .filter_map(|n| r.remove(n).map(|c| (n.clone(), c)))
            .collect::<Vec<_>>()
    })
    .await?;
    let records: Vec<OperatorRecord> = removed
        .into_iter()
        .map(|(n, cause)| OperatorRecord {
            action: OperatorAction::RemoveNumber {
                phone_number: n,
                was: cause.reason(),
                run_id: cause.run_id,
            },
            reason: reason.to_string(),
            by: by.to_string(),
            at: now.to_rfc3339(),
        })
        .collect();
    if !records.is_empty() {
        crate::run::record_operator_actions(store, list, &records).await?;
    }
    if let Some(mut status) = read_list_status(store, list).await? {
        status.dead_letters = counts.dead_letters;
        status.received_not_held = counts;
        if let Ok(received) = crate::run::load_received(store, list).await {
            set_deadlines(
                &mut status,
                crate::hours::business_days::BusinessCalendar::configured_or_default(),
                received.as_ref(),
                now,
            );
        }
        store.put_bytes(&status_key(list), pretty(&status)).await?;
    }
    tracing::warn!(list = %list, removed = records.len(), by = %by, reason = %reason, "received numbers removed by an operator");
    Ok(records)
}

/// Clear `list`'s open failure of run `run_id` with a recorded reason: it no longer keeps the list FAILED. When no
/// failure stays open and the last run verified, the status is the last run's SUCCESS again. The failed run's numbers
/// stay suppressed (`run-failed:<runId>`) until a verified run shows them held or they are removed.
pub async fn clear_failure(
    store: &dyn ObjectStore,
    list: &str,
    run_id: &str,
    reason: &str,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ListStatus, DocumentError> {
    use crate::run::{OperatorAction, OperatorRecord};
    if reason.trim().is_empty() {
        return Err(DocumentError::Refused(
            "clearing a failure needs a reason (--reason): it is recorded".into(),
        ));
    }
    let mut status = read_list_status(store, list)
        .await?
        .ok_or_else(|| DocumentError::Refused(format!("list {list} has no status")))?;
    let Some(at) = status.open_failures.iter().position(|f| f.run_id == run_id) else {
        return Err(DocumentError::Refused(format!(
            "list {list} has no open failure of run {run_id} (open: {})",
            status
                .open_failures
                .iter()
                .map(|f| f.run_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let cleared = status.open_failures.remove(at);
    let last_verified = status
        .last_success
        .as_ref()
        .is_some_and(|s| s.run_id == status.run_id);
    if status.open_failures.is_empty() && status.running.is_none() && last_verified {
        status.status = RunStatus::Success;
        status.reason = None;
    }
    crate::run::record_operator_actions(
        store,
        list,
        &[OperatorRecord {
            action: OperatorAction::ClearFailure {
                run_id: cleared.run_id.clone(),
                source: cleared.source.clone(),
            },
            reason: reason.to_string(),
            by: by.to_string(),
            at: now.to_rfc3339(),
        }],
    )
    .await?;
    store.put_bytes(&status_key(list), pretty(&status)).await?;
    tracing::warn!(list = %list, run_id = %run_id, by = %by, reason = %reason, "open failure cleared by an operator");
    Ok(status)
}
