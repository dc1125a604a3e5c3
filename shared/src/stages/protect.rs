//! The check stage (outbound protection) as the Lambda runs it: what is known locally (the suppression snapshots of
//! the lists' last verified runs, the numbers of runs still propagating) loaded from the bucket, the check itself, and
//! an audit record (hashes, never numbers) appended to S3 and optionally exported to a webhook.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys::{status_key, uploading_key};
use super::status::read_ledger_chain;
use super::{read_json, RunKeys, StageError};
use crate::check::{
    audit_record, check, AuditRecord, CheckRequest, CheckResponse, SuppressionSnapshot,
};
use crate::cxone::DncApi;
use crate::orchestrate::ListStatus;
use crate::pipeline::LedgerRecord;
use crate::run::Manifest;
use crate::store::ObjectStore;

/// `status/<list>/uploading.json`: the run whose upload last started on the list. Until that run's status is
/// SUCCESS its numbers may not be visible to CXone yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadingMarker {
    /// Run id.
    pub run_id: String,
    /// When an upload of it last wrote (RFC 3339).
    pub at: String,
}

/// What the check answers locally, loaded once per container (and refreshed when older than the caller wants).
#[derive(Debug, Default)]
pub struct LocalKnowledge {
    /// Numbers on the lists as verified by their last successful runs.
    pub snapshot: SuppressionSnapshot,
    /// E.164 numbers of runs not yet SUCCESS: reported suppressed with reason `pending-propagation`.
    pub propagating: HashSet<String>,
    /// The runs whose snapshots were loaded.
    pub snapshot_runs: Vec<String>,
    /// The runs still propagating.
    pub pending_runs: Vec<String>,
}

/// Every ledger record that exists for `manifest`'s first upload (a run still uploading has only some).
async fn available_ledger(
    store: &dyn ObjectStore,
    manifest: &Manifest,
) -> Result<Vec<LedgerRecord>, StageError> {
    let keys = RunKeys::new(&manifest.run_id);
    let mut records = Vec::new();
    for shard in &manifest.shards {
        let shard_key = format!("runs/{}/{}", manifest.run_id, shard.key);
        records.extend(
            read_ledger_chain(store, &keys, 0, &shard_key, shard.entries as usize, true).await?,
        );
    }
    Ok(records)
}

/// Load what is known about `lists` (names) from the bucket: each list's last successful run's snapshot, and the
/// ledger of a run that started uploading after it and has not succeeded yet. A list with no status yet contributes
/// nothing (CXone answers for it).
pub async fn load_local_knowledge(
    store: &dyn ObjectStore,
    lists: &[String],
) -> Result<LocalKnowledge, StageError> {
    let mut knowledge = LocalKnowledge::default();
    let mut lines = String::new();
    for list in lists {
        let status: Option<ListStatus> = match store.get_bytes(&status_key(list)).await? {
            Some(b) => serde_json::from_slice(&b).ok(),
            None => None,
        };
        let last_good = status
            .as_ref()
            .and_then(|s| s.last_success.as_ref())
            .map(|s| s.run_id.clone());
        if let Some(run) = &last_good {
            if let Some(text) = store.get_bytes(&RunKeys::new(run).snapshot()).await? {
                lines.push_str(&String::from_utf8_lossy(&text));
                lines.push('\n');
                knowledge.snapshot_runs.push(run.clone());
            }
        }
        let uploading: Option<UploadingMarker> = match store.get_bytes(&uploading_key(list)).await?
        {
            Some(b) => serde_json::from_slice(&b).ok(),
            None => None,
        };
        if let Some(marker) = uploading {
            let finished_ok = status
                .as_ref()
                .is_some_and(|s| s.run_id == marker.run_id && s.status == "SUCCESS");
            if !finished_ok {
                let manifest: Manifest =
                    read_json(store, &RunKeys::new(&marker.run_id).manifest()).await?;
                for r in available_ledger(store, &manifest).await? {
                    if r.held() || matches!(r.outcome, crate::cxone::EntryOutcome::Unconfirmed) {
                        knowledge.propagating.insert(r.phone_number);
                    }
                }
                knowledge.pending_runs.push(marker.run_id);
            }
        }
    }
    knowledge.snapshot = SuppressionSnapshot::from_lines(&lines).0;
    Ok(knowledge)
}

/// Where audit records are exported besides S3.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// URL the record is POSTed to as JSON.
    pub url: String,
    /// Attempts (first included).
    pub attempts: u32,
    /// First backoff; doubled each attempt.
    pub backoff: Duration,
}

/// POST the audit record; retried on failure; never fails the check (the S3 record is the authoritative one).
async fn export(http: &reqwest::Client, hook: &Webhook, record: &AuditRecord) -> bool {
    let mut wait = hook.backoff;
    for attempt in 1..=hook.attempts.max(1) {
        match http
            .post(&hook.url)
            .timeout(Duration::from_secs(10))
            .json(record)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => tracing::warn!(
                attempt,
                status = r.status().as_u16(),
                "audit webhook refused the record"
            ),
            Err(e) => {
                tracing::warn!(attempt, error = %crate::cxone::auth::redact_reqwest(&e), "audit webhook unreachable")
            }
        }
        if attempt < hook.attempts {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    false
}

/// Check `request` (snapshot and propagating numbers answered locally, the rest by CXone, fail-safe), then append
/// the audit record to `audit/<date>/<time>-<id>.json` and export it to the webhook when one is set. The audit
/// write failing is an error: an unaudited check must not look complete.
#[allow(clippy::too_many_arguments)]
pub async fn check_stage(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    knowledge: &LocalKnowledge,
    request: &CheckRequest,
    concurrency: usize,
    webhook: Option<(&reqwest::Client, &Webhook)>,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<(CheckResponse, String), StageError> {
    let response = check(
        api,
        request,
        &knowledge.snapshot,
        &knowledge.propagating,
        concurrency,
    )
    .await;
    let record = audit_record(&response, &now.to_rfc3339());
    let key = format!(
        "audit/{}/{}-{request_id}.json",
        now.format("%Y-%m-%d"),
        now.format("%H%M%S%.3f")
    );
    let body = serde_json::to_vec(&record)
        .map_err(|e| StageError::Fatal(format!("audit record does not serialize: {e}")))?;
    store.put_bytes(&key, body).await?;
    if let Some((http, hook)) = webhook {
        export(http, hook, &record).await;
    }
    Ok((response, key))
}
