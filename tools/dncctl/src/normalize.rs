//! `dncctl normalize`: a source file (local or `s3://`) into a run directory, with progress and a summary.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use dncflow::adapters::store::S3Location;
use dncflow::input::ReadOptions;
use dncflow::phone::DefaultRegion;
use dncflow::run::{Manifest, SourceIdentity};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions, Progress, RunOutput};
use indicatif::{ProgressBar, ProgressStyle};

/// What to normalize and how.
#[derive(clap::Args)]
pub(crate) struct NormalizeArgs {
    /// The DNC file: a local path or s3://bucket/key (plain, .gz or .zip).
    pub(crate) input: String,
    /// The DNC list the numbers are for.
    #[arg(long)]
    pub(crate) list: String,
    /// Output root (stands in for the bucket); the run is written to OUT/runs/<runId>/.
    #[arg(long, default_value = "out")]
    pub(crate) out: PathBuf,
    /// Default region for numbers written without a country code.
    #[arg(long, default_value = "US")]
    pub(crate) region: String,
    /// Phone column: header name or 1-based position (default: detected).
    #[arg(long)]
    pub(crate) column: Option<String>,
    /// Number of shard slots.
    #[arg(long, default_value_t = 16)]
    pub(crate) shards: u32,
    /// `source` for entries whose row names none (default: the list name).
    #[arg(long)]
    pub(crate) source: Option<String>,
    /// S3 endpoint URL (an emulator); default: AWS, or AWS_ENDPOINT_URL_S3.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// When the file was received (RFC 3339, e.g. 2026-12-01T14:05:00-05:00): the ten-business-day deadline runs
    /// from it. Default: the S3 object's LastModified, or the local file's modification time.
    #[arg(long, value_parser = parse_received_at)]
    pub(crate) received_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_received_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (2026-12-01T14:05:00-05:00): {e}"))
}

pub(crate) fn normalize(args: &NormalizeArgs) -> Result<RunOutput> {
    let region = DefaultRegion::from_code(&args.region)
        .with_context(|| format!("unknown region {:?}", args.region))?;
    if args.shards == 0 || args.shards > 4096 {
        bail!("--shards must be between 1 and 4096, got {}", args.shards);
    }
    let mut options = NormalizeOptions::new(&args.list);
    options.region = region;
    options.shard_count = args.shards;
    options.read = ReadOptions {
        column: args.column.clone(),
    };
    if let Some(s) = &args.source {
        options.default_source = s.clone();
    }
    let (raw, mut identity, size, runtime) = open_input(&args.input, args.s3_endpoint.as_deref())?;
    if let Some(t) = args.received_at {
        identity.received_at = Some(t.to_rfc3339());
    }
    let bar = progress_bar(size);
    let mut on_progress = |p: Progress| {
        bar.set_position(p.bytes);
        bar.set_message(format!("{} rows", p.rows));
    };
    // An S3 stream is bridged from async: the runtime must outlive the (blocking) read.
    let result = normalize_to_dir(raw, identity, &options, &args.out, &mut on_progress);
    drop(runtime);
    bar.finish_and_clear();
    result.with_context(|| format!("normalizing {}", args.input))
}

type Opened = (
    Box<dyn std::io::Read + Send>,
    SourceIdentity,
    Option<u64>,
    Option<tokio::runtime::Runtime>,
);

pub(crate) fn open_input(input: &str, s3_endpoint: Option<&str>) -> Result<Opened> {
    if input.starts_with("s3://") {
        let location = S3Location::parse(input)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (reader, identity, size) = runtime.block_on(async {
            let client = dncflow::adapters::store::s3_client(s3_endpoint).await;
            dncflow::adapters::store::open_s3_object(&client, &location).await
        })?;
        // The stream blocks on this runtime from the (non-runtime) main thread while it is read.
        return Ok((reader, identity, size, Some(runtime)));
    }
    let file = File::open(input).with_context(|| format!("cannot open {input}"))?;
    let metadata = file.metadata().ok();
    let size = metadata.as_ref().map(|m| m.len());
    // A local file was received when it was last written (a copy keeps it with `cp -p`; else --received-at).
    let received_at = metadata
        .and_then(|m| m.modified().ok())
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
    Ok((
        Box::new(file),
        SourceIdentity {
            path: Some(input.to_string()),
            received_at,
            ..Default::default()
        },
        size,
        None,
    ))
}

pub(crate) fn progress_bar(size: Option<u64>) -> ProgressBar {
    let bar = match size {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub(crate) fn print_summary(m: &Manifest, dir: &std::path::Path) {
    let c = &m.counts;
    println!("run        {}", m.run_id);
    println!("directory  {}", dir.display());
    println!(
        "source     {} ({} bytes, sha256 {})",
        m.source.display_name(),
        m.source.bytes,
        m.source.sha256
    );
    println!();
    println!("{:<22}{:>12}", "rows", c.rows);
    println!("{:<22}{:>12}", "  accepted", c.accepted);
    println!("{:<22}{:>12}", "  duplicates", c.duplicates);
    println!("{:<22}{:>12}", "  rejected", c.rejected);
    for (reason, n) in &c.reject_reasons {
        println!("{:<22}{:>12}", format!("    {reason}"), n);
    }
    println!("{:<22}{:>12}", "header lines", c.header_lines);
    println!("{:<22}{:>12}", "blank lines", c.blank_lines);
    for (flag, n) in &c.flagged {
        println!("{:<22}{:>12}", format!("flagged {flag}"), n);
    }
    println!("{:<22}{:>12}", "shards", m.shards.len());
    println!();
    println!(
        "check: rows {} = accepted {} + duplicates {} + rejected {}",
        c.rows, c.accepted, c.duplicates, c.rejected
    );
}
