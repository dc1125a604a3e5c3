//! A simulator of the CXone DNC API, a real HTTP server for tests, the local run, and anyone evaluating dncflow
//! without a tenant. It serves one dialect (`docs/cxone-api.md`): `v2` (`v2.rs`), or the
//! Admin API's DNC groups ([`admin`]), over one store (`store.rs`), one clock and one set of fault rules applied in
//! front of every handler (`gate.rs`); `config.rs` is what it is told, `inspect.rs` the `/_sim/` endpoints.
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
mod config;
mod gate;
mod inspect;
mod store;
mod v2;

pub use config::{
    AdminBehaviour, Endpoint, FaultKind, FaultRule, HeldNumber, PhoneFormat, PhoneNumberType,
    SimConfig, SimDialect,
};
use gate::*;
use inspect::*;
pub use store::LoggedRequest;
use store::*;
use v2::*;

/// The simulator's state (tenant data, clock, faults, request log) behind one lock; a clone shares it.
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

    /// Every request received so far, in order (tests assert on the calls made).
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
    /// `http://127.0.0.1:PORT`: what a client is given as the tenant's base URL.
    pub base_url: String,
    /// The address the simulator listens on.
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
