//! Lambda `check`, behind a Function URL (IAM auth): `POST {"contacts":[{"phoneNumber","regionCode"?,"state"?}],
//! "listIds"?,"at"?}` → one verdict per item in input order (`suppressed | allowed | invalid | error`) with its
//! calling hours at `at` (`callableNow`, `window`, `nextCallableAt`), and `safeToDial` (every number allowed and
//! callable now) with `blockedBy`.
//! Fail-safe: a number whose check could not be completed is `error`, never `allowed`; a check that could not be
//! audited answers 503 (do not dial).
//!
//! Environment: see `dncflow::lambda`; `DNCFLOW_CHECK_LISTS` (list names whose snapshots and propagating runs are
//! answered locally, comma-separated), `DNCFLOW_CHECK_REFRESH_SECS` (300: how old the local knowledge may get),
//! `DNCFLOW_CHECK_CONCURRENCY` (4 CXone calls in flight), `DNCFLOW_AUDIT_WEBHOOK_URL` (optional export),
//! `DNCFLOW_AUDIT_KEY_SECRET_ID` (the secret holding the key audit hashes are keyed with),
//! `DNCFLOW_CXONE_DEADLINE_SECS` (20: a CXone request's time, retries included, well inside the 60 s timeout),
//! `DNCFLOW_CHECK_REGISTRIES` (registry names whose suppression indexes are consulted, comma-separated: loaded at the
//! first check, read again when their `current.json` names another version; a registry that cannot be loaded leaves
//! the check incomplete, so nothing is answered `allowed`).

use std::time::{Duration, Instant};

use base64::Engine;
use dncflow::check::{emf_line, AuditKey, CheckRequest};
use dncflow::lambda::{
    audit_key_from_env, bucket_from_env, cxone_from_env_within, env_or, env_secs, for_container,
    init_logging, now_ms,
};
use dncflow::stages::{
    check_stage, load_local_knowledge, refresh_registries, upload_markers, LocalKnowledge, Webhook,
};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tokio::sync::RwLock;

fn http(status: u16, body: Value) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}

/// The request body of a Function URL event (or the event itself, when invoked directly).
fn request_of(event: &Value) -> Result<CheckRequest, String> {
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
}

/// The audit key, read at the first check and again at every reload (a rotation is picked up).
type Key = RwLock<Option<AuditKey>>;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let store = S3Store {
        client: dncflow::store::s3_client(None).await,
        bucket: bucket_from_env().map_err(|e| e.to_string())?,
    };
    // CXone gets at most a third of the function's 60 s: a slow CXone yields `error` verdicts and an audit record,
    // never a timed-out invocation.
    let api = cxone_from_env_within(env_or("DNCFLOW_TENANT_RATE", 50.0), Duration::from_secs(20))
        .await
        .map_err(|e| e.to_string())?;
    let lists: Vec<String> = std::env::var("DNCFLOW_CHECK_LISTS")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let registries: Vec<String> = std::env::var("DNCFLOW_CHECK_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let refresh = env_secs("DNCFLOW_CHECK_REFRESH_SECS", 300.0);
    let concurrency: usize = env_or("DNCFLOW_CHECK_CONCURRENCY", 4);
    let webhook = std::env::var("DNCFLOW_AUDIT_WEBHOOK_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|url| Webhook {
            url,
            attempts: 3,
            backoff: Duration::from_millis(200),
        });
    let client = reqwest::Client::new();
    let known: RwLock<Option<Known>> = RwLock::new(None);
    let key: Key = RwLock::new(None);
    let (store, api, lists, registries, webhook, client, known, key) = (
        for_container(store),
        for_container(api),
        for_container(lists),
        for_container(registries),
        for_container(webhook),
        for_container(client),
        for_container(known),
        for_container(key),
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request = match request_of(&event.payload) {
            Ok(r) => r,
            Err(e) => return Ok::<Value, lambda_runtime::Error>(http(400, json!({"error": format!("not a check request: {e}")}))),
        };
        // Loaded once per container; reloaded when stale, or at once when a list's upload marker names another run
        // (a new run is writing: its numbers must answer pending-propagation from its first write). A failed reload
        // keeps what was loaded but marks it incomplete: nothing is then answered `allowed`.
        let markers = upload_markers(store, lists).await;
        let reload = match (&markers, known.read().await.as_ref()) {
            (_, None) => true,
            (Ok(m), Some(k)) => k.loaded.elapsed() >= refresh || *m != k.knowledge.markers,
            (Err(_), Some(_)) => true,
        };
        if reload || key.read().await.is_none() {
            match audit_key_from_env().await {
                Ok(k) => *key.write().await = Some(k),
                // The key read before stays in use; without any, the check cannot be audited (503 below).
                Err(e) => tracing::error!(error = %e, "audit key not loaded"),
            }
        }
        if reload {
            let loaded = match markers {
                Ok(_) => load_local_knowledge(store, lists).await,
                Err(e) => Err(e),
            };
            // Registries are large: the versions loaded before are kept while still live.
            let before: Vec<_> = known.read().await.as_ref().map(|k| k.knowledge.registries.clone()).unwrap_or_default();
            let loaded = match (loaded, refresh_registries(store, registries, &before).await) {
                (Ok(mut knowledge), Ok(r)) => {
                    knowledge.registries = r;
                    Ok(knowledge)
                }
                (Err(e), _) => Err(e.to_string()),
                (Ok(_), Err(e)) => Err(format!("registry not loaded: {e}")),
            };
            let mut guard = known.write().await;
            match loaded {
                Ok(knowledge) => {
                    tracing::info!(snapshot = knowledge.snapshot.len(), propagating = knowledge.propagating.len(),
                        dead_letters = knowledge.dead_letters.len(), snapshot_runs = ?knowledge.snapshot_runs,
                        pending_runs = ?knowledge.pending_runs, "local knowledge loaded");
                    *guard = Some(Known { knowledge, loaded: Instant::now() });
                }
                Err(e) => {
                    tracing::error!(error = %e, "local knowledge not loaded: nothing is answered allowed until it is");
                    let known = guard.get_or_insert_with(|| Known { knowledge: LocalKnowledge::default(), loaded: Instant::now() });
                    known.knowledge.incomplete = Some(e);
                }
            }
        }
        let Some(audit_key) = key.read().await.clone() else {
            return Ok(http(503, json!({"error": "check not completed, do not dial: the audit key could not be read", "safeToDial": false})));
        };
        let guard = known.read().await;
        let empty = LocalKnowledge::default();
        let knowledge = guard.as_ref().map_or(&empty, |k| &k.knowledge);
        let outcome = check_stage(
            api,
            store,
            knowledge,
            &request,
            concurrency,
            webhook.as_ref().map(|h| (client, h)),
            &event.context.request_id,
            &audit_key,
            chrono::Utc::now(),
        )
        .await;
        match outcome {
            Ok((response, audit_key)) => {
                println!("{}", emf_line(&response.metrics, "check", now_ms()));
                for r in &response.registries {
                    println!("{}", dncflow::check::registry_age_emf(r, chrono::Utc::now(), now_ms()));
                }
                tracing::info!(audit_key, safe_to_dial = response.safe_to_dial, "checked");
                Ok(http(200, serde_json::to_value(&response).unwrap_or_default()))
            }
            Err(e) => {
                tracing::error!(error = %e, "check not completed");
                Ok(http(503, json!({"error": format!("check not completed, do not dial: {e}"), "safeToDial": false})))
            }
        }
    }))
    .await
}
