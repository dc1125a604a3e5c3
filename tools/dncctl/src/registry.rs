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
    /// Output root standing in for the bucket (the index goes to OUT/registry/<name>/), or s3://bucket.
    #[arg(long, default_value = "out")]
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
        /// Days after --as-of the registry goes stale (check then answers error for what it covers).
        #[arg(long, default_value_t = registry::DEFAULT_MAX_AGE_DAYS)]
        max_age_days: u32,
        /// Replace the live version even when this import covers less (area codes missing, under 90 % of its
        /// numbers): refused otherwise, since the missing numbers would stop being suppressed.
        #[arg(long)]
        force: bool,
    },
    /// Apply FTC change lists (`NNNNNNNNNN,YYYY-MM-DDThh:mm:ss,A|D`): a new version rewriting only the area codes
    /// they touch. A list already applied is skipped; one older than the registry is refused unless --force.
    Apply {
        /// Change-list files or directories, or s3://bucket/prefix.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        target: Target,
        /// Apply a change list older than the registry's as-of.
        #[arg(long)]
        force: bool,
        /// The lists' as-of (default: each one's latest change).
        #[arg(long)]
        as_of: Option<NaiveDate>,
    },
    /// The live version: as-of, age, CURRENT / EXPIRING / STALE, size. Exits non-zero when STALE or missing.
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

/// The store `out` names.
pub async fn store_of(out: &str, s3_endpoint: Option<&str>) -> Result<Box<dyn ObjectStore>> {
    Ok(match out.strip_prefix("s3://") {
        Some(bucket) => Box::new(S3Store {
            client: dncflow::adapters::store::s3_client(s3_endpoint).await,
            bucket: bucket.trim_end_matches('/').to_string(),
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
}

fn print_report(r: &VersionReport, seconds: f64) {
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
            "changes    {} = {} adds ({} already registered) + {} deletes ({} not registered) + {} rejected",
            c.rows, c.adds, c.adds_present, c.deletes, c.deletes_absent, c.rejected
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

/// Run one registry command; `Ok(false)` when it should exit non-zero (a stale or missing registry).
pub fn run(command: RegistryCommand) -> Result<bool> {
    crate::runtime()?.block_on(async {
        match command {
            RegistryCommand::Import {
                inputs,
                target,
                as_of,
                max_age_days,
                force,
            } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                let options = ImportOptions {
                    as_of,
                    max_age_days,
                    force,
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
                force,
                as_of,
            } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                let started = std::time::Instant::now();
                let options = ApplyOptions { force, as_of };
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
            RegistryCommand::Status { target } => {
                let store = store_of(&target.out, target.s3_endpoint.as_deref()).await?;
                match registry::status(store.as_ref(), &target.registry, chrono::Utc::now()).await?
                {
                    Some(s) => {
                        print_status(&s);
                        Ok(s.status != registry::Freshness::Stale)
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
