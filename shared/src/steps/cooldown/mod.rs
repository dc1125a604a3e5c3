//! The cooldown stage: is the list ready to be reconciled? Never before the minimum time after the last write, and
//! then only when a canary sample of what was uploaded comes back suppressed. The waiting itself is the state
//! machine's `Wait` state; this stage only answers and says how long to wait.
//!
//! A canary number can stay unsuppressed for two reasons the check cannot tell apart: CXone lost the write (it
//! answered 201 but holds nothing; reconciliation finds it missing and re-uploads it), or the entry is on the list
//! and does not suppress. So once part of the canary is suppressed (the list does propagate) and the settle time has
//! passed, the stage hands the rest to reconciliation, which sees the list's entries: it re-uploads the lost ones
//! and fails the run `NotPropagated` for any that is on the list and still not suppressed. A canary with nothing
//! suppressed keeps waiting until `max_attempts`.

mod logic;

pub use logic::*;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{probe_canary, read_json, resolve_list, ErrorKind, RunRef, StepError};
use crate::adapters::cxone::DncApi;
use crate::adapters::store::ObjectStore;
use crate::run::canary::{write_canary, CanaryProbe};
use crate::run::ledger::for_each_first_segment;
use crate::run::{Manifest, RunKeys};

/// The cooldown check's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CooldownTask {
    /// The run being cooled down (its bucket, id and list).
    #[serde(flatten)]
    pub run: RunRef,
    /// The upload round just finished (0: first upload).
    #[serde(default)]
    pub round: u32,
    /// Checks done so far in this round.
    #[serde(default)]
    pub attempt: u32,
    /// When the round's writes ended: `lastWriteAt` of the upload invocations (the local driver), or what the first
    /// check answered (the state machine, which keeps no per-shard results so that its state stays small whatever
    /// the shard count). Empty on the first check: the uploads have just ended, so "now" is no earlier than any
    /// write, and the cooldown counts from it.
    #[serde(default)]
    pub last_writes: Vec<Option<String>>,
}

/// The cooldown check's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CooldownOutput {
    /// The list may be reconciled now.
    pub ready: bool,
    /// When not ready: how long the `Wait` state should wait.
    pub wait_seconds: u64,
    /// Checks done, this one included (the next check's `attempt`).
    pub attempt: u32,
    /// The time since the last write has passed.
    pub elapsed: bool,
    /// Canary numbers probed (0 before the time has passed).
    pub canary_probed: usize,
    /// Of those, answered suppressed.
    pub canary_suppressed: usize,
    /// Ready with canary numbers not suppressed: handed to reconciliation (lost writes or a list not propagating).
    #[serde(default)]
    pub canary_handed_over: usize,
    /// The last write the cooldown counts from, for the next check's `lastWrites`.
    #[serde(default)]
    pub last_writes: Vec<Option<String>>,
}

/// How the cooldown waits and probes (from the function's settings, or the local run's).
#[derive(Debug, Clone)]
pub struct CooldownSettings {
    /// Minimum time after the last write (the contract: 180 s).
    pub min: Duration,
    /// Numbers in the canary sample.
    pub canary_size: usize,
    /// Wait between canary probes that found the list not yet suppressing.
    pub canary_interval: Duration,
    /// Checks before giving up with `NotPropagated`.
    pub max_attempts: u32,
    /// Time after the last write from which a partly suppressed canary is handed to reconciliation (never less
    /// than `min`): by then, per the contract (60–120 s), every entry on the list has propagated.
    pub settle: Duration,
}

impl Default for CooldownSettings {
    fn default() -> Self {
        CooldownSettings {
            min: Duration::from_secs(180),
            canary_size: 20,
            canary_interval: Duration::from_secs(30),
            max_attempts: 20,
            settle: Duration::from_secs(300),
        }
    }
}

/// The canary numbers of a round: drawn from what the round wrote (the first ledger segment of each shard), up to
/// `n` spread over each segment and then `n` spread over those. One segment is in memory at a time: at a million
/// entries, holding every record to pick twenty would cost hundreds of megabytes.
async fn round_sample(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    keys: &RunKeys,
    round: u32,
    n: usize,
) -> Result<Vec<String>, StepError> {
    let shard_keys: Vec<String> = if round == 0 {
        manifest.shards.iter().map(|s| keys.shard(&s.key)).collect()
    } else {
        vec![keys.reupload_shard(round)]
    };
    let mut candidates = Vec::new();
    for_each_first_segment(store, keys, round, &shard_keys, |records| {
        candidates.extend(canary_sample(&records, n))
    })
    .await?;
    Ok(spread(&candidates, n))
}

/// Record the probe that ended the cooldown of `round`, with the round's last write and the probe's time:
/// reconciliation of the same round reads it (and reports it, the times on the run's timeline).
async fn record_canary(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    canary: &CanaryProbe,
    last_write: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StepError> {
    let canary = CanaryProbe {
        last_write_at: Some(last_write.to_rfc3339()),
        probed_at: Some(now.to_rfc3339()),
        ..canary.clone()
    };
    Ok(write_canary(store, keys, round, &canary).await?)
}

/// Answer whether the run's list is ready: `{ready:false, waitSeconds}` until `min` has passed since the latest
/// write, then a canary probe; ready only when every canary number is suppressed. Gives up with a [`StepError`] of
/// kind [`ErrorKind::NotPropagated`] after `max_attempts` checks.
pub async fn cooldown_stage(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    task: &CooldownTask,
    settings: &CooldownSettings,
    now: DateTime<Utc>,
) -> Result<CooldownOutput, StepError> {
    let attempt = task.attempt + 1;
    let last_write = task
        .last_writes
        .iter()
        .flatten()
        .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .max()
        // No write time handed over: the uploads ended no later than now.
        .unwrap_or(now);
    let mut out = CooldownOutput {
        ready: false,
        wait_seconds: 0,
        attempt,
        elapsed: true,
        canary_probed: 0,
        canary_suppressed: 0,
        canary_handed_over: 0,
        last_writes: vec![Some(last_write.to_rfc3339())],
    };
    let c = cooldown(last_write, now, settings.min);
    if !c.elapsed {
        out.elapsed = false;
        out.wait_seconds = c.wait_seconds;
        return Ok(out);
    }
    let keys = task.run.keys();
    let manifest: Manifest = read_json(store, &keys.manifest()).await?;
    let sample = round_sample(store, &manifest, &keys, task.round, settings.canary_size).await?;
    if sample.is_empty() {
        // Nothing held to probe (no entries, or all rejected): reconciliation decides. The empty probe replaces
        // whatever an earlier execution of the same run left for this round.
        record_canary(
            store,
            &keys,
            task.round,
            &CanaryProbe::default(),
            last_write,
            now,
        )
        .await?;
        out.ready = true;
        return Ok(out);
    }
    let list = resolve_list(api, &task.run.list).await?;
    let canary = probe_canary(api, &list.id, &sample).await?;
    out.canary_probed = canary.probed;
    out.canary_suppressed = canary.suppressed();
    tracing::info!(run_id = %task.run.run_id, round = task.round, attempt, probed = canary.probed,
        suppressed = canary.suppressed(), pending = ?canary.result().pending, "canary probed");
    let settled =
        (now - last_write).to_std().unwrap_or_default() >= settings.settle.max(settings.min);
    if canary.pending.is_empty() || (canary.suppressed() > 0 && settled) {
        if !canary.pending.is_empty() {
            out.canary_handed_over = canary.pending.len();
            tracing::warn!(run_id = %task.run.run_id, round = task.round, pending = canary.pending.len(),
                "canary numbers still not suppressed after the settle time: reconciliation tells lost writes from a list that does not propagate");
        }
        record_canary(store, &keys, task.round, &canary, last_write, now).await?;
        out.ready = true;
        return Ok(out);
    }
    if attempt >= settings.max_attempts {
        return Err(StepError::new(
            ErrorKind::NotPropagated,
            format!(
                "list {}: {} of {} canary numbers still not suppressed after {attempt} checks",
                task.run.list,
                canary.pending.len(),
                canary.probed
            ),
        ));
    }
    out.wait_seconds = settings.canary_interval.as_secs().max(1);
    Ok(out)
}
