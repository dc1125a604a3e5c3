//! The upload stage: one shard per invocation, resumable.

mod logic;

pub use logic::*;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{read_json, resolve_list, ErrorKind, RunRef, StepError};
use crate::adapters::cxone::{DncApi, EntryOutcome};
use crate::adapters::store::ObjectStore;
use crate::run::ledger::write_ledger_segment;
use crate::run::snapshot::{number_hash, verified_snapshot, SnapshotHold, SuppressionSnapshot};
use crate::run::{keys_version, parse_shard_with_ends, LedgerRecord, Manifest};

/// One shard to upload (the Map state's item); the upload's output is the next invocation's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardTask {
    /// The run whose shard this is (its bucket, id and list).
    #[serde(flatten)]
    pub run: RunRef,
    /// The shard's key in the bucket.
    pub shard_key: String,
    /// 0 for the first upload, n for the n-th re-upload of missing entries.
    #[serde(default)]
    pub round: u32,
    /// Index of the next entry of the shard to upload.
    #[serde(default)]
    pub cursor: usize,
    /// Byte offset of entry `cursor` in the shard (0: unknown, the shard is read whole): a resumed invocation reads
    /// the shard from there, not from its start.
    #[serde(default)]
    pub offset: u64,
}

/// What one upload invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadOutput {
    /// The task, with `cursor` moved to where the next invocation resumes.
    #[serde(flatten)]
    pub task: ShardTask,
    /// The whole shard is uploaded.
    pub done: bool,
    /// Entries in the shard.
    pub entries: usize,
    /// Entries CXone created in this invocation.
    pub created: u64,
    /// Entries already on the list.
    pub exists: u64,
    /// Entries CXone rejected (written to the dead-letter segment).
    pub rejected: u64,
    /// Entries whose outcome is unknown (reconciliation settles them).
    pub unconfirmed: u64,
    /// When this invocation last wrote to CXone (RFC 3339): the cooldown counts from the latest of these.
    pub last_write_at: String,
}

/// How an upload invocation may spend its time.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// Stop starting new batches after this long (below the Lambda timeout, leaving time to write the ledger).
    pub budget: Duration,
    /// Write requests in flight at once, each a batch of entries (at most 100).
    pub concurrency: usize,
    /// The most entries a run may hold (a CXone environment holds at most 1,000,000 records, calling lists and DNC
    /// together): a bigger run fails [`ErrorKind::CapacityExceeded`] before its first write.
    pub capacity: u64,
}

/// Records a CXone environment holds at most (CXone's documented limit, calling lists and DNC together).
pub const CXONE_CAPACITY: u64 = 1_000_000;

/// The capacity decision of a run: what the environment held, what the run adds, against the cap. Taken by the
/// run's first upload invocation and kept in `runs/<runId>/capacity.json`, so the other shards (and retries) follow
/// it instead of counting again while the first ones write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityDecision {
    /// What the environment held before the run.
    pub holdings: crate::adapters::cxone::Holdings,
    /// Entries of the run the list does not hold yet (accepted, less those its last verified run holds).
    pub new_entries: u64,
    /// The cap applied ([`CXONE_CAPACITY`] unless `DNCFLOW_CXONE_CAPACITY` sets another).
    pub capacity: u64,
    /// Whether the run may write.
    pub allowed: bool,
}

impl CapacityDecision {
    fn refusal(&self, task: &ShardTask) -> StepError {
        let uncounted = if self.holdings.uncounted.is_empty() {
            String::new()
        } else {
            format!("; not counted: {}", self.holdings.uncounted.join(", "))
        };
        StepError::new(ErrorKind::CapacityExceeded, format!(
            "run {} would bring the CXone environment to {} records ({} on DNC lists, {} on calling lists{uncounted}, \
             and {} new entries for list {}), above its cap of {}: nothing was written",
            task.run.run_id,
            self.holdings.total() + self.new_entries,
            self.holdings.dnc_records,
            self.holdings.calling_list_records,
            self.new_entries,
            task.run.list,
            self.capacity
        ))
    }
}

/// Refuse a run that cannot fit, before its first write: above the cap on its own (no CXone call needed), or with
/// what the environment already holds.
async fn check_capacity(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    task: &ShardTask,
    manifest: &Manifest,
    capacity: u64,
) -> Result<(), StepError> {
    if manifest.counts.accepted > capacity {
        return Err(StepError::new(ErrorKind::CapacityExceeded, format!(
            "run {} holds {} entries for list {}, above the {} records a CXone environment holds: nothing was written \
             (a registry such as the national one goes to the suppression index: dncctl registry import, or \
             incoming-registry/<name>/)",
            task.run.run_id, manifest.counts.accepted, task.run.list, capacity
        )));
    }
    let key = task.run.keys().capacity();
    let decision: CapacityDecision = match store.get_bytes(&key).await? {
        Some(_) => read_json(store, &key).await?,
        None => {
            let holdings = api.holdings().await.map_err(StepError::from)?;
            let mut held = 0u64;
            if let Some(text) = verified_snapshot(store, &task.run.list).await? {
                let snapshot = SuppressionSnapshot::from_lines(&String::from_utf8_lossy(&text)).0;
                drop(text);
                for shard in &manifest.shards {
                    let shard_key = task.run.keys().shard(&shard.key);
                    let bytes = store.get_bytes(&shard_key).await?.ok_or_else(|| {
                        StepError::new(
                            ErrorKind::Fatal,
                            format!("shard {shard_key} does not exist"),
                        )
                    })?;
                    let entries =
                        crate::run::parse_shard(&String::from_utf8_lossy(&bytes), &shard_key)?;
                    held += entries
                        .iter()
                        .filter(|e| snapshot.contains(&e.phone_number))
                        .count() as u64;
                }
            }
            let new_entries = manifest.counts.accepted.saturating_sub(held);
            let decision = CapacityDecision {
                allowed: holdings.total() + new_entries <= capacity,
                holdings,
                new_entries,
                capacity,
            };
            let body = serde_json::to_vec(&decision).expect("decision serializes");
            if store.put_if_absent(&key, body).await? {
                tracing::info!(run_id = %task.run.run_id, held = decision.holdings.total(),
                    new = decision.new_entries, capacity, allowed = decision.allowed, "capacity decided");
                decision
            } else {
                // Another shard decided first (it may be writing already): its decision stands.
                read_json(store, &key).await?
            }
        }
    };
    if decision.allowed {
        Ok(())
    } else {
        Err(decision.refusal(task))
    }
}

/// Of `entries`, the numbers the list held when its last successful run verified it, with an expiration no earlier
/// than the entry asks and not passed at `now`: the snapshot read line by line against the shard's own numbers, so
/// memory follows the shard, not the list. A number whose record a newer file extends, or whose record has expired,
/// is not held: it is sent again, and the Admin API's add renews it (an upsert).
async fn verified_holdings(
    store: &dyn ObjectStore,
    list: &str,
    entries: &[crate::run::ShardEntry],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StepError> {
    let Some(text) = verified_snapshot(store, list).await? else {
        return Ok(HashSet::new());
    };
    let mut by_hash: HashMap<String, &crate::run::ShardEntry> = entries
        .iter()
        .map(|e| (number_hash(&e.phone_number), e))
        .collect();
    let mut held = HashSet::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(hold) = std::str::from_utf8(line).ok().and_then(SnapshotHold::parse) else {
            continue;
        };
        if let Some(entry) = by_hash.remove(&hold.hash) {
            let asked = entry
                .expiration_date
                .as_deref()
                .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                .map(|e| e.with_timezone(&Utc));
            // An expiration that does not parse cannot be compared: sent again (harmless) rather than skipped.
            let unreadable = entry.expiration_date.is_some() && asked.is_none();
            if !unreadable && hold.holds(asked, now) {
                held.insert(entry.phone_number.clone());
            }
        }
    }
    Ok(held)
}

/// Upload `task`'s shard from its cursor: check first that the list suppresses (exists, active, bound to an active
/// outbound BLOCK rule), send batches of ≤ 100 with deterministic idempotency keys until done or out of budget,
/// then write the segment's ledger and dead letters. An invocation that could not move the cursor fails
/// [`ErrorKind::Transient`] (so the state machine's bounded retry applies) instead of looping forever.
pub async fn upload_stage(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    task: &ShardTask,
    settings: &UploadSettings,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<UploadOutput, StepError> {
    let list = resolve_list(api, &task.run.list).await?;
    preflight(api, &list.id).await?;
    let keys = task.run.keys();
    let manifest: Manifest = read_json(store, &keys.manifest()).await?;
    if task.round == 0 {
        check_capacity(api, store, task, &manifest, settings.capacity).await?;
    }
    // A resumed invocation reads the shard from its cursor's byte offset: entry 0 of what it reads is entry
    // `cursor` of the shard. Without an offset, the whole shard, skipping `cursor` entries.
    let ranged = task.cursor > 0 && task.offset > 0;
    let text = if ranged {
        store.get_range(&task.shard_key, task.offset).await?
    } else {
        store.get_bytes(&task.shard_key).await?
    }
    .ok_or_else(|| {
        StepError::new(
            ErrorKind::Fatal,
            format!("shard {} does not exist", task.shard_key),
        )
    })?;
    let text = String::from_utf8(text).map_err(|e| {
        StepError::new(
            ErrorKind::Fatal,
            format!("shard {} is not UTF-8", task.shard_key),
        )
        .with_source(e)
    })?;
    let (entries, ends) = parse_shard_with_ends(&text, &task.shard_key)?;
    let (base_index, base_offset, skip) = if ranged {
        (task.cursor, task.offset, 0)
    } else {
        (0, 0, task.cursor)
    };
    // No marker to write: normalize received the run's numbers, and the check answers them suppressed
    // (`pending-propagation`) from then until a verified run shows CXone holding them.
    let version = keys_version(&manifest.source.sha256, task.round);
    // Without idempotency keys (the Admin API), a re-run must not rely on the API to tell a number it holds from
    // a new one: what the list's last verified read-back holds is not sent again.
    let held = if api.capabilities().idempotency_keys {
        HashSet::new()
    } else {
        verified_holdings(store, &task.run.list, &entries[skip..], now()).await?
    };
    let progress = upload_entries(
        api,
        &list.id,
        &version,
        &entries,
        skip,
        settings.budget,
        settings.concurrency,
        &held,
    )
    .await;
    let next_offset = match progress.next {
        0 => base_offset,
        n => base_offset + ends[n - 1],
    };
    let last_write_at = now().to_rfc3339();
    if let Some(e) = progress.error {
        // Nothing of this segment is recorded: the retry starts again at the same cursor, and the keys make the
        // batches that did land answer with their original outcome.
        return Err(e.into());
    }
    if !progress.done && progress.next == skip {
        return Err(StepError::new(
            ErrorKind::Transient,
            format!(
                "shard {}: no entry uploaded within the time budget of {} s (throttled?)",
                task.shard_key,
                settings.budget.as_secs()
            ),
        ));
    }
    let records: &[LedgerRecord] = &progress.records;
    let dead = records
        .iter()
        .filter(|r| matches!(r.outcome, EntryOutcome::Rejected { .. }))
        .count();
    let mut out = UploadOutput {
        task: ShardTask {
            cursor: base_index + progress.next,
            offset: next_offset,
            ..task.clone()
        },
        done: progress.done,
        entries: base_index + entries.len(),
        created: 0,
        exists: 0,
        rejected: dead as u64,
        unconfirmed: 0,
        last_write_at,
    };
    for r in records {
        match r.outcome {
            EntryOutcome::Created { .. } => out.created += 1,
            EntryOutcome::Exists { .. } => out.exists += 1,
            EntryOutcome::Unconfirmed => out.unconfirmed += 1,
            EntryOutcome::Rejected { .. } => {}
        }
    }
    write_ledger_segment(
        store,
        &keys,
        task.round,
        &task.shard_key,
        task.cursor,
        records,
    )
    .await?;
    tracing::info!(run_id = %task.run.run_id, shard = %task.shard_key, round = task.round, from = task.cursor,
        to = out.task.cursor, entries = out.entries, created = out.created, exists = out.exists,
        rejected = out.rejected, unconfirmed = out.unconfirmed, done = out.done, "shard uploaded");
    Ok(out)
}
