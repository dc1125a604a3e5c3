//! The upload's logic over the [`DncApi`] boundary: preflight (the list suppresses), then batches with a ledger.

use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::adapters::cxone::{
    idempotency_key, CxoneError, DncApi, DncList, EntryInput, EntryOutcome,
};
use crate::run::{LedgerRecord, ShardEntry};
use crate::steps::PipelineError;

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
    // One request is one batch of the client's size (`Capabilities::max_batch`: 100 for both dialects); `concurrency`
    // of them are in flight. Each chunk here is exactly one request: the client splits only a call larger than its
    // batch (its contract for any caller), which this never makes.
    let batch = api.capabilities().max_batch.max(1);
    let wave = batch * concurrency.max(1);
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
            futures::stream::iter(inputs.chunks(batch))
                .map(|chunk| upload_unless_held(api, list_id, chunk, held))
                .buffered(concurrency.max(1))
                .collect()
                .await;
        for (chunk, result) in inputs.chunks(batch).zip(results) {
            match result {
                Ok(outcomes) => {
                    for (input, outcome) in chunk.iter().zip(outcomes) {
                        progress.records.push(LedgerRecord {
                            phone_number: input.phone_number.clone(),
                            jurisdiction: input.jurisdiction.clone(),
                            expiration_date: input.expiration_date.clone(),
                            idempotency_key: input.idempotency_key.clone(),
                            outcome,
                            source: Some(input.source.clone()),
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
