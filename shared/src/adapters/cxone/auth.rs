//! Credentials and OAuth2 client-credentials tokens.
//!
//! Secrets are [`secrecy::SecretString`]s: `Debug` prints `[REDACTED]`, and nothing here logs or formats them. The
//! token manager caches the token, refreshes it at 80 % of its lifetime, lets one task refresh while the others wait
//! (single flight), and re-reads the credentials once when CXone answers `invalid_client` (a rotated secret).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{CxoneError, Dialect};
use crate::adapters::http::{
    classify, redact_reqwest, retry_after, Backoff, StatusClass, MAX_RETRY_AFTER,
};

/// The Admin API's OAuth password grant: the registered application (client id and secret, sent as HTTP Basic)
/// and a user's access key (sent as username and password).
#[derive(Clone)]
pub struct PasswordGrant {
    /// Token endpoint, e.g. `https://cxone.niceincontact.com/auth/token`.
    pub auth_url: String,
    /// The access key's id (the password grant's `username`).
    pub access_key_id: String,
    /// The access key's secret (the password grant's `password`; never logged).
    pub access_key_secret: SecretString,
    /// Versioned API path appended to the API endpoint, e.g. `v33.0`.
    pub api_version: String,
}

/// The Admin API version dncflow speaks unless the credentials name another.
pub const ADMIN_API_VERSION: &str = "v33.0";

/// OAuth credentials, the dialect, and where the tenant is.
#[derive(Clone)]
pub struct Credentials {
    /// The API dialect the tenant speaks.
    pub dialect: Dialect,
    /// v2: tenant base URL, e.g. `https://acme.my.cxone.com`. Admin: the API endpoint (e.g.
    /// `https://api-c32.incontact.com`), or empty to discover it from the token's tenant.
    pub base_url: String,
    /// The OAuth client id of the application registered with CXone.
    pub client_id: String,
    /// The OAuth client secret (a secret: never logged).
    pub client_secret: SecretString,
    /// Admin: the password grant (`None` for v2's client-credentials grant).
    pub password: Option<PasswordGrant>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("dialect", &self.dialect)
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field(
                "access_key_id",
                &self.password.as_ref().map(|p| p.access_key_id.as_str()),
            )
            .finish()
    }
}

/// The JSON form of credentials, as stored in Secrets Manager, a local file or `DNCFLOW_CXONE_CREDENTIALS`, one
/// shape for both dialects:
/// - v2 (or no `dialect`): `{"baseUrl": "https://acme.my.cxone.com", "clientId": "…", "clientSecret": "…"}`;
///   `tenant` may replace `baseUrl` (`https://{tenant}.my.cxone.com`);
/// - admin: `{"dialect": "admin", "authUrl": "https://cxone.niceincontact.com/auth/token", "baseUrl"?: "…",
///   "clientId", "clientSecret", "accessKeyId", "accessKeySecret", "apiVersion"?: "v33.0"}`.
///
/// snake_case names are accepted.
#[derive(Deserialize)]
struct CredentialsDoc {
    #[serde(default)]
    dialect: Option<Dialect>,
    #[serde(alias = "base_url")]
    #[serde(rename = "baseUrl", default)]
    base_url: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(rename = "clientId", alias = "client_id")]
    client_id: String,
    #[serde(rename = "clientSecret", alias = "client_secret")]
    client_secret: SecretString,
    #[serde(rename = "authUrl", alias = "auth_url", default)]
    auth_url: Option<String>,
    #[serde(rename = "accessKeyId", alias = "access_key_id", default)]
    access_key_id: Option<String>,
    #[serde(rename = "accessKeySecret", alias = "access_key_secret", default)]
    access_key_secret: Option<SecretString>,
    #[serde(rename = "apiVersion", alias = "api_version", default)]
    api_version: Option<String>,
}

impl Credentials {
    /// v2 credentials (client-credentials grant at `{base_url}/oauth/token`).
    pub fn v2(base_url: &str, client_id: &str, client_secret: &str) -> Credentials {
        Credentials {
            dialect: Dialect::V2,
            base_url: base_url.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret: SecretString::from(client_secret.to_string()),
            password: None,
        }
    }

    /// Admin API credentials (password grant at `auth_url`); `api_base` empty: discovered from the token's tenant.
    pub fn admin(
        auth_url: &str,
        api_base: &str,
        client: (&str, &str),
        access_key: (&str, &str),
    ) -> Credentials {
        Credentials {
            dialect: Dialect::Admin,
            base_url: api_base.trim_end_matches('/').to_string(),
            client_id: client.0.to_string(),
            client_secret: SecretString::from(client.1.to_string()),
            password: Some(PasswordGrant {
                auth_url: auth_url.to_string(),
                access_key_id: access_key.0.to_string(),
                access_key_secret: SecretString::from(access_key.1.to_string()),
                api_version: ADMIN_API_VERSION.to_string(),
            }),
        }
    }

    /// Parse the JSON form. Errors never quote the document (it holds the secret).
    pub fn from_json(text: &str, origin: &str) -> Result<Credentials, CxoneError> {
        let bad = |reason: String| CxoneError::Credentials {
            op: "load credentials",
            reason: format!("{origin}: {reason}"),
        };
        let doc: CredentialsDoc = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not a credentials document (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        match doc.dialect.unwrap_or(Dialect::V2) {
            Dialect::V2 => {
                let base_url = match (doc.base_url, doc.tenant) {
                    (Some(url), _) => url,
                    (None, Some(tenant)) => format!("https://{tenant}.my.cxone.com"),
                    (None, None) => return Err(bad("neither baseUrl nor tenant given".into())),
                };
                Ok(Credentials {
                    dialect: Dialect::V2,
                    base_url: base_url.trim_end_matches('/').to_string(),
                    client_id: doc.client_id,
                    client_secret: doc.client_secret,
                    password: None,
                })
            }
            Dialect::Admin => {
                let missing = |field: &str| bad(format!("dialect admin requires {field}"));
                Ok(Credentials {
                    dialect: Dialect::Admin,
                    base_url: doc
                        .base_url
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_string(),
                    client_id: doc.client_id,
                    client_secret: doc.client_secret,
                    password: Some(PasswordGrant {
                        auth_url: doc.auth_url.ok_or_else(|| missing("authUrl"))?,
                        access_key_id: doc.access_key_id.ok_or_else(|| missing("accessKeyId"))?,
                        access_key_secret: doc
                            .access_key_secret
                            .ok_or_else(|| missing("accessKeySecret"))?,
                        api_version: doc
                            .api_version
                            .unwrap_or_else(|| ADMIN_API_VERSION.to_string()),
                    }),
                })
            }
        }
    }
}

/// Where credentials come from.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Read the credentials (again).
    async fn load(&self) -> Result<Credentials, CxoneError>;
}

/// Fixed credentials (tests, the local run against the embedded simulator).
pub struct StaticCredentials(pub Credentials);

#[async_trait]
impl CredentialSource for StaticCredentials {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        Ok(self.0.clone())
    }
}

/// Credentials from `inner`, with the tenant's base URL replaced (`DNCFLOW_CXONE_URL` in Lambda, `--endpoint` in the
/// CLI): one secret can serve a tenant behind a proxy, or a test against an emulator.
pub struct WithBaseUrl<S> {
    /// Where the credentials come from.
    pub inner: S,
    /// The base URL to use instead of theirs; `None` keeps theirs.
    pub base_url: Option<String>,
}

#[async_trait]
impl<S: CredentialSource> CredentialSource for WithBaseUrl<S> {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        let mut c = self.inner.load().await?;
        if let Some(url) = &self.base_url {
            c.base_url = url.trim_end_matches('/').to_string();
        }
        Ok(c)
    }
}

#[async_trait]
impl CredentialSource for Box<dyn CredentialSource> {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        (**self).load().await
    }
}

/// A local JSON file in the form of [`Credentials::from_json`].
pub struct FileCredentials(pub PathBuf);

#[async_trait]
impl CredentialSource for FileCredentials {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        let origin = self.0.display().to_string();
        let text =
            tokio::fs::read_to_string(&self.0)
                .await
                .map_err(|e| CxoneError::Credentials {
                    op: "load credentials",
                    reason: format!("{origin}: {e}"),
                })?;
        Credentials::from_json(&text, &origin)
    }
}

/// `DNCFLOW_CXONE_CREDENTIALS` (the JSON document of [`Credentials::from_json`], either dialect), else the v2
/// variables `DNCFLOW_CXONE_BASE_URL`, `DNCFLOW_CXONE_CLIENT_ID`, `DNCFLOW_CXONE_CLIENT_SECRET`.
pub struct EnvCredentials;

#[async_trait]
impl CredentialSource for EnvCredentials {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        if let Ok(doc) = std::env::var("DNCFLOW_CXONE_CREDENTIALS") {
            return Credentials::from_json(&doc, "DNCFLOW_CXONE_CREDENTIALS");
        }
        let var = |name: &str| {
            std::env::var(name).map_err(|_| CxoneError::Credentials {
                op: "load credentials",
                reason: format!("{name} is not set"),
            })
        };
        Ok(Credentials::v2(
            &var("DNCFLOW_CXONE_BASE_URL")?,
            &var("DNCFLOW_CXONE_CLIENT_ID")?,
            &var("DNCFLOW_CXONE_CLIENT_SECRET")?,
        ))
    }
}

/// A JSON secret in AWS Secrets Manager, read with `aws-sdk-secretsmanager`.
pub struct SecretsManagerCredentials {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerCredentials {
    /// Read `secret_id` (name or ARN) with `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretsManagerCredentials {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// A client from the default AWS configuration; `endpoint_url` points it at an emulator.
    pub async fn from_env(secret_id: impl Into<String>, endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        Self::new(aws_sdk_secretsmanager::Client::new(&config), secret_id)
    }
}

#[async_trait]
impl CredentialSource for SecretsManagerCredentials {
    async fn load(&self) -> Result<Credentials, CxoneError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| CxoneError::Credentials {
                op: "load credentials",
                reason: format!(
                    "secret {}: {}",
                    self.secret_id,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ),
            })?;
        let text = out.secret_string().ok_or_else(|| CxoneError::Credentials {
            op: "load credentials",
            reason: format!("secret {} has no string value", self.secret_id),
        })?;
        Credentials::from_json(text, &format!("secret {}", self.secret_id))
    }
}

/// A bearer token and its generation (to tell a stale 401 from a fresh one).
#[derive(Clone)]
pub struct Token {
    /// The bearer token itself (a secret: never logged).
    pub value: SecretString,
    /// Increases with every token fetched.
    pub generation: u64,
}

struct Cached {
    token: Token,
    refresh_at: Instant,
    base_url: String,
}

/// Fetches, caches and refreshes tokens for one client.
pub struct TokenManager {
    http: reqwest::Client,
    source: Box<dyn CredentialSource>,
    scopes: String,
    backoff: std::sync::Arc<Backoff>,
    credentials: Mutex<Option<Credentials>>,
    cached: Mutex<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    requests: AtomicU64,
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: SecretString,
    /// Admin API: an OpenID id token whose claims name the tenant (for API discovery).
    #[serde(default)]
    pub(crate) id_token: Option<SecretString>,
    #[serde(default = "default_ttl")]
    pub(crate) expires_in: u64,
}

/// The discovery document's one field dncflow reads.
#[derive(Deserialize)]
pub(crate) struct Discovery {
    pub(crate) api_endpoint: String,
}

/// The token request of `creds`' grant: v2, client credentials in the form; admin, the registered application as
/// HTTP Basic and the user's access key as the password grant.
pub(crate) fn token_request(
    http: &reqwest::Client,
    creds: &Credentials,
    scopes: &str,
) -> reqwest::RequestBuilder {
    match &creds.password {
        None => http.post(format!("{}/oauth/token", creds.base_url)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose_secret()),
            ("scope", scopes),
        ]),
        Some(grant) => http
            .post(&grant.auth_url)
            .basic_auth(&creds.client_id, Some(creds.client_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "password"),
                ("username", grant.access_key_id.as_str()),
                ("password", grant.access_key_secret.expose_secret()),
            ]),
    }
}

/// The tenant a token names (the id token's `tenantId` claim, else the access token's).
pub(crate) fn tenant_of(body: &TokenResponse) -> Option<String> {
    body.id_token
        .as_ref()
        .and_then(|t| jwt_claim(t.expose_secret(), "tenantId"))
        .or_else(|| jwt_claim(body.access_token.expose_secret(), "tenantId"))
}

/// Where the tenant's discovery document is: `{auth origin}/.well-known/cxone-configuration`.
pub(crate) fn discovery_url(grant: &PasswordGrant) -> Option<String> {
    origin_of(&grant.auth_url).map(|o| format!("{o}/.well-known/cxone-configuration"))
}

/// The versioned API base of an API endpoint (`…/inContactAPI/services/v33.0`), unless it is one already.
pub(crate) fn versioned_api(endpoint: &str, grant: &PasswordGrant) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.contains("/inContactAPI/") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/inContactAPI/services/{}", grant.api_version)
    }
}

fn default_ttl() -> u64 {
    3600
}

#[derive(Deserialize, Default)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

/// Scopes the pipeline asks for.
pub const DEFAULT_SCOPES: &str = "dnc:read dnc:write tenant:read";

impl TokenManager {
    /// A manager fetching tokens with `http` for the credentials from `source`.
    pub fn new(
        http: reqwest::Client,
        source: Box<dyn CredentialSource>,
        scopes: &str,
        backoff: std::sync::Arc<Backoff>,
    ) -> TokenManager {
        TokenManager {
            http,
            source,
            scopes: scopes.to_string(),
            backoff,
            credentials: Mutex::new(None),
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Token requests sent so far.
    pub fn token_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn fresh(&self) -> Option<(Token, String)> {
        let guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|c| Instant::now() < c.refresh_at)
            .map(|c| (c.token.clone(), c.base_url.clone()))
    }

    /// A valid token and the tenant's base URL. Concurrent callers share one refresh.
    pub async fn token(&self) -> Result<(Token, String), CxoneError> {
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        let _single_flight = self.refresh.lock().await;
        if let Some(t) = self.fresh() {
            return Ok(t);
        }
        self.fetch().await
    }

    /// Drop the token of `generation` after CXone refused it; a newer one is kept.
    pub fn invalidate(&self, generation: u64) {
        let mut guard = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if guard
            .as_ref()
            .is_some_and(|c| c.token.generation == generation)
        {
            *guard = None;
        }
    }

    async fn credentials(&self, reload: bool) -> Result<Credentials, CxoneError> {
        if !reload {
            if let Some(c) = self
                .credentials
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return Ok(c);
            }
        }
        let c = self.source.load().await?;
        *self.credentials.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// The Admin API's versioned base URL: the configured API endpoint, else the one the tenant's discovery document
    /// names (`{auth origin}/.well-known/cxone-configuration?tenantId=` → `api_endpoint`), the tenant read from the
    /// token's claims.
    async fn admin_base(
        &self,
        creds: &Credentials,
        grant: &PasswordGrant,
        body: &TokenResponse,
    ) -> Result<String, CxoneError> {
        const OP: &str = "discover the API endpoint";
        if !creds.base_url.is_empty() {
            return Ok(versioned_api(&creds.base_url, grant));
        }
        let tenant = tenant_of(body).ok_or_else(|| CxoneError::Protocol {
            op: OP,
            message: "no baseUrl configured and the token names no tenantId".into(),
        })?;
        let url = discovery_url(grant).ok_or_else(|| CxoneError::Credentials {
            op: OP,
            reason: "authUrl is not an http(s) URL".into(),
        })?;
        let response = self
            .http
            .get(url)
            .query(&[("tenantId", tenant.as_str())])
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| CxoneError::Transport {
                op: OP,
                message: redact_reqwest(&e),
            })?;
        if !response.status().is_success() {
            return Err(CxoneError::Api {
                op: OP,
                status: response.status().as_u16(),
                code: String::new(),
                message: "discovery document unavailable".into(),
            });
        }
        let doc: Discovery = response.json().await.map_err(|_| CxoneError::Protocol {
            op: OP,
            message: "discovery document without api_endpoint".into(),
        })?;
        tracing::info!(op = OP, api_endpoint = %doc.api_endpoint, "API endpoint discovered");
        Ok(versioned_api(&doc.api_endpoint, grant))
    }

    async fn fetch(&self) -> Result<(Token, String), CxoneError> {
        const OP: &str = "request token";
        let mut reloaded = false;
        let mut attempts = 0u32;
        loop {
            let creds = self.credentials(false).await?;
            attempts += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let request = token_request(&self.http, &creds, &self.scopes);
            let sent = request.timeout(Duration::from_secs(30)).send().await;
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempts < 5 => {
                    tracing::warn!(op = OP, attempt = attempts, error = %redact_reqwest(&e), "token request failed, retrying");
                    tokio::time::sleep(self.backoff.delay(attempts)).await;
                    continue;
                }
                Err(e) => {
                    return Err(CxoneError::Exhausted {
                        op: OP,
                        attempts,
                        last: redact_reqwest(&e),
                    })
                }
            };
            let status = response.status();
            if status.is_success() {
                let body: TokenResponse =
                    response.json().await.map_err(|_| CxoneError::Protocol {
                        op: OP,
                        message: "token response is not the expected JSON".into(),
                    })?;
                let ttl = Duration::from_secs(body.expires_in.max(1));
                let base_url = match &creds.password {
                    None => creds.base_url.clone(),
                    Some(grant) => self.admin_base(&creds, grant, &body).await?,
                };
                let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                let token = Token {
                    value: body.access_token,
                    generation,
                };
                *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
                    token: token.clone(),
                    refresh_at: Instant::now() + ttl.mul_f64(0.8),
                    base_url: base_url.clone(),
                });
                tracing::debug!(
                    op = OP,
                    generation,
                    ttl_secs = ttl.as_secs(),
                    "token fetched"
                );
                return Ok((token, base_url));
            }
            let retry_after = retry_after(response.headers(), MAX_RETRY_AFTER);
            let err: OAuthError = response.json().await.unwrap_or_default();
            match (status.as_u16(), classify(status.as_u16())) {
                (401, _) if err.error == "invalid_client" && !reloaded => {
                    // The secret may have been rotated: read it again, once.
                    tracing::warn!(op = OP, "invalid_client: reloading credentials once");
                    reloaded = true;
                    self.credentials(true).await?;
                }
                (_, StatusClass::Throttled | StatusClass::Transient) if attempts < 6 => {
                    let wait = retry_after.unwrap_or_else(|| self.backoff.delay(attempts));
                    tracing::warn!(
                        op = OP,
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "token endpoint busy"
                    );
                    tokio::time::sleep(wait).await;
                }
                (400 | 401 | 403, _) => {
                    return Err(CxoneError::Unauthorized {
                        op: OP,
                        code: err.error,
                    })
                }
                (s, _) => {
                    return Err(CxoneError::Exhausted {
                        op: OP,
                        attempts,
                        last: format!("status {s} {}", err.error),
                    })
                }
            }
        }
    }
}

/// A string claim of a JWT's payload (not verified: it only says where to look; the API verifies the token).
fn jwt_claim(token: &str, claim: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match v.get(claim)? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_and_never_print_the_secret() {
        let c = Credentials::from_json(
            r#"{"tenant":"acme","clientId":"id-1","clientSecret":"s3cr3t-value"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.base_url, "https://acme.my.cxone.com");
        assert!(!format!("{c:?}").contains("s3cr3t-value"));
        let err =
            Credentials::from_json(r#"{"clientId":"id-1","clientSecret":"s3cr3t-value"}"#, "t")
                .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t-value"));
        let err =
            Credentials::from_json(r#"{"clientId":"id-1","clientSecret":"s3cr3t-value",}"#, "t")
                .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
    }

    #[test]
    fn admin_credentials_parse_and_name_what_is_missing() {
        let c = Credentials::from_json(
            r#"{"dialect":"admin","authUrl":"https://cxone.niceincontact.com/auth/token","clientId":"app",
                "clientSecret":"s3cr3t-app","accessKeyId":"AK","accessKeySecret":"s3cr3t-key"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.dialect, Dialect::Admin);
        assert_eq!(c.base_url, "");
        let g = c.password.as_ref().unwrap();
        assert_eq!(
            (g.access_key_id.as_str(), g.api_version.as_str()),
            ("AK", ADMIN_API_VERSION)
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let err = Credentials::from_json(
            r#"{"dialect":"admin","authUrl":"https://a/auth/token","clientId":"app","clientSecret":"s3cr3t-app",
                "accessKeySecret":"s3cr3t-key"}"#,
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("accessKeyId") && !err.contains("s3cr3t"),
            "{err}"
        );
        let v2 = Credentials::from_json(
            r#"{"dialect":"v2","baseUrl":"https://x/","clientId":"i","clientSecret":"s"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(
            (v2.dialect, v2.base_url.as_str()),
            (Dialect::V2, "https://x")
        );
    }

    #[test]
    fn jwt_claims_and_origins() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"tenantId":"11EA-TENANT","exp":1}"#);
        assert_eq!(
            jwt_claim(&format!("h.{payload}.sig"), "tenantId").as_deref(),
            Some("11EA-TENANT")
        );
        assert_eq!(jwt_claim("opaque-token", "tenantId"), None);
        assert_eq!(
            origin_of("https://cxone.niceincontact.com/auth/token").as_deref(),
            Some("https://cxone.niceincontact.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9/auth/token").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(origin_of("ftp://x/y"), None);
    }
}
