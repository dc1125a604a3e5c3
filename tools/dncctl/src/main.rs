//! `dncctl`: the dncflow operator CLI.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dncflow::input::ReadOptions;
use dncflow::normalize::{normalize_to_dir, NormalizeOptions, Progress};
use dncflow::phone::DefaultRegion;
use dncflow::run::{Manifest, SourceIdentity};
use dncflow::store::S3Location;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "dncctl",
    version,
    about = "Keep NICE CXone Do-Not-Call lists correct, and prove it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalize a DNC file into a run directory: E.164 shards, rejects and a manifest.
    Normalize {
        /// The DNC file: a local path or s3://bucket/key (plain, .gz or .zip).
        input: String,
        /// The DNC list the numbers are for.
        #[arg(long)]
        list: String,
        /// Output root; the run is written to OUT/runs/<runId>/.
        #[arg(long, default_value = "out")]
        out: PathBuf,
        /// Default region for numbers written without a country code.
        #[arg(long, default_value = "US")]
        region: String,
        /// Phone column: header name or 1-based position (default: detected).
        #[arg(long)]
        column: Option<String>,
        /// Number of shard slots.
        #[arg(long, default_value_t = 16)]
        shards: u32,
        /// `source` for entries whose row names none (default: the list name).
        #[arg(long)]
        source: Option<String>,
        /// S3 endpoint URL (an emulator); default: AWS, or AWS_ENDPOINT_URL_S3.
        #[arg(long)]
        s3_endpoint: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Normalize {
            input,
            list,
            out,
            region,
            column,
            shards,
            source,
            s3_endpoint,
        } => {
            let region = DefaultRegion::from_code(&region)
                .with_context(|| format!("unknown region {region:?}"))?;
            if shards == 0 || shards > 4096 {
                bail!("--shards must be between 1 and 4096, got {shards}");
            }
            let mut options = NormalizeOptions::new(&list);
            options.region = region;
            options.shard_count = shards;
            options.read = ReadOptions { column };
            if let Some(s) = source {
                options.default_source = s;
            }
            let (raw, identity, size, runtime) = open_input(&input, s3_endpoint.as_deref())?;
            let bar = progress_bar(size);
            let mut on_progress = |p: Progress| {
                bar.set_position(p.bytes);
                bar.set_message(format!("{} rows", p.rows));
            };
            // An S3 stream is bridged from async: the runtime must outlive the (blocking) read.
            let result = normalize_to_dir(raw, identity, &options, &out, &mut on_progress);
            drop(runtime);
            bar.finish_and_clear();
            let run = result.with_context(|| format!("normalizing {input}"))?;
            print_summary(&run.manifest, &run.dir);
            Ok(())
        }
    }
}

type Opened = (
    Box<dyn std::io::Read + Send>,
    SourceIdentity,
    Option<u64>,
    Option<tokio::runtime::Runtime>,
);

fn open_input(input: &str, s3_endpoint: Option<&str>) -> Result<Opened> {
    if input.starts_with("s3://") {
        let location = S3Location::parse(input)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (reader, identity, size) = runtime.block_on(async {
            let client = dncflow::store::s3_client(s3_endpoint).await;
            dncflow::store::open_s3_object(&client, &location).await
        })?;
        // The stream blocks on this runtime from the (non-runtime) main thread while it is read.
        return Ok((reader, identity, size, Some(runtime)));
    }
    let file = File::open(input).with_context(|| format!("cannot open {input}"))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((
        Box::new(file),
        SourceIdentity {
            path: Some(input.to_string()),
            ..Default::default()
        },
        size,
        None,
    ))
}

fn progress_bar(size: Option<u64>) -> ProgressBar {
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

fn print_summary(m: &Manifest, dir: &std::path::Path) {
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
