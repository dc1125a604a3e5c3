//! The `v2` dialect client (CONTRACT.md), with rate limiting, retries, batch splitting, token refresh and a
//! circuit breaker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{redact_reqwest, retry_after, CredentialSource, TokenManager, DEFAULT_SCOPES};
use super::breaker::CircuitBreaker;
use super::limiter::RateLimiter;
use super::{
    ContactQuery, ContactResult, CxoneError, Dialect, DncApi, DncList, DncRule, EntryInput,
    EntryOutcome, EntryPage, NewList, RemoteEntry, MAX_CONTACTS_PER_REQUEST,
    MAX_ENTRIES_PER_REQUEST, MAX_PAGE,
};

/// Client settings. Defaults follow the contract: 50 requests/s per tenant, retries bounded by 8 attempts and 120 s,
/// a breaker opening after 5 consecutive 5xx for 30 s.
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
    /// Largest backoff.
    pub max_backoff: Duration,
    /// Consecutive 5xx that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open.
    pub breaker_cool_off: Duration,
    /// OAuth scopes.
    pub scopes: String,
    /// Longest `Retry-After` honoured (a larger or absurd value is clamped to it).
    pub max_retry_after: Duration,
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
            max_retry_after: super::auth::MAX_RETRY_AFTER,
        }
    }
}

/// Most 429 answers one request waits through before giving up (the deadline usually ends it first).
const MAX_THROTTLED: u32 = 50;

/// Whether a request may be sent again after an uncertain outcome (a timeout, a reset, a 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, and entry writes (idempotency keys make them safe).
    Safe,
    /// Creations without a key: only retried when certainly not processed (429, connection refused).
    Unsafe,
}

/// The `v2` client.
pub struct V2Client {
    http: reqwest::Client,
    tokens: TokenManager,
    limiter: RateLimiter,
    breaker: CircuitBreaker,
    config: ClientConfig,
    jitter: AtomicU64,
    requests: AtomicU64,
}

#[derive(Deserialize)]
struct DataList<T> {
    data: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Paging {
    offset: u64,
    total: u64,
}

#[derive(Deserialize)]
struct EntriesPage {
    data: Vec<RemoteEntry>,
    paging: Paging,
}

#[derive(Deserialize)]
struct WriteResult {
    #[serde(default)]
    data: Vec<WriteOk>,
    #[serde(default)]
    errors: Vec<WriteErr>,
}

#[derive(Deserialize)]
struct WriteOk {
    index: usize,
    #[serde(default)]
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct WriteErr {
    index: usize,
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct CheckResults {
    results: Vec<ContactResult>,
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl V2Client {
    /// A client for the credentials from `source`.
    pub fn new(
        source: Box<dyn CredentialSource>,
        config: ClientConfig,
    ) -> Result<V2Client, CxoneError> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| CxoneError::InvalidInput {
                op: "build HTTP client",
                message: redact_reqwest(&e),
            })?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Ok(V2Client {
            tokens: TokenManager::new(http.clone(), source, &config.scopes),
            http,
            limiter: RateLimiter::new(config.rate_per_sec),
            breaker: CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_off),
            jitter: AtomicU64::new(seed | 1),
            requests: AtomicU64::new(0),
            config,
        })
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

    fn backoff(&self, attempt: u32) -> Duration {
        // Full jitter: uniform in [0, min(max, base * 2^attempt)].
        let cap = self
            .config
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.max_backoff);
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        cap.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// Send one request with the whole policy around it; `Ok` carries the body of a 2xx answer.
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Vec<u8>, CxoneError> {
        let started = Instant::now();
        let mut attempts = 0u32;
        // Token refreshes this request made after a 401: once per refused token, at most three.
        let mut refreshes = 0u32;
        let mut throttled = 0u32;
        loop {
            if let Err(open) = self.breaker.check() {
                return Err(CxoneError::CircuitOpen {
                    op,
                    failures: open.failures,
                });
            }
            self.limiter.acquire().await;
            let (token, base_url) = self.tokens.token().await?;
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .http
                .request(method.clone(), format!("{base_url}{path}"))
                .bearer_auth(token.value.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.config.request_timeout);
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let failure: String = match req.send().await {
                Err(e) => {
                    let certain_not_sent = e.is_connect();
                    if repeat == Repeat::Unsafe && !certain_not_sent {
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
                                self.breaker.record_success();
                                return Ok(bytes.to_vec());
                            }
                            Err(e) if repeat == Repeat::Safe => redact_reqwest(&e),
                            Err(e) => {
                                return Err(CxoneError::Transport {
                                    op,
                                    message: redact_reqwest(&e),
                                })
                            }
                        }
                    } else {
                        let err: ApiError = response.json().await.unwrap_or_default();
                        match status.as_u16() {
                            401 if refreshes < 3 => {
                                // Expired or revoked token: fetch a new one and resend at once. Another task may
                                // have refreshed already; `invalidate` then keeps the newer token.
                                self.breaker.record_success();
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
                            401 | 403 => {
                                self.breaker.record_success();
                                return Err(CxoneError::Unauthorized {
                                    op,
                                    code: err.error,
                                });
                            }
                            429 => {
                                self.breaker.record_success();
                                let pause = wait.unwrap_or_else(|| self.backoff(attempts));
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
                            413 => {
                                self.breaker.record_success();
                                return Err(CxoneError::PayloadTooLarge { op });
                            }
                            408 | 500..=599 => {
                                if status.is_server_error() {
                                    self.breaker.record_server_error();
                                }
                                if repeat == Repeat::Unsafe {
                                    return Err(CxoneError::Api {
                                        op,
                                        status: status.as_u16(),
                                        code: err.error,
                                        message: err.message,
                                    });
                                }
                                format!("status {} {}", status.as_u16(), err.error)
                            }
                            s => {
                                self.breaker.record_success();
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
            let pause = self.backoff(attempts);
            if attempts >= self.config.max_attempts
                || started.elapsed() + pause > self.config.deadline
            {
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

    async fn call_json<T: for<'de> Deserialize<'de>>(
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

    /// One request of at most 100 entries; a 413 splits it in halves, recursively.
    fn upload_chunk<'a>(
        &'a self,
        list_id: &'a str,
        entries: &'a [EntryInput],
    ) -> futures::future::BoxFuture<'a, Result<Vec<EntryOutcome>, CxoneError>> {
        Box::pin(async move {
            const OP: &str = "upload entries";
            let data: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "phoneNumber": e.phone_number, "listId": list_id, "jurisdiction": e.jurisdiction,
                        "expirationDate": e.expiration_date, "source": e.source, "idempotencyKey": e.idempotency_key,
                    })
                })
                .collect();
            let body = json!({ "data": data });
            match self
                .call_json::<WriteResult>(
                    OP,
                    Method::POST,
                    "/api/v2/dnc/entries",
                    &[],
                    Some(&body),
                    Repeat::Safe,
                )
                .await
            {
                Ok(result) => {
                    let mut outcomes = vec![EntryOutcome::Unconfirmed; entries.len()];
                    for ok in result.data {
                        if let Some(slot) = outcomes.get_mut(ok.index) {
                            *slot = if ok.status == "exists" {
                                EntryOutcome::Exists { id: ok.id }
                            } else {
                                EntryOutcome::Created { id: ok.id }
                            };
                        }
                    }
                    for err in result.errors {
                        if let Some(slot) = outcomes.get_mut(err.index) {
                            *slot = if err.code == "IDEMPOTENCY_CONFLICT" {
                                // The key was used before with another payload: whether CXone holds the number is
                                // unknown, not refused. Reconciliation reads the list and re-uploads it if absent.
                                EntryOutcome::Unconfirmed
                            } else {
                                EntryOutcome::Rejected {
                                    code: err.code,
                                    message: err.message,
                                }
                            };
                        }
                    }
                    Ok(outcomes)
                }
                Err(CxoneError::PayloadTooLarge { .. }) if entries.len() > 1 => {
                    let (left, right) = entries.split_at(entries.len() / 2);
                    tracing::warn!(
                        op = OP,
                        size = entries.len(),
                        "413: splitting the batch in halves"
                    );
                    let mut outcomes = self.upload_chunk(list_id, left).await?;
                    outcomes.extend(self.upload_chunk(list_id, right).await?);
                    Ok(outcomes)
                }
                Err(e) => Err(e),
            }
        })
    }
}

#[async_trait]
impl DncApi for V2Client {
    fn dialect(&self) -> Dialect {
        Dialect::V2
    }

    async fn lists(&self) -> Result<Vec<DncList>, CxoneError> {
        let r: DataList<DncList> = self
            .call_json(
                "list DNC lists",
                Method::GET,
                "/api/v2/dnc/lists",
                &[],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(r.data)
    }

    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError> {
        let path = format!("/api/v2/dnc/lists/{}", urlencode(id));
        match self
            .call_json("get DNC list", Method::GET, &path, &[], None, Repeat::Safe)
            .await
        {
            Ok(list) => Ok(Some(list)),
            Err(CxoneError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError> {
        let body = serde_json::to_value(list).map_err(|e| CxoneError::InvalidInput {
            op: "create DNC list",
            message: e.to_string(),
        })?;
        self.call_json(
            "create DNC list",
            Method::POST,
            "/api/v2/dnc/lists",
            &[],
            Some(&body),
            Repeat::Unsafe,
        )
        .await
    }

    async fn rules(&self) -> Result<Vec<DncRule>, CxoneError> {
        let r: DataList<DncRule> = self
            .call_json(
                "list DNC rules",
                Method::GET,
                "/api/v2/dnc/rules",
                &[],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(r.data)
    }

    async fn create_rule(&self, rule: &DncRule) -> Result<DncRule, CxoneError> {
        let mut body = serde_json::to_value(rule).map_err(|e| CxoneError::InvalidInput {
            op: "create DNC rule",
            message: e.to_string(),
        })?;
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
        }
        self.call_json(
            "create DNC rule",
            Method::POST,
            "/api/v2/dnc/rules",
            &[],
            Some(&body),
            Repeat::Unsafe,
        )
        .await
    }

    async fn update_rule(&self, id: &str, rule: &DncRule) -> Result<DncRule, CxoneError> {
        let body = serde_json::to_value(rule).map_err(|e| CxoneError::InvalidInput {
            op: "update DNC rule",
            message: e.to_string(),
        })?;
        let path = format!("/api/v2/dnc/rules/{}", urlencode(id));
        // A full replacement: repeating it is harmless.
        self.call_json(
            "update DNC rule",
            Method::PUT,
            &path,
            &[],
            Some(&body),
            Repeat::Safe,
        )
        .await
    }

    async fn upload_batch(
        &self,
        list_id: &str,
        entries: &[EntryInput],
    ) -> Result<Vec<EntryOutcome>, CxoneError> {
        let mut outcomes = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(MAX_ENTRIES_PER_REQUEST) {
            outcomes.extend(self.upload_chunk(list_id, chunk).await?);
        }
        Ok(outcomes)
    }

    async fn list_entries(
        &self,
        list_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<EntryPage, CxoneError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let query = [
            ("listId", list_id.to_string()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ];
        let page: EntriesPage = self
            .call_json(
                "list DNC entries",
                Method::GET,
                "/api/v2/dnc/entries",
                &query,
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(EntryPage {
            entries: page.data,
            offset: page.paging.offset,
            total: page.paging.total,
        })
    }

    async fn check_contacts(
        &self,
        contacts: &[ContactQuery],
    ) -> Result<Vec<ContactResult>, CxoneError> {
        const OP: &str = "check contacts";
        if contacts.len() > MAX_CONTACTS_PER_REQUEST {
            return Err(CxoneError::InvalidInput {
                op: OP,
                message: format!("{} contacts, at most 1000 per call", contacts.len()),
            });
        }
        let body = json!({ "contacts": contacts });
        let r: CheckResults = self
            .call_json(
                OP,
                Method::POST,
                "/api/v2/dnc/contacts/batch",
                &[],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        if r.results.len() != contacts.len() {
            return Err(CxoneError::Protocol {
                op: OP,
                message: format!(
                    "{} results for {} contacts",
                    r.results.len(),
                    contacts.len()
                ),
            });
        }
        Ok(r.results)
    }
}

/// An id as one path segment: every byte but RFC 3986's unreserved ones percent-encoded.
fn urlencode(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_id_is_one_path_segment() {
        assert_eq!(
            super::urlencode("a b/c?d#e-_.~é"),
            "a%20b%2Fc%3Fd%23e-_.~%C3%A9"
        );
    }
}
