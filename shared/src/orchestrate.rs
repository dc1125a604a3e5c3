//! The whole job on one machine (what the state machine does in AWS): upload every shard of a normalized run,
//! cool down, probe a canary, reconcile with bounded re-uploads, and publish the report and the list's status.
//! `dncctl run` drives it against the embedded simulator or a real tenant.

use std::fs;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cxone::{DncApi, DncList, DncRule, EntryOutcome, NewList};
use crate::pipeline::{
    canary_sample, cooldown, fetch_all_entries, merge_ledger, parse_shard, preflight, probe_canary,
    reconcile, upload_entries, CanaryResult, LedgerRecord, PipelineError, ShardEntry,
};
use crate::run::{Counts, Manifest};

/// Time as CXone sees it, and waiting. The embedded simulator runs a scaled clock so a local run does not wait
/// real minutes; a real tenant uses wall time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// The real duration to sleep for `d` of this clock's time.
    fn real(&self, d: Duration) -> Duration;
}

/// Wall time, or wall time sped up by `scale` from the moment of creation.
pub struct ScaledClock {
    start_real: std::time::Instant,
    start: DateTime<Utc>,
    scale: f64,
}

impl ScaledClock {
    /// A clock running `scale` times faster than wall time (1.0: wall time).
    pub fn new(scale: f64) -> ScaledClock {
        ScaledClock {
            start_real: std::time::Instant::now(),
            start: Utc::now(),
            scale: scale.max(1e-6),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start_real.elapsed().as_secs_f64() * self.scale;
        self.start + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
    }
    fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Minimum time after the last write before the list may be called ready.
    pub cooldown: Duration,
    /// Numbers probed by the canary.
    pub canary_size: usize,
    /// Canary probes before giving up.
    pub canary_attempts: u32,
    /// Wait between canary probes.
    pub canary_interval: Duration,
    /// Reconcile rounds (each may re-upload what is missing).
    pub reconcile_attempts: u32,
    /// Batches in flight.
    pub concurrency: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            cooldown: Duration::from_secs(180),
            canary_size: 20,
            canary_attempts: 10,
            canary_interval: Duration::from_secs(30),
            reconcile_attempts: 3,
            concurrency: 4,
        }
    }
}

/// Upload outcome counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadCounts {
    /// New records.
    pub created: u64,
    /// Already on the list.
    pub exists: u64,
    /// Rejected by CXone (dead letters).
    pub rejected: u64,
    /// Unknown outcome.
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
            match r.outcome {
                EntryOutcome::Created { .. } => u.created += 1,
                EntryOutcome::Exists { .. } => u.exists += 1,
                EntryOutcome::Rejected { .. } => u.rejected += 1,
                EntryOutcome::Unconfirmed => u.unconfirmed += 1,
            }
        }
        u
    }
}

/// `report.json`: the proof of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// List name.
    pub list: String,
    /// List id in CXone.
    pub list_id: Option<String>,
    /// `SUCCESS` or `FAILED`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Start.
    pub started_at: String,
    /// End.
    pub finished_at: String,
    /// Normalize counts.
    pub normalize: Counts,
    /// Upload counts.
    pub upload: UploadCounts,
    /// Last canary probe.
    pub canary: Option<CanaryResult>,
    /// Reconcile rounds run.
    pub reconcile_rounds: u32,
    /// Entries expected on the list / found there at the last round.
    pub expected: usize,
    /// Found.
    pub found: usize,
    /// Still missing at the end.
    pub missing: usize,
    /// Created with another expiration / jurisdiction than sent.
    pub wrong_expiration: usize,
    /// Wrong jurisdiction.
    pub wrong_jurisdiction: usize,
}

impl RunReport {
    /// Whether campaigns may launch on this list.
    pub fn success(&self) -> bool {
        self.status == "SUCCESS"
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
        s += &format!(
            "\n## Source rows\n\n| rows | accepted | duplicates | rejected |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
            n.rows, n.accepted, n.duplicates, n.rejected
        );
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

/// `status/<list>/latest.json`: what campaign launches are gated on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListStatus {
    /// List name.
    pub list: String,
    /// `SUCCESS` or `FAILED`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The run.
    pub run_id: String,
    /// When.
    pub updated_at: String,
    /// Where the report is, relative to the output root.
    pub report_key: String,
    /// Entries verified on the list.
    pub verified_entries: usize,
    /// The last successful run, kept across failures ("last known good").
    pub last_success: Option<LastSuccess>,
}

/// The last known good run of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSuccess {
    /// Run id.
    pub run_id: String,
    /// When.
    pub at: String,
}

/// Find the list by name, or create it with a single BLOCK rule of scope BOTH (the consolidated rule of the source
/// document's edge case 3). For the embedded simulator and first-time setups.
pub async fn ensure_list(api: &dyn DncApi, name: &str) -> Result<DncList, PipelineError> {
    let list = match api.find_list(name).await? {
        Some(l) => l,
        None => {
            api.create_list(&NewList {
                name: name.to_string(),
                description: format!("{name}: managed by dncflow"),
                kind: "MANUAL".into(),
                default_expiration_date: "2099-12-31T23:59:59Z".into(),
                is_active: true,
            })
            .await?
        }
    };
    if !api
        .rules()
        .await?
        .iter()
        .any(|r| r.blocks_outbound(&list.id))
    {
        api.create_rule(&DncRule {
            id: String::new(),
            name: format!("{name} suppression"),
            description: "dncflow: consolidated outbound suppression".into(),
            scope: "BOTH".into(),
            priority: 5,
            list_ids: vec![list.id.clone()],
            action: "BLOCK".into(),
            is_active: true,
        })
        .await?;
    }
    Ok(list)
}

fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<(), PipelineError> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| PipelineError::Data {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        out.push(b'\n');
    }
    fs::write(path, out).map_err(|e| PipelineError::Data {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Where a normalized run is.
pub struct RunFiles<'a> {
    /// Its manifest.
    pub manifest: &'a Manifest,
    /// Its directory (`<out_root>/runs/<runId>`).
    pub run_dir: &'a Path,
    /// The output root (stands in for the bucket): `status/` is written there.
    pub out_root: &'a Path,
}

/// Run upload → cooldown → reconcile for the normalized run in `run_dir`, then write `ledger.jsonl`,
/// `dead-letters.jsonl`, `report.json`, `report.md` there and `status/<list>/latest.json` under `out_root`.
/// Progress lines go to `say`. Failures of CXone end the run FAILED with the reason; they are not errors.
pub async fn run_pipeline(
    api: &dyn DncApi,
    clock: &dyn Clock,
    run: &RunFiles<'_>,
    list: &DncList,
    settings: &RunSettings,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<RunReport, PipelineError> {
    let (manifest, run_dir, out_root) = (run.manifest, run.run_dir, run.out_root);
    let mut report = RunReport {
        run_id: manifest.run_id.clone(),
        list: manifest.list.clone(),
        list_id: Some(list.id.clone()),
        status: "FAILED".into(),
        reason: None,
        started_at: clock.now().to_rfc3339(),
        finished_at: String::new(),
        normalize: manifest.counts.clone(),
        upload: UploadCounts::default(),
        canary: None,
        reconcile_rounds: 0,
        expected: 0,
        found: 0,
        missing: 0,
        wrong_expiration: 0,
        wrong_jurisdiction: 0,
    };
    let mut ledger: Vec<LedgerRecord> = Vec::new();
    let outcome = stages(
        api,
        clock,
        manifest,
        run_dir,
        list,
        settings,
        &mut report,
        &mut ledger,
        say,
    )
    .await;
    if let Err(e) = outcome {
        report.reason = Some(format!("{} ({})", e, e.error_name()));
    }
    report.upload = UploadCounts::from_ledger(&ledger, report.upload.reuploaded);
    report.finished_at = clock.now().to_rfc3339();
    let dead: Vec<&LedgerRecord> = ledger
        .iter()
        .filter(|r| matches!(r.outcome, EntryOutcome::Rejected { .. }))
        .collect();
    write_jsonl(&run_dir.join("ledger.jsonl"), &ledger)?;
    write_jsonl(&run_dir.join("dead-letters.jsonl"), &dead)?;
    // The same publication as the Lambdas' (report.json, report.md, status with the last known good run), with the
    // output root standing in for the bucket.
    let store = crate::store::LocalStore {
        root: out_root.to_path_buf(),
    };
    crate::stages::publish_list_status(&store, &crate::stages::NoNotifier, &report)
        .await
        .map_err(|e| PipelineError::Data {
            what: format!("publishing run {}", report.run_id),
            reason: e.to_string(),
        })?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
async fn stages(
    api: &dyn DncApi,
    clock: &dyn Clock,
    manifest: &Manifest,
    run_dir: &Path,
    list: &DncList,
    settings: &RunSettings,
    report: &mut RunReport,
    ledger: &mut Vec<LedgerRecord>,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), PipelineError> {
    preflight(api, &list.id).await?;
    let version = manifest.source.sha256.as_str();
    let mut pending: Vec<ShardEntry> = Vec::new();
    for shard in &manifest.shards {
        let path = run_dir.join(&shard.key);
        let text = fs::read_to_string(&path).map_err(|e| PipelineError::Data {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
        pending.extend(parse_shard(&text, &shard.key)?);
    }
    let mut round = 0u32;
    loop {
        say(format!(
            "upload: {} entries to list {}",
            pending.len(),
            list.name
        ));
        let keys_version = crate::stages::keys_version(version, round);
        let progress = upload_entries(
            api,
            &list.id,
            &keys_version,
            &pending,
            0,
            Duration::MAX,
            settings.concurrency,
        )
        .await;
        if round > 0 {
            report.upload.reuploaded += progress.records.len() as u64;
        }
        merge_ledger(ledger, progress.records);
        if let Some(e) = progress.error {
            return Err(e);
        }
        let last_write = clock.now();

        // Cooldown: never ready before the minimum after the last write.
        loop {
            let c = cooldown(last_write, clock.now(), settings.cooldown);
            if c.elapsed {
                break;
            }
            say(format!(
                "cooldown: {} s before the list may be probed",
                c.wait_seconds
            ));
            tokio::time::sleep(clock.real(Duration::from_secs(c.wait_seconds))).await;
        }
        round += 1;
        report.reconcile_rounds = round;
        let remote = fetch_all_entries(api, &list.id).await?;
        let r = reconcile(ledger, &remote, list.default_expiration_date.as_deref());
        report.expected = r.expected;
        report.found = r.found;
        report.missing = r.missing.len() + r.unconfirmed.len();
        report.wrong_expiration = r.wrong_expiration.len();
        report.wrong_jurisdiction = r.wrong_jurisdiction.len();
        say(format!(
            "reconcile round {round}: {} expected, {} found, {} missing, {} wrong expiration, {} wrong jurisdiction",
            r.expected, r.found, report.missing, report.wrong_expiration, report.wrong_jurisdiction
        ));
        if r.clean() {
            // The list holds everything: a canary of it must now come back suppressed (propagation, rules).
            let sample = canary_sample(ledger, settings.canary_size);
            let mut attempt = 0;
            loop {
                attempt += 1;
                let canary = probe_canary(api, &list.id, &sample).await?;
                say(format!(
                    "canary: {}/{} suppressed",
                    canary.suppressed, canary.probed
                ));
                let done = canary.propagated() || sample.is_empty();
                report.canary = Some(canary);
                if done {
                    report.status = "SUCCESS".into();
                    return Ok(());
                }
                if attempt >= settings.canary_attempts {
                    return Err(PipelineError::Data {
                        what: "canary".into(),
                        reason: format!(
                            "not suppressed after {attempt} probes: suppression has not propagated"
                        ),
                    });
                }
                tokio::time::sleep(clock.real(settings.canary_interval)).await;
            }
        }
        if round >= settings.reconcile_attempts {
            return Err(PipelineError::Data {
                what: "reconcile".into(),
                reason: format!(
                    "{} entries still missing or wrong after {round} rounds",
                    report.missing + report.wrong_expiration + report.wrong_jurisdiction
                ),
            });
        }
        // Re-queue what is missing.
        pending = r.reupload_entries(&manifest.list);
        if pending.is_empty() {
            // Only metadata differs: re-sending would not fix it.
            return Err(PipelineError::Data {
                what: "reconcile".into(),
                reason: format!(
                    "{} entries hold another expiration or jurisdiction than sent",
                    report.wrong_expiration + report.wrong_jurisdiction
                ),
            });
        }
    }
}
