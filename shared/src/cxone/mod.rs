//! The CXone DNC API boundary.
//!
//! The pipeline depends on [`DncApi`] only, so the `v2` dialect of the contract ([`v2::V2Client`]) and the real
//! CXone Admin API (`dnc-groups`, next) can both sit behind it. Around the HTTP calls: credentials
//! ([`auth::CredentialSource`], Secrets Manager included), a single-flight token manager ([`auth::TokenManager`]),
//! a token-bucket rate limiter that a 429 pauses as a whole ([`limiter::RateLimiter`]), retries with full-jitter
//! backoff bounded by attempts and a deadline, and a circuit breaker ([`breaker::CircuitBreaker`]).

pub mod auth;
pub mod breaker;
pub mod limiter;
pub mod v2;

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

/// A DNC list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncList {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description.
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
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `MANUAL` or `SYSTEM`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Expiration applied to entries that carry none.
    pub default_expiration_date: String,
    /// Whether the list is active.
    pub is_active: bool,
}

/// A DNC rule: which lists suppress which traffic, in which priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DncRule {
    /// Id (empty for a rule to create).
    #[serde(default)]
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `INBOUND`, `OUTBOUND` or `BOTH`.
    pub scope: String,
    /// Lower is evaluated first.
    pub priority: i64,
    /// Lists, strict suppression first, exception lists last.
    pub list_ids: Vec<String>,
    /// `BLOCK` or `ALLOW`.
    pub action: String,
    /// Whether the rule is active.
    #[serde(default)]
    pub is_active: bool,
}

impl DncRule {
    /// Whether the rule suppresses outbound calls to numbers on `list_id`.
    pub fn blocks_outbound(&self, list_id: &str) -> bool {
        self.is_active
            && self.action == "BLOCK"
            && (self.scope == "OUTBOUND" || self.scope == "BOTH")
            && self.list_ids.iter().any(|l| l == list_id)
    }
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInput {
    /// E.164.
    pub phone_number: String,
    /// ISO 3166-1/-2.
    pub jurisdiction: String,
    /// RFC 3339 UTC, or `None` for the list's default.
    pub expiration_date: Option<String>,
    /// Where the number came from.
    pub source: String,
    /// Deterministic key (see [`idempotency_key`]).
    pub idempotency_key: String,
}

/// What CXone did with one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum EntryOutcome {
    /// A new record.
    Created {
        /// Record id.
        id: String,
    },
    /// The number was already on the list (or the key was replayed): no new record.
    Exists {
        /// Record id.
        id: String,
    },
    /// Rejected by CXone with a validation code.
    Rejected {
        /// `INVALID_PHONE_NUMBER`, `INVALID_JURISDICTION`, `INVALID_EXPIRATION`, `UNKNOWN_LIST`,
        /// `IDEMPOTENCY_CONFLICT`, …
        code: String,
        /// CXone's message.
        message: String,
    },
    /// The response did not mention the entry: neither written nor rejected as far as we know.
    Unconfirmed,
}

/// An entry as CXone holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteEntry {
    /// Record id.
    pub id: String,
    /// E.164.
    pub phone_number: String,
    /// List id.
    pub list_id: String,
    /// Jurisdiction.
    #[serde(default)]
    pub jurisdiction: String,
    /// Expiration.
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// Source.
    #[serde(default)]
    pub source: String,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// One page of a list's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPage {
    /// The entries.
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
    /// Region, e.g. `US`.
    pub region_code: String,
    /// Lists to check (empty: all).
    pub list_ids: Vec<String>,
    /// `exact` or `prefix`.
    pub match_type: String,
}

/// Verdict of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// On a list a BLOCK rule applies to: do not dial.
    Suppressed,
    /// Not suppressed.
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
    /// Verdict.
    pub status: CheckStatus,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Lists that matched.
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
        /// Operation.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// CXone refused the credentials or the token.
    #[error("{op}: authentication rejected by CXone ({code})")]
    Unauthorized {
        /// Operation.
        op: &'static str,
        /// `invalid_client`, `invalid_token`, `invalid_scope`, …
        code: String,
    },
    /// A non-retryable API answer.
    #[error("{op}: CXone answered {status} {code}: {message}")]
    Api {
        /// Operation.
        op: &'static str,
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Message.
        message: String,
    },
    /// The batch is too large even for one entry.
    #[error("{op}: payload too large")]
    PayloadTooLarge {
        /// Operation.
        op: &'static str,
    },
    /// A transport failure on a request that is not safe to repeat.
    #[error("{op}: transport error: {message}")]
    Transport {
        /// Operation.
        op: &'static str,
        /// What happened.
        message: String,
    },
    /// Retries ran out (attempts or deadline).
    #[error("{op}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        /// Operation.
        op: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The circuit breaker is open: CXone answered too many consecutive 5xx.
    #[error("{op}: circuit breaker open after {failures} consecutive server errors")]
    CircuitOpen {
        /// Operation.
        op: &'static str,
        /// Consecutive failures that opened it.
        failures: u32,
    },
    /// The response could not be understood.
    #[error("{op}: unexpected response: {message}")]
    Protocol {
        /// Operation.
        op: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The caller asked for something the API cannot do.
    #[error("{op}: {message}")]
    InvalidInput {
        /// Operation.
        op: &'static str,
        /// What was wrong.
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

/// What the pipeline needs from CXone, whatever the dialect.
#[async_trait]
pub trait DncApi: Send + Sync {
    /// The dialect spoken.
    fn dialect(&self) -> Dialect;
    /// Every list.
    async fn lists(&self) -> Result<Vec<DncList>, CxoneError>;
    /// One list by id, `None` if it does not exist.
    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError>;
    /// Create a list.
    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError>;
    /// Every rule.
    async fn rules(&self) -> Result<Vec<DncRule>, CxoneError>;
    /// Create a rule.
    async fn create_rule(&self, rule: &DncRule) -> Result<DncRule, CxoneError>;
    /// Replace a rule.
    async fn update_rule(&self, id: &str, rule: &DncRule) -> Result<DncRule, CxoneError>;
    /// Write at most [`MAX_ENTRIES_PER_REQUEST`] entries (a larger batch is split); one outcome per input, in order.
    async fn upload_batch(
        &self,
        list_id: &str,
        entries: &[EntryInput],
    ) -> Result<Vec<EntryOutcome>, CxoneError>;
    /// One page of a list's entries, in creation order.
    async fn list_entries(
        &self,
        list_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<EntryPage, CxoneError>;
    /// Check at most [`MAX_CONTACTS_PER_REQUEST`] numbers; one result per query, in order.
    async fn check_contacts(
        &self,
        contacts: &[ContactQuery],
    ) -> Result<Vec<ContactResult>, CxoneError>;

    /// Find a list by name.
    async fn find_list(&self, name: &str) -> Result<Option<DncList>, CxoneError> {
        Ok(self.lists().await?.into_iter().find(|l| l.name == name))
    }
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
            scope: "BOTH".into(),
            priority: 5,
            list_ids: vec!["l1".into()],
            action: "BLOCK".into(),
            is_active: true,
        };
        assert!(rule.blocks_outbound("l1"));
        assert!(!rule.blocks_outbound("l2"));
        assert!(!DncRule {
            scope: "INBOUND".into(),
            ..rule.clone()
        }
        .blocks_outbound("l1"));
        assert!(!DncRule {
            action: "ALLOW".into(),
            ..rule
        }
        .blocks_outbound("l1"));
    }
}
