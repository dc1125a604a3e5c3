//! `dncctl evidence`: a list's runs over a period as an auditor reads them (`index.html`, `evidence.csv`, each run's
//! `report.html`), and `dncctl evidence lookup NUMBER`: when one number was received, when CXone was verified to hold
//! it, and where it stands now. Reads the runs where `dncctl run` wrote them (`out`) or from the bucket
//! (`s3://BUCKET`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use dncflow::adapters::store::ObjectStore;
use dncflow::hours::business_days::BusinessCalendar;
use dncflow::run::deadline::DeadlineOutcome;
use dncflow::run::evidence::{index_html, summarize, to_csv, EvidenceRow};
use dncflow::run::{Manifest, RunKeys, RunReport};

use crate::runtime;

/// What `dncctl evidence` writes, or the lookup of one number.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct EvidenceArgs {
    #[command(subcommand)]
    command: Option<EvidenceCommand>,
    /// The DNC list whose evidence to write (required without a subcommand).
    #[arg(long)]
    list: Option<String>,
    /// First day of the period (a file's receipt date in the business-day time zone, DNCFLOW_BUSINESS_TIME_ZONE,
    /// default America/New_York), e.g. 2026-11-01.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day of the period (inclusive).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Where the runs are: the output root of `dncctl run`, or s3://BUCKET.
    #[arg(long, default_value = "out")]
    runs: String,
    /// The directory to write index.html, evidence.csv and runs/<runId>/report.html to.
    #[arg(long)]
    out: Option<PathBuf>,
    /// S3 endpoint URL (an emulator); default: AWS, or AWS_ENDPOINT_URL_S3.
    #[arg(long)]
    s3_endpoint: Option<String>,
}

#[derive(clap::Subcommand)]
enum EvidenceCommand {
    /// One number: each run that received it (file, receipt), when CXone was verified to hold it, and its state now.
    Lookup {
        /// The number, as written anywhere (the normalizer reads it).
        number: String,
        /// The DNC list whose runs to search.
        #[arg(long)]
        list: String,
        /// Where the runs are: the output root of `dncctl run`, or s3://BUCKET.
        #[arg(long, default_value = "out")]
        runs: String,
        /// S3 endpoint URL (an emulator).
        #[arg(long)]
        s3_endpoint: Option<String>,
    },
}

/// A run of the list: its manifest and, once it ended, its report.
struct Run {
    manifest: Manifest,
    report: Option<RunReport>,
}

/// A document of the run, `None` when absent; one that does not parse is an error naming it.
macro_rules! read_json {
    ($store:expr, $key:expr, $t:ty) => {{
        let key: &str = $key;
        match $store.get_bytes(key).await? {
            Some(b) => Some(
                serde_json::from_slice::<$t>(&b)
                    .with_context(|| format!("{key} does not parse"))?,
            ),
            None => None,
        }
    }};
}

/// Every run of `list` in `store` (a run id starts with the list's name, so one listing of that prefix finds them).
async fn runs_of(store: &dyn ObjectStore, list: &str) -> Result<Vec<Run>> {
    let keys = store.list(&RunKeys::list_prefix(list)).await?;
    let mut runs = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with("/manifest.json")) {
        let Some(manifest) = read_json!(store, key, Manifest) else {
            continue;
        };
        // Another list whose name shares the prefix (`demo` and `demo-2`).
        if manifest.list != list {
            continue;
        }
        let report = read_json!(store, &RunKeys::new(&manifest.run_id).report(), RunReport);
        runs.push(Run { manifest, report });
    }
    Ok(runs)
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The run's receipt time: its report's deadline, else its manifest.
fn received_at(run: &Run) -> Option<DateTime<Utc>> {
    run.report
        .as_ref()
        .and_then(|r| r.deadline.as_ref())
        .map(|d| d.received_at.as_str())
        .or(run.manifest.source.received_at.as_deref())
        .or(Some(run.manifest.created_at.as_str()))
        .and_then(parse)
}

pub(crate) fn run(args: EvidenceArgs) -> Result<()> {
    if let Some(EvidenceCommand::Lookup {
        number,
        list,
        runs,
        s3_endpoint,
    }) = args.command
    {
        return runtime()?.block_on(lookup(&number, &list, &runs, s3_endpoint.as_deref()));
    }
    let (Some(list), Some(out)) = (args.list, args.out) else {
        bail!("dncctl evidence needs --list NAME and --out DIR (or: dncctl evidence lookup NUMBER --list NAME)");
    };
    if let (Some(f), Some(t)) = (args.from, args.to) {
        if f > t {
            bail!("--from {f} is after --to {t}");
        }
    }
    let cal = BusinessCalendar::configured()?;
    let now = Utc::now();
    let (rows, pages) = runtime()?.block_on(async {
        let store = crate::registry::store_of(&args.runs, args.s3_endpoint.as_deref()).await?;
        let mut runs = runs_of(store.as_ref(), &list).await?;
        runs.retain(|r| {
            let day = received_at(r).map(|t| cal.local_date(t));
            day.is_some_and(|d| args.from.is_none_or(|f| d >= f) && args.to.is_none_or(|t| d <= t))
        });
        runs.sort_by_key(|r| (received_at(r), r.manifest.run_id.clone()));
        let received = dncflow::run::load_received(store.as_ref(), &list).await?;
        let mut rows = Vec::new();
        let mut pages = Vec::new();
        for r in &runs {
            let keys = RunKeys::new(&r.manifest.run_id);
            let row = match &r.report {
                Some(report) => {
                    let page = store.get_bytes(&keys.report_html()).await?;
                    let row = EvidenceRow::from_report(report, page.is_some());
                    if let Some(page) = page {
                        pages.push((r.manifest.run_id.clone(), page));
                    }
                    row
                }
                None => {
                    // Normalized, not ended: its clock runs from the receipt.
                    let mut row = EvidenceRow::in_progress(&r.manifest);
                    if let Some(t) = received_at(r) {
                        let d = DeadlineOutcome::measure(cal, t, t, None, now);
                        row.deadline = Some(d.deadline);
                        row.business_days = Some(d.business_days);
                        if d.state == dncflow::run::deadline::DeadlineState::Overdue {
                            row.outcome = "overdue".into();
                        }
                    }
                    row
                }
            };
            let mut row = row;
            if let Some(doc) = &received {
                row.receipt = match (
                    doc.open_receipt_of(&row.run_id),
                    doc.closed_receipt(&row.run_id),
                ) {
                    (Some(_), _) => Some("waiting".into()),
                    (None, Some(c)) => Some(format!("{} at {}", c.how, c.closed_at)),
                    (None, None) => None,
                };
            }
            rows.push(row);
        }
        anyhow::Ok((rows, pages))
    })?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for (run_id, page) in &pages {
        let dir = out.join("runs").join(run_id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("report.html"), page)?;
    }
    let period = format!(
        "{} to {}",
        args.from.map_or("the first run".into(), |d| d.to_string()),
        args.to.map_or("today".into(), |d| d.to_string())
    );
    std::fs::write(out.join("evidence.csv"), to_csv(&rows))?;
    std::fs::write(
        out.join("index.html"),
        index_html(
            &list,
            &period,
            &now.to_rfc3339(),
            &cal.time_zone().to_string(),
            &rows,
        ),
    )?;
    let s = summarize(&rows);
    println!(
        "list {list}, {period}: {} runs, {} honoured within 10 business days, {} late, {} not verified within the deadline yet, {} overdue{}",
        s.runs,
        s.honoured,
        s.late,
        s.open,
        s.overdue,
        s.max_business_days
            .map(|d| format!("; the slowest verified file took {d} business days"))
            .unwrap_or_default()
    );
    println!("wrote {}", out.join("index.html").display());
    println!("wrote {}", out.join("evidence.csv").display());
    Ok(())
}

/// `dncctl evidence lookup`: every run of `list` that received the number, with its receipt, verification and state
/// now.
async fn lookup(raw: &str, list: &str, runs_at: &str, s3_endpoint: Option<&str>) -> Result<()> {
    let normalizer = dncflow::phone::Normalizer::new(dncflow::phone::DefaultRegion::default());
    let number = match normalizer.normalize(raw) {
        Ok(n) => n.e164,
        Err(e) => bail!(
            "{} is not a phone number ({})",
            dncflow::phone::mask(raw),
            e.code()
        ),
    };
    let e164 = number.to_string();
    let masked = number.masked();
    let store = crate::registry::store_of(runs_at, s3_endpoint).await?;
    let store = store.as_ref();
    let mut runs = runs_of(store, list).await?;
    runs.sort_by_key(|r| (received_at(r), r.manifest.run_id.clone()));
    println!("{masked} on list {list}");
    let mut received_in = 0;
    for r in &runs {
        let m = &r.manifest;
        let keys = RunKeys::new(&m.run_id);
        // The number can only be in one shard of the run: read that one.
        let slot = dncflow::run::shard_of(number.packed(), m.shard_count);
        let Some(shard) = m.shards.iter().find(|s| s.index == slot) else {
            continue;
        };
        let shard_key = keys.shard(&shard.key);
        let Some(text) = store.get_bytes(&shard_key).await? else {
            println!("  run {}: shard {shard_key} missing", m.run_id);
            continue;
        };
        let entries = dncflow::run::parse_shard(&String::from_utf8_lossy(&text), &shard_key)?;
        let Some(entry) = entries.iter().find(|e| e.phone_number == e164) else {
            continue;
        };
        received_in += 1;
        println!(
            "  received in run {} from {} (line {}) at {}{}",
            m.run_id,
            m.source.display_name(),
            entry.line,
            received_at(r).map_or("-".into(), |t| t.to_rfc3339()),
            entry
                .expiration_date
                .as_deref()
                .map(|e| format!(", expires {e}"))
                .unwrap_or_default()
        );
        let dead = match store.get_bytes(&keys.dead_letters()).await? {
            Some(b) => String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| serde_json::from_str::<dncflow::run::LedgerRecord>(l).ok())
                .find(|rec| rec.phone_number == e164),
            None => None,
        };
        match (&r.report, dead) {
            (_, Some(rec)) => {
                let why = match rec.outcome {
                    dncflow::adapters::cxone::EntryOutcome::Rejected { code, message } => {
                        format!("{code}: {message}")
                    }
                    _ => "refused".into(),
                };
                println!("    CXone refused it (dead letter, {why}); dncflow's check answers it suppressed");
            }
            (Some(report), None) if report.success() => println!(
                "    verified held by CXone at {}{}",
                report
                    .deadline
                    .as_ref()
                    .and_then(|d| d.verified_at.clone())
                    .unwrap_or_else(|| report.finished_at.clone()),
                report
                    .deadline
                    .as_ref()
                    .map(|d| format!(" ({})", d.sentence()))
                    .unwrap_or_default()
            ),
            (Some(report), None) => println!(
                "    run {} at {}: {}",
                report.status,
                report.finished_at,
                report.reason.as_deref().unwrap_or("no reason recorded")
            ),
            (None, None) => println!("    run not ended yet"),
        }
    }
    if received_in == 0 {
        println!("  never received by any run of this list found under {runs_at}");
    }
    // Where it stands now.
    let now = Utc::now();
    let received = dncflow::run::load_received(store, list).await?;
    let status = dncflow::steps::read_list_status(store, list).await?;
    let now_line = if let Some(cause) = received.as_ref().and_then(|r| r.cause(&e164, now)) {
        format!(
            "suppressed by dncflow's check ({}): not yet shown held by CXone",
            cause.reason()
        )
    } else {
        let last = status.as_ref().and_then(|s| s.last_success.clone());
        let held = match &last {
            Some(l) => match store.get_bytes(&RunKeys::new(&l.run_id).snapshot()).await? {
                Some(b) => dncflow::steps::check::SuppressionSnapshot::from_lines(
                    &String::from_utf8_lossy(&b),
                )
                .0
                .contains(&e164),
                None => false,
            },
            None => false,
        };
        match (held, last) {
            (true, Some(l)) => format!(
                "suppressed: on the list as the last verified run ({}, {}) read it back",
                l.run_id, l.at
            ),
            _ if received_in > 0 => {
                "not on the list as last verified: expired, or removed (see status/<list>/operator.jsonl)".into()
            }
            _ => "not on the list as last verified".into(),
        }
    };
    println!("  now: {now_line}");
    Ok(())
}
