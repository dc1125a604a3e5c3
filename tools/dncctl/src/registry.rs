//! `dncctl registry import|apply|status`: the suppression index of a registry (the National DNC Registry, a state
//! list) in a local directory standing in for the bucket, or in S3.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use dncflow::adapters::store::{LocalStore, ObjectStore, S3Store};
use dncflow::registry::{self, ApplyOptions, ImportOptions, RegistryStatus, VersionReport};
use indicatif::{ProgressBar, ProgressStyle};

/// Where the index lives.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// The registry's name (`national`, `tx`, …).
    #[arg(long)]
    pub registry: String,
    /// Output root standing in for the bucket (the index goes to OUT/registry/<name>/), or s3://bucket; the same
    /// default as every other command's `--out-dir` (also accepted here).
    #[arg(long, visible_alias = "out-dir", default_value = "out")]
    pub out: String,
    /// S3 endpoint URL (an emulator) when --out or an input is s3://.
    #[arg(long)]
    pub s3_endpoint: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum RegistryCommand {
    /// Build a new version from full downloads (a zip per area code, gzip or plain; directories walked) and make it
    /// live. Prints the accounting of every line.
    Import {
        /// Files or directories, or s3://bucket/prefix (every object under it).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
        /// The date the download is current as of (YYYY-MM-DD).
        #[arg(long)]
        as_of: NaiveDate,
        /// Days after --as-of the registry goes stale (check then answers error for what it covers); at most 31. A
        /// state list with a refresh rule (Texas, Pennsylvania, Indiana: shared/data/state_lists.json) goes stale
        /// when its rule says instead: its --as-of is the publication date of the list.
        #[arg(long, default_value_t = registry::DEFAULT_MAX_AGE_DAYS)]
        max_age_days: u32,
        /// The national subscription's area codes: a list (`202,415`) or a file of them (commas, spaces or lines;
        /// `#` comments). Default: the live version's scope, else every US area code of the numbering table. An
        /// import lacking one is refused (RegistryIncomplete) unless --force.
        #[arg(long, value_name = "LIST|FILE", conflicts_with = "scope")]
        area_codes: Option<String>,
        /// A state's list (`US-TX`): it answers for that state's area codes only.
        #[arg(long)]
        scope: Option<String>,
        /// Make it live even when it lacks declared area codes (their numbers are then answered error), is older
        /// than the live version, or covers less than it (area codes missing, under 90 % of its numbers).
        #[arg(long)]
        force: bool,
    },
    /// Apply FTC change lists (`NNNNNNNNNN,YYYY-MM-DDThh:mm:ss,A|D`): a new version rewriting only the area codes
    /// they touch. A list already applied is skipped; one dated before lists already applied is merged (a number's
    /// latest change wins); a list with a line dated in the future is refused whole.
    Apply {
        /// Change-list files or directories, or s3://bucket/prefix.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
        /// The lists' as-of date, a day they cover (default: the days of their changes).
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// Download from the FTC's service (docs/ftc-download.md) and hand the files to the registry: today's change
    /// list (submit, poll, fetch, apply; `NoChanges` advances continuity) or, with --full, the full list of the
    /// subscription's area codes (imported). Each raw SOAP answer is kept under registry/<name>/downloads/ before it
    /// is decoded; a file whose zip CRC or line layout fails is refused, its answer kept.
    Download(crate::download::DownloadArgs),
    /// Declare the FTC subscription the registry is downloaded under (its SAN, the area codes it pays for, the
    /// SAN's renewal date), or show it (no option). The status then shows the area codes subscribed and not covered
    /// and the days to the renewal; the downloads import the subscription's area codes.
    Subscription {
        #[command(flatten)]
        target: Target,
        /// The Subscription Account Number.
        #[arg(long, requires_all = ["area_codes", "renews_on"])]
        san: Option<String>,
        /// The area codes it pays for: a list (`202,415`) or a file of them.
        #[arg(long, value_name = "LIST|FILE", requires = "san")]
        area_codes: Option<String>,
        /// The day the SAN must be renewed by (YYYY-MM-DD).
        #[arg(long, requires = "san")]
        renews_on: Option<NaiveDate>,
    },
    /// The live version: as-of, age, CURRENT / EXPIRING / STALE, days to the limit, size, the area codes covered and
    /// missing, gaps in the change lists, a failed import; the FTC subscription (area codes subscribed and not
    /// covered, days to the SAN's renewal), the last full download of each area code, the last change list, the
    /// days without one, the last download failure. Exits non-zero when STALE, missing or lacking area codes, with a
    /// gap, after a failed import or download, or past the SAN's renewal date.
    Status {
        #[command(flatten)]
        target: Target,
    },
}

/// Inputs given as `s3://bucket/prefix` (every object under each prefix, read one at a time), or `None` when they are
/// local files and directories. Mixing both, or several buckets, is refused.
async fn s3_inputs(
    inputs: &[PathBuf],
    s3_endpoint: Option<&str>,
) -> Result<Option<(S3Store, Vec<String>)>> {
    let urls: Vec<&str> = inputs
        .iter()
        .filter_map(|p| p.to_str())
        .filter(|p| p.starts_with("s3://"))
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    if urls.len() != inputs.len() {
        anyhow::bail!("give local files and directories, or s3:// prefixes, not both");
    }
    let mut bucket: Option<String> = None;
    let mut prefixes = Vec::new();
    for url in urls {
        let location = dncflow::adapters::store::S3Location::parse(url)?;
        if bucket.get_or_insert_with(|| location.bucket.clone()) != &location.bucket {
            anyhow::bail!("every s3:// input must be in one bucket");
        }
        prefixes.push(location.key);
    }
    let store = S3Store {
        client: dncflow::adapters::store::s3_client(s3_endpoint).await,
        bucket: bucket.expect("one url at least"),
        evidence_lock: evidence_lock()?,
    };
    let mut keys = Vec::new();
    for prefix in prefixes {
        let found = store.list(&prefix).await?;
        if found.is_empty() {
            anyhow::bail!("s3://{}/{prefix}: no objects", store.bucket);
        }
        keys.extend(found.into_iter().filter(|k| !k.ends_with('/')));
    }
    Ok(Some((store, keys)))
}

/// The evidence lock `dncctl` writes to a bucket with (`DNCFLOW_EVIDENCE_LOCK_MODE`, `DNCFLOW_EVIDENCE_LOCK_DAYS`, as the
/// deployment sets them for its functions: an operator's status change is evidence too).
pub(crate) fn evidence_lock() -> Result<Option<dncflow::adapters::store::EvidenceLock>> {
    dncflow::adapters::store::EvidenceLock::from_env().map_err(anyhow::Error::msg)
}

/// The store `out` names.
pub async fn store_of(out: &str, s3_endpoint: Option<&str>) -> Result<Box<dyn ObjectStore>> {
    Ok(match out.strip_prefix("s3://") {
        Some(bucket) => Box::new(S3Store {
            client: dncflow::adapters::store::s3_client(s3_endpoint).await,
            bucket: bucket.trim_end_matches('/').to_string(),
            evidence_lock: evidence_lock()?,
        }),
        None => Box::new(LocalStore {
            root: PathBuf::from(out),
        }),
    })
}

fn print_status(s: &RegistryStatus) {
    println!("registry   {} (version {})", s.registry, s.version);
    println!(
        "as of      {} ({} days ago, limit {} days): {}",
        s.as_of.format("%Y-%m-%d %H:%M:%S UTC"),
        s.age_days,
        s.max_age_days,
        s.status
    );
    println!(
        "numbers    {} in {} area codes, index {:.1} MB, {} change lists applied",
        s.total,
        s.area_codes,
        s.index_bytes as f64 / 1e6,
        s.change_lists
    );
    println!(
        "scope      {}: {} area codes covered{}",
        s.scope,
        s.covered_area_codes.len(),
        if s.covered_area_codes.len() <= 20 {
            format!(" ({})", s.covered_area_codes.join(","))
        } else {
            String::new()
        }
    );
    if !s.missing_area_codes.is_empty() {
        println!(
            "MISSING    {} declared area codes not covered (their numbers are answered error): {}",
            s.missing_area_codes.len(),
            s.missing_area_codes.join(",")
        );
    }
    if let Some(through) = s.continuous_through {
        println!("continuous through {through} (the import's day and a change list for every day after it)");
    }
    if !s.gaps.is_empty() {
        let days: Vec<String> = s.gaps.iter().map(|d| d.to_string()).collect();
        println!(
            "GAP        no change list for {}: freshness stops before it; apply the missing lists",
            days.join(", ")
        );
    }
    println!(
        "limit      {} days to the {}-day limit",
        s.days_to_stale, s.max_age_days
    );
    if let Some(next) = &s.next_list {
        println!(
            "next list  {} published {}: the one in use may be used through {} ({})",
            next.name, next.published_on, next.use_by, next.source
        );
    }
    if let Some(days) = s.days_not_continuous {
        if days > 0 {
            println!("BEHIND     {days} day(s) since yesterday without a change list");
        }
    }
    if let Some(sub) = &s.subscription {
        println!(
            "subscription SAN {}: {} area codes, renews on {} ({} days){}",
            sub.san,
            sub.area_codes.len(),
            sub.renews_on,
            s.days_to_renewal.unwrap_or_default(),
            match s.days_to_renewal {
                Some(d) if d < 0 => ": PAST, renew it (downloads under it are no longer allowed)",
                Some(d) if d <= registry::watch::RENEWAL_WARNING_DAYS => ": renew it soon",
                _ => "",
            }
        );
    }
    if !s.subscribed_not_covered.is_empty() {
        println!(
            "NOT COVERED {} area codes subscribed and not in the registry (a full download imports them): {}",
            s.subscribed_not_covered.len(),
            s.subscribed_not_covered.join(",")
        );
    }
    // The last full download, grouped by when (a full download fetches every area code at once).
    let mut by_time: std::collections::BTreeMap<_, Vec<&str>> = std::collections::BTreeMap::new();
    for (npa, at) in &s.last_full_download {
        by_time.entry(*at).or_default().push(npa);
    }
    for (at, codes) in by_time.iter().rev() {
        println!(
            "full       downloaded {}: {} area codes ({})",
            at.format("%Y-%m-%d %H:%M UTC"),
            codes.len(),
            if codes.len() <= 20 {
                codes.join(",")
            } else {
                format!("{}, …", codes[..20].join(","))
            }
        );
    }
    if let Some(c) = &s.last_change_list {
        println!(
            "change list downloaded {}: {}{}",
            c.at.format("%Y-%m-%d %H:%M UTC"),
            c.outcome,
            c.file_key
                .as_deref()
                .map(|k| format!(", {} lines ({k})", c.lines))
                .unwrap_or_default()
        );
    }
    if let Some(f) = &s.download_failure {
        println!(
            "FAILED     download at {}: {} {}",
            f.at.format("%Y-%m-%d %H:%M:%S UTC"),
            f.error,
            f.cause
        );
    }
    if let Some(f) = &s.import_failure {
        println!(
            "FAILED     import {} at {}: {} {}",
            f.prefix.as_deref().unwrap_or("?"),
            f.at.format("%Y-%m-%d %H:%M:%S UTC"),
            f.error,
            f.cause
        );
    }
}

/// The `--scope` and `--area-codes` of an import (a list, or a file holding one).
fn scope_of(scope: Option<&str>, area_codes: Option<&str>) -> Result<Option<registry::Scope>> {
    let codes = match area_codes {
        None => None,
        Some(arg) if std::path::Path::new(arg).is_file() => Some(
            std::fs::read_to_string(arg)
                .with_context(|| format!("reading area codes from {arg}"))?,
        ),
        Some(arg) => Some(arg.to_string()),
    };
    let codes: Option<Vec<String>> = codes.map(|c| vec![c]);
    Ok(registry::Scope::from_request(scope, codes.as_deref())?)
}

pub(crate) fn print_report(r: &VersionReport, seconds: f64) {
    let i = &r.import;
    if i.rows > 0 {
        println!(
            "rows       {} = {} accepted + {} duplicates + {} rejected ({:.1} M rows/s)",
            i.rows,
            i.accepted,
            i.duplicates,
            i.rejected,
            i.rows as f64 / seconds.max(1e-9) / 1e6
        );
    }
    let c = &r.changes;
    if c.rows > 0 {
        println!(
            "changes    {} = {} adds ({} already registered) + {} deletes ({} not registered) + {} rejected; {} superseded (older than the import or than a change the registry holds)",
            c.rows, c.adds, c.adds_present, c.deletes, c.deletes_absent, c.rejected, c.superseded
        );
    }
    for f in &r.already_applied {
        println!("skipped    {f}: already applied");
    }
    match &r.version {
        Some(v) => println!(
            "version    {v}: {} area codes written, {} carried",
            r.area_codes_written, r.area_codes_carried
        ),
        None => println!("version    unchanged (nothing new to apply)"),
    }
    println!("rejects    {}", r.rejects_key);
    print_status(&r.status);
}

/// Run one registry command; `Ok(false)` when it should exit non-zero (a registry stale, missing, lacking declared area codes, with a gap, or after a failed import).
pub fn run(command: RegistryCommand) -> Result<bool> {
    if let RegistryCommand::Download(args) = command {
        return crate::download::run(args);
    }
    crate::runtime()?.block_on(async {
        match command {
            RegistryCommand::Import {
                inputs,
                target,
                as_of,
                max_age_days,
                area_codes,
                scope,
                force,
            } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                let options = ImportOptions {
                    as_of,
                    max_age_days,
                    force,
                    scope: scope_of(scope.as_deref(), area_codes.as_deref())?,
                };
                if let Some((source, keys)) =
                    s3_inputs(&inputs, target.s3_endpoint.as_deref()).await?
                {
                    let started = std::time::Instant::now();
                    let bucket = source.bucket.clone();
                    let mut objects = registry::ObjectInputs::new(&source, &bucket, keys);
                    let report = registry::import_from(
                        store.as_ref(),
                        &target.registry,
                        &mut objects,
                        &options,
                        &mut |s| eprintln!("read       {}: {} rows", s.name, s.counts.rows),
                    )
                    .await
                    .with_context(|| format!("import into registry {}", target.registry))?;
                    print_report(&report, started.elapsed().as_secs_f64());
                    return Ok(true);
                }
                let files = registry::expand_inputs(&inputs)?;
                let bar = ProgressBar::new(files.len() as u64).with_style(
                    ProgressStyle::with_template("{bar:40} {pos}/{len} files {msg}")
                        .expect("template"),
                );
                let started = std::time::Instant::now();
                let mut rows = 0u64;
                let report = registry::import(
                    store.as_ref(),
                    &target.registry,
                    &files,
                    &options,
                    &mut |s| {
                        rows += s.counts.rows;
                        bar.inc(1);
                        bar.set_message(format!("{rows} rows"));
                    },
                )
                .await
                .with_context(|| format!("import into registry {}", target.registry))?;
                bar.finish_and_clear();
                print_report(&report, started.elapsed().as_secs_f64());
                Ok(true)
            }
            RegistryCommand::Apply {
                inputs,
                target,
                as_of,
            } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                let started = std::time::Instant::now();
                let options = ApplyOptions { as_of };
                let report = match s3_inputs(&inputs, target.s3_endpoint.as_deref()).await? {
                    Some((source, keys)) => {
                        let bucket = source.bucket.clone();
                        let mut objects = registry::ObjectInputs::new(&source, &bucket, keys);
                        registry::apply_from(
                            store.as_ref(),
                            &target.registry,
                            &mut objects,
                            &options,
                        )
                        .await
                    }
                    None => {
                        registry::apply(store.as_ref(), &target.registry, &inputs, &options).await
                    }
                }
                .with_context(|| format!("apply to registry {}", target.registry))?;
                print_report(&report, started.elapsed().as_secs_f64());
                Ok(true)
            }
            RegistryCommand::Download(_) => unreachable!("run above"),
            RegistryCommand::Subscription {
                target,
                san,
                area_codes,
                renews_on,
            } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                if let (Some(san), Some(codes), Some(renews_on)) = (san, area_codes, renews_on) {
                    let text = if std::path::Path::new(&codes).is_file() {
                        std::fs::read_to_string(&codes)
                            .with_context(|| format!("reading area codes from {codes}"))?
                    } else {
                        codes
                    };
                    let sub = registry::Subscription::new(
                        &san,
                        &registry::parse_area_codes(&text)?,
                        renews_on,
                        chrono::Utc::now(),
                    )?;
                    registry::watch::declare_subscription(store.as_ref(), &target.registry, &sub)
                        .await?;
                }
                match registry::watch::subscription(store.as_ref(), &target.registry).await? {
                    Some(sub) => {
                        println!(
                            "subscription SAN {}, renews on {}: {} area codes ({})",
                            sub.san,
                            sub.renews_on,
                            sub.area_codes.len(),
                            sub.area_codes.join(",")
                        );
                        Ok(true)
                    }
                    None => {
                        println!("registry   {}: no subscription declared", target.registry);
                        Ok(false)
                    }
                }
            }
            RegistryCommand::Status { target } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                match registry::status(store.as_ref(), &target.registry, chrono::Utc::now()).await?
                {
                    Some(s) => {
                        print_status(&s);
                        Ok(!s.needs_attention())
                    }
                    None => {
                        println!("registry   {}: nothing imported", target.registry);
                        Ok(false)
                    }
                }
            }
        }
    })
}
