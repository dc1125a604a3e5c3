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
mod coverage;
pub mod fanout;
pub mod index;
mod inputs;
mod load;
pub mod state_rules;
mod versions;
pub mod watch;

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
pub use coverage::*;
pub use index::{AreaIndex, DenseArea, IndexError};
pub use inputs::*;
pub use load::*;
pub use versions::*;
pub use watch::{ChangeListDownload, DownloadFailure, DownloadLog, Subscription};

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
    /// The registry has no `current.json`: nothing was imported yet.
    #[error("registry {0:?} has no live version (nothing imported yet)")]
    NotFound(String),
    /// An input could not be read.
    #[error("cannot read {path}: {reason}")]
    Input {
        /// The input as named (a local path or `s3://bucket/key`).
        path: String,
        /// The I/O or decoding error, as text (the path is named beside it).
        reason: String,
    },
    /// A change-list line dated later than now: the whole list is refused (a typo'd year would otherwise pin the
    /// registry's as-of in the future and make every real list look older).
    #[error("change list {file}, line {line}: dated {at}, later than now: the whole list is refused, the registry is unchanged")]
    FutureDated {
        /// The change list's name, as given.
        file: String,
        /// The first future-dated line (1-based).
        line: u64,
        /// That line's timestamp: later than the time of the apply.
        at: chrono::NaiveDateTime,
    },
    /// An option that cannot be right (an as-of in the future, a freshness limit above the safe harbor's, a scope
    /// that names no area code).
    #[error("{what}: {reason}")]
    BadOption {
        /// The option or input refused, as the user spelled it.
        what: String,
        /// Why it is refused.
        reason: String,
    },
    /// A full import that lacks area codes its scope declares.
    #[error("the import of registry {registry} lacks {} declared area code(s): {}: refused, nothing changed (a partial download? declare the subscription's area codes with --area-codes, or use --force to make it live anyway: numbers of the missing area codes are then answered error)", missing.len(), missing.join(","))]
    Incomplete {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// Declared area codes the batch has no number of.
        missing: Vec<String>,
    },
    /// A full import older than the live version (it would drop the change lists applied since).
    #[error("the import of registry {registry} is as of {as_of}, older than the live version's {live_as_of}: refused, nothing changed (use --force to replace it anyway)")]
    Regresses {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The as-of of the import that was refused.
        as_of: NaiveDate,
        /// The live version's as-of.
        live_as_of: DateTime<Utc>,
    },
    /// A full import that covers less than the live version (area codes missing, or under 90 % of its numbers).
    #[error("the new import of registry {registry} covers less than the live version ({after} numbers against {before}; area codes missing: {missing:?}): refused, nothing changed (a partial download? use --force to replace it anyway)")]
    Shrinks {
        /// The registry's name (its objects live under `registry/<name>/`).
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
        /// The index file's object key.
        key: String,
        /// What is wrong: not an index file, another area code's, or damaged (length, checksum or count).
        #[source]
        source: IndexError,
    },
    /// A manifest or `current.json` cannot be read.
    #[error("{key} is not a valid registry document: {reason}")]
    Document {
        /// The document's object key.
        key: String,
        /// What is wrong with it (not JSON, a missing field, a version it names that does not exist).
        reason: String,
    },
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    /// The error's stable kind (`RegistryNotFound`, …): it leads the step error's message and names an FTC download's
    /// failure.
    pub fn kind(&self) -> &'static str {
        match self {
            RegistryError::BadName(_) => "BadRegistryName",
            RegistryError::NotFound(_) => "RegistryNotFound",
            RegistryError::Input { .. } => "InputUnreadable",
            RegistryError::FutureDated { .. } => "ChangeListFutureDated",
            RegistryError::BadOption { .. } => "InvalidOption",
            RegistryError::Incomplete { .. } => "RegistryIncomplete",
            RegistryError::Regresses { .. } => "RegistryRegresses",
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
    /// The registry's name (its objects live under `registry/<name>/`).
    pub registry: String,
    /// The live version's id (its objects live under `registry/<name>/<version>/`).
    pub version: String,
    /// The object key of that version's manifest.
    pub manifest_key: String,
    /// That version's as-of, as in its manifest.
    pub as_of: DateTime<Utc>,
}

/// One area code of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaEntry {
    /// The index file (possibly written by an earlier version).
    pub key: String,
    /// Numbers registered in the area code: the index file's count.
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
    /// Its size in bytes.
    pub bytes: u64,
    /// What its lines gave: rows read, numbers new and already seen, lines rejected.
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
    /// The timestamp of its latest change line (None for a list without one).
    #[serde(default)]
    pub latest: Option<DateTime<Utc>>,
    /// The days it covers: those of its changes, and its given as-of date.
    #[serde(default)]
    pub days: Vec<NaiveDate>,
    /// The version it was applied in.
    pub applied_in: String,
    /// What its lines gave: additions and deletions applied, lines rejected.
    #[serde(flatten)]
    pub counts: ChangeCounts,
}

/// The manifest of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryManifest {
    /// The manifest's format version (1 today).
    pub format: u32,
    /// The registry's name (its objects live under `registry/<name>/`).
    pub registry: String,
    /// This version's id: its objects live under `registry/<name>/<version>/`.
    pub version: String,
    /// The version it was made from by change lists.
    pub parent: Option<String>,
    /// The instant the data is current as of: the full download's date, advanced by the change lists up to the
    /// first day none covers (see [`timeline`]).
    pub as_of: DateTime<Utc>,
    /// The full download's as-of (changes dated before it are already in it).
    #[serde(default)]
    pub imported_as_of: Option<DateTime<Utc>>,
    /// The area codes it answers for (absent in versions written before coverage was recorded: see
    /// [`Coverage::legacy`]).
    #[serde(default)]
    pub coverage: Option<Coverage>,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
    /// Older than this, `check` answers `error` for the numbers the registry covers.
    pub max_age_days: u32,
    /// Numbers registered across every area code.
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
    /// The registry's name (its objects live under `registry/<name>/`).
    pub registry: String,
    /// The live version's id.
    pub version: String,
    /// The instant the live data is current as of (see [`RegistryManifest::as_of`]).
    pub as_of: DateTime<Utc>,
    /// Whole days since `as_of`.
    pub age_days: i64,
    /// Days after `as_of` the registry may still be used (31 by default); after it `check` answers `error`.
    pub max_age_days: u32,
    /// CURRENT, EXPIRING or STALE.
    pub status: Freshness,
    /// Numbers registered across every area code.
    pub total: u64,
    /// Area codes the live version holds an index for.
    pub area_codes: usize,
    /// Bytes of index files.
    pub index_bytes: u64,
    /// Change lists applied since the import.
    pub change_lists: usize,
    /// `national` or the state (`US-TX`).
    #[serde(default)]
    pub scope: String,
    /// Area codes a full download holds.
    #[serde(default)]
    pub covered_area_codes: Vec<String>,
    /// Declared area codes the registry lacks: their numbers are answered `error`.
    #[serde(default)]
    pub missing_area_codes: Vec<String>,
    /// The full download the live version descends from is as of this instant.
    #[serde(default)]
    pub imported_as_of: Option<DateTime<Utc>>,
    /// The date up to which the change lists are continuous.
    #[serde(default)]
    pub continuous_through: Option<NaiveDate>,
    /// Days no change list covers, between the import and the newest list: freshness stops before the first.
    #[serde(default)]
    pub gaps: Vec<NaiveDate>,
    /// The last import that failed since the live version was made (the import state machine records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_failure: Option<ImportFailure>,
    /// Whole days before the registry goes stale (negative once stale).
    #[serde(default)]
    pub days_to_stale: i64,
    /// Days since yesterday no change list covers (0 when the nightly runs keep up); see [`watch`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_not_continuous: Option<i64>,
    /// The FTC subscription declared for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
    /// Area codes the subscription pays for that the live version lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribed_not_covered: Vec<String>,
    /// Whole days before the SAN's renewal date (negative once past).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_to_renewal: Option<i64>,
    /// The last full download of each area code from the FTC.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub last_full_download: BTreeMap<String, DateTime<Utc>>,
    /// The last change list downloaded from the FTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_change_list: Option<ChangeListDownload>,
    /// The last download that failed, until one succeeds (the download workflow records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_failure: Option<DownloadFailure>,
    /// A state list's next publication and the last day the list in use may be used
    /// ([`state_rules`], `shared/data/state_lists.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_list: Option<state_rules::NextList>,
}

/// An import the registry import state machine could not finish: recorded beside `current.json` by its catch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportFailure {
    /// When the import state machine's catch recorded it.
    pub at: DateTime<Utc>,
    /// The full download's batch prefix (`incoming-registry/<name>/full/<batch>/`), when the failure names one.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The error's name (`States.Timeout`, `InvalidInput`, …).
    pub error: String,
    /// The error's cause as Step Functions gave it (at most 2,000 characters).
    #[serde(default)]
    pub cause: String,
}

impl RegistryStatus {
    /// Whether the registry needs someone: stale, missing area codes (declared, or paid for by the subscription), a
    /// gap, a failed import or download, or the subscription's renewal date passed.
    pub fn needs_attention(&self) -> bool {
        self.status == Freshness::Stale
            || !self.missing_area_codes.is_empty()
            || !self.gaps.is_empty()
            || self.import_failure.is_some()
            || self.download_failure.is_some()
            || !self.subscribed_not_covered.is_empty()
            || self.days_to_renewal.is_some_and(|d| d < 0)
    }

    fn of(m: &RegistryManifest, now: DateTime<Utc>) -> RegistryStatus {
        let coverage = m.coverage.clone().unwrap_or_else(|| Coverage::legacy(m));
        let time = m
            .imported_as_of
            .map(|imported| timeline(imported, &m.change_lists));
        // A state list's as-of is the publication date of the list imported.
        let next_list = state_rules::rule(&coverage.scope)
            .map(|r| r.next_list(m.imported_as_of.unwrap_or(m.as_of).date_naive()));
        RegistryStatus {
            scope: coverage.scope,
            covered_area_codes: coverage.covered,
            missing_area_codes: coverage.missing,
            imported_as_of: m.imported_as_of,
            continuous_through: time.as_ref().map(|t| t.continuous_through),
            gaps: time.map(|t| t.gaps).unwrap_or_default(),
            import_failure: None,
            days_to_stale: 0,
            days_not_continuous: None,
            subscription: None,
            subscribed_not_covered: Vec::new(),
            days_to_renewal: None,
            last_full_download: BTreeMap::new(),
            last_change_list: None,
            download_failure: None,
            next_list,
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

/// What the `_import.json` marker holds: the date and the freshness limit of the batch's import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportMarker {
    /// The date the full download is current as of.
    pub as_of: NaiveDate,
    /// Days after `as_of` the imported registry may be used (default 31).
    #[serde(default = "default_max_age")]
    pub max_age_days: u32,
    /// Replace the live version even when the import covers less, lacks declared area codes, or is older.
    #[serde(default)]
    pub force: bool,
    /// `national` or a state (`US-TX`); default: the live version's, else national.
    #[serde(default)]
    pub scope: Option<String>,
    /// A national subscription's area codes (default: every US area code of the numbering table).
    #[serde(default)]
    pub area_codes: Option<Vec<String>>,
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
