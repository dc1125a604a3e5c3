//! The check stage (outbound protection) as the Lambda runs it: what is known locally (the suppression snapshots of
//! the lists' last verified runs, the numbers of runs still propagating) loaded from the bucket, the check itself, and
//! an audit record (hashes, never numbers) appended to S3 and optionally exported to a webhook.

mod logic;

pub use logic::*;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::status::parse_ledger_segment;
use super::{read_json, ErrorKind, StepError};
use crate::adapters::cxone::DncApi;
use crate::adapters::store::ObjectStore;
use crate::hours::closures::LoadedClosures;
use crate::hours::Policy;
use crate::registry::LoadedRegistry;
use crate::run::{parse_shard, status_key, uploading_key, ListStatus, Manifest, RunKeys};

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

/// What the check answers locally, loaded once per container (and reloaded when a list's upload marker names another
/// run, or when older than the caller wants).
#[derive(Debug, Default)]
pub struct LocalKnowledge {
    /// Numbers on the lists as verified by their last successful runs.
    pub snapshot: SuppressionSnapshot,
    /// E.164 numbers of runs not yet SUCCESS: reported suppressed with reason `pending-propagation`.
    pub propagating: HashSet<String>,
    /// E.164 numbers CXone refused (the dead letters of the lists' last successful runs): reported suppressed with
    /// reason `dead-letter`.
    pub dead_letters: HashSet<String>,
    /// The runs whose snapshots were loaded.
    pub snapshot_runs: Vec<String>,
    /// The runs still propagating.
    pub pending_runs: Vec<String>,
    /// Per list (in the order asked), the run its upload marker named when this was loaded.
    pub markers: Vec<Option<String>>,
    /// Set when the last reload failed: what is here may be missing a run, so nothing is answered `allowed`.
    pub incomplete: Option<String>,
    /// The live versions of the registries consulted (shared between reloads: a registry is read again only when
    /// its `current.json` names another version).
    pub registries: Vec<std::sync::Arc<LoadedRegistry>>,
    /// Per list (in the order asked), when its last successful run verified it (reconcile's read-back).
    pub verified: Vec<(String, Option<DateTime<Utc>>)>,
    /// How old a list's verification may be when the dialect has no batch check and `check` answers from it alone
    /// (`None`: [`VERIFIED_MAX_AGE`]).
    pub verified_max_age: Option<Duration>,
    /// The operator's calling-hours closures ([`load_closures`]).
    pub closures: Option<LoadedClosures>,
}

/// The operator's calling-hours closures from `store` (`run::HOURS_CLOSURES`), checked against `policy`. A document
/// that cannot be read or used closes every call (`LoadedClosures::unreadable`): the closures in it are unknown.
pub async fn load_closures(store: &dyn ObjectStore, policy: &Policy) -> LoadedClosures {
    closures_from(
        store.get_bytes(crate::run::HOURS_CLOSURES).await.as_ref(),
        policy,
    )
}

/// The closures of a read of `run::HOURS_CLOSURES` (see [`load_closures`]).
pub fn closures_from(
    read: Result<&Option<Vec<u8>>, &crate::adapters::store::StoreError>,
    policy: &Policy,
) -> LoadedClosures {
    match read {
        Ok(bytes) => match LoadedClosures::from_bytes(bytes.as_deref(), policy) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "hours closures unusable: no call is callable until they are fixed");
                LoadedClosures::unreadable(&e.to_string())
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "hours closures not read: no call is callable until they are");
            LoadedClosures::unreadable(&e.to_string())
        }
    }
}

/// How old the last verified read-back of a list may be for `check` to answer `allowed` from it without asking
/// CXone (dialects without a batch check): a day and two hours, so the daily 04:30 run keeps it fresh with slack.
pub const VERIFIED_MAX_AGE: Duration = Duration::from_secs(26 * 3600);

impl LocalKnowledge {
    /// Why what is known cannot clear a number on its own (no batch check to ask): a list never verified, or
    /// verified longer ago than the allowed age, or a run still propagating on it; `None` when complete and fresh.
    pub fn unverified(&self, now: DateTime<Utc>) -> Option<String> {
        let max_age = self.verified_max_age.unwrap_or(VERIFIED_MAX_AGE);
        let mut gaps = Vec::new();
        for (list, at) in &self.verified {
            match at {
                None => gaps.push(format!("list {list} has no verified run")),
                Some(at) if (now - *at).to_std().unwrap_or(Duration::ZERO) > max_age => {
                    gaps.push(format!(
                        "list {list} last verified at {}, more than {} h ago",
                        at.to_rfc3339(),
                        max_age.as_secs() / 3600
                    ))
                }
                Some(_) => {}
            }
        }
        (!gaps.is_empty()).then(|| gaps.join("; "))
    }

    /// The local answers for a check through `api`: without a batch check (the Admin API), what dncflow verified is
    /// the whole answer, so a list unverified or verified too long ago leaves the knowledge incomplete (nothing
    /// `allowed`).
    pub fn answers_for(&self, api: Option<&dyn DncApi>, now: DateTime<Utc>) -> LocalAnswers<'_> {
        let mut answers = self.answers();
        if answers.incomplete.is_none() && api.is_some_and(|a| !a.capabilities().batch_check) {
            answers.gap = self.unverified(now);
        }
        answers
    }

    /// The local answers for [`crate::steps::check::check_with`].
    pub fn answers(&self) -> LocalAnswers<'_> {
        LocalAnswers {
            snapshot: &self.snapshot,
            propagating: &self.propagating,
            dead_letters: Some(&self.dead_letters),
            incomplete: self.incomplete.as_deref(),
            gap: None,
            hours: None,
            closures: self.closures.as_ref(),
            registries: &self.registries,
        }
    }
}

/// The live versions of registries `names`: those in `loaded` are kept while `current.json` still names them, the
/// others are read (every area code in parallel). An error leaves the caller's knowledge incomplete (nothing
/// `allowed`): a registry that cannot be read cannot clear a number.
pub async fn refresh_registries(
    store: &dyn ObjectStore,
    names: &[String],
    loaded: &[std::sync::Arc<LoadedRegistry>],
) -> Result<Vec<std::sync::Arc<LoadedRegistry>>, crate::registry::RegistryError> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let live = crate::registry::live_version(store, name)
            .await?
            .ok_or_else(|| crate::registry::RegistryError::NotFound(name.clone()))?;
        match loaded
            .iter()
            .find(|r| r.name() == name && r.manifest.version == live)
        {
            Some(r) => out.push(r.clone()),
            None => {
                let r = crate::registry::load(store, name).await?;
                tracing::info!(registry = %name, version = %r.manifest.version, numbers = r.manifest.total, "registry loaded");
                out.push(std::sync::Arc::new(r));
            }
        }
    }
    Ok(out)
}

/// Per list, the run named by `status/<list>/uploading.json` (the run whose upload last started), if any: a change
/// means a new run is writing, and the local knowledge must be reloaded before the next answer.
pub async fn upload_markers(
    store: &dyn ObjectStore,
    lists: &[String],
) -> Result<Vec<Option<String>>, StepError> {
    let mut runs = Vec::with_capacity(lists.len());
    for list in lists {
        let marker: Option<UploadingMarker> = match store.get_bytes(&uploading_key(list)).await? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| {
                StepError::new(
                    ErrorKind::Fatal,
                    format!(
                        "{} is unreadable: {}",
                        uploading_key(list),
                        crate::redact::json_error(&e)
                    ),
                )
            })?),
            None => None,
        };
        runs.push(marker.map(|m| m.run_id));
    }
    Ok(runs)
}

/// Every number of `manifest`'s shards: all of them may be written to CXone from the moment its upload starts.
async fn run_numbers(
    store: &dyn ObjectStore,
    manifest: &Manifest,
    into: &mut HashSet<String>,
) -> Result<(), StepError> {
    for shard in &manifest.shards {
        let key = RunKeys::new(&manifest.run_id).shard(&shard.key);
        let bytes = store.get_bytes(&key).await?.ok_or_else(|| {
            StepError::new(ErrorKind::Fatal, format!("shard {key} does not exist"))
        })?;
        for entry in parse_shard(&String::from_utf8_lossy(&bytes), &key)? {
            into.insert(entry.phone_number);
        }
    }
    Ok(())
}

/// Load what is known about `lists` (names) from the bucket: each list's last successful run's snapshot and dead
/// letters, and every number of a run that started uploading after it and has not succeeded yet (its shards, not its
/// ledger: a number written in the last seconds of an upload invocation is in no finished ledger segment yet). A list
/// with no status yet contributes nothing (CXone answers for it).
pub async fn load_local_knowledge(
    store: &dyn ObjectStore,
    lists: &[String],
) -> Result<LocalKnowledge, StepError> {
    let mut knowledge = LocalKnowledge {
        markers: upload_markers(store, lists).await?,
        ..LocalKnowledge::default()
    };
    let mut lines = String::new();
    for (list, marker) in lists.iter().zip(knowledge.markers.clone()) {
        let status: Option<ListStatus> = match store.get_bytes(&status_key(list)).await? {
            Some(b) => serde_json::from_slice(&b).ok(),
            None => None,
        };
        let last_good = status
            .as_ref()
            .and_then(|s| s.last_success.as_ref())
            .map(|s| s.run_id.clone());
        let verified_at = status
            .as_ref()
            .and_then(|s| s.last_success.as_ref())
            .and_then(|s| DateTime::parse_from_rfc3339(&s.at).ok())
            .map(|d| d.with_timezone(&Utc));
        knowledge.verified.push((list.clone(), verified_at));
        if let Some(run) = &last_good {
            let keys = RunKeys::new(run);
            if let Some(text) = store.get_bytes(&keys.snapshot()).await? {
                lines.push_str(&String::from_utf8_lossy(&text));
                lines.push('\n');
                knowledge.snapshot_runs.push(run.clone());
            }
            if let Some(bytes) = store.get_bytes(&keys.dead_letters()).await? {
                for r in parse_ledger_segment(&bytes, &keys.dead_letters())? {
                    knowledge.dead_letters.insert(r.phone_number);
                }
            }
        }
        if let Some(run_id) = marker {
            let finished_ok = status.as_ref().is_some_and(|s| {
                s.run_id == run_id
                    && s.running.is_none()
                    && s.last_success.as_ref().is_some_and(|l| l.run_id == run_id)
            });
            if !finished_ok {
                let manifest: Manifest =
                    read_json(store, &RunKeys::new(&run_id).manifest()).await?;
                run_numbers(store, &manifest, &mut knowledge.propagating).await?;
                knowledge.pending_runs.push(run_id);
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
    /// First backoff; doubled each attempt, jittered (`http::Backoff`, as every retry).
    pub backoff: Duration,
}

/// POST the audit record; retried on failure; never fails the check (the S3 record is the authoritative one).
async fn export(http: &reqwest::Client, hook: &Webhook, record: &AuditRecord) -> bool {
    let backoff = crate::adapters::http::Backoff::new(hook.backoff, hook.backoff * 16);
    for attempt in 1..=hook.attempts.max(1) {
        match http
            .post(&hook.url)
            .timeout(Duration::from_secs(10))
            .json(record)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                match crate::adapters::http::classify(status) {
                    crate::adapters::http::StatusClass::Success => return true,
                    // A refusal (400, 403, 404 …) would be refused again: stop, the S3 record stands.
                    crate::adapters::http::StatusClass::Final => {
                        tracing::warn!(attempt, status, "audit webhook refused the record");
                        return false;
                    }
                    _ => tracing::warn!(attempt, status, "audit webhook busy"),
                }
            }
            Err(e) => {
                tracing::warn!(attempt, error = %crate::adapters::http::redact_reqwest(&e), "audit webhook unreachable")
            }
        }
        if attempt < hook.attempts {
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
    }
    false
}

/// Check `request` (snapshot and propagating numbers answered locally, the rest by CXone, fail-safe; through a
/// dialect without a batch check, the rest from what dncflow verified; without a client (`Err`: why), the rest
/// `error`), then append
/// the audit record to `audit/<date>/<time>-<id>.json` and export it to the webhook when one is set. The audit
/// write failing is an error: an unaudited check must not look complete.
#[allow(clippy::too_many_arguments)]
pub async fn check_stage(
    api: Result<&dyn DncApi, &str>,
    store: &dyn ObjectStore,
    knowledge: &LocalKnowledge,
    request: &CheckRequest,
    concurrency: usize,
    webhook: Option<(&reqwest::Client, &Webhook)>,
    request_id: &str,
    audit_key: &AuditKey,
    now: DateTime<Utc>,
) -> Result<(CheckResponse, String), StepError> {
    let response = match api {
        Ok(api) => {
            let answers = knowledge.answers_for(Some(api), now);
            check_with(Some(api), request, answers, concurrency).await
        }
        // No client: what is known locally still answers, everything else is `error`, never `allowed`.
        Err(why) => {
            let mut answers = knowledge.answers();
            let reason = format!("CXone client unavailable: {why}");
            answers.incomplete = Some(answers.incomplete.unwrap_or(&reason));
            check_with(None, request, answers, concurrency).await
        }
    };
    let record = audit_record(&response, &now.to_rfc3339(), audit_key);
    let key = crate::run::audit_key(now, request_id);
    let body = serde_json::to_vec(&record).map_err(|e| {
        StepError::new(ErrorKind::Fatal, "audit record does not serialize").with_source(e)
    })?;
    store.put_bytes(&key, body).await?;
    if let Some((http, hook)) = webhook {
        export(http, hook, &record).await;
    }
    Ok((response, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a batch check, what dncflow verified is the whole answer: a list never verified, or verified longer
    /// ago than allowed, leaves a gap (nothing `allowed`); a fresh verification of every list leaves none.
    #[test]
    fn a_stale_or_missing_verification_is_a_gap() {
        let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        let hours_ago = |h: i64| Some(now - chrono::Duration::hours(h));
        let knowledge = |verified: Vec<(&str, Option<DateTime<Utc>>)>| LocalKnowledge {
            verified: verified
                .into_iter()
                .map(|(l, at)| (l.to_string(), at))
                .collect(),
            ..LocalKnowledge::default()
        };
        assert_eq!(
            knowledge(vec![("a", hours_ago(2)), ("b", hours_ago(25))]).unverified(now),
            None
        );
        let stale = knowledge(vec![("a", hours_ago(2)), ("b", hours_ago(27))])
            .unverified(now)
            .unwrap();
        assert!(
            stale.contains("list b last verified") && !stale.contains("list a"),
            "{stale}"
        );
        let never = knowledge(vec![("a", None)]).unverified(now).unwrap();
        assert!(never.contains("list a has no verified run"), "{never}");
        let mut strict = knowledge(vec![("a", hours_ago(2))]);
        strict.verified_max_age = Some(Duration::from_secs(3600));
        assert!(strict.unverified(now).is_some());
    }
}
