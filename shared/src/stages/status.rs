//! Reading a run's ledger back from its segments, and publishing a list's status (the object campaign launches are
//! gated on, and an EventBridge event).

use async_trait::async_trait;

use super::keys::status_key;
use super::{RunKeys, StageError};
use crate::orchestrate::{LastSuccess, ListStatus, RunReport};
use crate::pipeline::{merge_ledger, parse_shard, LedgerRecord};
use crate::run::Manifest;
use crate::store::ObjectStore;

/// Read the ledger of one uploaded shard: its segments, each starting where the previous ended, until `entries`
/// records are read. A missing segment means the upload of that shard never finished: an error naming it.
async fn read_shard_ledger(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    shard_key: &str,
    entries: usize,
) -> Result<Vec<LedgerRecord>, StageError> {
    let mut records = Vec::with_capacity(entries);
    while records.len() < entries {
        let key = keys.ledger_segment(round, shard_key, records.len());
        let bytes = store.get_bytes(&key).await?.ok_or_else(|| {
            StageError::Fatal(format!(
                "ledger of {shard_key} (round {round}) ends at entry {} of {entries}: {key} does not exist",
                records.len()
            ))
        })?;
        let before = records.len();
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            records.push(
                serde_json::from_slice(line)
                    .map_err(|e| StageError::Fatal(format!("{key} line {}: {e}", i + 1)))?,
            );
        }
        if records.len() == before {
            return Err(StageError::Fatal(format!("{key} is empty")));
        }
    }
    Ok(records)
}

/// The run's ledger after `rounds` re-upload rounds: the first upload of every shard, each re-upload's records
/// superseding earlier ones of the same number. Also returns how many entries were re-uploaded.
pub async fn read_run_ledger(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    rounds: u32,
) -> Result<(Vec<LedgerRecord>, u64), StageError> {
    let keys = RunKeys::new(&manifest.run_id);
    let mut ledger = Vec::with_capacity(manifest.counts.accepted as usize);
    for shard in &manifest.shards {
        let shard_key = format!("runs/{}/{}", manifest.run_id, shard.key);
        let records =
            read_shard_ledger(store, &keys, 0, &shard_key, shard.entries as usize).await?;
        ledger.extend(records);
    }
    let mut reuploaded = 0u64;
    for round in 1..=rounds {
        let shard_key = keys.reupload_shard(round);
        let text = store
            .get_bytes(&shard_key)
            .await?
            .ok_or_else(|| StageError::Fatal(format!("{shard_key} does not exist")))?;
        let entries = parse_shard(&String::from_utf8_lossy(&text), &shard_key)?.len();
        let records = read_shard_ledger(store, &keys, round, &shard_key, entries).await?;
        reuploaded += records.len() as u64;
        merge_ledger(&mut ledger, records);
    }
    Ok((ledger, reuploaded))
}

/// The status that follows `previous` after `report`: a failure keeps the last known good run.
pub fn next_status(previous: Option<ListStatus>, report: &RunReport) -> ListStatus {
    let last_success = if report.success() {
        Some(LastSuccess {
            run_id: report.run_id.clone(),
            at: report.finished_at.clone(),
        })
    } else {
        previous.and_then(|p| p.last_success)
    };
    ListStatus {
        list: report.list.clone(),
        status: report.status.clone(),
        reason: report.reason.clone(),
        run_id: report.run_id.clone(),
        updated_at: report.finished_at.clone(),
        report_key: format!("runs/{}/report.json", report.run_id),
        verified_entries: report.found,
        last_success,
    }
}

/// Where a published status is announced.
#[async_trait]
pub trait StatusNotifier: Send + Sync {
    /// Announce `status`.
    async fn notify(&self, status: &ListStatus) -> Result<(), StageError>;
}

/// No announcement (local runs).
pub struct NoNotifier;

#[async_trait]
impl StatusNotifier for NoNotifier {
    async fn notify(&self, _status: &ListStatus) -> Result<(), StageError> {
        Ok(())
    }
}

/// An event on an EventBridge bus: source `dncflow`, detail-type `DNC List Status`, the status as detail. A rule on
/// `detail.status = SUCCESS` and `detail.list` is what campaign activation can be gated on.
pub struct EventBridgeNotifier {
    /// The client.
    pub client: aws_sdk_eventbridge::Client,
    /// Bus name or ARN.
    pub bus: String,
}

impl EventBridgeNotifier {
    /// The event source.
    pub const SOURCE: &'static str = "dncflow";
    /// The event detail type.
    pub const DETAIL_TYPE: &'static str = "DNC List Status";

    /// A client from the default AWS configuration (honours `AWS_ENDPOINT_URL_EVENTBRIDGE`).
    pub async fn from_env(bus: impl Into<String>) -> EventBridgeNotifier {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        EventBridgeNotifier {
            client: aws_sdk_eventbridge::Client::new(&config),
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl StatusNotifier for EventBridgeNotifier {
    async fn notify(&self, status: &ListStatus) -> Result<(), StageError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let detail = serde_json::to_string(status)
            .map_err(|e| StageError::Fatal(format!("status does not serialize: {e}")))?;
        let out = self
            .client
            .put_events()
            .entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(Self::SOURCE)
                    .detail_type(Self::DETAIL_TYPE)
                    .detail(detail)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                StageError::Transient(format!(
                    "cannot publish the status event of {} on bus {}: {}",
                    status.list,
                    self.bus,
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                ))
            })?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StageError::Transient(format!(
                "EventBridge refused the status event of {}: {why}",
                status.list
            )));
        }
        Ok(())
    }
}

/// Write the report (`report.json`, `report.md`) and `status/<list>/latest.json` (keeping the last known good run
/// across failures), then announce the status.
pub async fn publish_list_status(
    store: &dyn ObjectStore,
    notifier: &dyn StatusNotifier,
    report: &RunReport,
) -> Result<ListStatus, StageError> {
    let keys = RunKeys::new(&report.run_id);
    store.put_bytes(&keys.report(), pretty(report)).await?;
    store
        .put_bytes(&keys.report_markdown(), report.markdown().into_bytes())
        .await?;
    let key = status_key(&report.list);
    let previous: Option<ListStatus> = store
        .get_bytes(&key)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    let status = next_status(previous, report);
    store.put_bytes(&key, pretty(&status)).await?;
    notifier.notify(&status).await?;
    tracing::info!(list = %status.list, status = %status.status, run_id = %status.run_id,
        reason = status.reason.as_deref().unwrap_or(""), "status published");
    Ok(status)
}

/// Pretty JSON of a report or status (plain structs: serialization cannot fail).
fn pretty<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// A CloudWatch Embedded Metric Format line (namespace `dncflow`, dimension `Function`) of counts.
pub fn emf_counts(function: &str, counts: &[(&str, f64)], timestamp_ms: i64) -> String {
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "dncflow",
                "Dimensions": [["Function"]],
                "Metrics": counts.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        },
        "Function": function,
    });
    if let Some(o) = doc.as_object_mut() {
        for (n, v) in counts {
            o.insert((*n).to_string(), serde_json::json!(v));
        }
    }
    doc.to_string()
}
