//! The one request policy every CXone call goes through, whatever the dialect: a bearer token from the
//! [`TokenManager`] (refreshed once per refused token), the token-bucket [`RateLimiter`] (paused as a whole by a
//! `Retry-After`), retries with full-jitter exponential backoff bounded by attempts and a deadline, 429 answered
//! with the server's `Retry-After` or, without one, our own backoff, and the [`CircuitBreaker`] over requests that
//! failed after their retries.
//!
//! The dialect clients ([`super::v2::V2Client`], [`super::admin::AdminClient`]) only build paths and bodies and
//! read answers; they never retry by hand.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use super::auth::{CredentialSource, TokenManager, DEFAULT_SCOPES};
use super::breaker::CircuitBreaker;
use super::limiter::RateLimiter;
use super::CxoneError;
use crate::adapters::http::{classify, redact_reqwest, retry_after, Backoff, StatusClass};

/// Client settings. Defaults follow the contract: 50 requests/s per tenant, retries bounded by 8 attempts and 120 s,
/// a breaker opening after 5 consecutive requests failed after their retries, for 30 s (then one trial).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Requests per second this client may send (a worker's share of the tenant's rate).
    pub rate_per_sec: f64,
    /// Attempts per request, first included.
    pub max_attempts: u32,
    /// Deadline per request, retries included.
    pub deadline: Duration,
    /// Timeout of one HTTP exchange.
    pub request_timeout: Duration,
    /// First backoff step (full jitter: a random wait up to base × 2^attempt).
    pub base_backoff: Duration,
    /// The cap on any one backoff wait.
    pub max_backoff: Duration,
    /// Consecutive requests, each failed after its retries (5xx, 408, timeouts, resets), that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one trial attempt decides (a request waits for it within its
    /// deadline).
    pub breaker_cool_off: Duration,
    /// The OAuth scopes asked for, space-separated (default `dnc:read dnc:write tenant:read`).
    pub scopes: String,
    /// Longest `Retry-After` honoured (a larger or absurd value is clamped to it).
    pub max_retry_after: Duration,
    /// Most entries one write request carries (the Admin API publishes no limit; a 413 halves it further).
    pub max_batch: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            rate_per_sec: 50.0,
            max_attempts: 8,
            deadline: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cool_off: Duration::from_secs(30),
            scopes: DEFAULT_SCOPES.to_string(),
            max_retry_after: crate::adapters::http::MAX_RETRY_AFTER,
            max_batch: super::MAX_ENTRIES_PER_REQUEST,
        }
    }
}

/// Most 429 answers one request waits through before giving up (the deadline usually ends it first).
const MAX_THROTTLED: u32 = 50;

/// Whether a request may be sent again after an uncertain outcome (a timeout, a reset, a 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads, and writes that are harmless to repeat (idempotency keys; adding a number a group already holds).
    Safe,
    /// Creations without a key: only retried when certainly not processed (429, connection refused).
    Unsafe,
}

/// An error body, in either dialect's shape: `{"error", "message"}` (v2, OAuth) or `{"errorCode"|"code",
/// "errorMessage"|"error_description"}` (the Admin API). Never fails: an unreadable body is empty.
#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default, alias = "errorCode", alias = "code")]
    error: String,
    #[serde(default, alias = "errorMessage", alias = "error_description")]
    message: String,
}

impl ApiError {
    fn from_body(body: &[u8]) -> ApiError {
        // `error` may be an object or a number in some answers: read it leniently rather than lose the status.
        serde_json::from_slice::<ApiError>(body).unwrap_or_default()
    }
}

/// Tokens, rate limit, retries, breaker: one instance per client (its token and limiter live across calls).
pub struct RequestPolicy {
    http: reqwest::Client,
    tokens: TokenManager,
    limiter: RateLimiter,
    breaker: CircuitBreaker,
    config: ClientConfig,
    backoff: std::sync::Arc<Backoff>,
    requests: AtomicU64,
}

impl RequestPolicy {
    /// A policy for the credentials from `source`.
    pub fn new(
        source: Box<dyn CredentialSource>,
        config: ClientConfig,
    ) -> Result<RequestPolicy, CxoneError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| CxoneError::InvalidInput {
                op: "build HTTP client",
                message: redact_reqwest(&e),
            })?;
        let backoff = std::sync::Arc::new(Backoff::new(config.base_backoff, config.max_backoff));
        Ok(RequestPolicy {
            tokens: TokenManager::new(http.clone(), source, &config.scopes, backoff.clone()),
            http,
            limiter: RateLimiter::new(config.rate_per_sec),
            breaker: CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_off),
            backoff,
            requests: AtomicU64::new(0),
            config,
        })
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Token requests sent so far.
    pub fn token_requests(&self) -> u64 {
        self.tokens.token_requests()
    }

    /// API requests sent so far (retries included, token requests excluded).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Whether the circuit breaker is open.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Send one request with the whole policy around it; `Ok` carries the body of a 2xx answer. The whole request,
    /// its token, its waits on the limiter and on an open breaker, and its retries included, ends within the
    /// configured deadline: a hanging token endpoint or a server that never answers cannot hold the caller longer.
    pub async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, CxoneError> {
        let attempts = AtomicU32::new(0);
        let deadline = self.config.deadline;
        let request = self.call_within(op, method, path, query, body, repeat, &attempts);
        match tokio::time::timeout(deadline, request).await {
            Ok(result) => result,
            Err(_) => {
                // Nothing answered in time (a hanging token endpoint, a server holding the connection): a failed
                // request, as unhealthy as a 5xx.
                self.breaker.request_failed();
                Err(CxoneError::Exhausted {
                    op,
                    attempts: attempts.load(Ordering::Relaxed),
                    last: format!(
                        "no answer within the request's deadline of {:.1} s",
                        deadline.as_secs_f64()
                    ),
                })
            }
        }
    }

    /// Wait until the breaker lets an attempt out: while it is open, until its cool-off ends and a half-open trial
    /// has decided; `CircuitOpen` when that would pass the request's deadline. No request goes out while it is open.
    async fn admitted(
        &self,
        op: &'static str,
        started: Instant,
    ) -> Result<super::breaker::Permit<'_>, CxoneError> {
        loop {
            match self.breaker.admit() {
                Ok(permit) => return Ok(permit),
                Err(open) => {
                    let wait = open.retry_at.saturating_duration_since(Instant::now());
                    if started.elapsed() + wait > self.config.deadline {
                        return Err(CxoneError::CircuitOpen {
                            op,
                            failures: open.failures,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn call_within(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeat: Repeat,
        sent: &AtomicU32,
    ) -> Result<Vec<u8>, CxoneError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        // Token refreshes this request made after a 401: once per refused token, at most three.
        let mut refreshes = 0u32;
        let mut throttled = 0u32;
        // Whether this request was counted as failed by the breaker (a request counts once, whatever its trials).
        let mut counted = false;
        loop {
            let permit = self.admitted(op, started).await?;
            self.limiter.acquire().await;
            let (token, base_url) = match self.tokens.token().await {
                Ok(t) => t,
                Err(e) => {
                    // The permit is dropped here: a half-open trial that never reached the API is released.
                    if matches!(
                        e,
                        CxoneError::Exhausted { .. } | CxoneError::Transport { .. }
                    ) {
                        self.breaker.request_failed();
                    }
                    return Err(e);
                }
            };
            attempts += 1;
            sent.fetch_add(1, Ordering::Relaxed);
            self.requests.fetch_add(1, Ordering::Relaxed);
            // One exchange never outlives the request's deadline.
            let left = self
                .config
                .deadline
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(1));
            let mut req = self
                .http
                .request(method.clone(), format!("{base_url}{path}"))
                .bearer_auth(token.value.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.config.request_timeout.min(left));
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let failure: String = match req.send().await {
                Err(e) => {
                    permit.unhealthy();
                    let certain_not_sent = e.is_connect();
                    if repeat == Repeat::Unsafe && !certain_not_sent {
                        self.breaker.request_failed();
                        return Err(CxoneError::Transport {
                            op,
                            message: redact_reqwest(&e),
                        });
                    }
                    redact_reqwest(&e)
                }
                Ok(response) => {
                    let status = response.status();
                    let wait = retry_after(response.headers(), self.config.max_retry_after);
                    if status.is_success() {
                        match response.bytes().await {
                            Ok(bytes) => {
                                permit.healthy();
                                return Ok(bytes.to_vec());
                            }
                            Err(e) if repeat == Repeat::Safe => {
                                permit.unhealthy();
                                redact_reqwest(&e)
                            }
                            Err(e) => {
                                permit.unhealthy();
                                self.breaker.request_failed();
                                return Err(CxoneError::Transport {
                                    op,
                                    message: redact_reqwest(&e),
                                });
                            }
                        }
                    } else {
                        let err = ApiError::from_body(&response.bytes().await.unwrap_or_default());
                        let code = status.as_u16();
                        if classify(code) == StatusClass::Transient {
                            permit.unhealthy();
                        } else {
                            // 401, 403, 413, 429, any other refusal: the service answered, it is up.
                            permit.healthy();
                        }
                        match (code, classify(code)) {
                            (401, _) if refreshes < 3 => {
                                // Expired or revoked token: fetch a new one and resend at once. Another task may
                                // have refreshed already; `invalidate` then keeps the newer token.
                                tracing::info!(
                                    op,
                                    generation = token.generation,
                                    "token refused, refreshing"
                                );
                                self.tokens.invalidate(token.generation);
                                refreshes += 1;
                                attempts -= 1;
                                continue;
                            }
                            (401 | 403, _) => {
                                return Err(CxoneError::Unauthorized {
                                    op,
                                    code: err.error,
                                });
                            }
                            (_, StatusClass::Throttled) => {
                                let pause = wait.unwrap_or_else(|| self.backoff.delay(attempts));
                                tracing::warn!(
                                    op,
                                    throttled,
                                    pause_ms = pause.as_millis() as u64,
                                    "rate limited"
                                );
                                // A 429 says "later", not "broken": it is bounded by the deadline (and a generous
                                // count), not by the attempts meant for failures.
                                attempts -= 1;
                                throttled += 1;
                                // Checked before pausing anyone: a pause past the deadline would only hold the
                                // other tasks back for a request that gives up anyway.
                                if throttled >= MAX_THROTTLED
                                    || started.elapsed() + pause > self.config.deadline
                                {
                                    return Err(CxoneError::Exhausted {
                                        op,
                                        attempts: attempts + throttled,
                                        last: "429 rate limited".into(),
                                    });
                                }
                                match wait {
                                    // The tenant's limit is shared: a Retry-After pauses every task of this client.
                                    Some(wait) => self.limiter.pause_for(wait),
                                    // No hint: this request backs off alone; the limiter keeps pacing the others.
                                    None => tokio::time::sleep(pause).await,
                                }
                                continue;
                            }
                            (413, _) => {
                                return Err(CxoneError::PayloadTooLarge { op });
                            }
                            (_, StatusClass::Transient) => {
                                if repeat == Repeat::Unsafe {
                                    self.breaker.request_failed();
                                    return Err(CxoneError::Api {
                                        op,
                                        status: status.as_u16(),
                                        code: err.error,
                                        message: err.message,
                                    });
                                }
                                format!("status {} {}", status.as_u16(), err.error)
                            }
                            (s, _) => {
                                return Err(CxoneError::Api {
                                    op,
                                    status: s,
                                    code: err.error,
                                    message: err.message,
                                });
                            }
                        }
                    }
                }
            };
            let pause = self.backoff.delay(attempts);
            if attempts >= self.config.max_attempts
                || started.elapsed() + pause > self.config.deadline
            {
                // The request failed after its retries: this, not one attempt, is what the breaker counts (once).
                if !counted {
                    counted = true;
                    self.breaker.request_failed();
                }
                // Open (this failure opened it, or a trial failed): the service is judged down, but the request
                // waits out the cool-off and lets the half-open trial decide while its deadline allows; `admitted`
                // ends it `CircuitOpen` when the breaker stays open past it.
                if self.breaker.is_open() && started.elapsed() < self.config.deadline {
                    continue;
                }
                return Err(CxoneError::Exhausted {
                    op,
                    attempts,
                    last: failure,
                });
            }
            tracing::warn!(op, attempt = attempts, wait_ms = pause.as_millis() as u64, error = %failure, "retrying");
            tokio::time::sleep(pause).await;
        }
    }

    /// A read (safe to repeat): `GET path?query`, the 2xx body read as `T`.
    pub async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, CxoneError> {
        self.call_json(op, Method::GET, path, query, None, Repeat::Safe)
            .await
    }

    /// [`RequestPolicy::call`], the 2xx body read as `T` (an unreadable body is a protocol error).
    pub async fn call_json<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<T, CxoneError> {
        let body = self.call(op, method, path, query, body, repeat).await?;
        serde_json::from_slice(&body).map_err(|e| CxoneError::Protocol {
            op,
            message: crate::redact::json_error(&e),
        })
    }
}
