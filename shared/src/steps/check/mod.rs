//! The check stage (outbound protection) as the Lambda runs it: what is known locally (per list, every number it
//! was given that no verified run has shown CXone holding, and the suppression snapshot of its last verified run)
//! loaded from the bucket, the check itself, and an audit record (hashes, never numbers) appended to S3 and
//! optionally exported to a webhook.

mod logic;

pub use logic::*;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{ErrorKind, StepError};
use crate::adapters::cxone::DncApi;
use crate::adapters::store::ObjectStore;
use crate::hours::closures::LoadedClosures;
use crate::hours::Policy;
use crate::registry::LoadedRegistry;
use crate::run::snapshot::read_snapshot;
use crate::run::status::read_list_status;
use crate::run::{load_received, received_key, Received, RunKeys};

/// What the check answers locally, loaded once per container (and reloaded when a list's received document changes,
/// or when older than the caller wants).
#[derive(Debug, Default)]
pub struct LocalKnowledge {
    /// The lists loaded, in the order asked.
    pub lists: Vec<String>,
    /// Numbers on the lists as verified by their last successful runs.
    pub snapshot: SuppressionSnapshot,
    /// Per list, every number it was given that no verified run has shown CXone holding: answered `suppressed` with
    /// the reason (`pending-propagation`, `dead-letter`, `run-failed:<runId>`, `refused-file:<runId>`).
    pub received: Vec<Received>,
    /// The runs whose snapshots were loaded.
    pub snapshot_runs: Vec<String>,
    /// Per list (in the order asked), the version tag of its received document when this was loaded: another tag
    /// means the list was given numbers, or a run ended, and the knowledge must be reloaded before the next answer.
    pub markers: Vec<Option<String>>,
    /// Lists named (in the settings or the request) that have no status: nothing can be answered `allowed`.
    pub lists_without_status: Vec<String>,
    /// Set when loading failed or found a gap: what is here may be missing a number, so nothing is answered
    /// `allowed`.
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
    /// verified longer ago than the allowed age; `None` when complete and fresh. With `lists`, only those are judged
    /// (a request's `listIds`), and one not loaded is a gap.
    pub fn unverified(&self, now: DateTime<Utc>) -> Option<String> {
        self.unverified_of(None, now)
    }

    fn unverified_of(&self, lists: Option<&[String]>, now: DateTime<Utc>) -> Option<String> {
        let max_age = self.verified_max_age.unwrap_or(VERIFIED_MAX_AGE);
        let mut gaps = Vec::new();
        for wanted in lists.unwrap_or_default() {
            if !self.verified.iter().any(|(l, _)| l == wanted) {
                gaps.push(format!(
                    "list {wanted} named in the request is not one this check answers for"
                ));
            }
        }
        for (list, at) in &self.verified {
            if lists.is_some_and(|ls| !ls.contains(list)) {
                continue;
            }
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

    /// The local answers for a check through `api` of the lists `list_ids` (a request's, `None`: every list
    /// loaded): without a batch check (the Admin API), what dncflow verified is the whole answer, so a list named
    /// that is not loaded, unverified or verified too long ago leaves the knowledge incomplete (nothing `allowed`).
    pub fn answers_for(
        &self,
        api: Option<&dyn DncApi>,
        now: DateTime<Utc>,
        list_ids: Option<&[String]>,
    ) -> LocalAnswers<'_> {
        let mut answers = self.answers();
        if answers.incomplete.is_none() && api.is_some_and(|a| !a.capabilities().batch_check) {
            answers.gap = self.unverified_of(list_ids, now);
        }
        answers
    }

    /// The local answers for [`crate::steps::check::check_with`].
    pub fn answers(&self) -> LocalAnswers<'_> {
        LocalAnswers {
            snapshot: &self.snapshot,
            propagating: &EMPTY,
            dead_letters: None,
            received: &self.received,
            incomplete: self.incomplete.as_deref(),
            gap: None,
            hours: None,
            closures: self.closures.as_ref(),
            registries: &self.registries,
        }
    }
}

static EMPTY: std::sync::LazyLock<std::collections::HashSet<String>> =
    std::sync::LazyLock::new(std::collections::HashSet::new);

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

/// Per list, the version tag of `status/<list>/received.txt` (a HEAD, not a read), if it exists: every event that
/// changes what the check answers for a list (numbers received, a run failed or verified, an operator's removal)
/// rewrites it, so a changed tag means the knowledge must be reloaded before the next answer.
pub async fn knowledge_markers(
    store: &dyn ObjectStore,
    lists: &[String],
) -> Result<Vec<Option<String>>, StepError> {
    let mut tags = Vec::with_capacity(lists.len());
    for list in lists {
        tags.push(store.head_tag(&received_key(list)).await?);
    }
    Ok(tags)
}

/// Load what is known about `lists` (names) from the bucket, one read per document: each list's received document
/// (every number it was given that no verified run has shown CXone holding) and the snapshot of its last verified
/// run. A document that exists but cannot be read or parsed is an error (nothing is answered `allowed` from an
/// incomplete knowledge); a list with no status, or whose last verified run has no snapshot, leaves the knowledge
/// incomplete (`lists_without_status`).
pub async fn load_local_knowledge(
    store: &dyn ObjectStore,
    lists: &[String],
) -> Result<LocalKnowledge, StepError> {
    let mut knowledge = LocalKnowledge {
        lists: lists.to_vec(),
        markers: knowledge_markers(store, lists).await?,
        ..LocalKnowledge::default()
    };
    let mut lines = String::new();
    let mut gaps = Vec::new();
    for list in lists {
        let status = read_list_status(store, list).await?;
        if status.is_none() {
            knowledge.lists_without_status.push(list.clone());
            gaps.push(format!("list {list} has no status"));
        }
        let last_good = status.as_ref().and_then(|s| s.last_success.as_ref());
        let verified_at = last_good
            .and_then(|s| DateTime::parse_from_rfc3339(&s.at).ok())
            .map(|d| d.with_timezone(&Utc));
        knowledge.verified.push((list.clone(), verified_at));
        if let Some(last) = last_good {
            let keys = RunKeys::new(&last.run_id);
            match read_snapshot(store, &last.run_id).await? {
                Some(text) => {
                    lines.push_str(&text);
                    lines.push('\n');
                    knowledge.snapshot_runs.push(last.run_id.clone());
                }
                None => gaps.push(format!(
                    "{} (the last verified run of list {list}) does not exist",
                    keys.snapshot()
                )),
            }
        }
        knowledge.received.push(
            load_received(store, list)
                .await?
                .unwrap_or_else(|| Received::new(list)),
        );
    }
    let (snapshot, bad) = SuppressionSnapshot::from_lines(&lines);
    if bad > 0 {
        gaps.push(format!("{bad} snapshot lines are not SHA-256 hashes"));
    }
    knowledge.snapshot = snapshot;
    knowledge.incomplete = (!gaps.is_empty()).then(|| gaps.join("; "));
    Ok(knowledge)
}

/// Where audit records are exported besides S3.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// URL the record is POSTed to as JSON.
    pub url: String,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff; doubled each attempt, jittered (`http::Backoff`, as every retry).
    pub backoff: Duration,
    /// The most the export may add to a check's answer, every attempt and wait included: past it the export is
    /// abandoned (the S3 record, written before, is the authoritative one). `DNCFLOW_AUDIT_WEBHOOK_BUDGET_SECS`.
    pub budget: Duration,
}

/// The webhook's default budget: the export may delay an answer by at most this.
pub const WEBHOOK_BUDGET: Duration = Duration::from_secs(2);

/// POST the audit record; retried on failure within the hook's budget; never fails the check (the S3 record is the
/// authoritative one). Whether it was delivered.
async fn export(http: &reqwest::Client, hook: &Webhook, record: &AuditRecord) -> bool {
    let delivered = tokio::time::timeout(hook.budget, export_attempts(http, hook, record)).await;
    delivered.unwrap_or_else(|_| {
        tracing::warn!(
            budget_ms = hook.budget.as_millis() as u64,
            "audit webhook did not take the record within its budget: abandoned (the S3 record stands)"
        );
        false
    })
}

async fn export_attempts(http: &reqwest::Client, hook: &Webhook, record: &AuditRecord) -> bool {
    let backoff = crate::adapters::http::Backoff::new(hook.backoff, hook.backoff * 16);
    for attempt in 1..=hook.attempts.max(1) {
        match http
            .post(&hook.url)
            .timeout(hook.budget)
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
    // Nothing checked, nothing audited: the answer could not be delivered (the Lambda answers 413 before this).
    if let Some(why) = too_many_contacts(request) {
        return Err(StepError::new(ErrorKind::InvalidInput, why));
    }
    let response = match api {
        Ok(api) => {
            let answers = knowledge.answers_for(Some(api), now, request.list_ids.as_deref());
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
    let mut response = response;
    response.metrics.lists_without_status = knowledge.lists_without_status.len();
    let record = audit_record(&response, &now.to_rfc3339(), audit_key);
    let key = crate::run::audit_key(now, request_id);
    let body = serde_json::to_vec(&record).map_err(|e| {
        StepError::new(ErrorKind::Fatal, "audit record does not serialize").with_source(e)
    })?;
    // Audit records are evidence: only ever created, never replaced (the check's role may write `audit/*` only with
    // `If-None-Match: *`). A key already taken (the same request id in the same millisecond) gets a suffix.
    let base = key.trim_end_matches(".json").to_string();
    let mut written = None;
    for attempt in 0..4 {
        let candidate = match attempt {
            0 => key.clone(),
            n => format!("{base}.{n}.json"),
        };
        if store.put_if_absent(&candidate, body.clone()).await? {
            written = Some(candidate);
            break;
        }
    }
    let key = written.ok_or_else(|| {
        StepError::new(
            ErrorKind::Transient,
            format!("audit record {key}: the key and three alternatives are taken"),
        )
    })?;
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
        // A request's listIds: only those lists are judged, and one this check does not answer for is a gap.
        let two = knowledge(vec![("a", hours_ago(2)), ("b", hours_ago(27))]);
        assert_eq!(two.unverified_of(Some(&["a".to_string()]), now), None);
        let unknown = two
            .unverified_of(Some(&["a".to_string(), "c".to_string()]), now)
            .unwrap();
        assert!(
            unknown.contains("list c named in the request") && !unknown.contains("list b"),
            "{unknown}"
        );
        let mut strict = knowledge(vec![("a", hours_ago(2))]);
        strict.verified_max_age = Some(Duration::from_secs(3600));
        assert!(strict.unverified(now).is_some());
    }
}
