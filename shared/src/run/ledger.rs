//! The ledger: what happened to each entry of a run, as `upload` records it (`runs/<runId>/ledger/<round>/…`, one
//! segment per upload invocation, the dead letters beside it) and `reconcile` and the cooldown read it back.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{parse_shard, DocumentError, Manifest, RunKeys};
use crate::adapters::store::ObjectStore;

/// What CXone did with one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum EntryOutcome {
    /// CXone created a new record.
    Created {
        /// CXone's id of the new record.
        id: String,
    },
    /// The number was already on the list (or the key was replayed): no new record.
    Exists {
        /// CXone's id of the record already there.
        id: String,
    },
    /// Rejected by CXone with a validation code.
    Rejected {
        /// `INVALID_PHONE_NUMBER`, `INVALID_JURISDICTION`, `INVALID_EXPIRATION`, `UNKNOWN_LIST`,
        /// `IDEMPOTENCY_CONFLICT`, …
        code: String,
        /// CXone's message for the entry, as it gave it.
        message: String,
    },
    /// The response did not mention the entry: neither written nor rejected as far as we know.
    Unconfirmed,
}

/// What happened to one entry: a line of the run's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRecord {
    /// The number sent, in E.164.
    pub phone_number: String,
    /// The jurisdiction sent (`US-TX`, `GB`, …): reconcile compares CXone's with it.
    pub jurisdiction: String,
    /// The expiration sent (RFC 3339; None: the list's default): reconcile compares CXone's with it.
    pub expiration_date: Option<String>,
    /// The idempotency key sent: a hash of the list id, the number and the drop's content hash, so a re-run re-sends
    /// the same key.
    pub idempotency_key: String,
    /// What CXone answered for the entry.
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

/// JSON lines of `items` (plain structs of strings: serialization cannot fail).
fn jsonl<T: Serialize>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).expect("ledger records serialize");
        out.push(b'\n');
    }
    out
}

/// Write the ledger segment of the upload of `shard_key` in `round` that started at entry `cursor`, and beside it
/// the segment's dead letters (the records CXone rejected), each only when not empty.
pub async fn write_ledger_segment(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    shard_key: &str,
    cursor: usize,
    records: &[LedgerRecord],
) -> Result<(), DocumentError> {
    if !records.is_empty() {
        store
            .put_bytes(
                &keys.ledger_segment(round, shard_key, cursor),
                jsonl(records),
            )
            .await?;
    }
    let dead: Vec<&LedgerRecord> = records
        .iter()
        .filter(|r| matches!(r.outcome, EntryOutcome::Rejected { .. }))
        .collect();
    if !dead.is_empty() {
        store
            .put_bytes(
                &keys.dead_letter_segment(round, shard_key, cursor),
                jsonl(&dead),
            )
            .await?;
    }
    Ok(())
}

/// The records of one ledger segment (`key` names it in errors).
pub fn parse_ledger_segment(bytes: &[u8], key: &str) -> Result<Vec<LedgerRecord>, DocumentError> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| {
            serde_json::from_slice(line).map_err(|e| {
                DocumentError::unreadable(format!(
                    "{key} line {}: {}",
                    i + 1,
                    crate::redact::json_error(&e)
                ))
            })
        })
        .collect()
}

/// The first ledger segment of each shard `round` uploaded (`shard_keys`), in that order; a shard whose upload wrote
/// none yet is skipped. One segment is in memory at a time: `visit` sees its records.
pub async fn for_each_first_segment(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    shard_keys: &[String],
    mut visit: impl FnMut(Vec<LedgerRecord>),
) -> Result<(), DocumentError> {
    for shard_key in shard_keys {
        let key = keys.ledger_segment(round, shard_key, 0);
        let Some(bytes) = store.get_bytes(&key).await? else {
            continue;
        };
        visit(parse_ledger_segment(&bytes, &key)?);
    }
    Ok(())
}

/// Read the ledger of one uploaded shard: its segments, each starting where the previous ended, until `entries`
/// records are read. A missing segment means the upload of that shard has not finished: an error naming it, or,
/// with `partial`, the end of what there is (a run still uploading).
pub async fn read_ledger_chain(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    shard_key: &str,
    entries: usize,
    partial: bool,
) -> Result<Vec<LedgerRecord>, DocumentError> {
    let mut records = Vec::with_capacity(entries);
    while records.len() < entries {
        let key = keys.ledger_segment(round, shard_key, records.len());
        let Some(bytes) = store.get_bytes(&key).await? else {
            if partial {
                break;
            }
            return Err(DocumentError::unreadable(format!(
                "ledger of {shard_key} (round {round}) ends at entry {} of {entries}: {key} does not exist",
                records.len()
            )));
        };
        let segment = parse_ledger_segment(&bytes, &key)?;
        if segment.is_empty() {
            return Err(DocumentError::unreadable(format!("{key} is empty")));
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
) -> Result<u64, DocumentError> {
    let keys = RunKeys::new(&manifest.run_id);
    // The re-uploads first: they are small (what was missing), and they supersede the first attempts.
    let mut later: Vec<Option<LedgerRecord>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut reuploaded = 0u64;
    for round in 1..=rounds {
        let shard_key = keys.reupload_shard(round);
        let text = store
            .get_bytes(&shard_key)
            .await?
            .ok_or_else(|| DocumentError::unreadable(format!("{shard_key} does not exist")))?;
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
) -> Result<(Vec<LedgerRecord>, u64), DocumentError> {
    let mut ledger = Vec::new();
    let reuploaded =
        for_each_run_ledger_record(store, manifest, rounds, |r| ledger.push(r)).await?;
    Ok((ledger, reuploaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn segments_round_trip_and_dead_letters_are_kept_beside_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::adapters::store::LocalStore {
            root: dir.path().to_path_buf(),
        };
        let keys = RunKeys::new("r");
        let shard = keys.shard("shards/00000.jsonl");
        let records = vec![
            LedgerRecord::sample("+12025550101", EntryOutcome::Created { id: "1".into() }),
            LedgerRecord::sample(
                "+12025550102",
                EntryOutcome::Rejected {
                    code: "INVALID_PHONE_NUMBER".into(),
                    message: "no".into(),
                },
            ),
        ];
        write_ledger_segment(&store, &keys, 0, &shard, 0, &records)
            .await
            .unwrap();
        let back = read_ledger_chain(&store, &keys, 0, &shard, 2, false)
            .await
            .unwrap();
        assert_eq!(back, records);
        let dead = store
            .get_bytes(&keys.dead_letter_segment(0, &shard, 0))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            parse_ledger_segment(&dead, "dead").unwrap(),
            records[1..].to_vec()
        );
        // A chain that ends early is an error naming the missing segment, or the end of a partial read.
        let err = read_ledger_chain(&store, &keys, 0, &shard, 3, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ends at entry 2 of 3"), "{err}");
        assert_eq!(
            read_ledger_chain(&store, &keys, 0, &shard, 3, true)
                .await
                .unwrap()
                .len(),
            2
        );
        let bad = parse_ledger_segment(b"{\"phoneNumber\":\n", "seg").unwrap_err();
        assert!(bad.to_string().starts_with("seg line 1: "), "{bad}");
    }
}
