//! Reading a run's ledger back from its segments, and publishing a list's status (the object campaign launches are
//! gated on, and its announcement through a [`StatusNotifier`]).

use super::{ErrorKind, StepError};
use crate::adapters::eventbridge::StatusNotifier;
use crate::adapters::store::ObjectStore;
use crate::run::{
    parse_shard, status_key, LastSuccess, LedgerRecord, ListStatus, Manifest, OpenFailure, RunKeys,
    RunReport, RunStatus, RunningRun,
};

/// The records of one ledger segment (`key` names it in errors).
pub(crate) fn parse_ledger_segment(
    bytes: &[u8],
    key: &str,
) -> Result<Vec<LedgerRecord>, StepError> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| {
                StepError::new(
                    ErrorKind::Fatal,
                    format!("{key} line {}: {}", i + 1, crate::redact::json_error(&e)),
                )
            })
        })
        .collect()
}

/// Read the ledger of one uploaded shard: its segments, each starting where the previous ended, until `entries`
/// records are read. A missing segment means the upload of that shard has not finished: an error naming it, or,
/// with `partial`, the end of what there is (a run still uploading).
pub(crate) async fn read_ledger_chain(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    shard_key: &str,
    entries: usize,
    partial: bool,
) -> Result<Vec<LedgerRecord>, StepError> {
    let mut records = Vec::with_capacity(entries);
    while records.len() < entries {
        let key = keys.ledger_segment(round, shard_key, records.len());
        let Some(bytes) = store.get_bytes(&key).await? else {
            if partial {
                break;
            }
            return Err(StepError::new(ErrorKind::Fatal, format!(
                "ledger of {shard_key} (round {round}) ends at entry {} of {entries}: {key} does not exist",
                records.len()
            )));
        };
        let segment = parse_ledger_segment(&bytes, &key)?;
        if segment.is_empty() {
            return Err(StepError::new(ErrorKind::Fatal, format!("{key} is empty")));
        }
        records.extend(segment);
    }
    Ok(records)
}

/// Every ledger record of a run as of round `rounds`, one shard's ledger in memory at a time: the first upload's
/// records in shard order, each replaced by its latest re-upload (rounds 1..=`rounds`), then re-uploaded numbers the
/// first upload did not have. `visit` sees each number once. Answers how many records the re-uploads wrote.
pub async fn for_each_run_ledger_record(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    rounds: u32,
    mut visit: impl FnMut(LedgerRecord),
) -> Result<u64, StepError> {
    let keys = RunKeys::new(&manifest.run_id);
    // The re-uploads first: they are small (what was missing), and they supersede the first attempts.
    let mut later: Vec<Option<LedgerRecord>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut reuploaded = 0u64;
    for round in 1..=rounds {
        let shard_key = keys.reupload_shard(round);
        let text = store.get_bytes(&shard_key).await?.ok_or_else(|| {
            StepError::new(ErrorKind::Fatal, format!("{shard_key} does not exist"))
        })?;
        let entries = parse_shard(&String::from_utf8_lossy(&text), &shard_key)?.len();
        let records = read_ledger_chain(store, &keys, round, &shard_key, entries, false).await?;
        reuploaded += records.len() as u64;
        for r in records {
            match index.get(&r.phone_number) {
                Some(&i) => later[i] = Some(r),
                None => {
                    index.insert(r.phone_number.clone(), later.len());
                    later.push(Some(r));
                }
            }
        }
    }
    for shard in &manifest.shards {
        let shard_key = keys.shard(&shard.key);
        let records =
            read_ledger_chain(store, &keys, 0, &shard_key, shard.entries as usize, false).await?;
        for r in records {
            match index.get(&r.phone_number) {
                Some(&i) => {
                    if let Some(newer) = later[i].take() {
                        visit(newer);
                    }
                }
                None => visit(r),
            }
        }
    }
    for r in later.into_iter().flatten() {
        visit(r);
    }
    Ok(reuploaded)
}

/// Every ledger record of a run as of round `rounds` (see [`for_each_run_ledger_record`]), collected.
pub async fn read_run_ledger(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    rounds: u32,
) -> Result<(Vec<LedgerRecord>, u64), StepError> {
    let mut ledger = Vec::new();
    let reuploaded =
        for_each_run_ledger_record(store, manifest, rounds, |r| ledger.push(r)).await?;
    Ok((ledger, reuploaded))
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
) -> Result<Option<ListStatus>, StepError> {
    let key = status_key(list);
    match store.get_bytes(&key).await? {
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            StepError::new(
                ErrorKind::Fatal,
                format!(
                    "{key} is unreadable ({}): it is left as it is (it holds the last known good run and the open \
                     failures); repair or restore it",
                    crate::redact::json_error(&e)
                ),
            )
        }),
        None => Ok(None),
    }
}

/// Say in `status/<list>/latest.json` that `run_id` is in flight: `RUNNING`, or still `FAILED` while a failure is
/// open (a run in flight never hides one); the last known good run is kept.
pub async fn mark_running(
    store: &dyn ObjectStore,
    list: &str,
    run_id: &str,
    execution: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ListStatus, StepError> {
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

/// Write the report (`report.json`, `report.md`) and `status/<list>/latest.json` (keeping the last known good run
/// across failures), then announce the status.
pub async fn publish_list_status(
    store: &dyn ObjectStore,
    notifier: &dyn StatusNotifier,
    report: &RunReport,
) -> Result<ListStatus, StepError> {
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
    notifier.notify(&status).await?;
    tracing::info!(list = %status.list, status = %status.status, run_id = %status.run_id,
        reason = status.reason.as_deref().unwrap_or(""), "status published");
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
            if let crate::adapters::cxone::EntryOutcome::Rejected { code, message } = record.outcome
            {
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
) -> Option<crate::run::deadline::DeadlineOutcome> {
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
    status.unverified = crate::run::deadline::open_deadlines(calendar, receipts, now);
    status.oldest_unverified_business_days =
        crate::run::deadline::oldest_open_business_days(calendar, receipts, now);
}

/// Pretty JSON of a report or status (plain structs: serialization cannot fail).
fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// What an operator removes from a list's received numbers (`dncctl status remove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalTarget {
    /// These numbers (E.164 or as written: the normalizer reads them).
    Numbers(Vec<String>),
    /// Every number of this run, or only those held for this reason (`dead-letter`, …).
    Run {
        /// The run.
        run_id: String,
        /// Only numbers held for this.
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
) -> Result<Vec<crate::run::OperatorRecord>, StepError> {
    use crate::run::{OperatorAction, OperatorRecord};
    if reason.trim().is_empty() {
        return Err(StepError::new(
            ErrorKind::InvalidInput,
            "a removal needs a reason (--reason): it is recorded with the number",
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
                        StepError::new(
                            ErrorKind::InvalidInput,
                            format!(
                                "{} is not a phone number ({})",
                                crate::phone::mask(n),
                                e.code()
                            ),
                        )
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
) -> Result<ListStatus, StepError> {
    use crate::run::{OperatorAction, OperatorRecord};
    if reason.trim().is_empty() {
        return Err(StepError::new(
            ErrorKind::InvalidInput,
            "clearing a failure needs a reason (--reason): it is recorded",
        ));
    }
    let mut status = read_list_status(store, list).await?.ok_or_else(|| {
        StepError::new(
            ErrorKind::InvalidInput,
            format!("list {list} has no status"),
        )
    })?;
    let Some(at) = status.open_failures.iter().position(|f| f.run_id == run_id) else {
        return Err(StepError::new(
            ErrorKind::InvalidInput,
            format!(
                "list {list} has no open failure of run {run_id} (open: {})",
                status
                    .open_failures
                    .iter()
                    .map(|f| f.run_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
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
