//! The reconciliation's logic: page the list back into a compact index and compare the ledger with it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::adapters::cxone::{DncApi, EntryOutcome, RemoteEntry, MAX_PAGE};
use crate::run::{LedgerRecord, ShardEntry};
use crate::steps::PipelineError;

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
    /// What to upload again: the missing and unconfirmed entries, as shard entries keeping the source each was first
    /// sent with (`source` for a ledger record that does not say).
    pub fn reupload_entries(&self, source: &str) -> Vec<ShardEntry> {
        self.missing
            .iter()
            .chain(&self.unconfirmed)
            .map(|m| ShardEntry {
                phone_number: m.phone_number.clone(),
                jurisdiction: m.jurisdiction.clone(),
                expiration_date: m.expiration_date.clone(),
                source: m.source.clone().unwrap_or_else(|| source.to_string()),
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
                    self.by_number.insert(n.packed(), facts);
                }
                None => {
                    self.other.insert(e.phone_number, facts);
                }
            }
        }
    }

    fn get(&self, number: &str) -> Option<RemoteFacts> {
        match crate::phone::E164::parse(number) {
            Some(n) => self.by_number.get(&n.packed()).copied(),
            None => self.other.get(number).copied(),
        }
    }

    /// Whether the list holds `number`.
    pub fn contains(&self, number: &str) -> bool {
        self.get(number).is_some()
    }

    /// Whether the list holds `number` in a way that suppresses it as long as asked: a record that has not expired at
    /// `now`, and, when `expiration` is asked, one that expires no earlier (a record without an expiration takes the
    /// list's default and counts as held).
    pub fn holds(
        &self,
        number: crate::phone::E164,
        expiration: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        match self.by_number.get(&number.packed()) {
            None => false,
            Some(f) => match (f.expiration, expiration) {
                (None, _) => true,
                (Some(held), None) => held > now,
                (Some(held), Some(asked)) => held > now && held >= asked,
            },
        }
    }

    /// Records read back, numbers and non-numbers together.
    pub fn len(&self) -> usize {
        self.by_number.len() + self.other.len()
    }

    /// Whether the list held nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every number held, E.164.
    /// Every number held with its record's expiration (`None`: never lapses).
    pub fn held(&self) -> impl Iterator<Item = (String, Option<DateTime<Utc>>)> + '_ {
        self.by_number
            .iter()
            .map(|(n, f)| (format!("+{n}"), f.expiration))
            .chain(self.other.iter().map(|(n, f)| (n.clone(), f.expiration)))
    }

    /// Every record's number: E.164, or as CXone holds it when it is not `+digits`.
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
    /// its expiration ([`crate::adapters::cxone::Capabilities::entry_metadata`] false) is compared on those alone.
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
            // Refused, yet CXone holds it live (a tenant that answers an error for a number it already holds, in
            // wording the client did not recognise): it suppresses, so it is held like an entry that `exists`.
            EntryOutcome::Rejected { .. }
                if held_entry.is_some_and(|h| h.expiration.is_none_or(|e| e > self.now)) =>
            {
                r.expected += 1;
                r.found += 1;
                return;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A re-uploaded entry is sent as it was first sent, its source included (not the list's name); a ledger written
    /// before records carried their source falls back to the name given.
    #[test]
    fn reuploads_keep_their_source() {
        let mut old = LedgerRecord::sample("+12025550002", EntryOutcome::Unconfirmed);
        old.source = None;
        let r = Reconciliation {
            missing: vec![LedgerRecord::sample(
                "+12025550001",
                EntryOutcome::Created { id: "e1".into() },
            )],
            unconfirmed: vec![old],
            ..Reconciliation::default()
        };
        let entries = r.reupload_entries("the-list");
        assert_eq!(entries[0].source, "sample.csv");
        assert_eq!(
            entries[0].expiration_date.as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        assert_eq!(entries[1].source, "the-list");
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
    fn reconcile_finds_missing_and_wrong_metadata() {
        let created = || EntryOutcome::Created { id: "x".into() };
        let ledger = vec![
            LedgerRecord::sample("+12025550001", created()),
            LedgerRecord::sample("+12025550002", created()),
            LedgerRecord::sample("+12025550003", created()),
            LedgerRecord::sample("+12025550004", created()),
            LedgerRecord::sample(
                "+12025550005",
                EntryOutcome::Rejected {
                    code: "INVALID_JURISDICTION".into(),
                    message: String::new(),
                },
            ),
            LedgerRecord::sample("+12025550006", EntryOutcome::Exists { id: "y".into() }),
            LedgerRecord::sample("+12025550007", EntryOutcome::Unconfirmed),
            LedgerRecord::sample("+12025550008", EntryOutcome::Exists { id: "z".into() }),
            LedgerRecord::sample("+12025550009", EntryOutcome::Exists { id: "w".into() }),
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
    fn a_refused_number_cxone_holds_live_is_held() {
        let refused = || EntryOutcome::Rejected {
            code: "RECORD_REJECTED".into(),
            message: "Record is a duplicate".into(),
        };
        let ledger = vec![
            LedgerRecord::sample("+12025550001", refused()),
            LedgerRecord::sample("+12025550002", refused()),
            LedgerRecord::sample("+12025550003", refused()),
        ];
        let held = vec![
            remote("+12025550001", "", "2030-01-01T00:00:00Z"),
            // Held, but expired: it suppresses nothing, and the refusal stands.
            remote("+12025550002", "", "2026-01-01T00:00:00Z"),
        ];
        let now: DateTime<Utc> = "2026-12-02T00:00:00Z".parse().unwrap();
        let r = reconcile(&ledger, &held, None, now);
        assert_eq!((r.expected, r.found), (1, 1));
        assert_eq!(r.rejected_by_code.get("RECORD_REJECTED"), Some(&2));
        assert!(r.clean());
    }
}
