//! The upload stage: one shard per invocation, resumable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{keys_version, read_json, resolve_list, RunRef, StageError};
use crate::cxone::{DncApi, EntryOutcome};
use crate::pipeline::{parse_shard_with_ends, preflight, upload_entries, LedgerRecord};
use crate::run::Manifest;
use crate::store::ObjectStore;

/// One shard to upload (the Map state's item); the upload's output is the next invocation's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardTask {
    /// The run.
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
    /// Batches in flight.
    pub concurrency: usize,
    /// The most entries a run may hold (a CXone environment holds at most 1,000,000 records, calling lists and DNC
    /// together): a bigger run fails [`StageError::CapacityExceeded`] before its first write.
    pub capacity: u64,
}

/// Records a CXone environment holds at most (CXone's documented limit, calling lists and DNC together).
pub const CXONE_CAPACITY: u64 = 1_000_000;

fn jsonl<T: Serialize>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        // A plain struct of strings: serialization cannot fail.
        serde_json::to_writer(&mut out, item).expect("ledger records serialize");
        out.push(b'\n');
    }
    out
}

/// Upload `task`'s shard from its cursor: check first that the list suppresses (exists, active, bound to an active
/// outbound BLOCK rule), send batches of ≤ 100 with deterministic idempotency keys until done or out of budget,
/// then write the segment's ledger and dead letters. An invocation that could not move the cursor fails
/// [`StageError::Transient`] (so the state machine's bounded retry applies) instead of looping forever.
pub async fn upload_stage(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    task: &ShardTask,
    settings: &UploadSettings,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<UploadOutput, StageError> {
    let list = resolve_list(api, &task.run.list).await?;
    preflight(api, &list.id).await?;
    let keys = task.run.keys();
    let manifest: Manifest = read_json(store, &keys.manifest()).await?;
    if manifest.counts.accepted > settings.capacity {
        return Err(StageError::CapacityExceeded(format!(
            "run {} holds {} entries for list {}, above the {} records a CXone environment holds: nothing was written \
             (a registry such as the national one goes to the suppression index: dncctl registry import, or \
             incoming-registry/<name>/)",
            task.run.run_id, manifest.counts.accepted, task.run.list, settings.capacity
        )));
    }
    // A resumed invocation reads the shard from its cursor's byte offset: entry 0 of what it reads is entry
    // `cursor` of the shard. Without an offset, the whole shard, skipping `cursor` entries.
    let ranged = task.cursor > 0 && task.offset > 0;
    let text = if ranged {
        store.get_range(&task.shard_key, task.offset).await?
    } else {
        store.get_bytes(&task.shard_key).await?
    }
    .ok_or_else(|| StageError::Fatal(format!("shard {} does not exist", task.shard_key)))?;
    let text = String::from_utf8(text)
        .map_err(|e| StageError::Fatal(format!("shard {} is not UTF-8: {e}", task.shard_key)))?;
    let (entries, ends) = parse_shard_with_ends(&text, &task.shard_key)?;
    let (base_index, base_offset, skip) = if ranged {
        (task.cursor, task.offset, 0)
    } else {
        (0, 0, task.cursor)
    };
    // Before the first write: from now until this run is SUCCESS, the check treats its numbers as propagating.
    let marker = super::UploadingMarker {
        run_id: task.run.run_id.clone(),
        at: now().to_rfc3339(),
    };
    store
        .put_bytes(
            &super::uploading_key(&task.run.list),
            serde_json::to_vec(&marker).expect("marker serializes"),
        )
        .await?;
    let version = keys_version(&manifest.source.sha256, task.round);
    let progress = upload_entries(
        api,
        &list.id,
        &version,
        &entries,
        skip,
        settings.budget,
        settings.concurrency,
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
        return Err(StageError::Transient(format!(
            "shard {}: no entry uploaded within the time budget of {} s (throttled?)",
            task.shard_key,
            settings.budget.as_secs()
        )));
    }
    let records: &[LedgerRecord] = &progress.records;
    let dead: Vec<&LedgerRecord> = records
        .iter()
        .filter(|r| matches!(r.outcome, EntryOutcome::Rejected { .. }))
        .collect();
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
        rejected: dead.len() as u64,
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
    if !records.is_empty() {
        store
            .put_bytes(
                &keys.ledger_segment(task.round, &task.shard_key, task.cursor),
                jsonl(records),
            )
            .await?;
    }
    if !dead.is_empty() {
        store
            .put_bytes(
                &keys.dead_letter_segment(task.round, &task.shard_key, task.cursor),
                jsonl(&dead),
            )
            .await?;
    }
    tracing::info!(run_id = %task.run.run_id, shard = %task.shard_key, round = task.round, from = task.cursor,
        to = out.task.cursor, entries = out.entries, created = out.created, exists = out.exists,
        rejected = out.rejected, unconfirmed = out.unconfirmed, done = out.done, "shard uploaded");
    Ok(out)
}
