//! The CXone DNC API boundary.
//!
//! The pipeline depends on [`DncApi`] only, so the `v2` dialect of the contract ([`v2::V2Client`]) and the real
//! CXone Admin API (`dnc-groups`, next) can both sit behind it. Around the HTTP calls: credentials
//! ([`auth::CredentialSource`], Secrets Manager included), a single-flight token manager ([`auth::TokenManager`]),
//! a token-bucket rate limiter that a 429 pauses as a whole ([`limiter::RateLimiter`]), retries with full-jitter
//! backoff bounded by attempts and a deadline, and a circuit breaker ([`breaker::CircuitBreaker`]).

pub mod admin;
pub mod auth;
pub mod breaker;
mod create;
pub mod doctor;
pub mod limiter;
pub mod policy;
pub mod v2;

pub use create::{create_list_if_absent, create_rule_if_absent};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The API dialects the boundary admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The contract's `v2` dialect, as the source documents describe it.
    V2,
    /// The real CXone Admin API (`dnc-groups`).
    Admin,
}

/// A DNC list as CXone describes it (v2 `/dnc/lists`; the Admin API's DNC groups are mapped onto it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncList {
    /// CXone's id for the list (v2's list id, the Admin API's `dncGroupId`): what entries and rules name.
    pub id: String,
    /// The list's name, unique in the tenant: how dncflow finds a list by the name it is given.
    pub name: String,
    /// Free text shown beside the name (may be empty).
    #[serde(default)]
    pub description: String,
    /// `MANUAL` or `SYSTEM`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Expiration applied to entries that carry none.
    #[serde(default)]
    pub default_expiration_date: Option<String>,
    /// Whether the list is active.
    #[serde(default)]
    pub is_active: bool,
}

/// A list to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewList {
    /// The list's name, unique in the tenant.
    pub name: String,
    /// Free text shown beside the name (may be empty).
    pub description: String,
    /// `MANUAL` or `SYSTEM`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Expiration applied to entries that carry none.
    pub default_expiration_date: String,
    /// Whether the list is active.
    pub is_active: bool,
}

/// Which calls a DNC rule applies to (`scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RuleScope {
    /// Inbound calls only: suppresses no outbound call.
    Inbound,
    /// Outbound calls only.
    Outbound,
    /// Both directions (the source document's recommendation).
    Both,
    /// A scope this client does not know (a newer API): never taken for outbound suppression.
    #[serde(other)]
    Unknown,
}

impl RuleScope {
    /// Whether the rule suppresses outbound calls.
    pub fn covers_outbound(self) -> bool {
        matches!(self, RuleScope::Outbound | RuleScope::Both)
    }
}

impl std::fmt::Display for RuleScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleScope::Inbound => "INBOUND",
            RuleScope::Outbound => "OUTBOUND",
            RuleScope::Both => "BOTH",
            RuleScope::Unknown => "UNKNOWN",
        })
    }
}

/// What a DNC rule does to a matching call (`action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RuleAction {
    /// The call is not placed.
    Block,
    /// The call is allowed (an exception list).
    Allow,
    /// An action this client does not know: never taken for suppression.
    #[serde(other)]
    Unknown,
}

impl std::fmt::Display for RuleAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleAction::Block => "BLOCK",
            RuleAction::Allow => "ALLOW",
            RuleAction::Unknown => "UNKNOWN",
        })
    }
}

/// A DNC rule: which lists suppress which traffic, in which priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncRule {
    /// Id (empty for a rule to create).
    #[serde(default)]
    pub id: String,
    /// Its name, unique in the tenant (what the provisioning file and the runs refer to).
    pub name: String,
    /// Free text shown beside the name (may be empty).
    #[serde(default)]
    pub description: String,
    /// Which calls it applies to.
    pub scope: RuleScope,
    /// Lower is evaluated first.
    pub priority: i64,
    /// Lists, strict suppression first, exception lists last.
    pub list_ids: Vec<String>,
    /// What it does to a matching call.
    pub action: RuleAction,
    /// Whether the rule is active.
    #[serde(default)]
    pub is_active: bool,
}

impl DncRule {
    /// Whether the rule suppresses outbound calls to numbers on `list_id`.
    pub fn blocks_outbound(&self, list_id: &str) -> bool {
        self.is_active
            && self.action == RuleAction::Block
            && self.scope.covers_outbound()
            && self.list_ids.iter().any(|l| l == list_id)
    }
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInput {
    /// The number in E.164 (`+12025550198`).
    pub phone_number: String,
    /// Where the opt-out applies: an ISO 3166-1 country (`GB`) or 3166-2 subdivision (`US-TX`).
    pub jurisdiction: String,
    /// RFC 3339 UTC, or `None` for the list's default.
    pub expiration_date: Option<String>,
    /// Where the number came from.
    pub source: String,
    /// Deterministic key (see [`idempotency_key`]).
    pub idempotency_key: String,
}

/// What CXone did with one entry: defined with the ledger that records it (`run::ledger`).
pub use crate::run::EntryOutcome;

/// An entry as CXone holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteEntry {
    /// CXone's record id of the entry.
    pub id: String,
    /// E.164.
    pub phone_number: String,
    /// The id of the list (or group) holding the entry.
    pub list_id: String,
    /// Where the opt-out applies (`US-TX`, `GB`, …), as the normalize step tagged it.
    #[serde(default)]
    pub jurisdiction: String,
    /// When the entry stops suppressing (RFC 3339), if it expires.
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// The source the entry came from (the file's source tag); kept when the entry is sent again.
    #[serde(default)]
    pub source: String,
    /// When CXone created the record (RFC 3339), when the dialect says.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One page of a list's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPage {
    /// The page's entries, in CXone's order.
    pub entries: Vec<RemoteEntry>,
    /// Offset of the page.
    pub offset: u64,
    /// Total entries on the list.
    pub total: u64,
}

/// One number to check before dialing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactQuery {
    /// E.164.
    pub phone_number: String,
    /// The number's region (ISO 3166-1, e.g. `US`).
    pub region_code: String,
    /// Lists to check (empty: all).
    pub list_ids: Vec<String>,
    /// `exact` or `prefix`; dncflow always asks `exact`.
    pub match_type: String,
}

/// Verdict of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// On a list a BLOCK rule applies to: do not dial.
    Suppressed,
    /// On no list a BLOCK rule applies to, as far as CXone knows (dncflow's own check may still suppress it).
    Allowed,
    /// CXone could not check it.
    Error,
}

/// CXone's answer for one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactResult {
    /// The number as sent.
    pub phone_number: String,
    /// The answer: suppressed, allowed, invalid or error.
    pub status: CheckStatus,
    /// What went wrong, as the service or the parser said it.
    #[serde(default)]
    pub reason: String,
    /// The lists that hold the number, as CXone names them.
    #[serde(default)]
    pub list_matches: Vec<String>,
}

/// CXone's check results in the order of `queries`, paired by phone number, never by position: a result for a number
/// that was not asked, a number asked twice or answered twice, or a number left unanswered is a protocol error (the
/// caller answers every number of the call `error`). The echoed number is compared as E.164, so a reformatted echo
/// of the same number still pairs.
pub fn pair_check_results(
    queries: &[ContactQuery],
    results: Vec<ContactResult>,
) -> Result<Vec<ContactResult>, String> {
    use std::collections::HashMap;
    let key = |n: &str| {
        crate::phone::Normalizer::new(crate::phone::DefaultRegion::US)
            .normalize(n)
            .map(|x| x.e164.to_string())
            .unwrap_or_else(|_| n.to_string())
    };
    if results.len() != queries.len() {
        return Err(format!(
            "{} results for {} numbers asked",
            results.len(),
            queries.len()
        ));
    }
    let mut by_number: HashMap<String, ContactResult> = HashMap::with_capacity(results.len());
    for r in results {
        if by_number.insert(key(&r.phone_number), r).is_some() {
            return Err("a number is answered twice".into());
        }
    }
    queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            by_number
                .remove(&key(&q.phone_number))
                .ok_or_else(|| format!("no result for the number asked at position {i}"))
        })
        .collect()
}

/// Most entries one write request may carry.
pub const MAX_ENTRIES_PER_REQUEST: usize = 100;
/// Most contacts one check request may carry.
pub const MAX_CONTACTS_PER_REQUEST: usize = 1000;
/// Most entries one page may hold.
pub const MAX_PAGE: u32 = 1000;

/// Errors of the CXone boundary. Messages name the operation; they never carry a secret or a token.
#[derive(Debug, Error)]
pub enum CxoneError {
    /// Credentials could not be loaded.
    #[error("{op}: credentials unavailable: {reason}")]
    Credentials {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// What went wrong, as the service or the parser said it.
        reason: String,
    },
    /// CXone refused the credentials or the token.
    #[error("{op}: authentication rejected by CXone ({code})")]
    Unauthorized {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// `invalid_client`, `invalid_token`, `invalid_scope`, …
        code: String,
    },
    /// A non-retryable API answer.
    #[error("{op}: CXone answered {status} {code}: {message}")]
    Api {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// The HTTP status CXone answered.
        status: u16,
        /// CXone's error code (empty when it gave none).
        code: String,
        /// CXone's message, as it gave it.
        message: String,
    },
    /// The batch is too large even for one entry.
    #[error("{op}: payload too large")]
    PayloadTooLarge {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
    },
    /// A transport failure on a request that is not safe to repeat.
    #[error("{op}: transport error: {message}")]
    Transport {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// The transport's error, as text (no credential or token in it).
        message: String,
    },
    /// Retries ran out (attempts or deadline).
    #[error("{op}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// Attempts made, the first included.
        attempts: u32,
        /// The last attempt's failure, as text.
        last: String,
    },
    /// The circuit breaker stayed open past the request's deadline: consecutive requests failed after their retries
    /// and the half-open trials since failed too.
    #[error("{op}: circuit breaker open after {failures} consecutive failed requests")]
    CircuitOpen {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// Consecutive failed requests that opened it.
        failures: u32,
    },
    /// The response could not be understood.
    #[error("{op}: unexpected response: {message}")]
    Protocol {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// What did not decode or was missing, without the body's values.
        message: String,
    },
    /// The caller asked for something the API cannot do.
    #[error("{op}: {message}")]
    InvalidInput {
        /// The API operation that failed (e.g. `add_entries`), named in the log and the error.
        op: &'static str,
        /// What the dialect cannot do, or what was wrong with the request.
        message: String,
    },
}

impl CxoneError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            CxoneError::Transport { .. }
            | CxoneError::Exhausted { .. }
            | CxoneError::CircuitOpen { .. } => true,
            CxoneError::Api { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }
}

/// How a dialect writes numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NumberFormat {
    /// `+` and up to 15 digits, any country.
    E164,
    /// Ten digits, North American Numbering Plan only: any other number cannot be held (a dead letter).
    Nanp10,
}

/// What a dialect can do: data the pipeline reads instead of asking which dialect it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// A batch check endpoint answers whether numbers are suppressed (else `check` answers from what dncflow has
    /// verified, and the canary probes numbers one by one).
    pub batch_check: bool,
    /// Writes carry idempotency keys (else a re-run skips what the list is known to hold, and a lost answer is
    /// settled by reading the list back).
    pub idempotency_keys: bool,
    /// Entries keep jurisdiction and source (else only the number and its expiration: reconcile compares those).
    pub entry_metadata: bool,
    /// Most entries one write request carries (a 413 halves it further).
    pub max_batch: usize,
    /// How numbers are written.
    pub numbers: NumberFormat,
}

/// Whether writing to a list suppresses outbound calls, and why (or why not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// Outbound calls to the list's numbers are blocked.
    pub suppressing: bool,
    /// What binds the list: rule names (v2) or scrubbed outbound skills (admin); or what is missing.
    pub detail: String,
}

impl Suppression {
    /// Suppressing when anything binds the list: `bound` names what does (`"{what} a, b"`), else `missing` says
    /// what is absent.
    pub fn by(bound: &[String], what: &str, missing: &str) -> Suppression {
        if bound.is_empty() {
            Suppression {
                suppressing: false,
                detail: missing.to_string(),
            }
        } else {
            Suppression {
                suppressing: true,
                detail: format!("{what} {}", bound.join(", ")),
            }
        }
    }
}

/// What a CXone environment holds, against its record cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holdings {
    /// Records on DNC lists or groups.
    pub dnc_records: u64,
    /// Records on calling lists, where readable.
    pub calling_list_records: u64,
    /// What could not be counted (e.g. calling lists without the permission to read them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncounted: Vec<String>,
}

impl Holdings {
    /// Records held in all (DNC and calling lists): what counts against [`crate::steps::CXONE_CAPACITY`].
    pub fn total(&self) -> u64 {
        self.dnc_records + self.calling_list_records
    }
}

fn unsupported(op: &'static str, dialect: Dialect) -> CxoneError {
    CxoneError::InvalidInput {
        op,
        message: format!("not offered by the {dialect:?} dialect"),
    }
}

/// What the pipeline needs from CXone, whatever the dialect. The dialect-specific calls (rules, the batch check)
/// answer `InvalidInput` where the dialect has none; the pipeline asks [`DncApi::capabilities`] first.
#[async_trait]
pub trait DncApi: Send + Sync {
    /// The dialect this client speaks (v2 or the Admin API).
    fn dialect(&self) -> Dialect;
    /// What the dialect can do.
    fn capabilities(&self) -> Capabilities;
    /// How long one request may take, its token, retries and waits included (the client's deadline): a caller
    /// that sends several bounds the whole with it too (the check's CXone phase).
    fn request_deadline(&self) -> std::time::Duration {
        policy::ClientConfig::default().deadline
    }
    /// Every list (v2) or group (admin).
    async fn lists(&self) -> Result<Vec<DncList>, CxoneError>;
    /// One list by id, `None` if it does not exist.
    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError>;
    /// Create a list (v2) or a DNC group (admin) and return it with its new id.
    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError>;
    /// Whether writing to `list` suppresses outbound calls: v2, an active BLOCK rule of scope OUTBOUND or BOTH names
    /// it; admin, the group is active and at least one active outbound skill scrubs it.
    async fn suppression(&self, list: &DncList) -> Result<Suppression, CxoneError>;
    /// Make `list` suppress outbound calls (for first-time setups and the embedded simulator): v2, one consolidated
    /// BLOCK rule of scope BOTH; admin, the group scrubbed by `skills` (names or ids; none: every active outbound
    /// skill). Returns what was done.
    async fn bind_outbound(
        &self,
        list: &DncList,
        skills: &[String],
    ) -> Result<Vec<String>, CxoneError>;
    /// Write entries (split into requests of at most [`Capabilities::max_batch`]); one outcome per input, in order.
    async fn upload_batch(
        &self,
        list_id: &str,
        entries: &[EntryInput],
    ) -> Result<Vec<EntryOutcome>, CxoneError>;
    /// One page of a list's entries, in a stable order.
    async fn list_entries(
        &self,
        list_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<EntryPage, CxoneError>;
    /// For each number, whether CXone answers it suppressed by `list_id` now (the canary).
    async fn probe(&self, list_id: &str, numbers: &[String]) -> Result<Vec<bool>, CxoneError>;
    /// What the environment holds, for the record cap.
    async fn holdings(&self) -> Result<Holdings, CxoneError> {
        let mut h = Holdings::default();
        for list in self.lists().await? {
            h.dnc_records += self.list_entries(&list.id, 0, 1).await?.total;
        }
        h.uncounted
            .push("calling lists (not readable through this dialect)".into());
        Ok(h)
    }

    /// Every rule (v2 only).
    async fn rules(&self) -> Result<Vec<DncRule>, CxoneError> {
        Err(unsupported("list DNC rules", self.dialect()))
    }
    /// Create a rule (v2 only).
    async fn create_rule(&self, _rule: &DncRule) -> Result<DncRule, CxoneError> {
        Err(unsupported("create DNC rule", self.dialect()))
    }
    /// Replace a rule (v2 only).
    async fn update_rule(&self, _id: &str, _rule: &DncRule) -> Result<DncRule, CxoneError> {
        Err(unsupported("update DNC rule", self.dialect()))
    }
    /// Check at most [`MAX_CONTACTS_PER_REQUEST`] numbers; one result per query, in order (dialects with
    /// [`Capabilities::batch_check`] only).
    async fn check_contacts(
        &self,
        _contacts: &[ContactQuery],
    ) -> Result<Vec<ContactResult>, CxoneError> {
        Err(unsupported("check contacts", self.dialect()))
    }

    /// Find a list by name.
    async fn find_list(&self, name: &str) -> Result<Option<DncList>, CxoneError> {
        Ok(self.lists().await?.into_iter().find(|l| l.name == name))
    }
}

/// A source that hands out credentials already read once, then reads them again from `inner` (a rotation).
struct Preloaded {
    first: std::sync::Mutex<Option<auth::Credentials>>,
    inner: Box<dyn auth::CredentialSource>,
}

#[async_trait]
impl auth::CredentialSource for Preloaded {
    async fn load(&self) -> Result<auth::Credentials, CxoneError> {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        match first {
            Some(c) => Ok(c),
            None => self.inner.load().await,
        }
    }
}

/// The client for the dialect the credentials name (`"dialect"` in the document; v2 when absent). The credentials
/// are read once here to learn it, and that reading is the client's first.
pub async fn connect(
    source: Box<dyn auth::CredentialSource>,
    config: policy::ClientConfig,
) -> Result<Box<dyn DncApi>, CxoneError> {
    let creds = source.load().await?;
    let dialect = creds.dialect;
    let source = Box::new(Preloaded {
        first: std::sync::Mutex::new(Some(creds)),
        inner: source,
    });
    Ok(match dialect {
        Dialect::V2 => Box::new(v2::V2Client::new(source, config)?),
        Dialect::Admin => Box::new(admin::AdminClient::new(source, config)?),
    })
}

/// An id as one path segment: every byte but RFC 3986's unreserved ones percent-encoded.
pub(crate) fn path_segment(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Deterministic idempotency key of an entry: a hash of the list id, the E.164 number and the run's logical source
/// version (the content hash of the drop), so a re-run of the same drop re-sends the same keys.
pub fn idempotency_key(list_id: &str, e164: &str, source_version: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [list_id, e164, source_version] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("dncflow-{}", &hex::encode(h.finalize())[..40])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_one_path_segment() {
        assert_eq!(
            path_segment("a b/c?d#e-_.~é"),
            "a%20b%2Fc%3Fd%23e-_.~%C3%A9"
        );
    }

    #[test]
    fn idempotency_keys_are_deterministic_and_distinct() {
        let a = idempotency_key("list-1", "+12025550198", "sha-a");
        assert_eq!(a, idempotency_key("list-1", "+12025550198", "sha-a"));
        assert_ne!(a, idempotency_key("list-2", "+12025550198", "sha-a"));
        assert_ne!(a, idempotency_key("list-1", "+12025550199", "sha-a"));
        assert_ne!(a, idempotency_key("list-1", "+12025550198", "sha-b"));
        assert!(a.len() <= 128);
    }

    #[test]
    fn outbound_block_rule() {
        let rule = DncRule {
            id: "r".into(),
            name: "n".into(),
            description: String::new(),
            scope: RuleScope::Both,
            priority: 5,
            list_ids: vec!["l1".into()],
            action: RuleAction::Block,
            is_active: true,
        };
        assert!(rule.blocks_outbound("l1"));
        assert!(!rule.blocks_outbound("l2"));
        assert!(!DncRule {
            scope: RuleScope::Inbound,
            ..rule.clone()
        }
        .blocks_outbound("l1"));
        assert!(!DncRule {
            action: RuleAction::Allow,
            ..rule
        }
        .blocks_outbound("l1"));
    }

    /// A rule whose scope or action this client does not know is read, not refused, and never counted as
    /// suppressing outbound calls; the known ones read and write as CXone spells them.
    #[test]
    fn unknown_rule_scopes_and_actions_never_suppress() {
        let rule: DncRule = serde_json::from_value(serde_json::json!({
            "name": "r", "scope": "PREVIEW_ONLY", "priority": 1, "listIds": ["l"], "action": "BLOCK",
            "isActive": true
        }))
        .unwrap();
        assert_eq!(rule.scope, RuleScope::Unknown);
        assert!(!rule.scope.covers_outbound());
        let rule: DncRule = serde_json::from_value(serde_json::json!({
            "name": "r", "scope": "BOTH", "priority": 1, "listIds": ["l"], "action": "THROTTLE",
            "isActive": true
        }))
        .unwrap();
        assert_eq!(rule.action, RuleAction::Unknown);
        assert!(!rule.blocks_outbound("l"));
        let block = serde_json::to_value(RuleAction::Block).unwrap();
        assert_eq!(block, "BLOCK");
        assert_eq!(
            serde_json::to_value(RuleScope::Outbound).unwrap(),
            "OUTBOUND"
        );
    }
}
