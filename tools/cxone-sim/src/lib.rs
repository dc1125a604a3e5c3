//! A simulator of the CXone DNC API, a real HTTP server for tests, the local run, and anyone evaluating dncflow
//! without a tenant. It serves one dialect (`docs/cxone-api.md`): `v2` of `shared/spec/CONTRACT.md` (below), or the
//! Admin API's DNC groups ([`admin`]), over one store, one clock and one set of fault rules.
//!
//! It implements every endpoint and rule of the contract: OAuth client-credentials tokens that expire, lists, rules,
//! entries with validation codes (201 / 200 partial / 413 / 400), idempotency keys, paging, the contacts batch check
//! with rule evaluation and propagation delay, and per-tenant rate limits answered with 429 and `Retry-After`.
//!
//! Fault injection ([`FaultRule`]), deterministic for a seed, set at start (flags or JSON file) or at run time
//! (`POST /_sim/faults`): 429 storms, 5xx bursts, slow responses, connection resets, token expiry mid-run, writes
//! applied but answered with 503, partial-success rejections. A clock scale (and `POST /_sim/advance`) lets tests
//! pass propagation delays and token lifetimes without waiting real minutes.
//!
//! Inspection endpoints live under `/_sim/`, outside the CXone paths: state, counts per list, duplicate count,
//! request log, reset.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub mod admin;

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `POST /oauth/token`.
    Token,
    /// `/api/v2/dnc/lists…`.
    Lists,
    /// `/api/v2/dnc/rules…`.
    Rules,
    /// `POST /api/v2/dnc/entries`.
    EntriesPost,
    /// `GET /api/v2/dnc/entries`.
    EntriesGet,
    /// `POST /api/v2/dnc/contacts/batch`.
    Contacts,
    /// Every CXone endpoint.
    Any,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum FaultKind {
    /// Answer 429, with `Retry-After` seconds if given.
    TooManyRequests {
        /// `Retry-After` header value.
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer this 5xx status without doing anything.
    ServerError {
        /// The status (500, 502, 503, 504).
        status: u16,
    },
    /// Wait this long before handling.
    Slow {
        /// Milliseconds.
        ms: u64,
    },
    /// Drop the connection without a complete response.
    Reset,
    /// Apply the write, then answer 503 (the client must retry without creating duplicates).
    AppliedThen503,
    /// Expire every issued token now (token expiry mid-run), then handle the request normally.
    ExpireTokens,
    /// Answer each entry of a batch `created` with this probability but store nothing (a lost write, for
    /// reconciliation to find).
    LoseWrites {
        /// Per-entry probability.
        per_entry: f64,
    },
    /// Answer a contacts check with its `results` tampered with, as a faulty gateway or CXone might: `reverse` their
    /// order, or `renumber` (the first result names a number that was not asked).
    TamperResults {
        /// `reverse` or `renumber`.
        mode: String,
    },
    /// Reject each entry of a batch with this probability and code (partial success).
    RejectEntries {
        /// Error code, e.g. `INVALID_PHONE_NUMBER`.
        code: String,
        /// Per-entry probability.
        per_entry: f64,
    },
}

/// One fault injection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Endpoint it applies to.
    pub endpoint: Endpoint,
    /// The fault.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability per matching request (deterministic for the seed).
    #[serde(default = "one")]
    pub probability: f64,
    /// Let this many matching requests pass first.
    #[serde(default)]
    pub after: u64,
    /// Fire at most this many times (a burst); unlimited when absent.
    #[serde(default)]
    pub count: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// Simulator configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// Seed of every random decision.
    pub seed: u64,
    /// OAuth clients: `(client id, client secret)`.
    pub clients: Vec<(String, String)>,
    /// Token lifetime, simulated seconds.
    pub token_ttl_secs: u64,
    /// Token requests allowed per client per (real) minute.
    pub token_requests_per_minute: u32,
    /// Requests per second for entries, lists and rules.
    pub entries_rate: f64,
    /// Requests per second for the contacts check.
    pub check_rate: f64,
    /// Propagation delay range, simulated seconds.
    pub propagation_secs: (u64, u64),
    /// Simulated seconds per real second.
    pub clock_scale: f64,
    /// Entries accepted in one write request (the contract says 100; lower it to exercise 413 handling).
    pub max_entries_per_request: usize,
    /// Fault rules.
    pub faults: Vec<FaultRule>,
    /// The API served: the contract's `v2`, or the Admin API's DNC groups ([`admin`]).
    pub dialect: SimDialect,
    /// Admin: access keys accepted by the password grant, `(access key id, access key secret)`.
    pub access_keys: Vec<(String, String)>,
    /// Admin: the tenant id the tokens name (API discovery looks it up).
    pub tenant_id: String,
    /// Admin: records held by calling lists (they count against the environment's cap).
    pub calling_list_records: u64,
    /// Admin: records an environment holds at most, calling lists and DNC groups together.
    pub capacity: u64,
}

/// Which API the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimDialect {
    /// The contract's `v2` (lists, rules, entries, batch check).
    #[default]
    V2,
    /// The CXone Admin API's DNC groups.
    Admin,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            clients: vec![("dncflow-local".into(), "local-secret".into())],
            token_ttl_secs: 3600,
            token_requests_per_minute: 60,
            entries_rate: 50.0,
            check_rate: 100.0,
            propagation_secs: (60, 120),
            clock_scale: 1.0,
            max_entries_per_request: 100,
            faults: Vec::new(),
            dialect: SimDialect::V2,
            access_keys: vec![("dncflow-access-key".into(), "local-access-secret".into())],
            tenant_id: "11EB0000-SIM0-TENANT".into(),
            calling_list_records: 0,
            capacity: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct DncList {
    id: String,
    name: String,
    description: String,
    #[serde(rename = "type")]
    kind: String,
    default_expiration_date: String,
    is_active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DncRule {
    #[serde(default)]
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    scope: String,
    priority: i64,
    list_ids: Vec<String>,
    action: String,
    #[serde(default = "yes")]
    is_active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    phone: String,
    list_id: String,
    jurisdiction: String,
    expiration: DateTime<Utc>,
    source: String,
    created_at: DateTime<Utc>,
    visible_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct IdemRecord {
    payload: u64,
    id: String,
    status: &'static str,
}

/// One logged request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Sequence number.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path (no query).
    pub path: String,
    /// Status answered (0 for a dropped connection).
    pub status: u16,
    /// Items in the request body (`data` or `contacts` length), when any.
    pub items: Option<usize>,
}

struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Bucket {
        // One second's worth of burst.
        let capacity = rate.max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Take a token, or the seconds until one is available.
    fn take(&mut self) -> Result<(), f64> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / self.rate)
        }
    }
}

struct Store {
    config: SimConfig,
    rng: u64,
    started: Instant,
    advanced_secs: f64,
    base: DateTime<Utc>,
    tokens: HashMap<String, (String, DateTime<Utc>)>,
    tokens_issued: u64,
    token_times: HashMap<String, VecDeque<Instant>>,
    lists: Vec<DncList>,
    rules: Vec<DncRule>,
    entries: Vec<Entry>,
    by_number: HashMap<(String, String), usize>,
    /// Each list's entries in insertion order: a page is a slice of it, not a scan of every entry (a million-entry
    /// list pages back in a thousand requests).
    by_list: HashMap<String, Vec<usize>>,
    idem: HashMap<String, IdemRecord>,
    entries_bucket: Bucket,
    check_bucket: Bucket,
    log: Vec<LoggedRequest>,
    fault_seen: Vec<(u64, u64)>,
    next_id: u64,
    /// Admin: the tenant's skills.
    skills: Vec<admin::Skill>,
    /// Admin: group id → ids of the skills that scrub it.
    scrubbed: HashMap<String, Vec<u64>>,
}

impl Store {
    fn new(config: SimConfig) -> Store {
        let fault_seen = vec![(0, 0); config.faults.len()];
        Store {
            rng: config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            started: Instant::now(),
            advanced_secs: 0.0,
            base: Utc::now(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            token_times: HashMap::new(),
            lists: Vec::new(),
            rules: Vec::new(),
            entries: Vec::new(),
            by_number: HashMap::new(),
            by_list: HashMap::new(),
            idem: HashMap::new(),
            entries_bucket: Bucket::new(config.entries_rate),
            check_bucket: Bucket::new(config.check_rate),
            log: Vec::new(),
            fault_seen,
            next_id: 1,
            skills: admin::seed_skills(),
            scrubbed: HashMap::new(),
            config,
        }
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic for the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn now(&self) -> DateTime<Utc> {
        let secs =
            self.started.elapsed().as_secs_f64() * self.config.clock_scale + self.advanced_secs;
        self.base + chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:06}", self.next_id)
    }

    /// The faults that fire on this request, in rule order, with their rule's index. Entry faults (lost writes, rejections) are
    /// only counted against their rule's `count` when the handler applies them ([`Store::claim_fault`]): a request
    /// another fault or the rate limit answers first must not use up a burst that never took effect.
    fn faults_for(&mut self, endpoint: Endpoint) -> Vec<(usize, FaultKind)> {
        let mut fired = Vec::new();
        for i in 0..self.config.faults.len() {
            let rule = self.config.faults[i].clone();
            if rule.endpoint != endpoint && rule.endpoint != Endpoint::Any {
                continue;
            }
            self.fault_seen[i].0 += 1;
            if self.fault_seen[i].0 <= rule.after
                || rule.count.is_some_and(|c| self.fault_seen[i].1 >= c)
            {
                continue;
            }
            if rule.probability < 1.0 && self.random() >= rule.probability {
                continue;
            }
            if !matches!(
                rule.kind,
                FaultKind::LoseWrites { .. } | FaultKind::RejectEntries { .. }
            ) {
                self.fault_seen[i].1 += 1;
            }
            fired.push((i, rule.kind));
        }
        fired
    }

    /// Count an entry fault of rule `index` as applied, unless its burst is used up meanwhile.
    fn claim_fault(&mut self, index: usize) -> bool {
        let Some(rule) = self.config.faults.get(index) else {
            return false;
        };
        if rule.count.is_some_and(|c| self.fault_seen[index].1 >= c) {
            return false;
        }
        self.fault_seen[index].1 += 1;
        true
    }
}

/// Shared simulator state.
#[derive(Clone)]
pub struct Sim {
    store: Arc<Mutex<Store>>,
}

impl Sim {
    /// A simulator with `config`.
    pub fn new(config: SimConfig) -> Sim {
        Sim {
            store: Arc::new(Mutex::new(Store::new(config))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the fault rules.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        let mut s = self.lock();
        s.fault_seen = vec![(0, 0); faults.len()];
        s.config.faults = faults;
    }

    /// Replace the OAuth clients (a secret rotation).
    pub fn set_clients(&self, clients: Vec<(String, String)>) {
        self.lock().config.clients = clients;
    }

    /// Every token issued so far (for tests that prove tokens never reach logs).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().tokens.keys().cloned().collect()
    }

    /// Expire every issued token now.
    pub fn expire_tokens(&self) {
        let mut s = self.lock();
        let now = s.now();
        for t in s.tokens.values_mut() {
            t.1 = now;
        }
    }

    /// Make the list (or group) named `name` suppress nothing, as an administrator might: v2, every rule naming it
    /// deactivated; admin, every scrubbed skill unlinked from the group.
    pub fn unbind_outbound(&self, name: &str) {
        let mut s = self.lock();
        let Some(id) = s
            .lists
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id.clone())
        else {
            return;
        };
        for rule in s.rules.iter_mut().filter(|r| r.list_ids.contains(&id)) {
            rule.is_active = false;
        }
        s.scrubbed.remove(&id);
    }

    /// Move the simulated clock forward.
    pub fn advance(&self, secs: f64) {
        self.lock().advanced_secs += secs;
    }

    /// The request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    /// Snapshot of the state (as served at `GET /_sim/state`).
    pub fn state(&self) -> Value {
        state_json(&self.lock())
    }

    /// The router serving the CXone paths of the configured dialect and `/_sim/`.
    pub fn router(&self) -> Router {
        let api = match self.lock().config.dialect {
            SimDialect::V2 => self.v2_routes(),
            SimDialect::Admin => admin::routes(),
        };
        api.route("/_sim/state", get(sim_state))
            .route("/_sim/requests", get(sim_requests))
            .route("/_sim/reset", post(sim_reset))
            .route("/_sim/faults", post(sim_faults))
            .route("/_sim/advance", post(sim_advance))
            .route("/_sim/expire-tokens", post(sim_expire_tokens))
            .layer(middleware::from_fn_with_state(self.clone(), log_requests))
            .with_state(self.clone())
    }

    fn v2_routes(&self) -> Router<Sim> {
        Router::new()
            .route("/oauth/token", post(token))
            .route("/api/v2/dnc/lists", get(lists_get).post(lists_post))
            .route("/api/v2/dnc/lists/{id}", get(list_get))
            .route("/api/v2/dnc/rules", get(rules_get).post(rules_post))
            .route("/api/v2/dnc/rules/{id}", axum::routing::put(rules_put))
            .route("/api/v2/dnc/entries", get(entries_get).post(entries_post))
            .route("/api/v2/dnc/contacts/batch", post(contacts_batch))
    }
}

/// A simulator serving on a loopback port.
pub struct RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The local address.
    pub addr: SocketAddr,
    /// The shared state, for direct inspection.
    pub sim: Sim,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningSim {
    /// The credentials document (`docs/cxone-api.md`, one shape for both dialects) of this simulator's default
    /// client: v2's client credentials and base URL, or the Admin API's application, access key and token URL (the
    /// API endpoint then discovered from the token's tenant, as against a real tenant).
    pub fn credentials_document(&self) -> String {
        let s = self.sim.lock();
        let (id, secret) = s.config.clients.first().cloned().unwrap_or_default();
        match s.config.dialect {
            SimDialect::V2 => {
                json!({"dialect": "v2", "baseUrl": self.base_url, "clientId": id, "clientSecret": secret})
            }
            SimDialect::Admin => {
                let (key, key_secret) = s.config.access_keys.first().cloned().unwrap_or_default();
                json!({"dialect": "admin", "authUrl": format!("{}/auth/token", self.base_url), "clientId": id,
                    "clientSecret": secret, "accessKeyId": key, "accessKeySecret": key_secret})
            }
        }
        .to_string()
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Start a simulator on `127.0.0.1:port` (0: ephemeral) in the current Tokio runtime.
pub async fn spawn(config: SimConfig, port: u16) -> std::io::Result<RunningSim> {
    let sim = Sim::new(config);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningSim {
        base_url: format!("http://{addr}"),
        addr,
        sim,
        shutdown: Some(tx),
    })
}

fn endpoint_of(method: &Method, path: &str) -> Option<Endpoint> {
    if let Some(ep) = admin::endpoint_of(method, path) {
        return Some(ep);
    }
    Some(match path {
        "/oauth/token" => Endpoint::Token,
        p if p.starts_with("/api/v2/dnc/lists") => Endpoint::Lists,
        p if p.starts_with("/api/v2/dnc/rules") => Endpoint::Rules,
        "/api/v2/dnc/entries" if method == Method::POST => Endpoint::EntriesPost,
        "/api/v2/dnc/entries" => Endpoint::EntriesGet,
        "/api/v2/dnc/contacts/batch" => Endpoint::Contacts,
        _ => return None,
    })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// A response whose body fails at once: the connection is dropped without a complete message.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "1000")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Request log, rate limits, authentication and fault injection in front of every CXone handler.
async fn log_requests(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let endpoint = endpoint_of(&method, &path);
    // Buffer the body to count its items for the log (bodies are small: at most 1000 contacts).
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let items = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        v.get("data")
            .or_else(|| v.get("contacts"))
            .or_else(|| v.get("dncGroupRecords"))
            .and_then(Value::as_array)
            .map(Vec::len)
    });
    let req = Request::from_parts(parts, Body::from(bytes));
    let response = match endpoint {
        Some(ep) => guarded(&sim, ep, req, next).await,
        None => next.run(req).await,
    };
    let mut s = sim.lock();
    let seq = s.log.len() as u64 + 1;
    let status = if response.headers().contains_key("x-sim-reset") {
        0
    } else {
        response.status().as_u16()
    };
    s.log.push(LoggedRequest {
        seq,
        method: method.to_string(),
        path,
        status,
        items,
    });
    response
}

async fn guarded(sim: &Sim, ep: Endpoint, mut req: Request, next: Next) -> Response {
    let faults = sim.lock().faults_for(ep);
    let mut applied_then_503 = false;
    let mut tamper: Option<String> = None;
    for (index, fault) in &faults {
        match fault {
            FaultKind::Slow { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            FaultKind::TooManyRequests { retry_after } => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "injected 429",
                );
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                return r;
            }
            FaultKind::ServerError { status } => {
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return error(status, "server_error", "injected server error");
            }
            FaultKind::Reset => {
                let mut r = reset_response();
                r.headers_mut()
                    .insert("x-sim-reset", HeaderValue::from_static("1"));
                return r;
            }
            FaultKind::ExpireTokens => sim.expire_tokens(),
            FaultKind::AppliedThen503 => applied_then_503 = true,
            FaultKind::TamperResults { mode } => tamper = Some(mode.clone()),
            FaultKind::RejectEntries { .. } | FaultKind::LoseWrites { .. } => {
                req.extensions_mut()
                    .insert(InjectedRejects(*index, fault.clone()));
            }
        }
    }
    if ep != Endpoint::Token {
        let mut s = sim.lock();
        // Authentication first: an unauthenticated request does not spend the tenant's rate.
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let now = s.now();
        let valid = token
            .as_ref()
            .and_then(|t| s.tokens.get(t))
            .is_some_and(|(_, exp)| *exp > now);
        if !valid {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "missing, unknown or expired token",
            );
        }
        let hint = s.config.dialect == SimDialect::V2;
        let bucket = if ep == Endpoint::Contacts {
            &mut s.check_bucket
        } else {
            &mut s.entries_bucket
        };
        if let Err(wait) = bucket.take() {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "tenant rate limit exceeded",
            );
            // The Admin API answers 429 without a reliable Retry-After: its clients back off on their own.
            if hint {
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.ceil().max(1.0) as u64),
                );
            }
            return r;
        }
    }
    let response = next.run(req).await;
    if applied_then_503 {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected: write applied, answered 503",
        );
    }
    match tamper {
        Some(mode) if response.status().is_success() => tamper_results(response, &mode).await,
        _ => response,
    }
}

/// The `tamper-results` fault: the same answer with its `results` reversed or one of them renumbered.
async fn tamper_results(response: Response, mode: &str) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "unreadable body",
        );
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(results) = v.get_mut("results").and_then(Value::as_array_mut) {
        match mode {
            "renumber" => {
                if let Some(first) = results.first_mut() {
                    first["phoneNumber"] = json!("+19999999999");
                }
            }
            _ => results.reverse(),
        }
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// An entry fault for the handler to apply: its rule's index and kind.
#[derive(Clone)]
struct InjectedRejects(usize, FaultKind);

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

const SCOPES: [&str; 4] = ["dnc:read", "dnc:write", "tenant:read", "outbound:read"];

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let form: TokenForm = match serde_urlencoded_parse(&body) {
        Some(f) => f,
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "form body expected",
            )
        }
    };
    let (mut id, mut secret) = (form.client_id.clone(), form.client_secret.clone());
    if let Some((i, s)) = basic_auth(&headers) {
        id = Some(i);
        secret = Some(s);
    }
    if form.grant_type.as_deref() != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials expected",
        );
    }
    let mut s = sim.lock();
    let known = s
        .config
        .clients
        .iter()
        .any(|(i, sec)| Some(i) == id.as_ref() && Some(sec) == secret.as_ref());
    if !known {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or bad secret",
        );
    }
    let scope = form.scope.unwrap_or_default();
    if scope.split_whitespace().any(|sc| !SCOPES.contains(&sc)) {
        return error(StatusCode::BAD_REQUEST, "invalid_scope", "unknown scope");
    }
    let client = id.unwrap_or_default();
    issue_token(&mut s, client, json!({"scope": scope}))
}

/// Issue a token to `client` within its token-request rate, its answer `extra` fields added.
fn issue_token(s: &mut Store, client: String, extra: Value) -> Response {
    let limit = s.config.token_requests_per_minute as usize;
    let times = s.token_times.entry(client.clone()).or_default();
    let now = Instant::now();
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
    {
        times.pop_front();
    }
    if times.len() >= limit {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many token requests",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(5u64));
        return r;
    }
    times.push_back(now);
    let nonce = format!(
        "{:016x}{:016x}",
        (s.random() * 1e18) as u64,
        s.tokens_issued
    );
    let ttl = s.config.token_ttl_secs;
    // Admin tokens are JWTs naming the tenant (discovery reads the claim); v2 tokens are opaque.
    let token = match s.config.dialect {
        SimDialect::V2 => format!("tok{nonce}"),
        SimDialect::Admin => admin::jwt(&s.config.tenant_id, &nonce),
    };
    let expires = s.now() + chrono::Duration::seconds(ttl as i64);
    s.tokens.insert(token.clone(), (client, expires));
    s.tokens_issued += 1;
    let mut body = json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    Json(body).into_response()
}

fn serde_urlencoded_parse(body: &[u8]) -> Option<TokenForm> {
    serde_urlencoded::from_bytes(body).ok()
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (i, s) = text.split_once(':')?;
    Some((i.to_string(), s.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewList {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "type", default = "manual")]
    kind: String,
    #[serde(default)]
    default_expiration_date: Option<String>,
    #[serde(default = "yes")]
    is_active: bool,
}

fn manual() -> String {
    "MANUAL".into()
}

async fn lists_get(State(sim): State<Sim>) -> Response {
    Json(json!({"data": sim.lock().lists})).into_response()
}

async fn list_get(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    match sim.lock().lists.iter().find(|l| l.id == id) {
        Some(l) => Json(l).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such list"),
    }
}

async fn lists_post(State(sim): State<Sim>, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewList>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed list");
    };
    if !["MANUAL", "SYSTEM"].contains(&new.kind.as_str()) || new.name.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "name required, type MANUAL or SYSTEM",
        );
    }
    let mut s = sim.lock();
    if s.lists.iter().any(|l| l.name == new.name) {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "a list with this name exists",
        );
    }
    let list = DncList {
        id: s.id("list"),
        name: new.name,
        description: new.description,
        kind: new.kind,
        default_expiration_date: new
            .default_expiration_date
            .unwrap_or_else(|| "2099-12-31T23:59:59Z".into()),
        is_active: new.is_active,
    };
    s.lists.push(list.clone());
    (StatusCode::CREATED, Json(list)).into_response()
}

fn valid_rule(r: &DncRule) -> bool {
    ["INBOUND", "OUTBOUND", "BOTH"].contains(&r.scope.as_str())
        && ["BLOCK", "ALLOW"].contains(&r.action.as_str())
        && !r.name.trim().is_empty()
}

async fn rules_get(State(sim): State<Sim>) -> Response {
    Json(json!({"data": sim.lock().rules})).into_response()
}

/// Parse and validate a rule body: shape, scope, action, and that every list it names exists. `Err` is the message
/// of a 400 answer.
fn parse_rule(body: &[u8], s: &Store) -> Result<DncRule, String> {
    let rule = serde_json::from_slice::<DncRule>(body).map_err(|_| "malformed rule".to_string())?;
    if !valid_rule(&rule) {
        return Err("bad scope, action or name".into());
    }
    if let Some(missing) = rule
        .list_ids
        .iter()
        .find(|id| !s.lists.iter().any(|l| &l.id == *id))
    {
        return Err(format!("unknown list {missing}"));
    }
    Ok(rule)
}

async fn rules_post(State(sim): State<Sim>, body: Bytes) -> Response {
    let mut s = sim.lock();
    let mut rule = match parse_rule(&body, &s) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    rule.id = s.id("rule");
    s.rules.push(rule.clone());
    (StatusCode::CREATED, Json(rule)).into_response()
}

async fn rules_put(State(sim): State<Sim>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut s = sim.lock();
    let mut rule = match parse_rule(&body, &s) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let Some(slot) = s.rules.iter().position(|r| r.id == id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such rule");
    };
    rule.id = id;
    s.rules[slot] = rule.clone();
    Json(rule).into_response()
}

fn is_e164(p: &str) -> bool {
    let Some(d) = p.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&d.len()) && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_jurisdiction(j: &str) -> bool {
    let b = j.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_uppercase))
        || (b.len() >= 4
            && b.len() <= 6
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2] == b'-'
            && b[3..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

fn payload_hash(v: &Value) -> u64 {
    use sha2::{Digest, Sha256};
    let mut fields = v.clone();
    if let Some(o) = fields.as_object_mut() {
        o.remove("idempotencyKey");
    }
    let digest = Sha256::digest(fields.to_string().as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

async fn entries_post(State(sim): State<Sim>, req: Request) -> Response {
    let injected = req.extensions().get::<InjectedRejects>().cloned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 16 << 20).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed JSON");
    };
    let Some(items) = v.get("data").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`data` array required",
        );
    };
    let mut s = sim.lock();
    if items.len() > s.config.max_entries_per_request {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "too many entries in one request",
        );
    }
    // The entry fault takes effect from here on: count it now.
    let injected = injected
        .filter(|InjectedRejects(index, _)| s.claim_fault(*index))
        .map(|InjectedRejects(_, kind)| kind);
    let now = s.now();
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (phone, list_id, jurisdiction, key) = (
            text("phoneNumber"),
            text("listId"),
            text("jurisdiction"),
            text("idempotencyKey"),
        );
        let mut reject = |code: &str, message: &str| {
            errors.push(
                json!({"index": index, "phoneNumber": phone, "code": code, "message": message}),
            );
        };
        if key.is_empty() || key.len() > 128 {
            drop(s);
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "idempotencyKey of 1 to 128 characters required",
            );
        }
        if let Some(FaultKind::RejectEntries { code, per_entry }) = &injected {
            if s.random() < *per_entry {
                reject(code, "injected rejection");
                continue;
            }
        }
        if let Some(FaultKind::LoseWrites { per_entry }) = &injected {
            if !s.idem.contains_key(&key) && s.random() < *per_entry {
                let id = s.id("lost");
                data.push(json!({"index": index, "id": id, "phoneNumber": phone, "listId": list_id, "status": "created"}));
                continue;
            }
        }
        let payload = payload_hash(item);
        if let Some(rec) = s.idem.get(&key) {
            if rec.payload == payload {
                data.push(json!({"index": index, "id": rec.id, "phoneNumber": phone, "listId": list_id, "status": rec.status}));
            } else {
                reject(
                    "IDEMPOTENCY_CONFLICT",
                    "key reused with a different payload",
                );
            }
            continue;
        }
        if !is_e164(&phone) {
            reject("INVALID_PHONE_NUMBER", "phoneNumber must be E.164");
            continue;
        }
        if !is_jurisdiction(&jurisdiction) {
            reject(
                "INVALID_JURISDICTION",
                "jurisdiction must be ISO 3166-1 or 3166-2",
            );
            continue;
        }
        let Some(list) = s
            .lists
            .iter()
            .find(|l| l.id == list_id && l.is_active)
            .cloned()
        else {
            reject("UNKNOWN_LIST", "no active list with this id");
            continue;
        };
        let expiration = match item.get("expirationDate") {
            None | Some(Value::Null) => DateTime::parse_from_rfc3339(&list.default_expiration_date)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Some(Value::String(e)) if e.ends_with('Z') => DateTime::parse_from_rfc3339(e)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            _ => None,
        };
        let Some(expiration) = expiration.filter(|e| *e > now) else {
            reject(
                "INVALID_EXPIRATION",
                "expirationDate must be RFC 3339 UTC in the future",
            );
            continue;
        };
        // An expired entry suppresses nothing: a write of its number replaces it in place (a new record, `created`),
        // which is how a run re-writes it. A live one answers `exists`.
        let existing = s.by_number.get(&(list_id.clone(), phone.clone())).copied();
        let (id, status) = match existing {
            Some(i) if s.entries[i].expiration > now => (s.entries[i].id.clone(), "exists"),
            _ => {
                let (lo, hi) = s.config.propagation_secs;
                let delay = lo as f64 + s.random() * (hi.saturating_sub(lo)) as f64;
                let id = s.id("entry");
                let entry = Entry {
                    id: id.clone(),
                    phone: phone.clone(),
                    list_id: list_id.clone(),
                    jurisdiction,
                    expiration,
                    source: text("source"),
                    created_at: now,
                    visible_at: now + chrono::Duration::milliseconds((delay * 1000.0) as i64),
                };
                match existing {
                    Some(i) => s.entries[i] = entry,
                    None => {
                        let index = s.entries.len();
                        s.by_number.insert((list_id.clone(), phone.clone()), index);
                        s.by_list.entry(list_id.clone()).or_default().push(index);
                        s.entries.push(entry);
                    }
                }
                (id, "created")
            }
        };
        s.idem.insert(
            key,
            IdemRecord {
                payload,
                id: id.clone(),
                status,
            },
        );
        data.push(json!({"index": index, "id": id, "phoneNumber": phone, "listId": list_id, "status": status}));
    }
    if errors.is_empty() {
        (StatusCode::CREATED, Json(json!({"data": data}))).into_response()
    } else {
        (
            StatusCode::OK,
            Json(json!({"data": data, "errors": errors})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntriesQuery {
    list_id: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn entries_get(State(sim): State<Sim>, Query(q): Query<EntriesQuery>) -> Response {
    let Some(list_id) = q.list_id else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "listId required",
        );
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "limit must be 1..=1000",
        );
    }
    let offset = q.offset.unwrap_or(0);
    let s = sim.lock();
    if !s.lists.iter().any(|l| l.id == list_id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such list");
    }
    let all: &[usize] = s
        .by_list
        .get(&list_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&i| {
            let e = &s.entries[i];
            json!({
                "id": e.id, "phoneNumber": e.phone, "listId": e.list_id, "jurisdiction": e.jurisdiction,
                "expirationDate": e.expiration.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "source": e.source,
                "createdAt": e.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            })
        })
        .collect();
    Json(json!({"data": page, "paging": {"offset": offset, "limit": limit, "total": all.len()}}))
        .into_response()
}

async fn contacts_batch(State(sim): State<Sim>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed JSON");
    };
    let Some(contacts) = v.get("contacts").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`contacts` array required",
        );
    };
    if contacts.len() > 1000 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "at most 1000 contacts per request",
        );
    }
    let s = sim.lock();
    let now = s.now();
    let mut rules: Vec<&DncRule> = s
        .rules
        .iter()
        .filter(|r| r.is_active && (r.scope == "OUTBOUND" || r.scope == "BOTH"))
        .collect();
    rules.sort_by_key(|r| r.priority);
    let active_lists: HashSet<&str> = s
        .lists
        .iter()
        .filter(|l| l.is_active)
        .map(|l| l.id.as_str())
        .collect();
    let results: Vec<Value> = contacts
        .iter()
        .map(|c| {
            let phone = c.get("phoneNumber").and_then(Value::as_str).unwrap_or_default();
            let prefix = c.get("matchType").and_then(Value::as_str) == Some("prefix");
            if !is_e164(phone) && !prefix {
                return json!({"phoneNumber": phone, "status": "error", "reason": "INVALID_PHONE_NUMBER", "listMatches": []});
            }
            let wanted: Option<Vec<&str>> = c
                .get("listIds")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            let holds = |list: &str| -> bool {
                let visible = |e: &Entry| e.visible_at <= now && e.expiration > now;
                if prefix {
                    s.entries.iter().any(|e| e.list_id == list && e.phone.starts_with(phone) && visible(e))
                } else {
                    s.by_number.get(&(list.to_string(), phone.to_string())).is_some_and(|&i| visible(&s.entries[i]))
                }
            };
            for rule in &rules {
                let matches: Vec<&str> = rule
                    .list_ids
                    .iter()
                    .map(String::as_str)
                    .filter(|l| active_lists.contains(l))
                    .filter(|l| wanted.as_ref().is_none_or(|w| w.contains(l)))
                    .filter(|l| holds(l))
                    .collect();
                if !matches.is_empty() {
                    let status = if rule.action == "BLOCK" { "suppressed" } else { "allowed" };
                    return json!({"phoneNumber": phone, "status": status, "reason": format!("rule {}", rule.name), "listMatches": matches});
                }
            }
            json!({"phoneNumber": phone, "status": "allowed", "reason": "no matching rule", "listMatches": []})
        })
        .collect();
    Json(json!({"results": results})).into_response()
}

fn state_json(s: &Store) -> Value {
    let mut per_list: HashMap<&str, usize> = HashMap::new();
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for e in &s.entries {
        *per_list.entry(e.list_id.as_str()).or_default() += 1;
        *pairs
            .entry((e.list_id.as_str(), e.phone.as_str()))
            .or_default() += 1;
    }
    let duplicates: usize = pairs.values().map(|n| n - 1).sum();
    json!({
        "lists": s.lists.iter().map(|l| json!({"id": l.id, "name": l.name, "isActive": l.is_active, "entries": per_list.get(l.id.as_str()).copied().unwrap_or(0)})).collect::<Vec<_>>(),
        "rules": s.rules,
        "entries": s.entries.len(),
        "duplicates": duplicates,
        "tokensIssued": s.tokens_issued,
        "dialect": s.config.dialect,
        "scrubbed": s.scrubbed,
        "requests": s.log.len(),
        "now": s.now().to_rfc3339(),
    })
}

async fn sim_state(State(sim): State<Sim>) -> Response {
    Json(sim.state()).into_response()
}

async fn sim_requests(State(sim): State<Sim>) -> Response {
    Json(sim.requests()).into_response()
}

async fn sim_reset(State(sim): State<Sim>) -> Response {
    let mut s = sim.lock();
    let config = s.config.clone();
    *s = Store::new(config);
    StatusCode::NO_CONTENT.into_response()
}

async fn sim_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<FaultRule>>(&body) {
        Ok(faults) => {
            sim.set_faults(faults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

#[derive(Deserialize)]
struct Advance {
    seconds: f64,
}

async fn sim_advance(State(sim): State<Sim>, Json(a): Json<Advance>) -> Response {
    sim.advance(a.seconds);
    StatusCode::NO_CONTENT.into_response()
}

async fn sim_expire_tokens(State(sim): State<Sim>) -> Response {
    sim.expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}
