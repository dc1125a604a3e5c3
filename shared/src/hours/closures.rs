//! Operator closures: dated periods in which a jurisdiction allows no call, which no table can know in advance
//! (Louisiana bans telephone solicitation while a declared state emergency is in force; Louisiana's governor, and
//! Rhode Island's and Utah's governor or the President, may appoint extra holidays). An operator adds them without a
//! release (`dncctl hours closure add`): one document in the bucket (`run::HOURS_CLOSURES`), read by the check like
//! the registries, reloaded when it changes, its version recorded in every audit record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Policy;

/// Every jurisdiction (a closure of all calls).
pub const ALL: &str = "*";

/// One closure: no call to a number under `jurisdiction` in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Closure {
    /// Names the closure (`dncctl hours closure remove ID`).
    pub id: String,
    /// A jurisdiction of the policy (`US-LA`, `US`, `CA`) or a state or province a NANP area code serves (`US-DC`),
    /// or `*` for every one. It closes numbers whose area code or address is there, and numbers with no place.
    pub jurisdiction: String,
    /// The first instant the closure applies (inclusive).
    pub start: DateTime<Utc>,
    /// Until (exclusive): the first instant calls may resume.
    pub end: DateTime<Utc>,
    /// Why (a proclamation, a declared emergency).
    pub reason: String,
    /// Where it is published (http or https URL).
    pub source: String,
    /// When it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<DateTime<Utc>>,
}

/// `config/hours-closures.json`: the operator's dated closures (`dncctl hours closure`), read by every check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClosuresFile {
    /// Every closure, past ones included (they are the record of what was closed when).
    pub closures: Vec<Closure>,
}

/// A closures document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    /// Not the document's JSON shape.
    #[error("hours closures: {0}")]
    Json(#[from] serde_json::Error),
    /// A closure the policy cannot apply.
    #[error("hours closure {id:?}: {why}")]
    Invalid {
        /// The closure's id, as `dncctl hours closure list` shows it.
        id: String,
        /// What makes it unusable (unknown jurisdiction, end before start, …), for the operator to correct.
        why: String,
    },
}

impl ClosuresFile {
    /// Read and check a document against `policy`: every closure names a jurisdiction it has, ends after it starts,
    /// says why and where it is published, and ids are unique.
    pub fn from_json(bytes: &[u8], policy: &Policy) -> Result<ClosuresFile, ClosureError> {
        let file: ClosuresFile = serde_json::from_slice(bytes)?;
        file.validate(policy)?;
        Ok(file)
    }

    /// Check every closure against `policy`: a known jurisdiction, an end after its start, a reason and where it is
    /// published, unique ids (what [`ClosuresFile::from_json`] does after parsing).
    pub fn validate(&self, policy: &Policy) -> Result<(), ClosureError> {
        let mut ids = std::collections::HashSet::new();
        for c in &self.closures {
            let invalid = |why: String| ClosureError::Invalid {
                id: c.id.clone(),
                why,
            };
            if c.id.trim().is_empty() || !ids.insert(c.id.as_str()) {
                return Err(invalid("ids are unique and not empty".into()));
            }
            if c.jurisdiction != ALL && !policy.has_jurisdiction(&c.jurisdiction) {
                return Err(invalid(format!(
                    "no jurisdiction {:?}: a code of the calling-hours policy or a NANP state or province",
                    c.jurisdiction
                )));
            }
            if c.end <= c.start {
                return Err(invalid("ends before it starts".into()));
            }
            if c.reason.trim().is_empty() {
                return Err(invalid("a reason is required".into()));
            }
            if !(c.source.starts_with("https://") || c.source.starts_with("http://")) {
                return Err(invalid(
                    "the source is the URL where it is published".into(),
                ));
            }
        }
        Ok(())
    }

    /// The document as stored (pretty JSON, one closure a block).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The closures a check applies, with the version of the document they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadedClosures {
    /// `sha256:` of the document's bytes (`none` when there is no document).
    pub version: String,
    /// The closures in force or to come, as the document holds them (past ones included).
    pub closures: Vec<Closure>,
}

impl LoadedClosures {
    /// From the stored bytes (`None`: no document, no closures).
    pub fn from_bytes(
        bytes: Option<&[u8]>,
        policy: &Policy,
    ) -> Result<LoadedClosures, ClosureError> {
        match bytes {
            None => Ok(LoadedClosures {
                version: "none".into(),
                closures: Vec::new(),
            }),
            Some(b) => Ok(LoadedClosures {
                version: format!("sha256:{}", hex::encode(Sha256::digest(b))),
                closures: ClosuresFile::from_json(b, policy)?.closures,
            }),
        }
    }

    /// What applies when the document cannot be read: a closure of every call, so nothing is callable until it is
    /// (the closures an operator added are unknown).
    pub fn unreadable(why: &str) -> LoadedClosures {
        LoadedClosures {
            version: "unreadable".into(),
            closures: vec![Closure {
                id: "closures-unreadable".into(),
                jurisdiction: ALL.into(),
                start: DateTime::<Utc>::MIN_UTC,
                end: DateTime::<Utc>::MAX_UTC,
                reason: format!("the operator closures could not be read: {why}"),
                source: "https://invalid.example/".into(),
                added_at: None,
            }],
        }
    }
}
