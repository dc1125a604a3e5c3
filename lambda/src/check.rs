//! The `check` Lambda's handler (behind a Function URL, IAM auth): `POST {"contacts":[{"phoneNumber","regionCode"?,
//! "state"?}],"listIds"?,"at"?}` → one verdict per item in input order (`suppressed | allowed | invalid | error`) with
//! its calling hours at `at` (`callableNow`, `window`, `nextCallableAt`), and `safeToDial` (every number allowed and
//! callable now) with `blockedBy`. Fail-safe: a number whose check could not be completed is `error`, never
//! `allowed`; a check that could not be audited answers 503 (do not dial).
//!
//! What is known locally is held per container and reloaded when stale, or at once when a list's received document
//! (`status/<list>/received.txt`, its tag read with a HEAD on every check) changed: numbers received by normalize
//! answer `suppressed` from the next check on, whatever happens to their run. A failed reload keeps what was loaded
//! but marks it incomplete: nothing is then answered `allowed`.
//!
//! Settings ([`crate::settings::Check`], read once per container): `DNCFLOW_CHECK_LISTS` (list names whose received
//! numbers and snapshots are answered locally, comma-separated; a list with no status makes every check `error` where
//! it would be `allowed`; empty with a dialect that has no batch check, the Admin API, it is a `Fatal` setting error:
//! nothing could be checked), `DNCFLOW_CHECK_REFRESH_SECS` (300: how old the local knowledge may get),
//! `DNCFLOW_CHECK_CONCURRENCY` (4 CXone calls in flight), `DNCFLOW_AUDIT_WEBHOOK_URL` (optional export, after the S3
//! record), `DNCFLOW_AUDIT_WEBHOOK_BUDGET_SECS` (2: the most the export may delay an answer, every attempt included),
//! `DNCFLOW_AUDIT_KEY_SECRET_ID` (the secret holding the key audit hashes are keyed with),
//! `DNCFLOW_CXONE_DEADLINE_SECS` (20: every CXone wait of a check, its token request, retries and every chunk included,
//! well inside the 60 s timeout: what CXone has not answered by then is `error`), `DNCFLOW_CHECK_REGISTRIES` (registry
//! names whose suppression indexes are consulted, comma-separated: loaded at the first check, read again when their
//! `current.json` names another version; a registry that cannot be loaded leaves the check incomplete, so nothing is
//! answered `allowed`).
//!
//! The operator's calling-hours closures (`run::HOURS_CLOSURES`, written by `dncctl hours closure add`) are read at
//! every request and applied from the first request after they change; their version is in the response and the
//! audit record. A document that cannot be read or used makes no number callable until it can.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::RwLock;

use crate::{audit_key, now_ms, settings};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::{ObjectStore, S3Store};
use dncflow::steps::check::{
    emf_line, registry_age_emf, too_many_contacts, AuditKey, CheckRequest, MAX_CHECK_CONTACTS,
    RESPONSE_LIMIT_BYTES,
};
use dncflow::steps::{
    check_stage, closures_from, knowledge_markers, load_local_knowledge, refresh_registries,
    LocalKnowledge, StepError,
};

/// The setting error of a check function whose CXone dialect has (`batch_check`) or lacks a batch check, answering
/// for `lists`: without a batch check the lists' verified runs are the whole answer, so none configured would make
/// every number not on a registry `allowed`. `Fatal`: no check is answered until the setting is fixed.
pub fn setting_error(batch_check: bool, lists: &[String]) -> Option<StepError> {
    (!batch_check && lists.is_empty()).then(|| {
        StepError::new(
            dncflow::steps::ErrorKind::Fatal,
            "DNCFLOW_CHECK_LISTS is empty: the CXone dialect has no batch check (the Admin API), so the lists' \
             verified runs are the whole answer, and none is configured",
        )
    })
}

/// A Function URL response: a status, its headers and the JSON body as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlResponse {
    /// The HTTP status.
    pub status_code: u16,
    /// The response's headers.
    pub headers: BTreeMap<&'static str, &'static str>,
    /// The body (JSON).
    pub body: String,
}

impl UrlResponse {
    /// The response as the caller receives it, in bytes (what the Function URL's limit applies to).
    pub fn size(&self) -> usize {
        serde_json::to_string(self).map_or(usize::MAX, |s| s.len())
    }
}

/// A Function URL response of `status` with `body`.
pub fn http(status: u16, body: Value) -> UrlResponse {
    UrlResponse {
        status_code: status,
        headers: BTreeMap::from([("content-type", "application/json")]),
        body: body.to_string(),
    }
}

/// The answer to a request with more contacts than [`MAX_CHECK_CONTACTS`]: 413, the limit and the count, not safe to
/// dial. `None` for a request within the limit.
pub fn refusal(request: &CheckRequest) -> Option<UrlResponse> {
    too_many_contacts(request).map(|why| {
        tracing::warn!(
            contacts = request.contacts.len(),
            limit = MAX_CHECK_CONTACTS,
            "check refused: too many contacts"
        );
        http(
            413,
            json!({"error": why, "limit": MAX_CHECK_CONTACTS, "contacts": request.contacts.len(), "safeToDial": false}),
        )
    })
}

/// The request body of a Function URL event (or the event itself, when invoked directly).
pub fn request_of(event: &Value) -> Result<CheckRequest, String> {
    let Some(body) = event.get("body") else {
        return serde_json::from_value(event.clone()).map_err(|e| e.to_string());
    };
    let text = body.as_str().unwrap_or_default();
    let bytes = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| format!("body is not base64: {e}"))?
    } else {
        text.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

struct Known {
    knowledge: LocalKnowledge,
    loaded: Instant,
    /// The closures document as last read (`Some(None)`: absent; `None`: not read, or the read failed).
    closures_raw: Option<Option<Vec<u8>>>,
}

/// One container of the check function: its clients, settings and what it knows locally.
pub struct CheckFunction {
    store: S3Store,
    /// The CXone client, built at the first check that needs it (its secret read then, and again after a failure):
    /// a tenant unreachable at cold start leaves the numbers CXone would answer `error`, never `allowed`.
    api: tokio::sync::OnceCell<Box<dyn DncApi>>,
    settings: settings::Check,
    client: reqwest::Client,
    known: RwLock<Option<Known>>,
    /// The audit key, read at the first check and again at every reload (a rotation is picked up).
    key: RwLock<Option<AuditKey>>,
}

impl CheckFunction {
    /// The container of `settings`: nothing is read until the first check.
    pub async fn new(settings: settings::Check) -> CheckFunction {
        CheckFunction {
            store: S3Store {
                client: dncflow::adapters::store::s3_client(None).await,
                bucket: settings.bucket.clone(),
                evidence_lock: settings.evidence_lock,
            },
            api: tokio::sync::OnceCell::new(),
            settings,
            client: reqwest::Client::new(),
            known: RwLock::new(None),
            key: RwLock::new(None),
        }
    }

    /// Reload what is known locally when stale or when a list's upload marker names another run.
    async fn refresh_knowledge(&self) {
        let lists = &self.settings.lists;
        let markers = knowledge_markers(&self.store, lists).await;
        let reload = match (&markers, self.known.read().await.as_ref()) {
            (_, None) => true,
            (Ok(m), Some(k)) => {
                k.loaded.elapsed() >= self.settings.refresh || *m != k.knowledge.markers
            }
            (Err(_), Some(_)) => true,
        };
        if reload || self.key.read().await.is_none() {
            match audit_key(self.settings.audit_key_secret_id.as_deref()).await {
                Ok(k) => *self.key.write().await = Some(k),
                // The key read before stays in use; without any, the check cannot be audited (503).
                Err(e) => tracing::error!(error = %e, "audit key not loaded"),
            }
        }
        if !reload {
            return;
        }
        let loaded = match markers {
            Ok(_) => load_local_knowledge(&self.store, lists).await,
            Err(e) => Err(e),
        };
        // Registries are large: the versions loaded before are kept while still live.
        let before: Vec<_> = self
            .known
            .read()
            .await
            .as_ref()
            .map(|k| k.knowledge.registries.clone())
            .unwrap_or_default();
        let loaded = match (
            loaded,
            refresh_registries(&self.store, &self.settings.registries, &before).await,
        ) {
            (Ok(mut knowledge), Ok(r)) => {
                knowledge.registries = r;
                knowledge.verified_max_age = Some(self.settings.verified_max_age);
                Ok(knowledge)
            }
            (Err(e), _) => Err(e.to_string()),
            (Ok(_), Err(e)) => Err(format!("registry not loaded: {e}")),
        };
        let mut guard = self.known.write().await;
        match loaded {
            Ok(knowledge) => {
                tracing::info!(snapshot = knowledge.snapshot.len(),
                    received_not_held = knowledge.received.iter().map(|r| r.len()).sum::<usize>(),
                    snapshot_runs = ?knowledge.snapshot_runs, incomplete = knowledge.incomplete.as_deref().unwrap_or(""),
                    "local knowledge loaded");
                *guard = Some(Known {
                    knowledge,
                    loaded: Instant::now(),
                    closures_raw: None,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "local knowledge not loaded: nothing is answered allowed until it is");
                let known = guard.get_or_insert_with(|| Known {
                    knowledge: LocalKnowledge::default(),
                    loaded: Instant::now(),
                    closures_raw: None,
                });
                known.knowledge.incomplete = Some(e);
            }
        }
    }

    /// Read the operator's closures; parse them again only when the document changed (or was never loaded).
    async fn refresh_closures(&self) {
        let read = self.store.get_bytes(dncflow::run::HOURS_CLOSURES).await;
        let mut guard = self.known.write().await;
        let Some(known) = guard.as_mut() else {
            return;
        };
        if let Ok(raw) = &read {
            if known.knowledge.closures.is_some() && known.closures_raw.as_ref() == Some(raw) {
                return;
            }
        }
        let closures = closures_from(read.as_ref(), dncflow::hours::Policy::embedded());
        tracing::info!(version = %closures.version, closures = closures.closures.len(), "hours closures loaded");
        known.knowledge.closures = Some(closures);
        // A failed read is tried again at the next request.
        known.closures_raw = read.ok();
    }

    /// Answer one invocation: a Function URL response, never an invocation error (a check that cannot be completed
    /// is a 503 "do not dial").
    pub async fn respond(&self, payload: &Value, request_id: &str) -> UrlResponse {
        let request = match request_of(payload) {
            Ok(r) => r,
            Err(e) => return http(400, json!({"error": format!("not a check request: {e}")})),
        };
        // Refused before anything is read, checked or audited: its answer could not be delivered.
        if let Some(response) = refusal(&request) {
            return response;
        }
        self.refresh_knowledge().await;
        self.refresh_closures().await;
        let Some(audit_key) = self.key.read().await.clone() else {
            return http(
                503,
                json!({"error": "check not completed, do not dial: the audit key could not be read", "safeToDial": false}),
            );
        };
        // CXone gets at most a third of the function's 60 s (`settings::CHECK_CXONE_DEADLINE`): a slow CXone yields
        // `error` verdicts and an audit record, never a timed-out invocation.
        let api = self
            .api
            .get_or_try_init(|| self.settings.cxone.connect())
            .await;
        // Without a batch check, the lists' verified runs are the whole answer: with none configured every number
        // not on a registry would be `allowed`. A setting error, refused before anything is answered.
        if let Ok(a) = &api {
            if let Some(e) = setting_error(a.capabilities().batch_check, &self.settings.lists) {
                tracing::error!(error = %e, "setting error: check refused");
                return http(
                    500,
                    json!({"error": format!("check not completed, do not dial: setting error: {e}"), "errorType": e.error_name(), "safeToDial": false}),
                );
            }
        }
        let guard = self.known.read().await;
        let empty = LocalKnowledge::default();
        let knowledge = guard.as_ref().map_or(&empty, |k| &k.knowledge);
        let unavailable = api.as_ref().err().map(|e| {
            tracing::error!(error = %e, "CXone client unavailable: what it would answer is error");
            e.to_string()
        });
        let api = match (&api, &unavailable) {
            (Ok(a), _) => Ok(a.as_ref()),
            (Err(_), why) => Err(why.as_deref().unwrap_or_default()),
        };
        let outcome = check_stage(
            api,
            &self.store,
            knowledge,
            &request,
            self.settings.concurrency,
            self.settings.webhook.as_ref().map(|h| (&self.client, h)),
            request_id,
            &audit_key,
            chrono::Utc::now(),
        )
        .await;
        match outcome {
            Ok((response, audit_key)) => {
                println!("{}", emf_line(&response.metrics, "check", now_ms()));
                for r in &response.registries {
                    println!("{}", registry_age_emf(r, chrono::Utc::now(), now_ms()));
                }
                // Every check says how long the oldest received file of each list has waited (business days):
                // the deadline alarms watch it, and a file waits whether or not a run is going.
                for r in &knowledge.received {
                    let days = dncflow::run::deadline::oldest_open_business_days(
                        dncflow::hours::business_days::BusinessCalendar::configured_or_default(),
                        &r.receipts,
                        chrono::Utc::now(),
                    );
                    println!(
                        "{}",
                        dncflow::run::deadline::deadline_emf(&r.list, days, now_ms())
                    );
                }
                tracing::info!(audit_key, safe_to_dial = response.safe_to_dial, "checked");
                let answer = http(200, serde_json::to_value(&response).unwrap_or_default());
                // The limit on contacts keeps answers far below this; one that still would not fit (a CXone answer
                // naming many lists) must not become an invocation error the caller could misread.
                let size = answer.size();
                if size > RESPONSE_LIMIT_BYTES {
                    tracing::error!(
                        size,
                        audit_key,
                        "check answer larger than a Function URL response"
                    );
                    return http(
                        500,
                        json!({"error": format!("check not deliverable, do not dial: the answer is {size} bytes, over the Function URL's {RESPONSE_LIMIT_BYTES}; send fewer contacts"), "safeToDial": false}),
                    );
                }
                answer
            }
            Err(e) => {
                tracing::error!(error = %e, "check not completed");
                http(
                    503,
                    json!({"error": format!("check not completed, do not dial: {e}"), "safeToDial": false}),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_dialect_without_lists_is_a_fatal_setting_error() {
        let e = setting_error(false, &[]).expect("a setting error");
        assert_eq!(e.kind(), dncflow::steps::ErrorKind::Fatal);
        assert!(
            e.to_string().contains("DNCFLOW_CHECK_LISTS is empty"),
            "{e}"
        );
        assert!(setting_error(false, &["optouts".into()]).is_none());
        assert!(
            setting_error(true, &[]).is_none(),
            "a batch check answers for every list"
        );
    }

    /// The largest answer a request within the limit can get fits a Function URL response: every contact's input
    /// echo and reason at their clipped maximum, made of control characters (escaped twice: `\u0001` in the body,
    /// `\\u0001` in the envelope), four list matches, a window and two zones.
    #[tokio::test]
    async fn the_largest_answer_fits_the_function_url_limit() {
        use dncflow::steps::check::{
            check_with, CheckResult, ContactIn, LocalAnswers, MAX_INPUT_ECHO, MAX_REASON,
        };
        let request = |n: usize, number: &str| CheckRequest {
            contacts: vec![
                ContactIn {
                    phone_number: number.into(),
                    region_code: None,
                    state: Some("US-IN".into()),
                };
                n
            ],
            list_ids: None,
            // A Sunday night in Indiana, two candidate zones: a window, a next instant and a reason.
            at: Some("2026-12-06T04:00:00Z".parse().unwrap()),
            call_type: None,
        };
        let snapshot = Default::default();
        let propagating = Default::default();
        let local = || LocalAnswers {
            snapshot: &snapshot,
            propagating: &propagating,
            dead_letters: None,
            received: &[],
            incomplete: None,
            gap: None,
            hours: None,
            closures: None,
            registries: &[],
        };
        let one = check_with(None, &request(1, "(765) 555-0123"), local(), 1).await;
        let ordinary = serde_json::to_string(&one.results[0]).unwrap().len();
        eprintln!("an ordinary result: {ordinary} bytes");
        let mut worst: CheckResult = one.results[0].clone();
        assert!(
            worst.window.is_some() && worst.hours_reason.is_some(),
            "{worst:?}"
        );
        worst.input = "\u{1}".repeat(MAX_INPUT_ECHO + 1);
        worst.reason = "\u{1}".repeat(MAX_REASON + 1);
        worst.list_matches = vec!["0f8fad5b-d9cb-469f-a165-70867728950e".into(); 4];
        let mut response = check_with(
            None,
            &request(MAX_CHECK_CONTACTS, "(765) 555-0123"),
            local(),
            1,
        )
        .await;
        response.results = vec![worst; MAX_CHECK_CONTACTS];
        let size = http(200, serde_json::to_value(&response).unwrap()).size();
        let per_contact = size / MAX_CHECK_CONTACTS;
        eprintln!("largest answer: {size} bytes for {MAX_CHECK_CONTACTS} contacts, {per_contact} per contact");
        assert!(size < RESPONSE_LIMIT_BYTES, "{size} bytes");

        // One more contact is refused with 413, naming the limit.
        let refused = refusal(&request(MAX_CHECK_CONTACTS + 1, "x")).expect("refused");
        assert_eq!(refused.status_code, 413);
        let body: Value = serde_json::from_str(&refused.body).unwrap();
        assert_eq!(body["limit"], MAX_CHECK_CONTACTS);
        assert_eq!(body["safeToDial"], false);
        assert!(refusal(&request(MAX_CHECK_CONTACTS, "x")).is_none());
    }

    #[test]
    fn requests_are_read_from_a_function_url_event_or_directly() {
        let direct = json!({"contacts": [{"phoneNumber": "2025550198"}]});
        assert_eq!(request_of(&direct).unwrap().contacts.len(), 1);
        let url = json!({"body": direct.to_string(), "isBase64Encoded": false});
        assert_eq!(
            request_of(&url).unwrap().contacts[0].phone_number,
            "2025550198"
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(direct.to_string());
        let url64 = json!({"body": encoded, "isBase64Encoded": true});
        assert_eq!(request_of(&url64).unwrap().contacts.len(), 1);
        let bad = json!({"body": "%%%", "isBase64Encoded": true});
        assert!(request_of(&bad).unwrap_err().contains("not base64"));
        assert!(request_of(&json!({"body": "{}"})).is_err(), "no contacts");
        // The envelope as the Function URL reads it.
        let response = serde_json::to_value(http(400, json!({"error": "x"}))).unwrap();
        assert_eq!(
            response,
            json!({"statusCode": 400, "headers": {"content-type": "application/json"}, "body": "{\"error\":\"x\"}"})
        );
    }
}
