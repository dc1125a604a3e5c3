//! The stages after normalize, as plain functions over the [`DncApi`] boundary: preflight (the list suppresses),
//! upload with a ledger, cooldown with a canary probe, and reconciliation against the ledger. The Lambda functions
//! and `dncctl run` call these; the waiting itself belongs to the caller (a Step Functions `Wait`, or the CLI).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cxone::{
    idempotency_key, CxoneError, DncApi, DncList, EntryInput, EntryOutcome, RemoteEntry,
    MAX_ENTRIES_PER_REQUEST, MAX_PAGE,
};
use crate::phone::mask;

/// Failures of the pipeline stages.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The target list does not exist.
    #[error("DNC list {list} does not exist")]
    ListNotFound {
        /// List id or name.
        list: String,
    },
    /// The target list is inactive.
    #[error("DNC list {list} is not active: entries would not suppress anything")]
    ListInactive {
        /// List id.
        list: String,
    },
    /// Nothing binds the list to outbound traffic (v2: no active outbound BLOCK rule names it; admin: no active
    /// outbound skill scrubs the group).
    #[error("DNC list {list} is {why}: suppression would not apply")]
    NotSuppressing {
        /// List id.
        list: String,
        /// What is missing.
        why: String,
    },
    /// CXone failed.
    #[error(transparent)]
    Cxone(#[from] CxoneError),
    /// A run file is unreadable.
    #[error("{what}: {reason}")]
    Data {
        /// Which file or record.
        what: String,
        /// Why.
        reason: String,
    },
}

/// One line of a shard, as `normalize` wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardEntry {
    /// E.164.
    pub phone_number: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// RFC 3339 or `None` (the list's default).
    pub expiration_date: Option<String>,
    /// Source.
    pub source: String,
    /// Source line.
    pub line: u64,
    /// Flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// Read a shard's JSON lines.
pub fn parse_shard(text: &str, what: &str) -> Result<Vec<ShardEntry>, PipelineError> {
    Ok(parse_shard_with_ends(text, what)?.0)
}

/// The entries of a shard text, each with the byte offset just past its line: where a resumed upload's ranged read
/// of the shard starts after it.
pub fn parse_shard_with_ends(
    text: &str,
    what: &str,
) -> Result<(Vec<ShardEntry>, Vec<u64>), PipelineError> {
    let mut entries = Vec::new();
    let mut ends = Vec::new();
    let mut at = 0u64;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        at += line.len() as u64;
        let l = line.trim_end_matches(['\n', '\r']);
        if l.trim().is_empty() {
            continue;
        }
        entries.push(serde_json::from_str(l).map_err(|e| PipelineError::Data {
            what: format!("{what} line {}", i + 1),
            reason: crate::redact::json_error(&e),
        })?);
        ends.push(at);
    }
    Ok((entries, ends))
}

/// What happened to one entry: a line of the run's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRecord {
    /// E.164.
    pub phone_number: String,
    /// Jurisdiction sent.
    pub jurisdiction: String,
    /// Expiration sent.
    pub expiration_date: Option<String>,
    /// Key sent.
    pub idempotency_key: String,
    /// CXone's answer.
    pub outcome: EntryOutcome,
}

impl LedgerRecord {
    /// Whether CXone holds the number (created now or before).
    pub fn held(&self) -> bool {
        matches!(
            self.outcome,
            EntryOutcome::Created { .. } | EntryOutcome::Exists { .. }
        )
    }
}

/// Check that writing to `list_id` will suppress outbound calls: the list exists, is active, and the dialect's
/// binding is in place ([`DncApi::suppression`]: an active outbound BLOCK rule, or active outbound skills scrubbing
/// the group).
pub async fn preflight(api: &dyn DncApi, list_id: &str) -> Result<DncList, PipelineError> {
    let list = api
        .get_list(list_id)
        .await?
        .ok_or_else(|| PipelineError::ListNotFound {
            list: list_id.to_string(),
        })?;
    if !list.is_active {
        return Err(PipelineError::ListInactive {
            list: list_id.to_string(),
        });
    }
    let binding = api.suppression(&list).await?;
    if !binding.suppressing {
        return Err(PipelineError::NotSuppressing {
            list: list_id.to_string(),
            why: binding.detail,
        });
    }
    Ok(list)
}

/// Progress of one upload invocation.
#[derive(Debug, Default)]
pub struct UploadProgress {
    /// Ledger records of the entries processed, in shard order.
    pub records: Vec<LedgerRecord>,
    /// Index of the next entry to upload.
    pub next: usize,
    /// Whether the shard is finished.
    pub done: bool,
    /// Set when a batch failed: what was done before it is in `records`.
    pub error: Option<PipelineError>,
}

/// Upload `entries[start..]` in batches of at most 100 (`concurrency` in flight), until done or until `budget` is
/// spent (then `done` is false and `next` says where to resume). Keys are deterministic from (list, number,
/// `source_version`), so resuming or re-running never duplicates. A number in `held` (the list is known to hold it:
/// its last verified read-back) is recorded `exists` without being sent, which is how a dialect without
/// idempotency keys writes only what the list lacks; reconcile checks it like any other.
#[allow(clippy::too_many_arguments)]
pub async fn upload_entries(
    api: &dyn DncApi,
    list_id: &str,
    source_version: &str,
    entries: &[ShardEntry],
    start: usize,
    budget: Duration,
    concurrency: usize,
    held: &std::collections::HashSet<String>,
) -> UploadProgress {
    let started = Instant::now();
    let mut progress = UploadProgress {
        next: start.min(entries.len()),
        ..Default::default()
    };
    let wave = MAX_ENTRIES_PER_REQUEST * concurrency.max(1);
    while progress.next < entries.len() {
        if started.elapsed() >= budget {
            return progress;
        }
        let end = (progress.next + wave).min(entries.len());
        let slice = &entries[progress.next..end];
        let inputs: Vec<EntryInput> = slice
            .iter()
            .map(|e| EntryInput {
                idempotency_key: idempotency_key(list_id, &e.phone_number, source_version),
                phone_number: e.phone_number.clone(),
                jurisdiction: e.jurisdiction.clone(),
                expiration_date: e.expiration_date.clone(),
                source: e.source.clone(),
            })
            .collect();
        let results: Vec<Result<Vec<EntryOutcome>, CxoneError>> =
            futures::stream::iter(inputs.chunks(MAX_ENTRIES_PER_REQUEST))
                .map(|chunk| upload_unless_held(api, list_id, chunk, held))
                .buffered(concurrency.max(1))
                .collect()
                .await;
        for (chunk, result) in inputs.chunks(MAX_ENTRIES_PER_REQUEST).zip(results) {
            match result {
                Ok(outcomes) => {
                    for (input, outcome) in chunk.iter().zip(outcomes) {
                        progress.records.push(LedgerRecord {
                            phone_number: input.phone_number.clone(),
                            jurisdiction: input.jurisdiction.clone(),
                            expiration_date: input.expiration_date.clone(),
                            idempotency_key: input.idempotency_key.clone(),
                            outcome,
                        });
                    }
                    progress.next += chunk.len();
                }
                Err(e) => {
                    // Later batches of the wave may have succeeded; their keys make the resumed upload harmless.
                    tracing::warn!(list_id, next = progress.next, error = %e, "upload stopped");
                    progress.error = Some(e.into());
                    return progress;
                }
            }
        }
    }
    progress.done = true;
    progress
}

/// Send the entries of `chunk` that are not in `held`; those are `exists` (id `verified`) without a request.
async fn upload_unless_held(
    api: &dyn DncApi,
    list_id: &str,
    chunk: &[EntryInput],
    held: &std::collections::HashSet<String>,
) -> Result<Vec<EntryOutcome>, CxoneError> {
    if held.is_empty() {
        return api.upload_batch(list_id, chunk).await;
    }
    let send: Vec<EntryInput> = chunk
        .iter()
        .filter(|e| !held.contains(&e.phone_number))
        .cloned()
        .collect();
    let mut sent = if send.is_empty() {
        Vec::new()
    } else {
        api.upload_batch(list_id, &send).await?
    }
    .into_iter();
    Ok(chunk
        .iter()
        .map(|e| {
            if held.contains(&e.phone_number) {
                EntryOutcome::Exists {
                    id: "verified".into(),
                }
            } else {
                sent.next().unwrap_or(EntryOutcome::Unconfirmed)
            }
        })
        .collect())
}

/// Whether a list may be probed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cooldown {
    /// At least the minimum time has passed since the last write.
    pub elapsed: bool,
    /// Seconds still to wait (0 when elapsed).
    pub wait_seconds: u64,
}

/// No list is ready before `min` after its last write.
pub fn cooldown(last_write: DateTime<Utc>, now: DateTime<Utc>, min: Duration) -> Cooldown {
    let ready_at = last_write + chrono::Duration::from_std(min).unwrap_or(chrono::Duration::MAX);
    if now >= ready_at {
        Cooldown {
            elapsed: true,
            wait_seconds: 0,
        }
    } else {
        let secs = (ready_at - now).num_milliseconds().max(0) as u64;
        Cooldown {
            elapsed: false,
            wait_seconds: secs.div_ceil(1000).max(1),
        }
    }
}

/// A canary probe's summary, as the run report shows it: uploaded numbers that must come back suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryResult {
    /// Numbers probed.
    pub probed: usize,
    /// Numbers answered suppressed.
    pub suppressed: usize,
    /// Masked numbers not (yet) suppressed.
    pub pending: Vec<String>,
}

impl CanaryResult {
    /// Every probed number is suppressed.
    pub fn propagated(&self) -> bool {
        self.probed > 0 && self.suppressed == self.probed
    }
}

/// A canary probe as the cooldown stage records it for reconciliation (`runs/<runId>/canary/<round>.json`): the
/// numbers not suppressed yet are kept whole, because reconciliation must tell a lost write (not on the list: it is
/// re-uploaded) from an entry on the list that does not suppress (the list is not propagating: the run fails).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryProbe {
    /// Numbers probed.
    pub probed: usize,
    /// E.164 numbers answered anything but suppressed.
    pub pending: Vec<String>,
}

impl CanaryProbe {
    /// Numbers answered suppressed.
    pub fn suppressed(&self) -> usize {
        self.probed - self.pending.len()
    }

    /// The summary for logs and reports, numbers masked.
    pub fn result(&self) -> CanaryResult {
        CanaryResult {
            probed: self.probed,
            suppressed: self.suppressed(),
            pending: self.pending.iter().map(|n| mask(n)).collect(),
        }
    }
}

/// Pick up to `n` numbers spread over the ledger (deterministic), held by CXone.
pub fn canary_sample(records: &[LedgerRecord], n: usize) -> Vec<String> {
    let held: Vec<String> = records
        .iter()
        .filter(|r| r.held())
        .map(|r| r.phone_number.clone())
        .collect();
    spread(&held, n)
}

/// Up to `n` items evenly spread over `items` (deterministic).
pub fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (items.len() / n).max(1);
    items.iter().step_by(step).take(n).cloned().collect()
}

/// Probe the canary numbers: does CXone answer each suppressed by `list_id`?
pub async fn probe_canary(
    api: &dyn DncApi,
    list_id: &str,
    numbers: &[String],
) -> Result<CanaryProbe, PipelineError> {
    let suppressed = api.probe(list_id, numbers).await?;
    if suppressed.len() != numbers.len() {
        return Err(PipelineError::from(CxoneError::Protocol {
            op: "canary probe",
            message: format!("{} answers for {} numbers", suppressed.len(), numbers.len()),
        }));
    }
    let mut probe = CanaryProbe {
        probed: numbers.len(),
        pending: Vec::new(),
    };
    for (n, ok) in numbers.iter().zip(suppressed) {
        if !ok {
            probe.pending.push(n.clone());
        }
    }
    Ok(probe)
}

/// Every entry of a list, page by page (limit 1000).
pub async fn fetch_all_entries(
    api: &dyn DncApi,
    list_id: &str,
) -> Result<Vec<RemoteEntry>, PipelineError> {
    let mut all = Vec::new();
    loop {
        let page = api
            .list_entries(list_id, all.len() as u64, MAX_PAGE)
            .await?;
        let got = page.entries.len();
        all.extend(page.entries);
        if got == 0 || all.len() as u64 >= page.total {
            return Ok(all);
        }
    }
}

/// The comparison of the ledger with what CXone holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Entries the ledger says CXone holds.
    pub expected: usize,
    /// Of those, found on the list.
    pub found: usize,
    /// Expected but not on the list: to upload again.
    pub missing: Vec<LedgerRecord>,
    /// On the list with another expiration than sent.
    pub wrong_expiration: Vec<LedgerRecord>,
    /// On the list with another jurisdiction than sent.
    pub wrong_jurisdiction: Vec<LedgerRecord>,
    /// Entries CXone rejected (dead letters), by code.
    pub rejected_by_code: std::collections::BTreeMap<String, usize>,
    /// Entries whose outcome is unknown.
    pub unconfirmed: Vec<LedgerRecord>,
}

impl Reconciliation {
    /// What to upload again: the missing and unconfirmed entries, as shard entries from `source`.
    pub fn reupload_entries(&self, source: &str) -> Vec<ShardEntry> {
        self.missing
            .iter()
            .chain(&self.unconfirmed)
            .map(|m| ShardEntry {
                phone_number: m.phone_number.clone(),
                jurisdiction: m.jurisdiction.clone(),
                expiration_date: m.expiration_date.clone(),
                source: source.to_string(),
                line: 0,
                flags: Vec::new(),
            })
            .collect()
    }

    /// Nothing missing, nothing wrong, nothing unconfirmed.
    pub fn clean(&self) -> bool {
        self.missing.is_empty()
            && self.wrong_expiration.is_empty()
            && self.wrong_jurisdiction.is_empty()
            && self.unconfirmed.is_empty()
    }
}

/// What reconcile needs of one remote entry: its expiration and its jurisdiction (interned). 16 bytes a number
/// instead of the seven strings of a `RemoteEntry`, so a list at CXone's cap (1,000,000 entries) is ~40 MB, not ~300.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RemoteFacts {
    expiration: Option<DateTime<Utc>>,
    jurisdiction: u32,
}

/// The list as CXone holds it, indexed by number, compact. Built page by page while paging the list back.
#[derive(Debug, Default)]
pub struct RemoteIndex {
    by_number: HashMap<u64, RemoteFacts>,
    /// Numbers that are not `+digits` (CXone should never hold one; kept rather than dropped).
    other: HashMap<String, RemoteFacts>,
    jurisdictions: Vec<String>,
    jurisdiction_ids: HashMap<String, u32>,
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl RemoteIndex {
    /// Add one page of entries.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = RemoteEntry>) {
        for e in entries {
            let jurisdiction = match self.jurisdiction_ids.get(&e.jurisdiction) {
                Some(&id) => id,
                None => {
                    let id = self.jurisdictions.len() as u32;
                    self.jurisdiction_ids.insert(e.jurisdiction.clone(), id);
                    self.jurisdictions.push(e.jurisdiction);
                    id
                }
            };
            let facts = RemoteFacts {
                expiration: e.expiration_date.as_deref().and_then(instant),
                jurisdiction,
            };
            match crate::phone::E164::parse(&e.phone_number) {
                Some(n) => {
                    self.by_number.insert(n.0, facts);
                }
                None => {
                    self.other.insert(e.phone_number, facts);
                }
            }
        }
    }

    fn get(&self, number: &str) -> Option<RemoteFacts> {
        match crate::phone::E164::parse(number) {
            Some(n) => self.by_number.get(&n.0).copied(),
            None => self.other.get(number).copied(),
        }
    }

    /// Whether the list holds `number`.
    pub fn contains(&self, number: &str) -> bool {
        self.get(number).is_some()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.by_number.len() + self.other.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every number held, E.164.
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        self.by_number
            .keys()
            .map(|n| format!("+{n}"))
            .chain(self.other.keys().cloned())
    }
}

/// Page through the whole list into a compact index, dropping each page once indexed.
pub async fn fetch_remote_index(
    api: &dyn DncApi,
    list_id: &str,
) -> Result<RemoteIndex, PipelineError> {
    let mut index = RemoteIndex::default();
    let mut offset = 0u64;
    loop {
        let page = api.list_entries(list_id, offset, MAX_PAGE).await?;
        let got = page.entries.len() as u64;
        offset += got;
        index.extend(page.entries);
        if got == 0 || offset >= page.total {
            return Ok(index);
        }
    }
}

/// Compares ledger records with the list one at a time, keeping only what is wrong: a ledger of a million records
/// can be streamed through it shard by shard.
pub struct Reconciler<'a> {
    remote: &'a RemoteIndex,
    default_expiration: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    metadata: bool,
    r: Reconciliation,
}

impl<'a> Reconciler<'a> {
    /// `default_expiration` is what CXone applies to entries sent without one.
    pub fn new(
        remote: &'a RemoteIndex,
        default_expiration: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        Reconciler {
            remote,
            default_expiration: default_expiration.and_then(instant),
            now,
            metadata: true,
            r: Reconciliation::default(),
        }
    }

    /// Whether the list keeps entry metadata to compare (jurisdiction): a dialect that holds only the number and
    /// its expiration ([`crate::cxone::Capabilities::entry_metadata`] false) is compared on those alone.
    pub fn compare_metadata(mut self, on: bool) -> Self {
        self.metadata = on;
        self
    }

    /// Compare one ledger record. An entry CXone answered `exists` (on the list before this run) is compared too, on
    /// what decides suppression: if its record has expired by `now` it suppresses nothing and is missing
    /// (re-uploaded, which re-writes it); if it expires before what this file asks, it is a wrong expiration. Its
    /// other metadata (jurisdiction, a later expiration) stays its own.
    pub fn add(&mut self, rec: &LedgerRecord) {
        let r = &mut self.r;
        let held_entry = self.remote.get(&rec.phone_number);
        match &rec.outcome {
            EntryOutcome::Rejected { code, .. } => {
                *r.rejected_by_code.entry(code.clone()).or_default() += 1;
                return;
            }
            // Unknown: if CXone holds it, it is confirmed now; otherwise it is missing.
            EntryOutcome::Unconfirmed if held_entry.is_none() => {
                r.unconfirmed.push(rec.clone());
                return;
            }
            _ => {}
        }
        r.expected += 1;
        let Some(remote) = held_entry else {
            r.missing.push(rec.clone());
            return;
        };
        let sent =
            rec.expiration_date
                .as_deref()
                .and_then(instant)
                .or(if rec.expiration_date.is_none() {
                    self.default_expiration
                } else {
                    None
                });
        let held = remote.expiration;
        if held.is_some_and(|h| h <= self.now) {
            // On the list, but expired: it suppresses nothing.
            r.missing.push(rec.clone());
            return;
        }
        r.found += 1;
        if matches!(rec.outcome, EntryOutcome::Exists { .. }) {
            if let (Some(sent), Some(held)) = (sent, held) {
                if held < sent {
                    r.wrong_expiration.push(rec.clone());
                }
            }
            return;
        }
        if sent.is_some() && sent != held {
            r.wrong_expiration.push(rec.clone());
        }
        if self.metadata
            && self.remote.jurisdictions[remote.jurisdiction as usize] != rec.jurisdiction
        {
            r.wrong_jurisdiction.push(rec.clone());
        }
    }

    /// The comparison so far.
    pub fn finish(self) -> Reconciliation {
        self.r
    }
}

/// Compare the ledger with the list's entries (see [`Reconciler::add`]).
pub fn reconcile(
    ledger: &[LedgerRecord],
    remote: &[RemoteEntry],
    default_expiration: Option<&str>,
    now: DateTime<Utc>,
) -> Reconciliation {
    let mut index = RemoteIndex::default();
    index.extend(remote.iter().cloned());
    let mut reconciler = Reconciler::new(&index, default_expiration, now);
    for rec in ledger {
        reconciler.add(rec);
    }
    reconciler.finish()
}

/// Replace earlier records of the same numbers (a re-upload supersedes its first attempt).
pub fn merge_ledger(ledger: &mut Vec<LedgerRecord>, records: Vec<LedgerRecord>) {
    if ledger.is_empty() {
        *ledger = records;
        return;
    }
    let index: HashMap<String, usize> = ledger
        .iter()
        .enumerate()
        .map(|(i, r)| (r.phone_number.clone(), i))
        .collect();
    for r in records {
        match index.get(&r.phone_number) {
            Some(&i) => ledger[i] = r,
            None => ledger.push(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(phone: &str, outcome: EntryOutcome) -> LedgerRecord {
        LedgerRecord {
            phone_number: phone.into(),
            jurisdiction: "US-DC".into(),
            expiration_date: Some("2030-01-01T00:00:00Z".into()),
            idempotency_key: format!("k{phone}"),
            outcome,
        }
    }

    fn remote(phone: &str, jurisdiction: &str, exp: &str) -> RemoteEntry {
        RemoteEntry {
            id: format!("e{phone}"),
            phone_number: phone.into(),
            list_id: "l".into(),
            jurisdiction: jurisdiction.into(),
            expiration_date: Some(exp.into()),
            source: "s".into(),
            created_at: None,
        }
    }

    #[test]
    fn a_corrupt_shard_line_is_named_without_quoting_its_number() {
        let text = concat!(
            r#"{"phoneNumber":"+12025550001","jurisdiction":"US-DC","expirationDate":null,"source":"s","line":1}"#,
            "\n",
            r#"{"phoneNumber":"+12025550002","jurisdiction":"US-DC","expirationDate":null,"source":"s","line":"+12025550002"}"#,
        );
        let err = parse_shard(text, "runs/r/shards/00001.jsonl").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("runs/r/shards/00001.jsonl line 2"),
            "{message}"
        );
        assert!(!message.contains("5550002"), "{message}");
    }

    #[test]
    fn shard_entry_ends_let_a_resumed_upload_read_from_its_cursor() {
        let line = |n: &str| {
            format!(
                "{{\"phoneNumber\":\"{n}\",\"jurisdiction\":\"US-DC\",\"expirationDate\":null,\"source\":\"s\",\"line\":1,\"flags\":[]}}\n"
            )
        };
        let text = format!(
            "{}\n{}{}",
            line("+12025550001"),
            line("+12025550002"),
            line("+12025550003")
        );
        let (entries, ends) = parse_shard_with_ends(&text, "shard").unwrap();
        assert_eq!(entries.len(), 3);
        // Reading from the end of entry 0 gives entries 1 and 2 (the blank line in between is skipped).
        let (rest, _) = parse_shard_with_ends(&text[ends[0] as usize..], "shard").unwrap();
        assert_eq!(
            rest.iter()
                .map(|e| e.phone_number.as_str())
                .collect::<Vec<_>>(),
            ["+12025550002", "+12025550003"]
        );
        assert_eq!(ends[2] as usize, text.len());
    }

    #[test]
    fn reconcile_finds_missing_and_wrong_metadata() {
        let created = || EntryOutcome::Created { id: "x".into() };
        let ledger = vec![
            rec("+12025550001", created()),
            rec("+12025550002", created()),
            rec("+12025550003", created()),
            rec("+12025550004", created()),
            rec(
                "+12025550005",
                EntryOutcome::Rejected {
                    code: "INVALID_JURISDICTION".into(),
                    message: String::new(),
                },
            ),
            rec("+12025550006", EntryOutcome::Exists { id: "y".into() }),
            rec("+12025550007", EntryOutcome::Unconfirmed),
            rec("+12025550008", EntryOutcome::Exists { id: "z".into() }),
            rec("+12025550009", EntryOutcome::Exists { id: "w".into() }),
        ];
        let held = vec![
            remote("+12025550001", "US-DC", "2030-01-01T00:00:00Z"),
            remote("+12025550003", "US-VA", "2030-01-01T00:00:00Z"),
            remote("+12025550004", "US-DC", "2031-01-01T00:00:00Z"),
            // Existed before the run: its own jurisdiction and a later expiration are fine.
            remote("+12025550006", "US-MD", "2040-01-01T00:00:00Z"),
            // Existed, but expired: it suppresses nothing, so it is missing (re-written by the re-upload).
            remote("+12025550008", "US-DC", "2026-01-01T00:00:00Z"),
            // Existed, but stops suppressing before the file asks.
            remote("+12025550009", "US-DC", "2028-01-01T00:00:00Z"),
        ];
        let now: DateTime<Utc> = "2026-12-02T00:00:00Z".parse().unwrap();
        let r = reconcile(&ledger, &held, None, now);
        assert_eq!((r.expected, r.found), (7, 5));
        assert_eq!(
            r.missing
                .iter()
                .map(|m| m.phone_number.as_str())
                .collect::<Vec<_>>(),
            vec!["+12025550002", "+12025550008"]
        );
        assert_eq!(r.wrong_jurisdiction.len(), 1);
        assert_eq!(r.wrong_jurisdiction[0].phone_number, "+12025550003");
        assert_eq!(
            r.wrong_expiration
                .iter()
                .map(|m| m.phone_number.as_str())
                .collect::<Vec<_>>(),
            vec!["+12025550004", "+12025550009"]
        );
        assert_eq!(r.rejected_by_code.get("INVALID_JURISDICTION"), Some(&1));
        assert_eq!(r.unconfirmed.len(), 1);
        assert!(!r.clean());
    }

    #[test]
    fn cooldown_waits_180_seconds_after_the_last_write() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let min = Duration::from_secs(180);
        assert_eq!(
            cooldown(t0, t0 + chrono::Duration::seconds(10), min),
            Cooldown {
                elapsed: false,
                wait_seconds: 170
            }
        );
        assert_eq!(
            cooldown(t0, t0 + chrono::Duration::milliseconds(179_500), min).wait_seconds,
            1
        );
        assert!(cooldown(t0, t0 + chrono::Duration::seconds(180), min).elapsed);
    }

    #[test]
    fn canary_sample_spreads_over_held_entries() {
        let ledger: Vec<LedgerRecord> = (0..100)
            .map(|i| {
                rec(
                    &format!("+1202555{i:04}"),
                    EntryOutcome::Created { id: i.to_string() },
                )
            })
            .collect();
        let s = canary_sample(&ledger, 5);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0], "+12025550000");
        assert_eq!(s[1], "+12025550020");
    }
}
