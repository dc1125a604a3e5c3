//! Every document of a run and of a list, each defined once, with its reading and writing: the run directory
//! (manifest, shards and rejects, and the names and hashes that keep them stable across re-runs), its ledger
//! (`ledger`), canary probes (`canary`), suppression snapshot (`snapshot`) and published report; the list's status
//! (`status`), lease (`lease`) and received numbers (`received`). The steps (`steps/`) read and write these through
//! this module and never through one another.
//!
//! This module depends on no service adapter (CXone, EventBridge, the FTC): documents are read and written through
//! the [`ObjectStore`](crate::adapters::store::ObjectStore) trait only, and fail with a [`DocumentError`].

pub mod canary;
pub mod deadline;
mod error;
pub mod evidence;
pub mod html;
mod keys;
pub mod lease;
pub mod ledger;
mod received;
mod shard;
pub mod snapshot;
pub mod status;

pub use error::DocumentError;
pub use keys::{
    audit_key, is_evidence, keys_version, lease_key, operator_log_key, received_key, status_key,
    RegistryKeys, RunKeys, HOURS_CLOSURES, REGISTRY_INCOMING,
};
pub use ledger::{merge_ledger, EntryOutcome, LedgerRecord};
pub use received::{
    load_received, receive_run, record_operator_actions, update_received, Cause, Hold,
    OperatorAction, OperatorRecord, Received, ReceivedCounts, ReceivedError, RECEIVED_FORMAT,
};
pub use shard::{
    parse_shard, parse_shard_with_ends, LineExtras, ShardEntry, ShardLineError, ShardLineWriter,
};
pub use status::{LastSuccess, ListStatus, OpenFailure, RunningRun};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::input::decode::{Compression, Encoding};
use crate::input::Detected;

/// Where the source file came from. Its content hash is the logical version of the drop.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SourceIdentity {
    /// Local path, when read from disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The S3 bucket the file was read from (None for a local file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The object's key in that bucket (None for a local file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The object version read (None for a local file or an unversioned bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The object's ETag as S3 reported it (None for a local file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// SHA-256 of the raw bytes (hex), filled in while reading.
    #[serde(default)]
    pub sha256: String,
    /// Size of the raw bytes.
    #[serde(default)]
    pub bytes: u64,
    /// When the file was received (RFC 3339): the S3 object's `LastModified`; locally the file's modification
    /// time or `--received-at`. The ten-business-day deadline runs from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
}

impl SourceIdentity {
    /// A name for messages: the path or `s3://bucket/key`.
    pub fn display_name(&self) -> String {
        match (&self.path, &self.bucket, &self.key) {
            (Some(p), _, _) => p.clone(),
            (None, Some(b), Some(k)) => format!("s3://{b}/{k}"),
            _ => "<input>".to_string(),
        }
    }
}

/// Counts of one run. Invariant: `rows = accepted + duplicates + rejected`; header and blank lines apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Data rows read (header and blank lines excluded): the left side of `rows = accepted + duplicates + rejected`.
    pub rows: u64,
    /// Distinct numbers written to shards.
    pub accepted: u64,
    /// Rows whose number was already accepted in this run.
    pub duplicates: u64,
    /// Rows written to `rejects.jsonl`.
    pub rejected: u64,
    /// Header lines recognised and skipped (not rows).
    pub header_lines: u64,
    /// Blank lines (and records of empty fields).
    pub blank_lines: u64,
    /// Physical lines read, over every part: `lines = header + blank + records + continuation lines`.
    #[serde(default)]
    pub lines: u64,
    /// Data records (one per data line, or per multi-line record); with several phone columns a record gives
    /// several rows.
    #[serde(default)]
    pub records: u64,
    /// Lines joined to a record by a multi-line quoted field.
    #[serde(default)]
    pub continuation_lines: u64,
    /// Accepted numbers per flag.
    pub flagged: BTreeMap<String, u64>,
    /// Rejected rows per reason code.
    pub reject_reasons: BTreeMap<String, u64>,
    /// Rejected rows counted but not written to `rejects.jsonl` (past the cap, beyond each reason's samples).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rejects_not_written: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    /// Whether every row is accounted for.
    pub fn balanced(&self) -> bool {
        self.rows == self.accepted + self.duplicates + self.rejected
            && self.rejected == self.reject_reasons.values().sum::<u64>()
            && self.lines
                == self.header_lines + self.blank_lines + self.records + self.continuation_lines
            && self.records <= self.rows
    }
}

/// One shard of accepted entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ShardInfo {
    /// Shard number: `shard_of(number, shard_count)`.
    pub index: u32,
    /// Key relative to the run directory (`shards/00003.jsonl`).
    pub key: String,
    /// Entries in the shard.
    pub entries: u64,
    /// CRC-32C of the shard file (hex), the checksum S3 verifies natively; computed while writing.
    pub crc32c: String,
}

/// What the source file turned out to be.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FormatInfo {
    /// `none`, `gzip` or `zip`.
    pub compression: String,
    /// Text encoding of each part.
    pub encodings: Vec<String>,
    /// Layout per part (`fcc`, `delimited`, `single-column`).
    pub layouts: Vec<serde_json::Value>,
    /// Archive members not read, each named: macOS metadata (`__MACOSX/…`, `._*`) holds no data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_members: Vec<String>,
}

impl FormatInfo {
    pub(crate) fn new(
        compression: Compression,
        parts: &[(Option<String>, Encoding, Detected)],
        skipped_members: Vec<String>,
    ) -> FormatInfo {
        let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_string();
        FormatInfo {
            compression: name(serde_json::to_value(compression).unwrap_or_default()),
            encodings: parts
                .iter()
                .map(|p| name(serde_json::to_value(p.1).unwrap_or_default()))
                .collect(),
            layouts: parts
                .iter()
                .map(|(member, _, d)| {
                    let mut v = serde_json::to_value(d).unwrap_or_default();
                    if let (Some(m), Some(obj)) = (member, v.as_object_mut()) {
                        obj.insert("member".into(), m.clone().into());
                    }
                    v
                })
                .collect(),
            skipped_members,
        }
    }
}

/// `manifest.json`: everything needed to upload, verify and audit a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Derived from the list, the source content and the options: a re-run of the same input is the same run.
    pub run_id: String,
    /// The DNC list name.
    pub list: String,
    /// Where the file came from (bucket, key and version, or a local path) and its content hash.
    pub source: SourceIdentity,
    /// What the source was.
    pub format: FormatInfo,
    /// Default region for numbers without a country code.
    pub default_region: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// The normalize step's accounting: rows, accepted, duplicates and rejects by reason.
    pub counts: Counts,
    /// The accounting identities the counts satisfy, written out for a reader of the manifest alone.
    pub invariant: String,
    /// Number of shard slots; a number always lands in `shard_of(number, shard_count)`.
    pub shard_count: u32,
    /// The shards that hold at least one number (an empty slot has no file).
    pub shards: Vec<ShardInfo>,
    /// Key of the rejects file relative to the run directory.
    pub rejects_key: String,
}

/// Shard slot of a number: a fixed 64-bit mix (SplitMix64's finalizer) modulo the shard count. Never change it: the
/// same number must land in the same shard number on every run.
pub fn shard_of(e164: u64, shard_count: u32) -> u32 {
    (mix64(e164) % u64::from(shard_count.max(1))) as u32
}

/// SplitMix64's finalizer: a fast, well-distributed, stable 64-bit mix.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Run id: the list name (made safe for keys) and a hash of the list, the content and the options.
pub fn run_id(list: &str, content_sha256: &str, options_fingerprint: &str) -> String {
    use sha2::{Digest, Sha256};
    let safe = safe_list_name(list);
    let mut h = Sha256::new();
    for part in [list, content_sha256, options_fingerprint] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("{safe}-{}", &hex::encode(h.finalize())[..16])
}

/// The list's name as the start of its run ids: characters other than letters, digits, `-` and `_` replaced by `_`,
/// at most 64.
pub fn safe_list_name(list: &str) -> String {
    list.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// The state of a run or of a list, as reports, statuses and the state machine's `Choice` states spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Verified: every entry CXone accepted is on the list and suppressing.
    Success,
    /// Not verified (the reason says why).
    Failed,
    /// A list's run in flight (a list status only).
    Running,
    /// Reconcile found entries missing: upload them again and come back (a reconcile answer only).
    Reupload,
}

impl RunStatus {
    /// As written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Success => "SUCCESS",
            RunStatus::Failed => "FAILED",
            RunStatus::Running => "RUNNING",
            RunStatus::Reupload => "REUPLOAD",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for RunStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

// The run's published documents: its report, the upload counts in it, and the list's status.

/// The upload's outcome counts, one per ledger record (a re-upload's record supersedes its first attempt).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadCounts {
    /// Records CXone created.
    pub created: u64,
    /// Already on the list.
    pub exists: u64,
    /// Rejected by CXone (dead letters).
    pub rejected: u64,
    /// Entries CXone's answer did not mention: neither written nor rejected as far as known; reconcile re-sends them.
    pub unconfirmed: u64,
    /// Entries sent again by reconciliation.
    pub reuploaded: u64,
}

impl UploadCounts {
    /// Counts of a (merged) ledger, where a re-upload's record superseded its first attempt.
    pub fn from_ledger(ledger: &[LedgerRecord], reuploaded: u64) -> UploadCounts {
        let mut u = UploadCounts {
            reuploaded,
            ..Default::default()
        };
        for r in ledger {
            u.add(r);
        }
        u
    }

    /// Count one ledger record.
    pub fn add(&mut self, r: &LedgerRecord) {
        match r.outcome {
            EntryOutcome::Created { .. } => self.created += 1,
            EntryOutcome::Exists { .. } => self.exists += 1,
            EntryOutcome::Rejected { .. } => self.rejected += 1,
            EntryOutcome::Unconfirmed => self.unconfirmed += 1,
        }
    }
}

/// A canary probe's summary, as the run report shows it: uploaded numbers that must come back suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryResult {
    /// Uploaded numbers the canary asked CXone about.
    pub probed: usize,
    /// Of those, numbers CXone answered suppressed.
    pub suppressed: usize,
    /// Masked numbers not (yet) suppressed.
    pub pending: Vec<String>,
}

impl CanaryResult {
    /// Every probed number is suppressed.
    pub fn propagated(&self) -> bool {
        self.probed > 0 && self.suppressed == self.probed
    }
}

/// `report.json`: the proof of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The run id (`runs/<runId>/`).
    pub run_id: String,
    /// The DNC list's name, as dncflow knows it.
    pub list: String,
    /// List id in CXone.
    pub list_id: Option<String>,
    /// `SUCCESS` (every expected entry read back from CXone) or `FAILED`.
    pub status: RunStatus,
    /// Why it failed (None when it succeeded).
    pub reason: Option<String>,
    /// When the run began (RFC 3339, wall clock).
    pub started_at: String,
    /// When the run ended (RFC 3339, wall clock; a local run on the simulator's fast clock says its simulated time in
    /// `simulated_clock`).
    pub finished_at: String,
    /// The normalize step's counts, as in the manifest.
    pub normalize: Counts,
    /// The upload's outcome counts over the merged ledger.
    pub upload: UploadCounts,
    /// The last canary probe (None when no canary ran).
    pub canary: Option<CanaryResult>,
    /// Reconcile rounds run, the first included (each a read-back of the list).
    pub reconcile_rounds: u32,
    /// Entries expected on the list at the last round.
    pub expected: usize,
    /// Of the expected entries, those found on the list at the last round.
    pub found: usize,
    /// Still missing at the end.
    pub missing: usize,
    /// Entries CXone holds with another expiration than was sent.
    pub wrong_expiration: usize,
    /// Entries CXone holds with another jurisdiction than was sent.
    pub wrong_jurisdiction: usize,
    /// The source object (S3 key or local path) the run is for; a failure stays open until this source succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The source's identity as normalize read it: bucket, key, version, ETag or path, SHA-256, size, receipt time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<SourceIdentity>,
    /// When the run's manifest was written (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalized_at: Option<String>,
    /// When the last upload round's last write to CXone ended (RFC 3339), from that round's canary record
    /// (`canary/<round>.json`, written by the cooldown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    /// When CXone was shown suppressing what that round wrote (RFC 3339): the canary probe that ended its cooldown
    /// (or, numbers of the canary handed to reconciliation, the reconciliation that found them suppressed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagated_at: Option<String>,
    /// The ten-business-day deadline of 47 CFR 64.1200(d)(3): received, verified (a SUCCESS), business days taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<deadline::DeadlineOutcome>,
    /// Numbers sent to CXone per jurisdiction (the ledger's, counted at reconciliation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jurisdictions: BTreeMap<String, u64>,
    /// Dead letters per CXone code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dead_letter_reasons: BTreeMap<String, u64>,
    /// A local run on the embedded simulator's fast clock: `started_at` and `finished_at` are wall-clock times, and
    /// this says how much simulated time (CXone's, the cooldown's) passed between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_clock: Option<SimulatedClock>,
}

/// The simulated clock of a local run: how fast it ran, and how much of its time passed during the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedClock {
    /// Times faster than wall time.
    pub scale: f64,
    /// Simulated seconds from the run's start to its end.
    pub simulated_seconds: f64,
}

impl SimulatedClock {
    /// The clock of a run that started at `started_at` (RFC 3339, wall time: the simulated clock starts with the
    /// run) and ended at `finished` on a clock running `scale` times faster than wall time; `None` at wall speed.
    pub fn of(
        scale: Option<f64>,
        started_at: &str,
        finished: DateTime<Utc>,
    ) -> Option<SimulatedClock> {
        let scale = scale.filter(|s| *s > 0.0 && (*s - 1.0).abs() > f64::EPSILON)?;
        let started = DateTime::parse_from_rfc3339(started_at)
            .ok()?
            .with_timezone(&Utc);
        let simulated_seconds = (finished - started).num_milliseconds().max(0) as f64 / 1000.0;
        Some(SimulatedClock {
            scale,
            simulated_seconds,
        })
    }

    /// The wall-clock end of the run: its start plus the simulated time it took, slowed back down.
    pub fn wall_finished_at(&self, started_at: &str) -> DateTime<Utc> {
        let started = DateTime::parse_from_rfc3339(started_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        started + chrono::Duration::milliseconds((self.wall_seconds() * 1000.0) as i64)
    }

    /// Wall-clock seconds the run took.
    pub fn wall_seconds(&self) -> f64 {
        self.simulated_seconds / self.scale
    }

    /// `simulated clock ×60: 3 min 32 s simulated in 3.5 s`.
    pub fn sentence(&self) -> String {
        let s = self.simulated_seconds.round() as u64;
        let simulated = match s {
            0..=59 => format!("{s} s"),
            _ => format!("{} min {} s", s / 60, s % 60),
        };
        format!(
            "simulated clock ×{}: {simulated} of simulated time (CXone's, the cooldown's) in {:.1} s of wall time",
            self.scale,
            self.wall_seconds()
        )
    }
}

impl RunReport {
    /// A FAILED report of run `run_id` of `list` with nothing verified, ending at `now`: what reconcile fills in, and
    /// what the failure recorder publishes as it is. The manifest (when normalize got that far) gives the counts and
    /// the source.
    pub fn blank(
        manifest: Option<&Manifest>,
        run_id: &str,
        list: &str,
        started_at: Option<String>,
        now: DateTime<Utc>,
    ) -> RunReport {
        RunReport {
            run_id: run_id.to_string(),
            list: list.to_string(),
            list_id: None,
            status: RunStatus::Failed,
            reason: None,
            started_at: started_at.unwrap_or_else(|| now.to_rfc3339()),
            finished_at: now.to_rfc3339(),
            normalize: manifest.map(|m| m.counts.clone()).unwrap_or_default(),
            upload: UploadCounts::default(),
            canary: None,
            reconcile_rounds: 0,
            expected: 0,
            found: 0,
            missing: 0,
            wrong_expiration: 0,
            wrong_jurisdiction: 0,
            source: manifest.and_then(|m| m.source.key.clone().or_else(|| m.source.path.clone())),
            source_identity: manifest.map(|m| m.source.clone()),
            normalized_at: manifest.map(|m| m.created_at.clone()),
            uploaded_at: None,
            propagated_at: None,
            deadline: None,
            jurisdictions: Default::default(),
            dead_letter_reasons: Default::default(),
            simulated_clock: None,
        }
    }

    /// Whether campaigns may launch on this list.
    pub fn success(&self) -> bool {
        self.status == RunStatus::Success
    }

    /// The run's moments in order, each from the run's own records: the file received (S3's time, the file's, or
    /// `--received-at`), normalized (the manifest written), uploaded (the last write of the last upload round),
    /// propagated (the canary that ended that round's cooldown), verified (the read-back that showed CXone holding
    /// the run's numbers; a failed run has none). `None`: not reached, or not recorded.
    pub fn timeline(&self) -> [(&'static str, Option<&str>); 5] {
        let d = self.deadline.as_ref();
        let received = d.map(|d| d.received_at.as_str()).or(self
            .source_identity
            .as_ref()
            .and_then(|s| s.received_at.as_deref()));
        [
            ("received", received),
            ("normalized", self.normalized_at.as_deref()),
            ("uploaded", self.uploaded_at.as_deref()),
            ("propagated", self.propagated_at.as_deref()),
            ("verified", d.and_then(|d| d.verified_at.as_deref())),
        ]
    }

    /// The human-readable `report.md`.
    pub fn markdown(&self) -> String {
        let n = &self.normalize;
        let u = &self.upload;
        let mut s = format!(
            "# DNC run {}\n\n**{}**{}\n\n| | |\n|---|---|\n| list | {} ({}) |\n| started | {} |\n| finished | {} |\n",
            self.run_id,
            self.status,
            self.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default(),
            self.list,
            self.list_id.as_deref().unwrap_or("-"),
            self.started_at,
            self.finished_at
        );
        if let Some(c) = &self.simulated_clock {
            s += &format!("| clock | {} |\n", c.sentence());
        }
        if let Some(d) = &self.deadline {
            s += &format!(
                "\n## Deadline (47 CFR 64.1200(d)(3): ten business days)\n\n**{}**\n\n| | |\n|---|---|\n| received | {} |\n",
                d.sentence(),
                d.received_at
            );
            if let Some(c) = &d.clock_from {
                s += &format!("| clock from (numbers first received earlier) | {c} |\n");
            }
            s += &format!(
                "| verified | {} |\n| deadline | {} (end of the tenth business day, {}) |\n| business days | {} |\n| outcome | {} |\n",
                d.verified_at.as_deref().unwrap_or("not verified"),
                d.deadline,
                d.time_zone,
                d.business_days,
                d.state.as_str()
            );
        }
        s += "\n## Timeline\n\n| moment | time |\n|---|---|\n";
        if let Some(c) = self.deadline.as_ref().and_then(|d| d.clock_from.as_deref()) {
            if Some(c) != self.deadline.as_ref().map(|d| d.received_at.as_str()) {
                s += &format!("| numbers first received (the clock's start) | {c} |\n");
            }
        }
        for (moment, at) in self.timeline() {
            s += &format!("| {moment} | {} |\n", at.unwrap_or("-"));
        }
        if let Some(d) = &self.deadline {
            s += &format!("| deadline | {} |\n", d.deadline);
        }
        if let Some(src) = &self.source_identity {
            s += "\n## Source\n\n| | |\n|---|---|\n";
            let mut row = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    s += &format!("| {k} | {} |\n", markdown_cell(&v));
                }
            };
            row("path", src.path.clone());
            row("bucket", src.bucket.clone());
            row("key", src.key.clone());
            row("version", src.version_id.clone());
            row("ETag", src.etag.clone());
            row("SHA-256", Some(src.sha256.clone()));
            row("bytes", Some(src.bytes.to_string()));
            row("received", src.received_at.clone());
            row("normalized", self.normalized_at.clone());
        }
        s += &format!(
            "\n## Source rows\n\n`rows = accepted + duplicates + rejected`: {} = {} + {} + {} ({})\n\n\
             `lines = header + blank + records + continuation lines`: {} = {} + {} + {} + {}\n\n\
             | rows | accepted | duplicates | rejected |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
            n.rows,
            n.accepted,
            n.duplicates,
            n.rejected,
            if n.balanced() { "balanced" } else { "NOT BALANCED" },
            n.lines,
            n.header_lines,
            n.blank_lines,
            n.records,
            n.continuation_lines,
            n.rows, n.accepted, n.duplicates, n.rejected
        );
        if !n.reject_reasons.is_empty() {
            s += "\n### Rejected rows by reason\n\n| reason | rows |\n|---|---|\n";
            for (reason, count) in &n.reject_reasons {
                s += &format!("| {} | {count} |\n", markdown_cell(reason));
            }
        }
        if !n.flagged.is_empty() {
            s += "\n### Accepted numbers by flag\n\n| flag | numbers |\n|---|---|\n";
            for (flag, count) in &n.flagged {
                s += &format!("| {} | {count} |\n", markdown_cell(flag));
            }
        }
        s += &format!(
            "\n## CXone\n\n| created | already there | rejected (dead letters) | unconfirmed | re-uploaded |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
            u.created, u.exists, u.rejected, u.unconfirmed, u.reuploaded
        );
        if let Some(c) = &self.canary {
            s += &format!("\nCanary: {}/{} suppressed.\n", c.suppressed, c.probed);
        }
        s += &format!(
            "\n## Reconciliation ({} rounds)\n\n| expected | found | missing | wrong expiration | wrong jurisdiction |\n|---|---|---|---|---|\n| {} | {} | {} | {} | {} |\n",
            self.reconcile_rounds, self.expected, self.found, self.missing, self.wrong_expiration, self.wrong_jurisdiction
        );
        s
    }
}

/// A value in a Markdown table cell: pipes escaped, line breaks flattened (a key may hold either).
fn markdown_cell(v: &str) -> String {
    v.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_clock_gives_the_wall_clock_end_and_says_what_it_simulated() {
        let finished: DateTime<Utc> = "2026-12-06T10:03:30Z".parse().unwrap();
        let clock = SimulatedClock::of(Some(60.0), "2026-12-06T10:00:00Z", finished).unwrap();
        assert_eq!(clock.simulated_seconds, 210.0);
        assert_eq!(
            clock.wall_finished_at("2026-12-06T10:00:00Z"),
            "2026-12-06T10:00:03.500Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            clock.sentence(),
            "simulated clock ×60: 3 min 30 s of simulated time (CXone's, the cooldown's) in 3.5 s of wall time"
        );
        // Wall speed (AWS, a real tenant): no simulated clock, the times are the clock's own.
        assert_eq!(
            SimulatedClock::of(Some(1.0), "2026-12-06T10:00:00Z", finished),
            None
        );
        assert_eq!(
            SimulatedClock::of(None, "2026-12-06T10:00:00Z", finished),
            None
        );
    }

    #[test]
    fn shard_assignment_is_pinned() {
        // Pinned values: changing the mix would move numbers between shards across runs.
        assert_eq!(mix64(12025550198), 18037194681966264814);
        assert_eq!(
            shard_of(12025550198, 16),
            (18037194681966264814u64 % 16) as u32
        );
        let counts = (0..100_000u64).fold([0u32; 16], |mut acc, n| {
            acc[shard_of(12_000_000_000 + n, 16) as usize] += 1;
            acc
        });
        assert!(
            counts.iter().all(|&c| (5_500..7_000).contains(&c)),
            "uneven shards: {counts:?}"
        );
    }

    #[test]
    fn run_id_is_stable_and_safe() {
        let a = run_id("TCPA National/v2", "abc", "US|16");
        assert_eq!(a, run_id("TCPA National/v2", "abc", "US|16"));
        assert!(a.starts_with("TCPA_National_v2-"));
        assert_ne!(a, run_id("TCPA National/v2", "abd", "US|16"));
    }
}
