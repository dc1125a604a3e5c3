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

fn input_err(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |e| RegistryError::Input {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The files of `inputs`: files as given, directories walked (sorted, hidden files skipped).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, RegistryError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RegistryError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(input_err(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(input_err(dir))?;
        entries.sort();
        for p in entries {
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// One input file: a local path, or the bytes of an object read from the bucket.
pub enum Input {
    /// A local file.
    Path(PathBuf),
    /// An object's bytes, named by its key.
    Bytes {
        /// The object (`s3://bucket/key`).
        name: String,
        /// Its content.
        bytes: Vec<u8>,
    },
}

impl Input {
    /// How the input is named in manifests and rejects.
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Where an import's or an apply's files come from, one at a time: an object is read only when its turn comes, so an
/// import of 400 area-code zips holds one of them at a time.
#[async_trait::async_trait]
pub trait Inputs: Send {
    /// Files in all.
    fn len(&self) -> usize;
    /// Whether there is none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The next file.
    async fn next(&mut self) -> Option<Result<Input, RegistryError>>;
}

/// Local files (directories walked).
pub struct LocalInputs(std::collections::VecDeque<PathBuf>);

impl LocalInputs {
    /// The files of `inputs` (see [`expand_inputs`]).
    pub fn new(inputs: &[PathBuf]) -> Result<LocalInputs, RegistryError> {
        Ok(LocalInputs(expand_inputs(inputs)?.into()))
    }
}

#[async_trait::async_trait]
impl Inputs for LocalInputs {
    fn len(&self) -> usize {
        self.0.len()
    }
    async fn next(&mut self) -> Option<Result<Input, RegistryError>> {
        self.0.pop_front().map(|p| Ok(Input::Path(p)))
    }
}

/// Objects of a bucket, by key.
pub struct ObjectInputs<'a> {
    store: &'a dyn ObjectStore,
    bucket: String,
    keys: std::collections::VecDeque<String>,
}

impl<'a> ObjectInputs<'a> {
    /// The objects `keys` of `store` (named `s3://<bucket>/<key>`).
    pub fn new(store: &'a dyn ObjectStore, bucket: &str, keys: Vec<String>) -> ObjectInputs<'a> {
        ObjectInputs {
            store,
            bucket: bucket.to_string(),
            keys: keys.into(),
        }
    }
}

#[async_trait::async_trait]
impl Inputs for ObjectInputs<'_> {
    fn len(&self) -> usize {
        self.keys.len()
    }
    async fn next(&mut self) -> Option<Result<Input, RegistryError>> {
        let key = self.keys.pop_front()?;
        let name = format!("s3://{}/{key}", self.bucket);
        Some(match self.store.get_bytes(&key).await {
            Ok(Some(bytes)) => Ok(Input::Bytes { name, bytes }),
            Ok(None) => Err(RegistryError::Input {
                path: name,
                reason: "no such object".into(),
            }),
            Err(e) => Err(e.into()),
        })
    }
}

/// Read an input's lines in chunks that end on a line boundary: plain, gzip, or a zip (each entry in turn). `f` gets
/// the entry's name, the chunk, and the number of the chunk's first line. Returns the input's SHA-256 and size.
fn read_source(
    input: &Input,
    f: &mut dyn FnMut(&str, &[u8], u64) -> u64,
) -> Result<(String, u64), RegistryError> {
    const CHUNK: usize = 1 << 20;
    let name = input.name();
    let err = |e: std::io::Error| RegistryError::Input {
        path: name.clone(),
        reason: e.to_string(),
    };
    // Streams `r` to `f` in chunks cut after the last newline, counting lines across chunks.
    let mut buf = vec![0u8; CHUNK];
    let mut stream = |entry: &str, r: &mut dyn Read| -> std::io::Result<()> {
        let (mut filled, mut line) = (0usize, 1u64);
        loop {
            let n = r.read(&mut buf[filled..])?;
            filled += n;
            if n == 0 || filled == buf.len() {
                let cut = if n == 0 {
                    filled
                } else {
                    match memchr::memrchr(b'\n', &buf[..filled]) {
                        Some(i) => i + 1,
                        // A line longer than the buffer: grow it (rare; only junk has such lines).
                        None => {
                            buf.resize(buf.len() * 2, 0);
                            continue;
                        }
                    }
                };
                if cut > 0 {
                    line += f(entry, &buf[..cut], line);
                }
                buf.copy_within(cut..filled, 0);
                filled -= cut;
                if n == 0 {
                    return Ok(());
                }
            }
        }
    };
    let mut magic = [0u8; 4];
    let got = match input {
        Input::Path(path) => std::fs::File::open(path)
            .and_then(|mut file| file.read(&mut magic))
            .map_err(&err)?,
        Input::Bytes { bytes, .. } => {
            let n = bytes.len().min(4);
            magic[..n].copy_from_slice(&bytes[..n]);
            n
        }
    };
    let zip_bytes;
    let bytes: &[u8] = match input {
        // A zip is read whole (the central directory is at its end); area-code zips are a few MB.
        Input::Path(path) if got >= 4 && magic == *b"PK\x03\x04" => {
            zip_bytes = std::fs::read(path).map_err(&err)?;
            &zip_bytes
        }
        Input::Path(path) => {
            let mut hashing = HashingReader {
                inner: std::fs::File::open(path).map_err(&err)?,
                sha: Sha256::new(),
                bytes: 0,
            };
            if got >= 2 && magic[..2] == [0x1f, 0x8b] {
                stream(&name, &mut flate2::read::MultiGzDecoder::new(&mut hashing))
                    .map_err(&err)?;
            } else {
                stream(&name, &mut hashing).map_err(&err)?;
            }
            return Ok((hex::encode(hashing.sha.finalize()), hashing.bytes));
        }
        Input::Bytes { bytes, .. } => bytes,
    };
    let sha = hex::encode(Sha256::digest(bytes));
    if got >= 4 && magic == *b"PK\x03\x04" {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
            RegistryError::Input {
                path: name.clone(),
                reason: format!("not a readable zip: {e}"),
            }
        })?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| RegistryError::Input {
                path: name.clone(),
                reason: format!("zip entry {i}: {e}"),
            })?;
            if entry.is_dir() {
                continue;
            }
            let entry_name = format!("{name}!{}", entry.name());
            // The zip reader checks each entry's CRC at its end: a truncated entry fails here instead of importing
            // part of an area code silently.
            stream(&entry_name, &mut entry).map_err(&err)?;
        }
    } else if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        stream(&name, &mut flate2::read::MultiGzDecoder::new(bytes)).map_err(&err)?;
    } else {
        stream(&name, &mut &bytes[..]).map_err(&err)?;
    }
    Ok((sha, bytes.len() as u64))
}

struct HashingReader<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// What an import or an apply did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionReport {
    /// The new live version (`None`: nothing to change, the live version stays).
    pub version: Option<String>,
    /// The live version's status afterwards.
    pub status: RegistryStatus,
    /// Full-download lines read (import).
    #[serde(default)]
    pub import: ImportCounts,
    /// Change-list lines read (apply).
    #[serde(default)]
    pub changes: ChangeCounts,
    /// Change lists not applied because the registry already has them.
    #[serde(default)]
    pub already_applied: Vec<String>,
    /// Area codes rewritten.
    pub area_codes_written: usize,
    /// Area codes carried from the previous version by reference.
    pub area_codes_carried: usize,
    /// Where rejected lines went.
    pub rejects_key: String,
}

/// Options of [`import`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The date the download is current as of.
    pub as_of: NaiveDate,
    /// Freshness limit (default 31 days).
    pub max_age_days: u32,
    /// Replace the live version even when the new one covers less (see [`check_replacement`]).
    pub force: bool,
}

/// A new full import replaces the live version whole: one that lacks area codes the live version covers, or holds
/// less than 90 % of its numbers, is refused unless forced (`RegistryShrinks`); one of no number at all is refused
/// always (`InputUnreadable`). A partial download (half of the
/// FTC's 400 zips uploaded) would otherwise go live, and every number of the missing area codes would stop being
/// suppressed by the registry.
pub fn check_replacement(
    previous: Option<&RegistryManifest>,
    areas: &BTreeMap<String, u64>,
    force: bool,
) -> Result<(), RegistryError> {
    let total: u64 = areas.values().sum();
    if total == 0 {
        // Nothing valid was read (an empty directory, a file of junk): a registry of no numbers would clear every
        // number it used to suppress, and as a first import it would only hide the mistake.
        return Err(RegistryError::Input {
            path: previous.map_or_else(
                || "the import".into(),
                |p| format!("registry {}", p.registry),
            ),
            reason: "no valid number was read: nothing to import".into(),
        });
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    if force {
        return Ok(());
    }
    let missing: Vec<String> = previous
        .area_codes
        .iter()
        .filter(|(npa, e)| e.count > 0 && !areas.contains_key(*npa))
        .map(|(npa, _)| npa.clone())
        .collect();
    if missing.is_empty() && total as f64 >= previous.total as f64 * 0.9 {
        return Ok(());
    }
    Err(RegistryError::Shrinks {
        registry: previous.registry.clone(),
        before: previous.total,
        after: total,
        missing,
    })
}

/// Build a new version of registry `name` from full-download files (zip per area code, gzip or plain; directories
/// walked) and make it live. `on_source` is told of each file as it is done.
pub async fn import(
    store: &dyn ObjectStore,
    name: &str,
    inputs: &[PathBuf],
    options: &ImportOptions,
    on_source: &mut (dyn FnMut(&SourceRecord) + Send),
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut files = LocalInputs::new(inputs)?;
    import_from(store, name, &mut files, options, on_source).await
}

/// [`import`] from any [`Inputs`] (objects of a bucket, in the Lambda).
pub async fn import_from(
    store: &dyn ObjectStore,
    name: &str,
    files: &mut dyn Inputs,
    options: &ImportOptions,
    on_source: &mut (dyn FnMut(&SourceRecord) + Send),
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut builder = Builder::new();
    let mut sources = Vec::with_capacity(files.len());
    let mut total = ImportCounts::default();
    while let Some(input) = files.next().await {
        let input = input?;
        let mut counts = ImportCounts::default();
        let (sha256, bytes) = read_source(&input, &mut |entry, chunk, first| {
            let c = builder.add_text_from(entry, chunk, first);
            counts.add(&c);
            c.rows
        })?;
        let record = SourceRecord {
            name: input.name(),
            sha256,
            bytes,
            counts,
        };
        total.add(&counts);
        on_source(&record);
        sources.push(record);
    }
    let keys = RegistryKeys::new(name);
    let previous = read_current(store, name).await?;
    let now = Utc::now();
    let salt: String = sources.iter().map(|s| s.sha256.as_str()).collect();
    let version = new_version(now, &salt);
    let as_of = options
        .as_of
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let touched: Vec<(u16, DenseArea)> = builder
        .areas
        .into_iter()
        .enumerate()
        .filter_map(|(npa, a)| a.map(|a| (npa as u16, a)))
        .collect();
    let live = match &previous {
        Some((current, _)) => Some(read_manifest(store, &current.manifest_key).await?),
        None => None,
    };
    let counts: BTreeMap<String, u64> = touched
        .iter()
        .map(|(npa, a)| (format!("{npa:03}"), a.len()))
        .collect();
    check_replacement(live.as_ref(), &counts, options.force)?;
    let mut manifest = RegistryManifest {
        format: FORMAT,
        registry: name.to_string(),
        version: version.clone(),
        parent: None,
        as_of,
        created_at: now,
        max_age_days: options.max_age_days,
        total: 0,
        area_codes: BTreeMap::new(),
        unknown_area_codes: builder
            .unknown_area_codes
            .iter()
            .map(|n| format!("{n:03}"))
            .collect(),
        sources,
        import_counts: total,
        change_lists: Vec::new(),
        rejects_key: keys.rejects(&version),
        rejects_not_written: builder.rejects.not_written,
    };
    let written = write_areas(store, &keys, &version, touched, &BTreeMap::new()).await?;
    manifest.area_codes = written;
    manifest.total = manifest.area_codes.values().map(|a| a.count).sum();
    let area_codes_written = manifest.area_codes.len();
    publish(store, &keys, &manifest, builder.rejects, previous).await?;
    Ok(VersionReport {
        version: Some(version),
        status: RegistryStatus::of(&manifest, now),
        import: total,
        changes: ChangeCounts::default(),
        already_applied: Vec::new(),
        area_codes_written,
        area_codes_carried: 0,
        rejects_key: manifest.rejects_key,
    })
}

/// Options of [`apply`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Apply a change list older than the registry's as-of.
    pub force: bool,
    /// The as-of of the change lists (default: each one's latest change).
    pub as_of: Option<NaiveDate>,
}

/// Apply FTC change lists to the live version of `name`: a new version rewriting only the area codes they touch.
/// A change list the registry already has is skipped; one older than its as-of is refused unless forced; within
/// the lists, changes apply in timestamp order (the last change of a number wins).
pub async fn apply(
    store: &dyn ObjectStore,
    name: &str,
    inputs: &[PathBuf],
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut files = LocalInputs::new(inputs)?;
    apply_from(store, name, &mut files, options).await
}

/// [`apply`] from any [`Inputs`] (objects of a bucket, in the Lambda).
pub async fn apply_from(
    store: &dyn ObjectStore,
    name: &str,
    files: &mut dyn Inputs,
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let keys = RegistryKeys::new(name);
    let Some((current, tag)) = read_current(store, name).await? else {
        return Err(RegistryError::NotFound(name.to_string()));
    };
    let mut manifest = read_manifest(store, &current.manifest_key).await?;
    let rules = AreaRules::new();
    let mut rejects = Rejects::default();
    let mut changes: Vec<Change> = Vec::new();
    let mut seq = 0u64;
    let mut applied: BTreeSet<String> = manifest
        .change_lists
        .iter()
        .map(|c| c.sha256.clone())
        .collect();
    let mut already_applied = Vec::new();
    let mut lists: Vec<(ChangeListRecord, std::ops::Range<usize>)> = Vec::new();
    let mut totals = ChangeCounts::default();
    while let Some(input) = files.next().await {
        let input = input?;
        let (mut text, mut rows) = (Vec::new(), 0u64);
        let (sha256, _bytes) = read_source(&input, &mut |_, chunk, _| {
            text.extend_from_slice(chunk);
            let n = build::count_lines(chunk);
            rows += n;
            n
        })?;
        let file = input.name();
        if !applied.insert(sha256.clone()) {
            already_applied.push(file);
            continue;
        }
        let start = changes.len();
        let rejected =
            build::read_changes(&file, &text, &rules, &mut rejects, &mut seq, &mut changes);
        let latest = changes[start..].iter().map(|c| c.at).max();
        let as_of = match options.as_of {
            Some(d) => Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
            None => latest.map(|t| t.and_utc()),
        };
        if let Some(list_as_of) = as_of {
            if list_as_of < manifest.as_of && !options.force {
                return Err(RegistryError::OutOfOrder {
                    registry: name.to_string(),
                    file,
                    list_as_of,
                    registry_as_of: manifest.as_of,
                });
            }
        }
        let counts = ChangeCounts {
            rows,
            rejected,
            ..Default::default()
        };
        lists.push((
            ChangeListRecord {
                name: file,
                sha256,
                as_of,
                applied_in: String::new(),
                counts,
            },
            start..changes.len(),
        ));
    }
    let now = Utc::now();
    if lists.is_empty() {
        return Ok(VersionReport {
            version: None,
            status: RegistryStatus::of(&manifest, now),
            import: ImportCounts::default(),
            changes: totals,
            already_applied,
            area_codes_written: 0,
            area_codes_carried: manifest.area_codes.len(),
            rejects_key: manifest.rejects_key,
        });
    }
    // Which list each change came from, to count per list.
    let mut owner = vec![0usize; changes.len()];
    for (i, (_, range)) in lists.iter().enumerate() {
        owner[range.clone()].fill(i);
    }
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by_key(|&i| (changes[i].at, changes[i].seq));
    let touched: BTreeSet<u16> = changes
        .iter()
        .map(|c| (c.national / 10_000_000) as u16)
        .collect();
    let mut areas: BTreeMap<u16, (DenseArea, u64, u64)> = BTreeMap::new();
    let loaded: Vec<(u16, AreaIndex)> = futures::stream::iter(touched.iter().copied())
        .map(|npa| {
            let entry = manifest.area_codes.get(&format!("{npa:03}")).cloned();
            async move {
                let index = match entry {
                    Some(e) => read_area(store, npa, &e).await?,
                    None => AreaIndex::default(),
                };
                Ok::<_, RegistryError>((npa, index))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    for (npa, index) in loaded {
        areas.insert(npa, (index.into_dense(), 0, 0));
    }
    for i in order {
        let c = changes[i];
        let npa = (c.national / 10_000_000) as u16;
        let local = (c.national % 10_000_000) as u32;
        let (area, added, deleted) = areas.get_mut(&npa).expect("loaded above");
        let counts = &mut lists[owner[i]].0.counts;
        if c.add {
            counts.adds += 1;
            if area.insert(local) {
                *added += 1;
            } else {
                counts.adds_present += 1;
            }
        } else {
            counts.deletes += 1;
            if area.remove(local) {
                *deleted += 1;
            } else {
                counts.deletes_absent += 1;
            }
        }
    }
    let salt: String = lists.iter().map(|(l, _)| l.sha256.as_str()).collect();
    let version = new_version(now, &format!("{}{salt}", manifest.version));
    let mut per_area: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    let dense: Vec<(u16, DenseArea)> = areas
        .into_iter()
        .map(|(npa, (area, a, d))| {
            per_area.insert(npa, (a, d));
            (npa, area)
        })
        .collect();
    let written = write_areas(store, &keys, &version, dense, &per_area).await?;
    let area_codes_written = written.len();
    for entry in manifest.area_codes.values_mut() {
        entry.added = 0;
        entry.deleted = 0;
    }
    manifest.area_codes.extend(written);
    let area_codes_carried = manifest.area_codes.len() - area_codes_written;
    for (list, _) in &mut lists {
        list.applied_in = version.clone();
        totals.add(&list.counts);
    }
    let newest = lists.iter().filter_map(|(l, _)| l.as_of).max();
    manifest.parent = Some(manifest.version.clone());
    manifest.version = version.clone();
    manifest.created_at = now;
    manifest.as_of = newest.map_or(manifest.as_of, |n| n.max(manifest.as_of));
    manifest.total = manifest.area_codes.values().map(|a| a.count).sum();
    manifest
        .change_lists
        .extend(lists.into_iter().map(|(l, _)| l));
    manifest.rejects_key = keys.rejects(&version);
    manifest.rejects_not_written = rejects.not_written;
    publish(store, &keys, &manifest, rejects, Some((current, tag))).await?;
    Ok(VersionReport {
        version: Some(version),
        status: RegistryStatus::of(&manifest, now),
        import: ImportCounts::default(),
        changes: totals,
        already_applied,
        area_codes_written,
        area_codes_carried,
        rejects_key: manifest.rejects_key,
    })
}

/// Write the index files of `areas` under `version`, in parallel.
async fn write_areas(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    version: &str,
    areas: Vec<(u16, DenseArea)>,
    changed: &BTreeMap<u16, (u64, u64)>,
) -> Result<BTreeMap<String, AreaEntry>, RegistryError> {
    futures::stream::iter(areas)
        .map(|(npa, area)| {
            let key = keys.area(version, npa);
            let (added, deleted) = changed.get(&npa).copied().unwrap_or_default();
            async move {
                let index = area.finish();
                let count = index.len();
                let bytes = index.encode(npa);
                let entry = AreaEntry {
                    key: key.clone(),
                    count,
                    bytes: bytes.len() as u64,
                    crc32c: crc32c::crc32c(&bytes),
                    added,
                    deleted,
                };
                store.put_bytes(&key, bytes).await?;
                Ok::<_, RegistryError>((format!("{npa:03}"), entry))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// Write rejects and manifest, then swap `current.json` (conditionally on what was read before).
async fn publish(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    manifest: &RegistryManifest,
    rejects: Rejects,
    previous: Option<(CurrentVersion, String)>,
) -> Result<(), RegistryError> {
    store
        .put_bytes(&manifest.rejects_key, rejects.jsonl)
        .await?;
    let manifest_key = keys.manifest(&manifest.version);
    store
        .put_bytes(
            &manifest_key,
            serde_json::to_vec_pretty(manifest).expect("a manifest serializes"),
        )
        .await?;
    let current = CurrentVersion {
        registry: manifest.registry.clone(),
        version: manifest.version.clone(),
        manifest_key,
        as_of: manifest.as_of,
    };
    let body = serde_json::to_vec_pretty(&current).expect("current serializes");
    let swapped = match previous {
        None => store.put_if_absent(&keys.current(), body).await?,
        Some((_, tag)) => store.put_if_match(&keys.current(), body, &tag).await?,
    };
    if swapped {
        Ok(())
    } else {
        Err(RegistryError::Conflict(manifest.registry.clone()))
    }
}

async fn read_current(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<(CurrentVersion, String)>, RegistryError> {
    let key = RegistryKeys::new(name).current();
    let Some((bytes, tag)) = store.get_tagged(&key).await? else {
        return Ok(None);
    };
    let current = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Document {
        key,
        reason: e.to_string(),
    })?;
    Ok(Some((current, tag)))
}

async fn read_manifest(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<RegistryManifest, RegistryError> {
    let bytes = store
        .get_bytes(key)
        .await?
        .ok_or_else(|| RegistryError::Document {
            key: key.to_string(),
            reason: "missing".into(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Document {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// The bytes of an area code's index file, checked against the manifest's CRC-32C.
async fn fetch_area(
    store: &dyn ObjectStore,
    npa: u16,
    entry: &AreaEntry,
) -> Result<Vec<u8>, RegistryError> {
    let damaged = |reason: String| RegistryError::Index {
        key: entry.key.clone(),
        source: IndexError::Damaged { npa, reason },
    };
    let bytes = store
        .get_bytes(&entry.key)
        .await?
        .ok_or_else(|| damaged("missing".into()))?;
    if crc32c::crc32c(&bytes) != entry.crc32c {
        return Err(damaged(
            "the file's CRC-32C differs from the manifest's".into(),
        ));
    }
    Ok(bytes)
}

/// An index file's count against its manifest entry.
fn check_count(npa: u16, entry: &AreaEntry, found: u64) -> Result<(), RegistryError> {
    if found == entry.count {
        return Ok(());
    }
    Err(RegistryError::Index {
        key: entry.key.clone(),
        source: IndexError::Damaged {
            npa,
            reason: format!("{found} numbers, the manifest says {}", entry.count),
        },
    })
}

async fn read_area(
    store: &dyn ObjectStore,
    npa: u16,
    entry: &AreaEntry,
) -> Result<AreaIndex, RegistryError> {
    let bytes = fetch_area(store, npa, entry).await?;
    let index = AreaIndex::decode(npa, &bytes).map_err(|source| RegistryError::Index {
        key: entry.key.clone(),
        source,
    })?;
    check_count(npa, entry, index.len())?;
    Ok(index)
}

/// The live version's status, `None` when nothing was imported.
pub async fn status(
    store: &dyn ObjectStore,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<RegistryStatus>, RegistryError> {
    check_name(name)?;
    let Some((current, _)) = read_current(store, name).await? else {
        return Ok(None);
    };
    let manifest = read_manifest(store, &current.manifest_key).await?;
    Ok(Some(RegistryStatus::of(&manifest, now)))
}

/// The live version of a registry, in memory: what `check` consults.
pub struct LoadedRegistry {
    /// Its manifest.
    pub manifest: RegistryManifest,
    areas: Vec<Option<AreaIndex>>,
}

impl std::fmt::Debug for LoadedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LoadedRegistry({} {}, {} numbers)",
            self.manifest.registry, self.manifest.version, self.manifest.total
        )
    }
}

/// What a registry says of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Registered.
    Listed,
    /// In an area code the registry covers, not registered.
    NotListed,
    /// Outside what the registry covers (another country, an area code it has no data for).
    NotCovered,
}

impl LoadedRegistry {
    /// From a manifest and its area indexes (index = area code).
    pub fn new(manifest: RegistryManifest, areas: Vec<Option<AreaIndex>>) -> LoadedRegistry {
        LoadedRegistry { manifest, areas }
    }

    /// Registry name.
    pub fn name(&self) -> &str {
        &self.manifest.registry
    }

    /// What the registry says of packed E.164 `e164`. A registry covers the North American area codes it has data
    /// for (those of its import and change lists).
    #[inline]
    pub fn lookup(&self, e164: u64) -> Lookup {
        if !(10_000_000_000..20_000_000_000).contains(&e164) {
            return Lookup::NotCovered;
        }
        let national = e164 - 10_000_000_000;
        match &self.areas[(national / 10_000_000) as usize] {
            None => Lookup::NotCovered,
            Some(a) if a.contains((national % 10_000_000) as u32) => Lookup::Listed,
            Some(_) => Lookup::NotListed,
        }
    }

    /// Look up many numbers, prefetching ahead: random lookups over a national index miss the cache, and keeping a
    /// few misses in flight at once is what makes a batch fast.
    pub fn lookup_many(&self, numbers: &[u64], out: &mut Vec<Lookup>) {
        const AHEAD: usize = 16;
        out.clear();
        out.reserve(numbers.len());
        for (i, &n) in numbers.iter().enumerate() {
            if let Some(&next) = numbers.get(i + AHEAD) {
                if (10_000_000_000..20_000_000_000).contains(&next) {
                    let national = next - 10_000_000_000;
                    if let Some(a) = &self.areas[(national / 10_000_000) as usize] {
                        a.prefetch((national % 10_000_000) as u32);
                    }
                }
            }
            out.push(self.lookup(n));
        }
    }

    /// Freshness at `now`.
    pub fn freshness(&self, now: DateTime<Utc>) -> Freshness {
        freshness(self.manifest.as_of, self.manifest.max_age_days, now)
    }
}

/// Area codes holding at least this many numbers are held as bitmaps in memory (1.25 MB each).
const IN_MEMORY_BITMAP_FROM: u64 = 8_192;

/// Load the live version of `name` (every area code read in parallel and checked against the manifest). The
/// bitmaps go into one [`index::Arena`] on huge pages; sparse area codes keep their sorted arrays.
pub async fn load(store: &dyn ObjectStore, name: &str) -> Result<LoadedRegistry, RegistryError> {
    check_name(name)?;
    let Some((current, _)) = read_current(store, name).await? else {
        return Err(RegistryError::NotFound(name.to_string()));
    };
    let manifest = read_manifest(store, &current.manifest_key).await?;
    let manifest_key = &current.manifest_key;
    let mut entries: Vec<(u16, &AreaEntry)> = Vec::with_capacity(manifest.area_codes.len());
    for (npa, entry) in &manifest.area_codes {
        let code: u16 =
            npa.parse()
                .ok()
                .filter(|n| *n < 1000)
                .ok_or_else(|| RegistryError::Document {
                    key: manifest_key.clone(),
                    reason: format!("area code {npa:?}"),
                })?;
        entries.push((code, entry));
    }
    // A bitmap in memory for every area code of more than a few thousand numbers, whatever its file's encoding: a
    // lookup in a bitmap is one memory access, a binary search over a large sorted array a chain of dependent cache
    // misses (that was 76 % of the time of random lookups over a national index whose thinner area codes are stored
    // sorted). Small area codes (a state list's) stay sorted arrays: they are small enough to stay in cache.
    let dense: BTreeMap<u16, usize> = entries
        .iter()
        .filter(|(_, e)| e.count >= IN_MEMORY_BITMAP_FROM)
        .enumerate()
        .map(|(slot, (npa, _))| (*npa, slot))
        .collect();
    let mut arena = index::Arena::new(dense.len());
    let mut areas: Vec<Option<AreaIndex>> = (0..1000).map(|_| None).collect();
    let mut in_arena: Vec<(u16, usize, u64)> = Vec::new();
    let mut fetched = futures::stream::iter(entries.iter().copied())
        .map(|(npa, entry)| async move {
            Ok::<_, RegistryError>((npa, entry, fetch_area(store, npa, entry).await?))
        })
        .buffer_unordered(32);
    while let Some(next) = fetched.next().await {
        let (npa, entry, bytes) = next?;
        let index_err = |source| RegistryError::Index {
            key: entry.key.clone(),
            source,
        };
        if let Some(&slot) = dense.get(&npa) {
            if let Some(count) =
                index::decode_dense_into(npa, &bytes, arena.slot_mut(slot)).map_err(index_err)?
            {
                check_count(npa, entry, count)?;
                in_arena.push((npa, slot, count));
                continue;
            }
        }
        let index = AreaIndex::decode(npa, &bytes).map_err(index_err)?;
        check_count(npa, entry, index.len())?;
        match (dense.get(&npa), &index) {
            (Some(&slot), AreaIndex::Sparse(locals)) => {
                let bits = arena.slot_mut(slot);
                for l in locals.as_slice() {
                    bits[(*l / 64) as usize] |= 1u64 << (l % 64);
                }
                in_arena.push((npa, slot, index.len()));
            }
            _ => areas[usize::from(npa)] = Some(index),
        }
    }
    drop(fetched);
    let arena = std::sync::Arc::new(arena);
    for (npa, slot, count) in in_arena {
        areas[usize::from(npa)] = Some(AreaIndex::Dense {
            bits: index::Words::Arena {
                arena: arena.clone(),
                slot,
            },
            count,
        });
    }
    Ok(LoadedRegistry { manifest, areas })
}

/// The version `current.json` names (cheap: one small read), to reload when it changes.
pub async fn live_version(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<String>, RegistryError> {
    Ok(read_current(store, name).await?.map(|(c, _)| c.version))
}

/// What the registry Lambda is asked to do: a direct invocation, or derived from an S3 "Object Created" event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase", tag = "action")]
pub enum RegistryTask {
    /// Build a new version from full downloads: the objects `keys`, or every object under `prefix` but the
    /// `_import.json` marker.
    #[serde(rename = "import")]
    Import {
        /// Registry.
        registry: String,
        /// Objects.
        #[serde(default)]
        keys: Vec<String>,
        /// Or a prefix.
        #[serde(default)]
        prefix: Option<String>,
        /// As of.
        as_of: NaiveDate,
        /// Freshness limit.
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less.
        #[serde(default)]
        force: bool,
    },
    /// The first step of the fanned-out import (the registry import state machine): the plan every part follows,
    /// from the `_import.json` marker's drop event, or given.
    #[serde(rename = "begin")]
    Begin {
        /// The marker's S3 "Object Created" event.
        #[serde(default)]
        event: Option<serde_json::Value>,
        /// Or the registry…
        #[serde(default)]
        registry: Option<String>,
        /// …the batch's prefix…
        #[serde(default)]
        prefix: Option<String>,
        /// …its as-of…
        #[serde(default)]
        as_of: Option<NaiveDate>,
        /// …and freshness limit.
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less.
        #[serde(default)]
        force: bool,
    },
    /// One file of the batch (a Distributed Map child).
    #[serde(rename = "importPart")]
    ImportPart {
        /// The plan.
        plan: fanout::ImportPlan,
        /// The object.
        key: String,
    },
    /// The last step: the parts merged into the version, made live.
    #[serde(rename = "assemble")]
    Assemble {
        /// The plan.
        plan: fanout::ImportPlan,
    },
    /// Apply change lists.
    #[serde(rename = "apply")]
    Apply {
        /// Registry.
        registry: String,
        /// Objects.
        keys: Vec<String>,
        /// Apply a list older than the registry.
        #[serde(default)]
        force: bool,
        /// The lists' as-of.
        #[serde(default)]
        as_of: Option<NaiveDate>,
    },
}

fn default_max_age() -> u32 {
    DEFAULT_MAX_AGE_DAYS
}

/// The registry import state machine's input when started from the console.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsoleImport {
    registry: String,
    prefix: String,
    as_of: NaiveDate,
    #[serde(default = "default_max_age")]
    max_age_days: u32,
    #[serde(default)]
    force: bool,
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

/// What a dropped object under `incoming-registry/<name>/` asks of the registry function: `changes/<file>` is
/// applied; anything else asks nothing of it (an area-code file of a batch; the batch's `_import.json` marker starts
/// the registry import state machine instead).
pub fn task_for_key(key: &str) -> Result<Option<RegistryTask>, RegistryError> {
    if key.ends_with(&format!("/{IMPORT_MARKER}")) {
        return Ok(None);
    }
    Ok(match task_for_drop(key, None)? {
        Some(task @ RegistryTask::Apply { .. }) => Some(task),
        _ => None,
    })
}

/// What a dropped object asks for: `changes/<file>` is applied; `full/<batch>/_import.json` imports every other
/// object of `full/<batch>/` (`marker` is its content); any other object asks for nothing.
pub fn task_for_drop(
    key: &str,
    marker: Option<&[u8]>,
) -> Result<Option<RegistryTask>, RegistryError> {
    let Some(rest) = key.strip_prefix(crate::run::REGISTRY_INCOMING) else {
        return Ok(None);
    };
    let Some((registry, path)) = rest.split_once('/') else {
        return Ok(None);
    };
    check_name(registry)?;
    if path.starts_with("changes/") && path.len() > "changes/".len() {
        return Ok(Some(RegistryTask::Apply {
            registry: registry.to_string(),
            keys: vec![key.to_string()],
            force: false,
            as_of: None,
        }));
    }
    if path.starts_with("full/") && key.ends_with(&format!("/{IMPORT_MARKER}")) {
        let marker: ImportMarker =
            serde_json::from_slice(marker.unwrap_or_default()).map_err(|e| {
                RegistryError::Document {
                    key: key.to_string(),
                    reason: format!("not an import marker ({{\"asOf\":\"YYYY-MM-DD\"}}): {e}"),
                }
            })?;
        return Ok(Some(RegistryTask::Import {
            registry: registry.to_string(),
            keys: Vec::new(),
            prefix: Some(key[..key.len() - IMPORT_MARKER.len()].to_string()),
            as_of: marker.as_of,
            max_age_days: marker.max_age_days,
            force: marker.force,
        }));
    }
    Ok(None)
}

/// Handle one invocation of the registry function: an S3 "Object Created" event (a change list dropped under
/// `changes/` is applied; any other object is acknowledged, `{"ignored": key}`) or a task given directly.
pub async fn handle_event(
    store: &dyn ObjectStore,
    bucket: &str,
    payload: serde_json::Value,
) -> Result<serde_json::Value, RegistryError> {
    let task: RegistryTask =
        if payload.get("source").and_then(serde_json::Value::as_str) == Some("aws.s3") {
            let key = payload
                .pointer("/detail/object/key")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string();
            match task_for_key(&key)? {
                Some(task) => task,
                None => return Ok(serde_json::json!({ "ignored": key })),
            }
        } else {
            serde_json::from_value(payload).map_err(|e| RegistryError::Input {
                path: "event".into(),
                reason: format!("not a registry task: {e}"),
            })?
        };
    tracing::info!(?task, "registry task");
    let answer = run_task(store, bucket, &task).await?;
    tracing::info!(version = %answer["version"], total = %answer["status"]["total"], "registry task done");
    Ok(answer)
}

/// Run `task` against the bucket `store` (named `bucket`): inputs are read from it one object at a time, the index
/// written to it. The answer: a [`VersionReport`], or for the fanned-out import's steps an
/// [`fanout::ImportPlan`] / [`fanout::PartSummary`].
pub async fn run_task(
    store: &dyn ObjectStore,
    bucket: &str,
    task: &RegistryTask,
) -> Result<serde_json::Value, RegistryError> {
    fn json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).expect("answers serialize")
    }
    match task {
        RegistryTask::Begin {
            event,
            registry,
            prefix,
            as_of,
            max_age_days,
            force,
        } => {
            // Started from the console, the execution's input (the `event`) names them itself.
            let console = event
                .as_ref()
                .filter(|e| e.get("registry").is_some())
                .map(|e| serde_json::from_value::<ConsoleImport>(e.clone()))
                .transpose()
                .map_err(|e| RegistryError::Input {
                    path: "execution input".into(),
                    reason: format!("expected {{registry, prefix, asOf, maxAgeDays?}}: {e}"),
                })?;
            let given = registry
                .clone()
                .zip(prefix.clone())
                .zip(*as_of)
                .map(|((r, p), a)| (r, p, a, *max_age_days, *force))
                .or(console.map(|c| (c.registry, c.prefix, c.as_of, c.max_age_days, c.force)));
            let (registry, prefix, as_of, max_age_days, force) = match (given, event) {
                (Some(given), _) => given,
                (None, Some(event)) => {
                    let key = event
                        .pointer("/detail/object/key")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default();
                    let marker = store.get_bytes(key).await?;
                    match task_for_drop(key, marker.as_deref())? {
                        Some(RegistryTask::Import {
                            registry,
                            prefix: Some(prefix),
                            as_of,
                            max_age_days,
                            force,
                            ..
                        }) => (registry, prefix, as_of, max_age_days, force),
                        _ => {
                            return Err(RegistryError::Input {
                                path: key.to_string(),
                                reason: format!("not an import marker (incoming-registry/<name>/full/<batch>/{IMPORT_MARKER})"),
                            })
                        }
                    }
                }
                (None, None) => {
                    return Err(RegistryError::Input {
                        path: "event".into(),
                        reason: "begin needs the marker's event, or registry, prefix and asOf"
                            .into(),
                    })
                }
            };
            Ok(json(&fanout::plan(
                bucket,
                &registry,
                &prefix,
                as_of,
                max_age_days,
                force,
            )?))
        }
        RegistryTask::ImportPart { plan, key } => {
            Ok(json(&fanout::import_part(store, plan, key).await?))
        }
        RegistryTask::Assemble { plan } => Ok(json(&fanout::assemble(store, plan).await?)),
        RegistryTask::Import {
            registry,
            keys,
            prefix,
            as_of,
            max_age_days,
            force,
        } => {
            let mut keys = keys.clone();
            if let Some(prefix) = prefix {
                keys.extend(
                    store
                        .list(prefix)
                        .await?
                        .into_iter()
                        .filter(|k| !k.ends_with(IMPORT_MARKER) && !k.ends_with('/')),
                );
            }
            if keys.is_empty() {
                return Err(RegistryError::Input {
                    path: format!("s3://{bucket}/{}", prefix.as_deref().unwrap_or("")),
                    reason: "no files to import".into(),
                });
            }
            let mut inputs = ObjectInputs::new(store, bucket, keys);
            let options = ImportOptions {
                as_of: *as_of,
                max_age_days: *max_age_days,
                force: *force,
            };
            let report = import_from(store, registry, &mut inputs, &options, &mut |s| {
                tracing::info!(source = %s.name, rows = s.counts.rows, accepted = s.counts.accepted, rejected = s.counts.rejected, "registry file imported");
            })
            .await?;
            Ok(json(&report))
        }
        RegistryTask::Apply {
            registry,
            keys,
            force,
            as_of,
        } => {
            let mut inputs = ObjectInputs::new(store, bucket, keys.clone());
            let options = ApplyOptions {
                force: *force,
                as_of: *as_of,
            };
            Ok(json(
                &apply_from(store, registry, &mut inputs, &options).await?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_read_from_invocations_and_drops() {
        let t: RegistryTask = serde_json::from_str(
            r#"{"action":"import","registry":"national","prefix":"incoming-registry/national/full/b/","asOf":"2026-11-30"}"#,
        )
        .unwrap();
        assert!(matches!(
            t,
            RegistryTask::Import {
                max_age_days: 31,
                ..
            }
        ));
        let drop = task_for_key("incoming-registry/tx/changes/2026-12-01.txt").unwrap();
        assert!(matches!(drop, Some(RegistryTask::Apply { ref keys, .. }) if keys.len() == 1));
        let marker = br#"{"asOf":"2026-10-01","maxAgeDays":92}"#;
        let Some(RegistryTask::Import {
            prefix,
            max_age_days,
            ..
        }) = task_for_drop("incoming-registry/tx/full/q4/_import.json", Some(marker)).unwrap()
        else {
            panic!("an import");
        };
        assert_eq!(
            (prefix.as_deref(), max_age_days),
            (Some("incoming-registry/tx/full/q4/"), 92)
        );
        assert_eq!(
            task_for_key("incoming-registry/tx/full/q4/202.zip").unwrap(),
            None
        );
        // The marker starts the import state machine, not the function.
        assert_eq!(
            task_for_key("incoming-registry/tx/full/q4/_import.json").unwrap(),
            None
        );
        assert!(task_for_drop("incoming-registry/tx/full/q4/_import.json", Some(b"{}")).is_err());
        assert!(matches!(
            task_for_key("incoming-registry/Bad Name/changes/x"),
            Err(RegistryError::BadName(_))
        ));
    }

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
