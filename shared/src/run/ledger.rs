//! The ledger: what happened to each entry of a run, as `upload` records it and `reconcile` checks it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::adapters::cxone::EntryOutcome;

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
    /// The source the entry came from (the shard entry's): a re-upload sends it again as it was, not the list's
    /// name. Absent in ledgers written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
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

#[cfg(test)]
impl LedgerRecord {
    /// A record of `phone` with fixed metadata (US-DC, expiring 2030, key `k<phone>`), for unit tests.
    pub(crate) fn sample(phone: &str, outcome: EntryOutcome) -> LedgerRecord {
        LedgerRecord {
            phone_number: phone.into(),
            jurisdiction: "US-DC".into(),
            expiration_date: Some("2030-01-01T00:00:00Z".into()),
            idempotency_key: format!("k{phone}"),
            outcome,
            source: Some("sample.csv".into()),
        }
    }
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
