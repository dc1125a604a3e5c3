//! `dncctl registry download`: the FTC download service's flow run locally (the same steps as the scheduled
//! workflow): log in, change list (submit, poll, fetch, apply) or full download (every file, import), each raw answer
//! kept in the store before it is decoded.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use dncflow::adapters::ftc::download::{self, ChangesOutcome, PollPolicy, Session};
use dncflow::adapters::ftc::{FtcCredentials, RetryPolicy, SoapClient, DEFAULT_ENDPOINT};

use crate::registry::{print_report, store_of, Target};

/// `dncctl registry download`'s arguments.
#[derive(clap::Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    target: Target,
    /// The FTC account: a JSON file `{"companyId","password","userType"?,"endpoint"?}` (`userType` Downloader by
    /// default).
    #[arg(
        long,
        conflicts_with = "secret_id",
        required_unless_present = "secret_id"
    )]
    credentials: Option<PathBuf>,
    /// The FTC account in AWS Secrets Manager (name or ARN), same JSON.
    #[arg(long)]
    secret_id: Option<String>,
    /// The service's URL (default: the credentials' `endpoint`, else the FTC's).
    #[arg(long)]
    endpoint: Option<String>,
    /// Download today's change list and apply it (the default).
    #[arg(long, conflicts_with = "full")]
    changes: bool,
    /// Download the full list of these area codes (`202,415`, or a file of them) or of `all` the subscription's, and
    /// import it as of today (it replaces the live version: a partial list is refused unless it covers the
    /// registry's declared area codes).
    #[arg(long, value_name = "AREA_CODES|all")]
    full: Option<String>,
    /// Seconds between polls while the change list is `RequestPending` (public clients wait 120).
    #[arg(long, default_value_t = 120)]
    poll_interval: u64,
    /// Polls before giving up (`StillPending`); the FTC allows itself up to 24 hours.
    #[arg(long, default_value_t = 720)]
    max_polls: u32,
}

/// Run it; `Ok(false)` when the registry needs attention afterwards.
pub fn run(args: DownloadArgs) -> Result<bool> {
    crate::runtime()?.block_on(async {
        let credentials = match (&args.credentials, &args.secret_id) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                FtcCredentials::from_json(&text, &path.display().to_string())?
            }
            (None, Some(id)) => FtcCredentials::from_secret(id, None).await?,
            (None, None) => anyhow::bail!("--credentials FILE or --secret-id ID"),
        };
        let endpoint = args
            .endpoint
            .clone()
            .or_else(|| credentials.endpoint.clone())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let client = SoapClient::new(&endpoint, RetryPolicy::default())?;
        let session = Session::new(&client, &credentials);
        let store = store_of(&args.target.out, args.target.s3_endpoint.as_deref()).await?;
        let bucket = args
            .target
            .out
            .strip_prefix("s3://")
            .unwrap_or(&args.target.out)
            .trim_end_matches('/')
            .to_string();
        let registry = &args.target.registry;
        let now = chrono::Utc::now();
        let started = std::time::Instant::now();
        // --changes is the default; clap refuses it beside --full.
        let full = if args.changes { None } else { args.full.as_ref() };
        let report = match full {
            Some(which) => {
                let area_codes: Option<BTreeSet<u16>> = match which.as_str() {
                    "all" => None,
                    list => {
                        let text = if std::path::Path::new(list).is_file() {
                            std::fs::read_to_string(list)
                                .with_context(|| format!("reading area codes from {list}"))?
                        } else {
                            list.to_string()
                        };
                        Some(dncflow::registry::parse_area_codes(&text)?)
                    }
                };
                let (fetched, report) = download::download_full(
                    &session,
                    store.as_ref(),
                    &bucket,
                    registry,
                    now,
                    area_codes.as_ref(),
                    None,
                )
                .await
                .with_context(|| format!("full download into registry {registry}"))?;
                for f in &fetched {
                    println!(
                        "file       {}: {} lines{} (raw answer {})",
                        f.file_key,
                        f.lines,
                        if f.reused { ", the answer saved today re-used" } else { "" },
                        f.raw_key
                    );
                }
                report
            }
            None => {
                let poll = PollPolicy {
                    interval: Duration::from_secs(args.poll_interval),
                    max_polls: args.max_polls,
                };
                let outcome =
                    download::download_changes(&session, store.as_ref(), &bucket, registry, now, poll)
                        .await
                        .with_context(|| format!("change-list download into registry {registry}"))?;
                match outcome {
                    ChangesOutcome::Applied {
                        fetched,
                        pending_polls,
                        report,
                    } => {
                        println!(
                            "changes    {}: {} lines after {pending_polls} RequestPending polls{} (raw answer {})",
                            fetched.file_key,
                            fetched.lines,
                            if fetched.reused { ", the answer saved today re-used" } else { "" },
                            fetched.raw_key
                        );
                        *report
                    }
                    ChangesOutcome::NoChanges { report } => {
                        println!("changes    NoChanges: nothing changed since the last change list; continuity advanced");
                        *report
                    }
                }
            }
        };
        print_report(&report, started.elapsed().as_secs_f64());
        Ok(!report.status.needs_attention())
    })
}
