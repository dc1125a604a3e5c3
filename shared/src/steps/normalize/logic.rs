//! The normalize job: a DNC source file in, a run directory out (shards, rejects, manifest), every row accounted for.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use thiserror::Error;

use crate::dedupe::SeenNumbers;
use crate::input::decode::{for_each_part_noting, DecodeLimits, HashingReader, StreamDigest};
use crate::input::{read_rows, InputError, ReadOptions, RowEvent};
use crate::phone::{DefaultRegion, Flags, Normalized, Normalizer, RejectReason};
use crate::run::{
    self, Counts, FormatInfo, LineExtras, Manifest, ShardInfo, ShardLineWriter, SourceIdentity,
};

/// Failures of a normalize run. Bad rows are not errors: they are rejected and recorded.
#[derive(Debug, Error)]
pub enum NormalizeError {
    /// The input cannot be read at all.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Writing the run directory failed.
    #[error("cannot write run output at {path}: {source}")]
    Output {
        /// The path or key that could not be written.
        path: String,
        /// The I/O error the store or file system gave.
        source: io::Error,
    },
    /// A bug: the counts do not add up. Never published.
    #[error("accounting invariant violated for {file}: {counts:?}")]
    Unbalanced {
        /// The input's name, as given to the reader.
        file: String,
        /// The counts that do not add up, for the bug report.
        counts: Box<Counts>,
    },
}

/// The share of rejected rows above which a run is refused before anything is uploaded, by default.
pub const DEFAULT_MAX_REJECT_RATIO: f64 = 0.5;

/// A file of junk must not end SUCCESS: a run that accepted no number, or rejected more than `max_reject_ratio` of
/// its rows as junk, is refused (the caller fails it `InvalidInput`) with the counts and the main reasons, before any
/// upload. Only junk counts: `EXPIRED` rows are opt-outs whose time has passed (left out of the ratio), and a
/// placeholder in a second phone column is no row at all. A refused file's accepted numbers are still received (the
/// check answers them `suppressed`, `refused-file:<runId>`).
pub fn quality_gate(counts: &Counts, max_reject_ratio: f64) -> Result<(), String> {
    let mut reasons: Vec<(&String, &u64)> = counts
        .reject_reasons
        .iter()
        .filter(|(r, _)| r.as_str() != "EXPIRED")
        .collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top = reasons
        .iter()
        .take(3)
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if counts.accepted == 0 {
        return Err(format!(
            "no number accepted: {} rows, {} rejected{}; nothing to upload",
            counts.rows,
            counts.rejected,
            if top.is_empty() {
                String::new()
            } else {
                format!(" ({top})")
            }
        ));
    }
    // Expired opt-outs are not junk: a file that carries its history is the right file. They count neither as
    // rejects nor as rows here.
    let expired = counts.reject_reasons.get("EXPIRED").copied().unwrap_or(0);
    let junk = counts.rejected.saturating_sub(expired);
    let judged = counts.rows.saturating_sub(expired);
    let ratio = junk as f64 / judged.max(1) as f64;
    if ratio > max_reject_ratio {
        let expired_note = if expired > 0 {
            format!(" ({expired} expired rows not counted)")
        } else {
            String::new()
        };
        return Err(format!(
            "{junk} of {judged} rows rejected{expired_note} ({:.1} %, more than the {:.1} % allowed; \
             DNCFLOW_MAX_REJECT_RATIO): {top}. Is this the right file?",
            ratio * 100.0,
            max_reject_ratio * 100.0
        ));
    }
    Ok(())
}

/// The start (00:00 UTC) of `t`'s day: expirations are judged against it, so that every normalize of the same file
/// on the same day writes the same shards (and the date is part of the run id).
pub fn start_of_day(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(t, |d| d.and_utc())
}

/// Options of a normalize run.
#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    /// The DNC list the numbers are for.
    pub list: String,
    /// Default region for numbers written without a country code.
    pub region: DefaultRegion,
    /// Number of shard slots.
    pub shard_count: u32,
    /// `source` written on entries whose row has none.
    pub default_source: String,
    /// Row reader options (phone column).
    pub read: ReadOptions,
    /// Bounds on decompression (inflated bytes, ratio, zip members).
    pub limits: DecodeLimits,
    /// Rejects written in full to `rejects.jsonl`; past this, each reason keeps only its first
    /// [`REJECT_SAMPLES`] records and the rest are counted (a file of junk must not fill `/tmp` with rejects).
    pub max_rejects_kept: u64,
    /// "Now", for rejecting expired rows (injectable for tests; [`NormalizeOptions::new`] takes the start of today,
    /// UTC, and it is part of the run id).
    pub now: DateTime<Utc>,
}

impl NormalizeOptions {
    /// Defaults for `list`: region US, 16 shards, source = list name.
    pub fn new(list: &str) -> NormalizeOptions {
        NormalizeOptions {
            list: list.to_string(),
            region: DefaultRegion::US,
            shard_count: 16,
            default_source: list.to_string(),
            read: ReadOptions::default(),
            limits: DecodeLimits::default(),
            max_rejects_kept: 100_000,
            now: start_of_day(Utc::now()),
        }
    }

    /// Everything besides the content that changes the shards: part of the run id, so that a re-normalize of the
    /// same object can never rewrite the shards of a run that is resuming from a cursor with different ones.
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{:?}|{}",
            self.region.name(),
            self.shard_count,
            self.default_source,
            self.read.column,
            self.now.to_rfc3339()
        )
    }
}

/// Progress of a run, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Raw (compressed) bytes read so far.
    pub bytes: u64,
    /// Data rows read so far.
    pub rows: u64,
}

/// A run written to a local directory.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The run directory (`<root>/runs/<runId>`).
    pub dir: PathBuf,
    /// The manifest written there.
    pub manifest: Manifest,
}

/// Records of each reject reason written to `rejects.jsonl` once the file holds [`NormalizeOptions::max_rejects_kept`].
pub const REJECT_SAMPLES: u64 = 100;

/// Additional entry flags decided by the job (not by the phone normalizer).
const EXPIRATION_UNREADABLE: &str = "EXPIRATION_UNREADABLE";
const JURISDICTION_IGNORED: &str = "JURISDICTION_IGNORED";
/// The row opened a quote that was never closed before the next record: its quotes were read as characters.
const STRAY_QUOTE: &str = "STRAY_QUOTE";

/// One open shard: entries are formatted straight into `buf`, which is checksummed and written out in large chunks
/// (one copy of each byte on its way to the file, instead of a line buffer plus a `BufWriter`).
struct ShardWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    entries: u64,
    crc32c: u32,
}

/// Bytes a shard buffers before writing: large enough that syscalls stay rare, small enough that 16 shards fit in
/// the cache hierarchy.
const SHARD_BUFFER: usize = 256 * 1024;

impl ShardWriter {
    fn flush_buf(&mut self) -> Result<(), NormalizeError> {
        self.crc32c = crc32c::crc32c_append(self.crc32c, &self.buf);
        self.file
            .write_all(&self.buf)
            .map_err(|source| NormalizeError::Output {
                path: self.path.display().to_string(),
                source,
            })?;
        self.buf.clear();
        Ok(())
    }
}

/// What a row carries beyond its number: absent for FCC registry rows (the bulk), so a pending row stays small.
struct RowExtras {
    expiration: Option<DateTime<Utc>>,
    source: Option<Box<str>>,
    jurisdiction: Option<Box<str>>,
    flags: [Option<&'static str>; 3],
}

/// An accepted row waiting for its de-duplication lookup (see [`PREFETCH_DEPTH`]).
struct Pending {
    line: u64,
    n: Normalized,
    extras: Option<Box<RowExtras>>,
}

impl Pending {
    fn extra_flags(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.extras
            .iter()
            .flat_map(|x| x.flags.iter().flatten().copied())
    }

    /// The entry as one shard line, appended to `buf`.
    fn encode(&self, buf: &mut Vec<u8>, writer: &ShardLineWriter) {
        let n = &self.n;
        let (jurisdiction, extras) = match self.extras.as_deref() {
            None => (n.jurisdiction, None),
            Some(x) => (
                x.jurisdiction.as_deref().unwrap_or(n.jurisdiction),
                Some(LineExtras {
                    expiration: x.expiration,
                    source: x.source.as_deref(),
                }),
            ),
        };
        writer.write(
            buf,
            &n.e164,
            jurisdiction,
            extras,
            self.line,
            n.flags.names().chain(self.extra_flags()),
        );
    }
}

/// Rows are de-duplicated this many rows after they are read, with their set slot prefetched meanwhile: the set is
/// large and accessed at random, and overlapping the cache misses roughly halves the cost of a run. Order is kept.
const PREFETCH_DEPTH: usize = 16;

/// The state of one run while rows stream through it.
struct Job<'a> {
    options: &'a NormalizeOptions,
    normalizer: Normalizer,
    staging: PathBuf,
    seen: SeenNumbers,
    shards: Vec<Option<ShardWriter>>,
    rejects: BufWriter<File>,
    counts: Counts,
    lines: ShardLineWriter,
    member: Option<String>,
    /// The phone column of the row being read, when the file has several (rejects name it).
    column: Option<String>,
    error: Option<NormalizeError>,
    pending: std::collections::VecDeque<Pending>,
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

impl<'a> Job<'a> {
    fn out_err(&self, path: &Path) -> impl Fn(io::Error) -> NormalizeError {
        let path = path.display().to_string();
        move |source| NormalizeError::Output {
            path: path.clone(),
            source,
        }
    }

    fn reject(&mut self, line: u64, code: &str, raw: &[u8]) {
        self.counts.rejected += 1;
        let of_reason = self
            .counts
            .reject_reasons
            .entry(code.to_string())
            .or_default();
        *of_reason += 1;
        if self.counts.rejected > self.options.max_rejects_kept && *of_reason > REJECT_SAMPLES {
            // Counted, not written: past the cap each reason keeps its first samples.
            self.counts.rejects_not_written += 1;
            return;
        }
        let mut rec = Vec::with_capacity(96 + raw.len());
        rec.extend_from_slice(b"{\"line\":");
        rec.extend_from_slice(line.to_string().as_bytes());
        if let Some(m) = &self.member {
            rec.extend_from_slice(b",\"member\":");
            json_str(&mut rec, m);
        }
        if let Some(c) = &self.column {
            rec.extend_from_slice(b",\"column\":");
            json_str(&mut rec, c);
        }
        rec.extend_from_slice(b",\"reason\":\"");
        rec.extend_from_slice(code.as_bytes());
        rec.extend_from_slice(b"\",\"raw\":");
        let raw = String::from_utf8_lossy(&raw[..raw.len().min(256)]);
        json_str(&mut rec, &raw);
        rec.extend_from_slice(b"}\n");
        if let Err(e) = self.rejects.write_all(&rec) {
            self.fail(NormalizeError::Output {
                path: "rejects.jsonl".into(),
                source: e,
            });
        }
    }

    fn fail(&mut self, e: NormalizeError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn row(
        &mut self,
        line: u64,
        phone: &[u8],
        expiration: Option<&[u8]>,
        source: Option<&[u8]>,
        jurisdiction: Option<&[u8]>,
        stray_quote: bool,
    ) {
        self.counts.rows += 1;
        let n = match self.normalizer.normalize_bytes(phone) {
            Ok(n) => n,
            Err(reason) => return self.reject(line, reason.code(), phone),
        };
        let extras =
            if expiration.is_none() && source.is_none() && jurisdiction.is_none() && !stray_quote {
                None
            } else {
                let mut flags: [Option<&'static str>; 3] = [None, None, None];
                if stray_quote {
                    flags[2] = Some(STRAY_QUOTE);
                }
                let expiration = match expiration.map(parse_expiration) {
                    None => None,
                    Some(Some(when)) if when <= self.options.now => {
                        return self.reject(line, "EXPIRED", phone)
                    }
                    Some(Some(when)) => Some(when),
                    Some(None) => {
                        flags[0] = Some(EXPIRATION_UNREADABLE);
                        None
                    }
                };
                // A state list may hold numbers from other states' area codes: its own jurisdiction column wins when it
                // names a subdivision of the number's country.
                let given = jurisdiction.and_then(|j| valid_jurisdiction(j, n.jurisdiction));
                if jurisdiction.is_some() && given.is_none() {
                    flags[1] = Some(JURISDICTION_IGNORED);
                }
                Some(Box::new(RowExtras {
                    expiration,
                    source: source.map(|s| String::from_utf8_lossy(s).into()),
                    jurisdiction: given.map(Into::into),
                    flags,
                }))
            };
        self.seen.prefetch(n.e164.packed());
        self.pending.push_back(Pending { line, n, extras });
        if self.pending.len() > PREFETCH_DEPTH {
            self.settle_one();
        }
    }

    /// De-duplicate and write every pending row.
    fn settle(&mut self) {
        while !self.pending.is_empty() {
            self.settle_one();
        }
    }

    fn settle_one(&mut self) {
        let Some(p) = self.pending.pop_front() else {
            return;
        };
        if !self.seen.insert(p.n.e164.packed()) {
            self.counts.duplicates += 1;
            return;
        }
        self.counts.accepted += 1;
        if !p.n.flags.is_empty() || p.extras.is_some() {
            for name in p.n.flags.names().chain(p.extra_flags()) {
                *self.counts.flagged.entry(name.to_string()).or_default() += 1;
            }
        }
        let slot = run::shard_of(p.n.e164.packed(), self.options.shard_count) as usize;
        if let Err(e) = self.write_shard(slot, &p) {
            self.fail(e);
        }
    }

    fn write_shard(&mut self, slot: usize, entry: &Pending) -> Result<(), NormalizeError> {
        if self.shards[slot].is_none() {
            let path = self.staging.join("shards").join(format!("{slot:05}.jsonl"));
            let file = File::create(&path).map_err(self.out_err(&path))?;
            self.shards[slot] = Some(ShardWriter {
                path,
                file,
                buf: Vec::with_capacity(SHARD_BUFFER + 1024),
                entries: 0,
                crc32c: 0,
            });
        }
        let w = self.shards[slot].as_mut().expect("shard opened above");
        w.entries += 1;
        entry.encode(&mut w.buf, &self.lines);
        if w.buf.len() >= SHARD_BUFFER {
            w.flush_buf()?;
        }
        Ok(())
    }
}

/// An ISO 3166 code from the file, kept when it is of the number's own country (`US-TX` for a `US-DC` number).
fn valid_jurisdiction(given: &[u8], derived: &str) -> Option<String> {
    let g = String::from_utf8_lossy(given).trim().to_ascii_uppercase();
    let b = g.as_bytes();
    let shape = (b.len() == 2 && b.iter().all(u8::is_ascii_uppercase))
        || (b.len() >= 4
            && b.len() <= 6
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2] == b'-'
            && b[3..].iter().all(u8::is_ascii_alphanumeric));
    // NANP territories are tagged US-PR etc.; their own ISO country (PR) is a different country.
    let derived_country = &derived[..2.min(derived.len())];
    (shape && g[..2] == *derived_country).then_some(g)
}

/// Read an expiration date: RFC 3339, `YYYY-MM-DD[ HH:MM:SS]`, `MM/DD/YYYY`, `YYYY/MM/DD`. A date alone means the
/// end of that day where it ends last, at UTC−12 (`2026-12-31` → `2027-01-01T11:59:59Z`): at 23:59:59 UTC the entry
/// would stop suppressing in the afternoon of the day it names for a called party in the US. (The end of the day in
/// the number's own time zone would be a few hours earlier and equally safe; without a time-zone table, the latest
/// end of the day anywhere is the one that never ends early.) `None` when unreadable.
pub fn parse_expiration(raw: &[u8]) -> Option<DateTime<Utc>> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    for f in ["%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d
                .and_hms_opt(23, 59, 59)
                .map(|t| t.and_utc() + chrono::Duration::hours(12));
        }
    }
    None
}

/// Normalize one source stream into `<out_root>/runs/<runId>/`. `raw` is the file as stored (compressed or not);
/// `source` names it. The run directory appears only when complete and balanced; a re-run of the same input replaces
/// it with identical content (apart from `createdAt`).
pub fn normalize_to_dir(
    raw: Box<dyn Read + Send>,
    mut source: SourceIdentity,
    options: &NormalizeOptions,
    out_root: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<RunOutput, NormalizeError> {
    let runs = out_root.join("runs");
    fs::create_dir_all(&runs).map_err(|source| NormalizeError::Output {
        path: runs.display().to_string(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(&runs)
        .map_err(|source| NormalizeError::Output {
            path: runs.display().to_string(),
            source,
        })?;
    let manifest = normalize_into(raw, &mut source, options, staging.path(), progress)?;
    let dir = runs.join(&manifest.run_id);
    let out_err = |source| NormalizeError::Output {
        path: dir.display().to_string(),
        source,
    };
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(out_err)?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &dir).map_err(out_err)?;
    Ok(RunOutput { dir, manifest })
}

/// Normalize into `staging` (which must exist): shards, `rejects.jsonl` and `manifest.json` are written there.
pub fn normalize_into(
    raw: Box<dyn Read + Send>,
    source: &mut SourceIdentity,
    options: &NormalizeOptions,
    staging: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Manifest, NormalizeError> {
    let name = source.display_name();
    let shards_dir = staging.join("shards");
    let out_err = |p: &Path| {
        let path = p.display().to_string();
        move |source| NormalizeError::Output {
            path: path.clone(),
            source,
        }
    };
    fs::create_dir_all(&shards_dir).map_err(out_err(&shards_dir))?;
    let rejects_path = staging.join("rejects.jsonl");
    let rejects = BufWriter::new(File::create(&rejects_path).map_err(out_err(&rejects_path))?);
    let mut job = Job {
        options,
        normalizer: Normalizer::new(options.region),
        staging: staging.to_path_buf(),
        seen: SeenNumbers::new(),
        shards: (0..options.shard_count.max(1)).map(|_| None).collect(),
        rejects,
        counts: Counts::default(),
        lines: ShardLineWriter::new(&options.default_source),
        member: None,
        column: None,
        error: None,
        pending: Default::default(),
    };
    let digest = StreamDigest::default();
    let hashing = HashingReader::new(raw, digest.clone());
    let mut parts = Vec::new();
    let mut skipped_members = Vec::new();
    let compression = for_each_part_noting(
        &name,
        Box::new(hashing),
        |part| {
            let label = match &part.member {
                Some(m) => format!("{name}!{m}"),
                None => name.clone(),
            };
            job.member = part.member.clone();
            let mut since = 0u64;
            let detected = read_rows(&label, part.reader, &options.read, |event| {
                match event {
                    RowEvent::Header => job.counts.header_lines += 1,
                    RowEvent::Blank => job.counts.blank_lines += 1,
                    RowEvent::Row {
                        line,
                        phone,
                        expiration,
                        source,
                        jurisdiction,
                        stray_quote,
                        column,
                        ..
                    } => {
                        job.column = column.map(str::to_string);
                        job.row(line, phone, expiration, source, jurisdiction, stray_quote);
                        job.column = None;
                    }
                    RowEvent::Problem { line, problem, raw } => {
                        job.counts.rows += 1;
                        job.reject(line, problem.code(), raw)
                    }
                }
                since += 1;
                if since >= 65_536 {
                    since = 0;
                    progress(Progress {
                        bytes: digest.bytes(),
                        rows: job.counts.rows,
                    });
                }
            })?;
            job.settle();
            job.counts.lines += detected.lines;
            job.counts.records += detected.records;
            job.counts.continuation_lines += detected.continuation_lines;
            parts.push((part.member, part.encoding, detected));
            Ok(())
        },
        &mut skipped_members,
        options.limits,
    )?;
    if let Some(e) = job.error.take() {
        return Err(e);
    }
    progress(Progress {
        bytes: digest.bytes(),
        rows: job.counts.rows,
    });
    // Hash every byte of the source, including what a decompressor left unread.
    let (sha256, bytes) = digest.finish();
    source.sha256 = sha256;
    source.bytes = bytes;
    job.rejects.flush().map_err(out_err(&rejects_path))?;
    let mut shards = Vec::new();
    for (index, writer) in job.shards.into_iter().enumerate() {
        let Some(mut w) = writer else { continue };
        w.flush_buf()?;
        shards.push(ShardInfo {
            index: index as u32,
            key: format!("shards/{index:05}.jsonl"),
            entries: w.entries,
            crc32c: format!("{:08x}", w.crc32c),
        });
    }
    if !job.counts.balanced() {
        return Err(NormalizeError::Unbalanced {
            file: name,
            counts: Box::new(job.counts),
        });
    }
    let manifest = Manifest {
        run_id: run::run_id(&options.list, &source.sha256, &options.fingerprint()),
        list: options.list.clone(),
        source: source.clone(),
        format: FormatInfo::new(compression, &parts, skipped_members),
        default_region: options.region.name().to_string(),
        created_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        counts: job.counts,
        invariant:
            "rows = accepted + duplicates + rejected; lines = header + blank + records + continuation lines"
                .into(),
        shard_count: options.shard_count.max(1),
        shards,
        rejects_key: "rejects.jsonl".into(),
    };
    let manifest_path = staging.join("manifest.json");
    let body = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    fs::write(&manifest_path, body).map_err(out_err(&manifest_path))?;
    Ok(manifest)
}

/// The reject reasons a phone field can get, for documentation and reports.
pub fn phone_reject_codes() -> Vec<&'static str> {
    RejectReason::ALL.iter().map(|r| r.code()).collect()
}

/// Flags an accepted entry can carry.
pub fn entry_flag_names() -> Vec<&'static str> {
    Flags::default()
        .names()
        .chain([EXPIRATION_UNREADABLE, JURISDICTION_IGNORED])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (RunOutput, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut options = NormalizeOptions::new("test");
        options.now = "2026-01-01T00:00:00Z".parse().unwrap();
        let source = SourceIdentity {
            path: Some("mem.csv".into()),
            ..Default::default()
        };
        let out = normalize_to_dir(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            source,
            &options,
            dir.path(),
            &mut |_| {},
        )
        .unwrap();
        (out, dir)
    }

    #[test]
    fn a_run_of_junk_is_refused() {
        let counts = |rows: u64, accepted: u64, rejected: u64| Counts {
            rows,
            accepted,
            rejected,
            reject_reasons: [("TOO_SHORT".to_string(), rejected)].into(),
            ..Counts::default()
        };
        assert!(quality_gate(&counts(100, 60, 40), 0.5).is_ok());
        let err = quality_gate(&counts(100, 40, 60), 0.5).unwrap_err();
        assert!(
            err.contains("60 of 100 rows rejected") && err.contains("TOO_SHORT 60"),
            "{err}"
        );
        assert!(
            quality_gate(&counts(100, 40, 60), 0.7).is_ok(),
            "configurable"
        );
        let err = quality_gate(&counts(3, 0, 3), 0.5).unwrap_err();
        assert!(err.contains("no number accepted"), "{err}");
        // Expired rows are not junk: 60 expired and 40 valid passes; 30 expired, 40 junk, 30 valid is 40 of 70.
        let expired = |expired: u64, junk: u64, accepted: u64| Counts {
            rows: expired + junk + accepted,
            accepted,
            rejected: expired + junk,
            reject_reasons: [
                ("EXPIRED".to_string(), expired),
                ("TOO_SHORT".to_string(), junk),
            ]
            .into(),
            ..Counts::default()
        };
        assert!(quality_gate(&expired(60, 0, 40), 0.5).is_ok());
        assert!(quality_gate(&expired(90, 4, 6), 0.5).is_ok(), "4 of 10");
        let err = quality_gate(&expired(30, 40, 30), 0.5).unwrap_err();
        assert!(
            err.contains("40 of 70 rows rejected (30 expired rows not counted)")
                && err.contains("TOO_SHORT 40")
                && !err.contains("EXPIRED"),
            "{err}"
        );
        assert!(
            quality_gate(&Counts::default(), 0.5).is_err(),
            "an empty file uploads nothing"
        );
    }

    #[test]
    fn accounts_for_every_row_and_writes_run_directory() {
        let text = "phone,expires,source,jurisdiction\n\
                    (202) 555-0198,2030-01-01,state-list,US-VA\n\
                    202.555.0198,,,\n\
                    555-0198,,,\n\
                    4155550100,2020-01-01,,\n\
                    \n\
                    +44 20 7946 0018,someday,,\n";
        let (out, _dir) = run(text);
        let c = &out.manifest.counts;
        assert_eq!(
            (
                c.rows,
                c.accepted,
                c.duplicates,
                c.rejected,
                c.header_lines,
                c.blank_lines
            ),
            (5, 2, 1, 2, 1, 1)
        );
        assert_eq!(c.reject_reasons.get("TOO_SHORT"), Some(&1));
        assert_eq!(c.reject_reasons.get("EXPIRED"), Some(&1));
        assert_eq!(c.flagged.get("EXPIRATION_UNREADABLE"), Some(&1));
        let mut lines = Vec::new();
        for shard in &out.manifest.shards {
            let text = fs::read_to_string(out.dir.join(&shard.key)).unwrap();
            assert_eq!(text.lines().count() as u64, shard.entries);
            lines.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
            );
        }
        let dc = lines
            .iter()
            .find(|l| l["phoneNumber"] == "+12025550198")
            .unwrap();
        assert_eq!(
            dc["jurisdiction"], "US-VA",
            "the file's own jurisdiction wins within the country"
        );
        assert_eq!(
            dc["expirationDate"], "2030-01-02T11:59:59Z",
            "a date alone lasts until its end at UTC-12"
        );
        assert_eq!(dc["source"], "state-list");
        assert_eq!(dc["line"], 2);
        let gb = lines
            .iter()
            .find(|l| l["phoneNumber"] == "+442079460018")
            .unwrap();
        assert_eq!(gb["jurisdiction"], "GB");
        assert_eq!(gb["source"], "test");
        let rejects = fs::read_to_string(out.dir.join("rejects.jsonl")).unwrap();
        assert!(
            rejects.contains("\"line\":4,\"reason\":\"TOO_SHORT\",\"raw\":\"555-0198\""),
            "{rejects}"
        );
        let manifest: Manifest =
            serde_json::from_slice(&fs::read(out.dir.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest, out.manifest);
    }

    #[test]
    fn rerun_is_the_same_run_and_same_shards() {
        let text = "2025550198\n4155550100\n2125550111\n";
        let (a, _d1) = run(text);
        let (b, _d2) = run(text);
        assert_eq!(a.manifest.run_id, b.manifest.run_id);
        assert_eq!(a.manifest.shards, b.manifest.shards);
        assert_eq!(a.manifest.source.sha256, b.manifest.source.sha256);
        for s in &a.manifest.shards {
            assert_eq!(
                s.index,
                run::shard_of(
                    fs::read_to_string(a.dir.join(&s.key)).unwrap()[17..28]
                        .parse()
                        .unwrap(),
                    16
                )
            );
        }
    }

    #[test]
    fn shard_checksums_and_counts_match_the_files_across_buffer_flushes() {
        // About 10 MB of shard lines: every shard is written in several chunks.
        let mut text = String::new();
        for i in 0..100_000u64 {
            text.push_str(&format!("{}\n", 2_022_000_000 + i * 37 % 7_000_000));
        }
        let (out, _dir) = run(&text);
        let mut lines = 0;
        for shard in &out.manifest.shards {
            let bytes = fs::read(out.dir.join(&shard.key)).unwrap();
            assert!(bytes.len() > SHARD_BUFFER, "{} is small", shard.key);
            assert_eq!(format!("{:08x}", crc32c::crc32c(&bytes)), shard.crc32c);
            let n = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(n, shard.entries);
            lines += n;
        }
        assert_eq!(lines, out.manifest.counts.accepted);
        assert_eq!(out.manifest.counts.accepted, 100_000);
    }

    #[test]
    fn expiration_formats() {
        let t = |s: &str| parse_expiration(s.as_bytes()).map(|d| d.to_rfc3339());
        // The end of the day at UTC-12: still 2030-05-01 everywhere on Earth, 11:59 PM in Hawaii is 09:59:59Z.
        assert_eq!(
            t("2030-05-01").as_deref(),
            Some("2030-05-02T11:59:59+00:00")
        );
        assert_eq!(
            t("05/01/2030").as_deref(),
            Some("2030-05-02T11:59:59+00:00")
        );
        assert_eq!(
            t("2030-05-01T10:00:00-05:00").as_deref(),
            Some("2030-05-01T15:00:00+00:00")
        );
        assert_eq!(t("soon"), None);
    }
}
