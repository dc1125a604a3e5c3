//! `status/<list>/received.txt`: every number the list was given that no verified run has shown CXone holding yet,
//! with why it is not known held. The check answers each of them `suppressed` with that reason, whatever happened to
//! the run that brought it: a consumer's opt-out is honoured from the moment it is received.
//!
//! One document per list, read in one request, updated by the steps under a conditional write (normalize adds a
//! run's numbers; the failure recorder and reconcile relabel them; a verified run removes what CXone holds; an
//! operator removes a number with a recorded reason). A number leaves it only when a SUCCESS read-back shows CXone
//! holding it (with the same or a later expiration), when its own expiration passes, or by an operator's removal.
//!
//! Format (text, small at a million entries: about 27 bytes a number): a first line of JSON (the header: list, when
//! updated, the table of causes), then one line per number, `+E164 <cause index> <expiration, Unix seconds, or ->`,
//! sorted. A document that does not parse is an error for every reader and is never overwritten.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::adapters::store::{ObjectStore, StoreError};
use crate::phone::E164;
use crate::run::deadline::{ClosedReceipt, Receipt};
use crate::run::{operator_log_key, received_key};

/// Closed receipts kept in the document (the newest): enough for the status and `dncctl evidence` to show recent
/// files' outcomes; every run's own outcome is in its report.
const CLOSED_KEPT: usize = 500;

/// The format's name and version, first field of the header.
pub const RECEIVED_FORMAT: &str = "dncflow-received/1";

/// Why a received number is not known held by CXone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hold {
    /// Its run has not been verified yet (normalized, uploading, cooling down, reconciling).
    PendingPropagation,
    /// CXone refused to hold it (a dead letter); carried forward until a verified run shows it held.
    DeadLetter,
    /// Its run failed (at any step) before a verified read-back showed it held.
    RunFailed,
    /// Its file was refused by the junk gate: nothing of it was uploaded.
    RefusedFile,
}

/// One cause: what happened, and to which run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// Why the number is not known held (the reason the check answers with).
    pub hold: Hold,
    /// The run it happened in.
    pub run_id: String,
}

impl Cause {
    /// The reason the check answers: `pending-propagation`, `dead-letter`, `run-failed:<runId>`,
    /// `refused-file:<runId>`.
    pub fn reason(&self) -> String {
        match self.hold {
            Hold::PendingPropagation => "pending-propagation".into(),
            Hold::DeadLetter => "dead-letter".into(),
            Hold::RunFailed => format!("run-failed:{}", self.run_id),
            Hold::RefusedFile => format!("refused-file:{}", self.run_id),
        }
    }
}

/// The document's first line, JSON: its format, the list, when updated, the table of causes the number lines index
/// into, and the receipts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: String,
    list: String,
    updated_at: String,
    causes: Vec<Cause>,
    entries: usize,
    /// Files whose numbers are not all settled yet: their ten-business-day clocks are running.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    receipts: Vec<Receipt>,
    /// Files whose numbers were all settled, newest last (at most [`CLOSED_KEPT`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    closed: Vec<ClosedReceipt>,
}

/// Expiration of an entry that has none (the list's default applies on CXone: never expires here).
const NEVER: i64 = i64::MAX;

/// Counts of a list's received numbers not known held, per hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedCounts {
    /// Runs not verified yet.
    pub pending_propagation: u64,
    /// Dead letters carried forward.
    pub dead_letters: u64,
    /// Numbers of runs that failed before a verified read-back.
    pub run_failed: u64,
    /// Numbers of files the junk gate refused.
    pub refused_file: u64,
}

/// A received document that cannot be used.
#[derive(Debug, Error)]
pub enum ReceivedError {
    /// The bucket (or the local output directory) could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The document exists but does not parse: never overwritten, every answer from it is `error`.
    #[error(
        "{key} is unreadable (line {line}): {reason}; it is left as it is: repair or restore it"
    )]
    Unreadable {
        /// The object key (or local path) of what cannot be used: the document, or a run's shard it is built from.
        key: String,
        /// The line that does not parse (1-based, the header is line 1; 0 when the object is missing or unreadable as a
        /// whole).
        line: usize,
        /// What could not be parsed on that line.
        reason: String,
    },
    /// A shard of the run being received does not read.
    #[error(transparent)]
    Shard(#[from] crate::run::ShardLineError),
    /// Concurrent writers kept changing it.
    #[error("{0} kept changing under concurrent updates: try again")]
    Contended(String),
}

/// A list's received numbers not known held (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    /// The DNC list the numbers were received for.
    pub list: String,
    /// When last updated (RFC 3339).
    pub updated_at: String,
    causes: Vec<Cause>,
    cause_ids: HashMap<Cause, u32>,
    /// Packed E.164 → (cause index, expiration in Unix seconds or [`NEVER`]).
    entries: HashMap<u64, (u32, i64)>,
    /// Files received whose numbers are not all settled: their deadlines are running.
    pub receipts: Vec<Receipt>,
    /// Files whose numbers were all settled, oldest first.
    pub closed: Vec<ClosedReceipt>,
    /// How the change being applied settles numbers (`verified:<runId>`, `carried:<runId>`, `removed`): what a
    /// receipt it closes records.
    closing: Option<String>,
}

/// Holds under which a number is still waiting to be honoured: its file's clock is running.
fn is_open(hold: Hold) -> bool {
    matches!(
        hold,
        Hold::PendingPropagation | Hold::RunFailed | Hold::RefusedFile
    )
}

/// Whether RFC 3339 time `a` is before `b` (an unreadable time is never earlier: the readable one wins).
fn earlier(a: &str, b: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(a),
        DateTime::parse_from_rfc3339(b),
    ) {
        (Ok(a), Ok(b)) => a < b,
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

fn expiration_secs(expiration: Option<&str>) -> i64 {
    match expiration {
        None => NEVER,
        // An expiration that does not parse is kept as never expiring: a number is never released by a typo.
        Some(s) => DateTime::parse_from_rfc3339(s).map_or(NEVER, |d| d.timestamp()),
    }
}

impl Received {
    /// An empty document for `list`.
    pub fn new(list: &str) -> Received {
        Received {
            list: list.to_string(),
            ..Received::default()
        }
    }

    fn cause_id(&mut self, cause: Cause) -> u32 {
        if let Some(&id) = self.cause_ids.get(&cause) {
            return id;
        }
        let id = self.causes.len() as u32;
        self.cause_ids.insert(cause.clone(), id);
        self.causes.push(cause);
        id
    }

    /// Numbers in the document: received and not known held by CXone (not numbers CXone holds).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether every received number is known held (nothing in the document).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add numbers of run `run_id` (E.164 and expiration, RFC 3339 or `None`), all with `hold`. A number already
    /// there takes the newer cause and keeps the later expiration (suppressing longer is the safe side). A number
    /// that is not E.164 is returned (it cannot be checked, so never answered from here): the caller reports it.
    pub fn receive<'a>(
        &mut self,
        run_id: &str,
        hold: Hold,
        numbers: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Vec<String> {
        let id = self.cause_id(Cause {
            hold,
            run_id: run_id.to_string(),
        });
        let mut odd = Vec::new();
        for (number, expiration) in numbers {
            let Some(n) = E164::parse(number) else {
                odd.push(number.to_string());
                continue;
            };
            self.insert(n.packed(), id, expiration_secs(expiration));
        }
        odd
    }

    fn insert(&mut self, packed: u64, id: u32, expires: i64) {
        self.entries
            .entry(packed)
            .and_modify(|e| *e = (id, e.1.max(expires)))
            .or_insert((id, expires));
    }

    /// Run `run_id` failed: its numbers still pending are now `run-failed:<runId>`. Answers how many.
    pub fn run_failed(&mut self, run_id: &str) -> u64 {
        self.relabel(run_id, Hold::PendingPropagation, Hold::RunFailed)
    }

    /// Run `run_id`'s file was refused: its pending numbers are `refused-file:<runId>`.
    pub fn run_refused(&mut self, run_id: &str) -> u64 {
        self.relabel(run_id, Hold::PendingPropagation, Hold::RefusedFile)
    }

    fn relabel(&mut self, run_id: &str, from: Hold, to: Hold) -> u64 {
        let Some(&old) = self.cause_ids.get(&Cause {
            hold: from,
            run_id: run_id.to_string(),
        }) else {
            return 0;
        };
        let new = self.cause_id(Cause {
            hold: to,
            run_id: run_id.to_string(),
        });
        let mut n = 0;
        for e in self.entries.values_mut().filter(|e| e.0 == old) {
            e.0 = new;
            n += 1;
        }
        n
    }

    /// A verified run (`run_id`, SUCCESS) read the list back: every number CXone holds with the same or a later
    /// expiration (`held(number, expiration)`) leaves, whatever run brought it; of the run's own numbers still
    /// here, those CXone refused (`dead`) are dead letters, the rest stay as they were. Answers how many left.
    pub fn run_verified(
        &mut self,
        run_id: &str,
        held: impl Fn(E164, Option<DateTime<Utc>>) -> bool,
        dead: impl Fn(&str) -> bool,
    ) -> u64 {
        self.closing = Some(format!("verified:{run_id}"));
        let before = self.entries.len();
        self.entries.retain(|&n, (_, expires)| {
            let expiration = (*expires != NEVER)
                .then(|| DateTime::from_timestamp(*expires, 0))
                .flatten();
            !E164::from_packed(n).is_some_and(|n| held(n, expiration))
        });
        let removed = (before - self.entries.len()) as u64;
        let dead_id = self.cause_id(Cause {
            hold: Hold::DeadLetter,
            run_id: run_id.to_string(),
        });
        let own: Vec<u32> = self
            .causes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.run_id == run_id && c.hold != Hold::DeadLetter)
            .map(|(i, _)| i as u32)
            .collect();
        for (&n, e) in self.entries.iter_mut() {
            if own.contains(&e.0) && E164::from_packed(n).is_some_and(|n| dead(&n.to_string())) {
                e.0 = dead_id;
            }
        }
        removed
    }

    /// Remove `number` (an operator's decision): its cause, if it was here.
    pub fn remove(&mut self, number: &str) -> Option<Cause> {
        self.closing = Some("removed".into());
        let n = E164::parse(number)?;
        self.entries
            .remove(&n.packed())
            .map(|(id, _)| self.causes[id as usize].clone())
    }

    /// Numbers of run `run_id` with `hold` (for operators: what a removal of a run's dead letters would remove).
    pub fn numbers_of(&self, run_id: Option<&str>, hold: Option<Hold>) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, (id, _))| {
                let c = &self.causes[*id as usize];
                run_id.is_none_or(|r| c.run_id == r) && hold.is_none_or(|h| c.hold == h)
            })
            .map(|(&n, _)| format!("+{n}"))
            .collect();
        out.sort();
        out
    }

    /// Drop numbers whose expiration has passed at `now`. Answers how many.
    pub fn prune_expired(&mut self, now: DateTime<Utc>) -> u64 {
        let before = self.entries.len();
        let t = now.timestamp();
        self.entries.retain(|_, (_, expires)| *expires > t);
        (before - self.entries.len()) as u64
    }

    /// A file arrived (its run `receipt.run_id`): its clock starts at its receipt, or at the clock of an earlier
    /// open file some of whose numbers (`numbers`, packed) are in it again; that earlier file's numbers now wait
    /// under this one. The same run received again keeps its earliest receipt.
    fn open_receipt(&mut self, mut receipt: Receipt, numbers: &[u64]) {
        let mut carried: Vec<&str> = Vec::new();
        for n in numbers {
            if let Some((id, _)) = self.entries.get(n) {
                let c = &self.causes[*id as usize];
                if is_open(c.hold)
                    && c.run_id != receipt.run_id
                    && !carried.contains(&c.run_id.as_str())
                {
                    carried.push(&c.run_id);
                }
            }
        }
        for r in self
            .receipts
            .iter()
            .filter(|r| carried.contains(&r.run_id.as_str()))
        {
            if earlier(&r.clock_from, &receipt.clock_from) {
                receipt.clock_from = r.clock_from.clone();
            }
        }
        match self
            .receipts
            .iter_mut()
            .find(|r| r.run_id == receipt.run_id)
        {
            Some(r) => {
                if earlier(&receipt.received_at, &r.received_at) {
                    r.received_at = receipt.received_at;
                }
                if earlier(&receipt.clock_from, &r.clock_from) {
                    r.clock_from = receipt.clock_from;
                }
            }
            None => self.receipts.push(receipt),
        }
    }

    /// Close every open receipt no number waits under any more, at `now`, recording how (the change's `closing`).
    fn close_settled(&mut self, now: DateTime<Utc>, default_how: &str) {
        let mut waiting: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut open_ids: Vec<bool> = vec![false; self.causes.len()];
        for (i, c) in self.causes.iter().enumerate() {
            open_ids[i] = is_open(c.hold);
        }
        for (id, _) in self.entries.values() {
            if open_ids[*id as usize] {
                waiting.insert(self.causes[*id as usize].run_id.as_str());
            }
        }
        let how = self
            .closing
            .take()
            .unwrap_or_else(|| default_how.to_string());
        let (still, done): (Vec<Receipt>, Vec<Receipt>) = std::mem::take(&mut self.receipts)
            .into_iter()
            .partition(|r| waiting.contains(r.run_id.as_str()));
        self.receipts = still;
        for receipt in done {
            // A file that brought no number to wait (nothing accepted) closes as it arrives.
            let how = if how.strip_prefix("carried:") == Some(receipt.run_id.as_str()) {
                "resolved".to_string()
            } else {
                how.clone()
            };
            self.closed.push(ClosedReceipt {
                receipt,
                closed_at: now.to_rfc3339(),
                how,
            });
        }
        if self.closed.len() > CLOSED_KEPT {
            let drop = self.closed.len() - CLOSED_KEPT;
            self.closed.drain(..drop);
        }
    }

    /// The closed receipt of `run_id`, the latest when it closed more than once.
    pub fn closed_receipt(&self, run_id: &str) -> Option<&ClosedReceipt> {
        self.closed
            .iter()
            .rev()
            .find(|c| c.receipt.run_id == run_id)
    }

    /// The open receipt of `run_id`.
    pub fn open_receipt_of(&self, run_id: &str) -> Option<&Receipt> {
        self.receipts.iter().find(|r| r.run_id == run_id)
    }

    /// Why `number` is not known held, at `now` (an expired entry no longer suppresses); `None` when it is not here.
    pub fn cause(&self, number: &str, now: DateTime<Utc>) -> Option<&Cause> {
        self.cause_of(E164::parse(number)?, now)
    }

    /// [`Received::cause`] of a number already parsed.
    pub fn cause_of(&self, number: E164, now: DateTime<Utc>) -> Option<&Cause> {
        let (id, expires) = self.entries.get(&number.packed())?;
        (*expires > now.timestamp()).then(|| &self.causes[*id as usize])
    }

    /// How many numbers each hold keeps (pending propagation, dead letters, failed runs, refused files).
    pub fn counts(&self) -> ReceivedCounts {
        let mut per: HashMap<u32, u64> = HashMap::new();
        for (id, _) in self.entries.values() {
            *per.entry(*id).or_default() += 1;
        }
        let mut c = ReceivedCounts::default();
        for (id, n) in per {
            match self.causes[id as usize].hold {
                Hold::PendingPropagation => c.pending_propagation += n,
                Hold::DeadLetter => c.dead_letters += n,
                Hold::RunFailed => c.run_failed += n,
                Hold::RefusedFile => c.refused_file += n,
            }
        }
        c
    }

    /// The document's bytes (causes no number uses are dropped; numbers sorted, so equal content is equal bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut used: BTreeMap<u32, u32> = BTreeMap::new();
        for (id, _) in self.entries.values() {
            used.insert(*id, 0);
        }
        let mut causes = Vec::with_capacity(used.len());
        for (old, new) in used.iter_mut() {
            *new = causes.len() as u32;
            causes.push(self.causes[*old as usize].clone());
        }
        let header = Header {
            format: RECEIVED_FORMAT.into(),
            list: self.list.clone(),
            updated_at: self.updated_at.clone(),
            causes,
            entries: self.entries.len(),
            receipts: self.receipts.clone(),
            closed: self.closed.clone(),
        };
        let mut out = serde_json::to_vec(&header).expect("the header serializes");
        out.push(b'\n');
        let mut numbers: Vec<(&u64, &(u32, i64))> = self.entries.iter().collect();
        numbers.sort_unstable_by_key(|(n, _)| **n);
        out.reserve(numbers.len() * 28);
        for (&n, &(id, expires)) in numbers {
            if let Some(e) = E164::from_packed(n) {
                e.write_to(&mut out);
            }
            out.push(b' ');
            out.extend_from_slice(used[&id].to_string().as_bytes());
            out.push(b' ');
            if expires == NEVER {
                out.push(b'-');
            } else {
                out.extend_from_slice(expires.to_string().as_bytes());
            }
            out.push(b'\n');
        }
        out
    }

    /// Parse a document (`key` names it in errors). Any defect is an error: a partial reading would release numbers.
    pub fn parse(bytes: &[u8], key: &str) -> Result<Received, ReceivedError> {
        let bad = |line: usize, reason: String| ReceivedError::Unreadable {
            key: key.to_string(),
            line,
            reason,
        };
        let mut lines = bytes.split(|&b| b == b'\n');
        let header: Header = serde_json::from_slice(lines.next().unwrap_or_default())
            .map_err(|e| bad(1, crate::redact::json_error(&e)))?;
        if header.format != RECEIVED_FORMAT {
            return Err(bad(
                1,
                format!("format {:?}, not {RECEIVED_FORMAT}", header.format),
            ));
        }
        let mut r = Received {
            list: header.list,
            updated_at: header.updated_at,
            receipts: header.receipts,
            closed: header.closed,
            ..Received::default()
        };
        for c in header.causes {
            r.cause_id(c);
        }
        r.entries.reserve(header.entries);
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let text = std::str::from_utf8(line).map_err(|_| bad(i + 2, "not UTF-8".into()))?;
            let mut fields = text.split(' ');
            let (Some(number), Some(id), Some(expires), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(i + 2, "not `+E164 cause expiration`".into()));
            };
            let n = E164::parse(number).ok_or_else(|| bad(i + 2, "not an E.164 number".into()))?;
            let id: u32 = id
                .parse()
                .ok()
                .filter(|&id| (id as usize) < r.causes.len())
                .ok_or_else(|| bad(i + 2, "no such cause".into()))?;
            let expires = match expires {
                "-" => NEVER,
                s => s
                    .parse()
                    .map_err(|_| bad(i + 2, "expiration is not Unix seconds".into()))?,
            };
            r.entries.insert(n.packed(), (id, expires));
        }
        if r.entries.len() != header.entries {
            return Err(bad(
                1,
                format!(
                    "the header counts {} numbers, the document holds {} (truncated?)",
                    header.entries,
                    r.entries.len()
                ),
            ));
        }
        Ok(r)
    }
}

/// Read `list`'s document (one request): `None` when it does not exist, an error when it cannot be read or parsed.
pub async fn load_received(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<Received>, ReceivedError> {
    let key = received_key(list);
    match store.get_bytes(&key).await? {
        Some(b) => Ok(Some(Received::parse(&b, &key)?)),
        None => Ok(None),
    }
}

/// Change `list`'s document with `change` under a conditional write (another step may update it at once: the
/// change is applied again to what it wrote), expired numbers dropped, and answer what `change` answered with the
/// counts after it. A document that does not parse is left as it is and is an error.
pub async fn update_received<T>(
    store: &dyn ObjectStore,
    list: &str,
    now: DateTime<Utc>,
    mut change: impl FnMut(&mut Received) -> T,
) -> Result<(T, ReceivedCounts), ReceivedError> {
    let key = received_key(list);
    for _ in 0..16 {
        let (mut doc, tag) = match store.get_tagged(&key).await? {
            Some((b, tag)) => (Received::parse(&b, &key)?, Some(tag)),
            None => (Received::new(list), None),
        };
        let out = change(&mut doc);
        let expired = doc.prune_expired(now);
        doc.close_settled(now, if expired > 0 { "expired" } else { "resolved" });
        doc.updated_at = now.to_rfc3339();
        let body = doc.to_bytes();
        let written = match &tag {
            Some(tag) => store.put_if_match(&key, body, tag).await?,
            None => store.put_if_absent(&key, body).await?,
        };
        if written {
            return Ok((out, doc.counts()));
        }
    }
    Err(ReceivedError::Contended(key))
}

/// Receive every number of `manifest`'s run into its list's document, all with `hold` (`PendingPropagation` for a
/// run going on to upload, `RefusedFile` for a file the junk gate refused). The shards are read from `staged` (the
/// local directory normalize wrote them to, when it still has it: thousands of shards are not fetched back) or else
/// from `store`. Memory: 16 bytes a number, the shards read one at a time.
pub async fn receive_run(
    store: &dyn ObjectStore,
    manifest: &crate::run::Manifest,
    staged: Option<&std::path::Path>,
    hold: Hold,
    now: DateTime<Utc>,
) -> Result<ReceivedCounts, ReceivedError> {
    let keys = crate::run::RunKeys::new(&manifest.run_id);
    let mut numbers: Vec<(u64, i64)> = Vec::with_capacity(manifest.counts.accepted as usize);
    for shard in &manifest.shards {
        let key = keys.shard(&shard.key);
        let bytes = match staged {
            Some(dir) => {
                let path = dir.join(&shard.key);
                Some(
                    tokio::fs::read(&path)
                        .await
                        .map_err(|e| ReceivedError::Unreadable {
                            key: path.display().to_string(),
                            line: 0,
                            reason: e.to_string(),
                        })?,
                )
            }
            None => store.get_bytes(&key).await?,
        }
        .ok_or_else(|| ReceivedError::Unreadable {
            key: key.clone(),
            line: 0,
            reason: "the shard does not exist".into(),
        })?;
        for e in crate::run::parse_shard(&String::from_utf8_lossy(&bytes), &key)? {
            match E164::parse(&e.phone_number) {
                Some(n) => {
                    numbers.push((n.packed(), expiration_secs(e.expiration_date.as_deref())))
                }
                // A shard holds E.164 only (normalize writes it); anything else is a damaged shard.
                None => {
                    return Err(ReceivedError::Unreadable {
                        key,
                        line: e.line as usize,
                        reason: "not an E.164 number".into(),
                    })
                }
            }
        }
    }
    let receipt = Receipt {
        run_id: manifest.run_id.clone(),
        source: manifest.source.display_name(),
        received_at: manifest
            .source
            .received_at
            .clone()
            .unwrap_or_else(|| manifest.created_at.clone()),
        clock_from: String::new(),
    };
    let packed: Vec<u64> = numbers.iter().map(|&(n, _)| n).collect();
    let (_, counts) = update_received(store, &manifest.list, now, |r| {
        r.open_receipt(
            Receipt {
                clock_from: receipt.received_at.clone(),
                ..receipt.clone()
            },
            &packed,
        );
        r.closing = Some(format!("carried:{}", manifest.run_id));
        let id = r.cause_id(Cause {
            hold,
            run_id: manifest.run_id.clone(),
        });
        for &(n, expires) in &numbers {
            r.insert(n, id, expires);
        }
    })
    .await?;
    tracing::info!(list = %manifest.list, run_id = %manifest.run_id, numbers = numbers.len(), ?hold,
        "received: suppressed by the check until a verified run shows CXone holding them");
    Ok(counts)
}

/// What an operator did to a list's knowledge or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum OperatorAction {
    /// A number removed from the received document: the check no longer answers it from there.
    #[serde(rename_all = "camelCase")]
    RemoveNumber {
        /// The number (E.164).
        phone_number: String,
        /// The reason the check answered before (`dead-letter`, `run-failed:<runId>`, …).
        was: String,
        /// The run it came from.
        run_id: String,
    },
    /// An open failure cleared from the status: it no longer keeps the list FAILED.
    #[serde(rename_all = "camelCase")]
    ClearFailure {
        /// The failed run whose failure was cleared.
        run_id: String,
        /// The source object of that run (S3 key or local path): the failure it kept open.
        source: String,
    },
}

/// One line of `status/<list>/operator.jsonl`: what was done, why, by whom, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorRecord {
    /// The operator's action (remove or clear) with its arguments.
    #[serde(flatten)]
    pub action: OperatorAction,
    /// Why (required: a removal without a reason is not accepted).
    pub reason: String,
    /// The operator who did it, as the command recorded it.
    pub by: String,
    /// When the operator did it (RFC 3339).
    pub at: String,
}

/// Append `records` to `list`'s operator log (a conditional write: no record is lost to a concurrent one).
pub async fn record_operator_actions(
    store: &dyn ObjectStore,
    list: &str,
    records: &[OperatorRecord],
) -> Result<(), ReceivedError> {
    let key = operator_log_key(list);
    for _ in 0..16 {
        let (mut body, tag) = match store.get_tagged(&key).await? {
            Some((b, t)) => (b, Some(t)),
            None => (Vec::new(), None),
        };
        for r in records {
            serde_json::to_writer(&mut body, r).expect("an operator record serializes");
            body.push(b'\n');
        }
        let written = match &tag {
            Some(tag) => store.put_if_match(&key, body, tag).await?,
            None => store.put_if_absent(&key, body).await?,
        };
        if written {
            return Ok(());
        }
    }
    Err(ReceivedError::Contended(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_number_stays_until_a_verified_run_shows_it_held_and_the_reason_follows_its_runs() {
        let now = t("2026-12-06T00:00:00Z");
        let mut r = Received::new("optouts");
        r.receive(
            "r1",
            Hold::PendingPropagation,
            [
                ("+12025550101", None),
                ("+12025550102", Some("2027-01-01T00:00:00Z")),
                ("+12025550103", None),
            ],
        );
        assert_eq!(
            r.cause("+12025550101", now).unwrap().reason(),
            "pending-propagation"
        );
        assert_eq!(r.run_failed("r1"), 3);
        assert_eq!(
            r.cause("+12025550102", now).unwrap().reason(),
            "run-failed:r1"
        );
        // Another run brings 0103 again and succeeds: CXone holds 0101 and 0103 (with no expiration), refused 0103?
        // No: 0103 is a dead letter of r2; 0101 is held; 0102 is held only until 2026-12-31, earlier than asked.
        r.receive("r2", Hold::PendingPropagation, [("+12025550103", None)]);
        let held = |n: E164, exp: Option<DateTime<Utc>>| match n.packed() {
            12025550101 => true,
            12025550102 => exp.is_some_and(|e| e <= t("2026-12-31T00:00:00Z")),
            _ => false,
        };
        assert_eq!(r.run_verified("r2", held, |n| n == "+12025550103"), 1);
        assert!(r.cause("+12025550101", now).is_none());
        assert_eq!(
            r.cause("+12025550102", now).unwrap().reason(),
            "run-failed:r1"
        );
        assert_eq!(
            r.cause("+12025550103", now).unwrap().reason(),
            "dead-letter"
        );
        assert_eq!(
            r.counts(),
            ReceivedCounts {
                dead_letters: 1,
                run_failed: 1,
                ..Default::default()
            }
        );
        // Its expiration passes: no longer suppressed by this document.
        assert!(r.cause("+12025550102", t("2027-01-02T00:00:00Z")).is_none());
        assert_eq!(r.prune_expired(t("2027-01-02T00:00:00Z")), 1);
        // The operator removes the dead letter.
        assert_eq!(r.remove("+12025550103").unwrap().hold, Hold::DeadLetter);
        assert!(r.is_empty());
    }

    fn receipt(run: &str, at: &str) -> Receipt {
        Receipt {
            run_id: run.into(),
            source: format!("incoming/l/{run}.csv"),
            received_at: at.into(),
            clock_from: at.into(),
        }
    }

    fn packed(n: &str) -> u64 {
        E164::parse(n).unwrap().packed()
    }

    #[test]
    fn a_files_clock_runs_until_every_number_it_brought_is_settled_and_a_failure_does_not_stop_it()
    {
        let mut r = Received::new("l");
        let now = t("2026-12-01T00:00:00Z");
        // A arrives Monday with two numbers and fails.
        r.open_receipt(receipt("A", "2026-11-30T15:00:00Z"), &[]);
        r.receive(
            "A",
            Hold::PendingPropagation,
            [("+12025550101", None), ("+12025550102", None)],
        );
        r.run_failed("A");
        r.close_settled(now, "resolved");
        assert_eq!(r.receipts.len(), 1, "a failed run does not stop the clock");
        // B arrives Wednesday with one of A's numbers and a new one: its clock starts at A's receipt.
        r.open_receipt(
            receipt("B", "2026-12-02T15:00:00Z"),
            &[packed("+12025550102"), packed("+12025550103")],
        );
        r.closing = Some("carried:B".into());
        r.receive(
            "B",
            Hold::PendingPropagation,
            [("+12025550102", None), ("+12025550103", None)],
        );
        r.close_settled(t("2026-12-02T15:00:00Z"), "resolved");
        let b = r.open_receipt_of("B").unwrap();
        assert_eq!(b.received_at, "2026-12-02T15:00:00Z");
        assert_eq!(b.clock_from, "2026-11-30T15:00:00Z");
        assert!(r.open_receipt_of("A").is_some(), "0101 still waits under A");
        // B verifies: CXone holds 0102 and 0103; A's 0101 is not held: A stays open, B closes verified.
        r.run_verified("B", |n, _| n.packed() != packed("+12025550101"), |_| false);
        r.close_settled(t("2026-12-03T15:00:00Z"), "resolved");
        let closed = r.closed_receipt("B").unwrap();
        assert_eq!(
            (closed.how.as_str(), closed.closed_at.as_str()),
            ("verified:B", "2026-12-03T15:00:00+00:00")
        );
        assert_eq!(closed.verified_by(), Some("B"));
        assert_eq!(r.receipts.len(), 1);
        // The operator removes 0101: A closes, recorded as removed.
        r.remove("+12025550101");
        r.close_settled(t("2026-12-04T15:00:00Z"), "resolved");
        assert!(r.receipts.is_empty());
        assert_eq!(r.closed_receipt("A").unwrap().how, "removed");
        // The receipts travel in the header.
        let again = Received::parse(&r.to_bytes(), "k").unwrap();
        assert_eq!(again.closed, r.closed);
        // A file received again keeps its first receipt.
        let mut r = Received::new("l");
        r.open_receipt(receipt("C", "2026-12-01T15:00:00Z"), &[]);
        r.open_receipt(receipt("C", "2026-12-05T15:00:00Z"), &[]);
        assert_eq!(
            r.open_receipt_of("C").unwrap().received_at,
            "2026-12-01T15:00:00Z"
        );
    }

    #[test]
    fn the_document_round_trips_and_any_defect_is_an_error() {
        let mut r = Received::new("optouts");
        r.updated_at = "2026-12-06T00:00:00Z".into();
        r.receive(
            "r1",
            Hold::RefusedFile,
            [
                ("+12025550101", Some("2027-01-01T00:00:00Z")),
                ("+442079460018", None),
            ],
        );
        assert_eq!(
            r.receive("r1", Hold::RefusedFile, [("garbage", None)]),
            vec!["garbage"]
        );
        let bytes = r.to_bytes();
        let again = Received::parse(&bytes, "k").unwrap();
        assert_eq!(again.to_bytes(), bytes);
        assert_eq!(again.len(), 2);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("+12025550101 0 1798761600\n"), "{text}");
        assert!(text.contains("+442079460018 0 -\n"), "{text}");
        // Truncated, a bad line, not JSON: errors naming the key.
        let cut = &bytes[..bytes.len() - 10];
        assert!(matches!(
            Received::parse(cut, "k"),
            Err(ReceivedError::Unreadable { .. })
        ));
        let bad = text.replace(" 0 -", " 7 -");
        assert!(Received::parse(bad.as_bytes(), "k").is_err());
        let err = Received::parse(b"{not json", "status/x/received.txt").unwrap_err();
        assert!(err.to_string().contains("status/x/received.txt"), "{err}");
    }

    #[tokio::test]
    async fn updates_are_conditional_and_an_unparsable_document_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::adapters::store::LocalStore {
            root: dir.path().to_path_buf(),
        };
        let now = t("2026-12-06T00:00:00Z");
        let (_, counts) = update_received(&store, "l", now, |r| {
            r.receive("r1", Hold::PendingPropagation, [("+12025550101", None)])
        })
        .await
        .unwrap();
        assert_eq!(counts.pending_propagation, 1);
        let loaded = load_received(&store, "l").await.unwrap().unwrap();
        assert_eq!(loaded.len(), 1);
        store
            .put_bytes(
                &received_key("l"),
                b"{\"format\":\"dncflow-received/1\"".to_vec(),
            )
            .await
            .unwrap();
        assert!(update_received(&store, "l", now, |r| r.run_failed("r1"))
            .await
            .is_err());
        assert!(load_received(&store, "l").await.is_err());
        assert_eq!(
            store.get_bytes(&received_key("l")).await.unwrap().unwrap(),
            b"{\"format\":\"dncflow-received/1\"".to_vec(),
            "left as it was"
        );
    }
}
