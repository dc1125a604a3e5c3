//! Registries (the National Do Not Call Registry, state lists) as a suppression index in the object store.
//!
//! A registry never goes to CXone (the national one holds ~258 M numbers; a CXone environment holds 1 M records):
//! it becomes one compact file per area code ([`index::AreaIndex`]) under an immutable version,
//! `registry/<name>/<version>/`, with a [`RegistryManifest`] accounting for every line read; `current.json` names
//! the live version and is swapped last, conditionally, so two concurrent applies cannot lose each other's changes.
//! [`import`] builds a version from full downloads, [`apply`] a new one from change lists (rewriting only the area
//! codes they touch, the others carried by reference), [`status`] reports freshness, and [`load`] brings the live
//! version into memory for `check`. The Telemarketing Sales Rule's safe harbor needs a copy no older than 31 days:
//! a stale registry makes `check` answer `error` for the numbers it covers, never `allowed`.

pub mod build;
pub mod fanout;
pub mod index;
mod inputs;
mod load;
mod versions;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::adapters::store::{ObjectStore, StoreError};
use crate::run::RegistryKeys;
use build::{AreaRules, Builder, Change, Rejects};
pub use build::{ChangeCounts, ImportCounts, RejectedLine};
pub use index::{AreaIndex, DenseArea, IndexError};
pub use inputs::*;
pub use load::*;
pub use versions::*;

/// The safe harbor's limit: a registry copy used for a call is at most this old.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 31;
/// The alarm fires this long before a registry goes stale.
pub const WARN_DAYS_BEFORE: u32 = 7;
const FORMAT: u32 = 1;

/// Failures of registry work. The variant is the kind Step Functions and the CLI name.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The registry name is not `[a-z0-9_-]{1,64}`.
    #[error("invalid registry name {0:?}: use 1-64 characters of a-z, 0-9, '-' and '_'")]
    BadName(String),
    /// No live version.
    #[error("registry {0:?} has no live version (nothing imported yet)")]
    NotFound(String),
    /// An input could not be read.
    #[error("cannot read {path}: {reason}")]
    Input {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A change list older than the registry's as-of (applying it would undo newer changes).
    #[error("change list {file} is as of {list_as_of}, older than registry {registry}'s as-of {registry_as_of}: refused (use --force to apply it anyway)")]
    OutOfOrder {
        /// Registry.
        registry: String,
        /// The change list.
        file: String,
        /// Its latest change.
        list_as_of: DateTime<Utc>,
        /// The live version's as-of.
        registry_as_of: DateTime<Utc>,
    },
    /// A full import that covers less than the live version (area codes missing, or under 90 % of its numbers).
    #[error("the new import of registry {registry} covers less than the live version ({after} numbers against {before}; area codes missing: {missing:?}): refused, nothing changed (a partial download? use --force to replace it anyway)")]
    Shrinks {
        /// Registry.
        registry: String,
        /// Numbers in the live version.
        before: u64,
        /// Numbers in the new import.
        after: u64,
        /// Area codes the live version has and the import lacks.
        missing: Vec<String>,
    },
    /// The live version changed while this one was being written.
    #[error("registry {0:?} changed while this version was written (a concurrent import or apply): nothing was swapped, run it again")]
    Conflict(String),
    /// An index file is damaged or does not match its manifest.
    #[error("index file {key}: {source}")]
    Index {
        /// The key.
        key: String,
        /// What is wrong.
        #[source]
        source: IndexError,
    },
    /// A manifest or `current.json` cannot be read.
    #[error("{key} is not a valid registry document: {reason}")]
    Document {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// The stable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::BadName(_) => "BadRegistryName",
            RegistryError::NotFound(_) => "RegistryNotFound",
            RegistryError::Input { .. } => "InputUnreadable",
            RegistryError::OutOfOrder { .. } => "ChangeListOutOfOrder",
            RegistryError::Conflict(_) => "RegistryConflict",
            RegistryError::Shrinks { .. } => "RegistryShrinks",
            RegistryError::Index { .. } => "RegistryIndexDamaged",
            RegistryError::Document { .. } => "RegistryDocumentInvalid",
            RegistryError::Store(_) => "StoreError",
        }
    }
}

/// `current.json`: the live version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentVersion {
    /// Registry.
    pub registry: String,
    /// Live version.
    pub version: String,
    /// Its manifest.
    pub manifest_key: String,
    /// Its as-of.
    pub as_of: DateTime<Utc>,
}

/// One area code of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaEntry {
    /// The index file (possibly written by an earlier version).
    pub key: String,
    /// Numbers registered.
    pub count: u64,
    /// Size of the file.
    pub bytes: u64,
    /// CRC-32C of the whole file, checked on load.
    pub crc32c: u32,
    /// Numbers added by the change lists of this version.
    #[serde(default)]
    pub added: u64,
    /// Numbers deleted by the change lists of this version.
    #[serde(default)]
    pub deleted: u64,
}

/// A full-download file that went into a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    /// The file as given.
    pub name: String,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// Its lines.
    #[serde(flatten)]
    pub counts: ImportCounts,
}

/// A change list applied to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeListRecord {
    /// The file as given.
    pub name: String,
    /// SHA-256 of its bytes: the same file again is recognised and not applied twice.
    pub sha256: String,
    /// Its as-of: the given date, else its latest change.
    pub as_of: Option<DateTime<Utc>>,
    /// The version it was applied in.
    pub applied_in: String,
    /// Its lines.
    #[serde(flatten)]
    pub counts: ChangeCounts,
}

/// The manifest of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryManifest {
    /// Document format.
    pub format: u32,
    /// Registry.
    pub registry: String,
    /// This version.
    pub version: String,
    /// The version it was made from by change lists.
    pub parent: Option<String>,
    /// The date the data is current as of: the full download's date, advanced by each change list applied.
    pub as_of: DateTime<Utc>,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
    /// Older than this, `check` answers `error` for the numbers the registry covers.
    pub max_age_days: u32,
    /// Numbers registered.
    pub total: u64,
    /// Area codes (three digits), each with its index file.
    pub area_codes: BTreeMap<String, AreaEntry>,
    /// Area codes the numbering metadata does not know: their numbers are kept (never drop a dialable number).
    #[serde(default)]
    pub unknown_area_codes: Vec<String>,
    /// The full-download files of the import this version descends from.
    pub sources: Vec<SourceRecord>,
    /// Their lines in total.
    pub import_counts: ImportCounts,
    /// Every change list applied since the import, oldest first.
    #[serde(default)]
    pub change_lists: Vec<ChangeListRecord>,
    /// Rejected lines of the import or apply that made this version.
    pub rejects_key: String,
    /// Rejected lines not written (past the cap), counted.
    #[serde(default)]
    pub rejects_not_written: u64,
}

/// How current a registry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Freshness {
    /// Within its age limit.
    Current,
    /// Within [`WARN_DAYS_BEFORE`] days of its age limit: refresh it.
    Expiring,
    /// Older than its limit: `check` answers `error` for what it covers.
    Stale,
}

impl std::fmt::Display for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Freshness::Current => "CURRENT",
            Freshness::Expiring => "EXPIRING",
            Freshness::Stale => "STALE",
        })
    }
}

/// Freshness at `now` of data as of `as_of` with a limit of `max_age_days`.
pub fn freshness(as_of: DateTime<Utc>, max_age_days: u32, now: DateTime<Utc>) -> Freshness {
    let age = now - as_of;
    if age > TimeDelta::days(i64::from(max_age_days)) {
        Freshness::Stale
    } else if age > TimeDelta::days(i64::from(max_age_days.saturating_sub(WARN_DAYS_BEFORE))) {
        Freshness::Expiring
    } else {
        Freshness::Current
    }
}

/// What `registry status` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// Registry.
    pub registry: String,
    /// Live version.
    pub version: String,
    /// As of.
    pub as_of: DateTime<Utc>,
    /// Whole days since `as_of`.
    pub age_days: i64,
    /// The limit.
    pub max_age_days: u32,
    /// CURRENT, EXPIRING or STALE.
    pub status: Freshness,
    /// Numbers registered.
    pub total: u64,
    /// Area codes.
    pub area_codes: usize,
    /// Bytes of index files.
    pub index_bytes: u64,
    /// Change lists applied since the import.
    pub change_lists: usize,
}

impl RegistryStatus {
    fn of(m: &RegistryManifest, now: DateTime<Utc>) -> RegistryStatus {
        RegistryStatus {
            registry: m.registry.clone(),
            version: m.version.clone(),
            as_of: m.as_of,
            age_days: (now - m.as_of).num_days(),
            max_age_days: m.max_age_days,
            status: freshness(m.as_of, m.max_age_days, now),
            total: m.total,
            area_codes: m.area_codes.len(),
            index_bytes: m.area_codes.values().map(|a| a.bytes).sum(),
            change_lists: m.change_lists.len(),
        }
    }
}

/// Check a registry name.
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadName(name.to_string()))
    }
}

fn new_version(now: DateTime<Utc>, salt: &str) -> String {
    let h = hex::encode(&Sha256::digest(salt.as_bytes())[..3]);
    format!("{}-{h}", now.format("%Y%m%dT%H%M%S%3fZ"))
}

pub(crate) fn default_max_age() -> u32 {
    DEFAULT_MAX_AGE_DAYS
}

/// The `_import.json` marker that starts the import of a full download once all its files are in the bucket.
pub const IMPORT_MARKER: &str = "_import.json";

/// The marker's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportMarker {
    /// As of.
    pub as_of: NaiveDate,
    /// Freshness limit.
    #[serde(default = "default_max_age")]
    pub max_age_days: u32,
    /// Replace the live version even when the import covers less.
    #[serde(default)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_warns_a_week_before_and_goes_stale_after_the_limit() {
        let as_of: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let at = |d: i64| as_of + TimeDelta::days(d) + TimeDelta::hours(1);
        assert_eq!(freshness(as_of, 31, at(23)), Freshness::Current);
        assert_eq!(freshness(as_of, 31, at(24)), Freshness::Expiring);
        assert_eq!(freshness(as_of, 31, at(30)), Freshness::Expiring);
        assert_eq!(freshness(as_of, 31, at(31)), Freshness::Stale);
    }
}
