//! `dncctl`: the dncflow operator CLI.

mod registry;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dncflow::adapters::cxone::auth::{
    CredentialSource, Credentials, EnvCredentials, FileCredentials, SecretsManagerCredentials,
    StaticCredentials,
};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::{LocalStore, S3Location};
use dncflow::input::ReadOptions;
use dncflow::local::{ensure_list, run_local, RunSettings, ScaledClock};
use dncflow::phone::DefaultRegion;
use dncflow::provision::{provision, ProvisionSpec};
use dncflow::run::{Manifest, SourceIdentity};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions, Progress, RunOutput};
use dncflow::steps::{CooldownSettings, RunRef};
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

/// What to normalize and how.
#[derive(clap::Args)]
struct NormalizeArgs {
    /// The DNC file: a local path or s3://bucket/key (plain, .gz or .zip).
    input: String,
    /// The DNC list the numbers are for.
    #[arg(long)]
    list: String,
    /// Output root (stands in for the bucket); the run is written to OUT/runs/<runId>/.
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
}

/// Where a real CXone tenant is and how to sign in, the same for every command that talks to one.
#[derive(clap::Args, Clone, Default)]
struct TenantArgs {
    /// CXone URL: v2, the tenant's base URL; admin, the API endpoint (default: the credentials' `baseUrl`, else
    /// discovered from the token's tenant).
    #[arg(long)]
    endpoint: Option<String>,
    /// Credentials JSON file: {"baseUrl"|"tenant", "clientId", "clientSecret"} (v2), or {"dialect": "admin",
    /// "authUrl", "baseUrl"?, "clientId", "clientSecret", "accessKeyId", "accessKeySecret"} (default: --secret-id,
    /// else DNCFLOW_CXONE_CREDENTIALS or the DNCFLOW_CXONE_* environment variables).
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Secrets Manager secret (name or ARN) holding the credentials JSON.
    #[arg(long)]
    secret_id: Option<String>,
}

impl TenantArgs {
    /// Whether a tenant was named at all.
    fn given(&self) -> bool {
        self.endpoint.is_some() || self.credentials.is_some() || self.secret_id.is_some()
    }

    /// A client of the dialect the credentials name: credentials from a file, else a Secrets Manager secret, else the
    /// environment; `--endpoint` overrides their base URL.
    async fn client(&self, config: ClientConfig) -> Result<Box<dyn DncApi>> {
        let inner: Box<dyn CredentialSource> = match (&self.credentials, &self.secret_id) {
            (Some(path), _) => Box::new(FileCredentials(path.clone())),
            (None, Some(id)) => Box::new(SecretsManagerCredentials::from_env(id, None).await),
            (None, None) => Box::new(EnvCredentials),
        };
        let source: Box<dyn CredentialSource> = match &self.endpoint {
            Some(base_url) => Box::new(BaseUrlOverride {
                inner,
                base_url: base_url.clone(),
            }),
            None => inner,
        };
        Ok(dncflow::adapters::cxone::connect(source, config).await?)
    }
}

/// The runtime every async command runs on (two workers: the machine the CLI is sized for).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

#[derive(clap::Args)]
struct CheckArgs {
    /// CSV (or one number a line) of outbound numbers.
    file: PathBuf,
    /// The CXone tenant (without one, only the registries are consulted).
    #[command(flatten)]
    tenant: TenantArgs,
    /// A registry's suppression index to consult (repeatable), as `dncctl registry import` built it.
    #[arg(long = "registry")]
    registries: Vec<String>,
    /// Where the registries live: the output root of `dncctl registry import`, or s3://bucket.
    #[arg(long, default_value = "out")]
    out_dir: String,
    /// Lists to check (repeatable; default: every list a rule applies).
    #[arg(long = "list-id")]
    list_ids: Vec<String>,
    /// Snapshot of known-suppressed numbers (SHA-256 hex of E.164, one a line) answered without a call.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Where to write the annotated CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The instant calling hours are judged at, RFC 3339 (default: now), e.g. 2026-12-06T13:00:00Z.
    #[arg(long)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// A calling-hours policy file (default: the embedded shared/data/calling_hours.json).
    #[arg(long)]
    policy: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check outbound numbers before dialing: writes CSV
    /// `line,input,phoneNumber,status,reason,listMatches,callableNow,nextCallableAt,timeZone` and a summary; exits
    /// non-zero when a number could not be checked.
    Check(CheckArgs),
    /// Create or update DNC lists and their single BLOCK rule from a declarative JSON file (idempotent), and report
    /// rule fragmentation and priority inversion.
    Provision {
        /// The declarative file, e.g. examples/provision.json.
        file: PathBuf,
        /// The CXone tenant.
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Normalize a DNC file into a run directory: E.164 shards, rejects and a manifest.
    Normalize(NormalizeArgs),
    /// Registries (National DNC Registry, state lists) as a suppression index that `check` consults: import full
    /// downloads, apply change lists, report freshness.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// The whole job: normalize, upload, cool down, probe, reconcile, and publish the report and the list status.
    /// Without a tenant (--endpoint, --credentials or --secret-id) it runs against an embedded CXone simulator (no
    /// tenant, no AWS account needed).
    Run {
        #[command(flatten)]
        normalize: NormalizeArgs,
        /// A real tenant (else the embedded simulator).
        #[command(flatten)]
        tenant: TenantArgs,
        /// Seconds after the last write before a list may be called ready.
        #[arg(long, default_value_t = 180)]
        cooldown_secs: u64,
        /// Requests per second to CXone.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Embedded simulator: simulated seconds per real second (cooldown and propagation pass this much faster).
        #[arg(long, default_value_t = 60.0)]
        sim_clock_scale: f64,
        /// Embedded simulator: a fault rule as JSON (repeatable), e.g.
        /// '{"endpoint":"entries-post","type":"server-error","status":503,"probability":0.1}'.
        #[arg(long = "sim-fault")]
        sim_faults: Vec<String>,
        /// Embedded simulator: the API it serves, `v2` (the contract) or `admin` (the CXone Admin API's DNC
        /// groups). Against a tenant the dialect comes from the credentials' `dialect`.
        #[arg(long, default_value = "v2")]
        dialect: String,
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

/// The embedded simulator's dialect.
fn sim_dialect(dialect: &str) -> Result<cxone_sim::SimDialect> {
    match dialect {
        "v2" => Ok(cxone_sim::SimDialect::V2),
        "admin" => Ok(cxone_sim::SimDialect::Admin),
        other => bail!("--dialect {other}: v2 or admin"),
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Check(args) => check_file(args),
        Command::Registry(command) => {
            if !registry::run(command)? {
                bail!("the registry is stale or missing");
            }
            Ok(())
        }
        Command::Provision { file, tenant } => {
            if !tenant.given() {
                bail!("provision needs a tenant: --credentials FILE or --secret-id ID (and --endpoint URL if they name none)");
            }
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let spec: ProvisionSpec = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a provisioning file", file.display()))?;
            let report = runtime()?.block_on(async {
                let api = tenant.client(ClientConfig::default()).await?;
                anyhow::Ok(provision(api.as_ref(), &spec).await?)
            })?;
            for a in &report.actions {
                println!("{a}");
            }
            for f in &report.findings {
                println!("WARNING {f}");
            }
            if let Some(h) = &report.headroom {
                println!("{h}");
            }
            Ok(())
        }
        Command::Normalize(args) => {
            let run = normalize(&args)?;
            print_summary(&run.manifest, &run.dir);
            Ok(())
        }
        Command::Run {
            normalize: args,
            tenant,
            cooldown_secs,
            rate,
            sim_clock_scale,
            sim_faults,
            dialect,
        } => {
            let sim_dialect = sim_dialect(&dialect)?;
            let normalized = normalize(&args)?;
            print_summary(&normalized.manifest, &normalized.dir);
            println!();
            let report = runtime()?.block_on(async {
                let settings = RunSettings {
                    cooldown: CooldownSettings {
                        min: std::time::Duration::from_secs(cooldown_secs),
                        ..CooldownSettings::default()
                    },
                    ..RunSettings::default()
                };
                let mut say = |line: String| eprintln!("{line}");
                let config = ClientConfig {
                    rate_per_sec: rate,
                    ..ClientConfig::default()
                };
                // The output root stands in for the bucket: the stages read and write the same keys as in S3.
                let store = LocalStore {
                    root: args.out.clone(),
                };
                let run = RunRef {
                    bucket: args.out.display().to_string(),
                    run_id: normalized.manifest.run_id.clone(),
                    list: normalized.manifest.list.clone(),
                };
                match tenant.given() {
                    false => {
                        let faults = sim_faults
                            .iter()
                            .map(|f| {
                                serde_json::from_str::<cxone_sim::FaultRule>(f)
                                    .with_context(|| format!("--sim-fault {f}"))
                            })
                            .collect::<Result<Vec<_>>>()?;
                        let sim = cxone_sim::spawn(
                            cxone_sim::SimConfig {
                                clock_scale: sim_clock_scale,
                                faults,
                                dialect: sim_dialect,
                                ..cxone_sim::SimConfig::default()
                            },
                            0,
                        )
                        .await?;
                        eprintln!(
                            "embedded CXone simulator at {} (dialect {dialect}, clock {}x)",
                            sim.base_url, sim_clock_scale
                        );
                        let creds = Credentials::from_json(
                            &sim.credentials_document(),
                            "the embedded simulator",
                        )?;
                        let api = dncflow::adapters::cxone::connect(
                            Box::new(StaticCredentials(creds)),
                            config,
                        )
                        .await?;
                        ensure_list(api.as_ref(), &args.list).await?;
                        let clock = ScaledClock::new(sim_clock_scale);
                        let report =
                            run_local(api.as_ref(), &store, &clock, &run, &settings, &mut say)
                                .await?;
                        let state = sim.sim.state();
                        eprintln!(
                            "simulator holds {} entries ({} duplicates)",
                            state["entries"], state["duplicates"]
                        );
                        anyhow::Ok(report)
                    }
                    true => {
                        // A list missing on the tenant ends the run FAILED (NotSuppressing), published like any ending;
                        // `dncctl provision` creates it.
                        let api = tenant.client(config).await?;
                        let clock = ScaledClock::new(1.0);
                        anyhow::Ok(
                            run_local(api.as_ref(), &store, &clock, &run, &settings, &mut say)
                                .await?,
                        )
                    }
                }
            })?;
            println!(
                "status     {}{}",
                report.status,
                report
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            println!(
                "verified   {} of {} expected entries on list {}",
                report.found, report.expected, report.list
            );
            println!(
                "uploaded   {} created, {} already there, {} rejected (dead letters), {} re-uploaded",
                report.upload.created, report.upload.exists, report.upload.rejected, report.upload.reuploaded
            );
            println!("report     {}", normalized.dir.join("report.md").display());
            println!(
                "status     {}",
                args.out
                    .join("status")
                    .join(&report.list)
                    .join("latest.json")
                    .display()
            );
            if !report.success() {
                bail!("run {} FAILED", report.run_id);
            }
            Ok(())
        }
    }
}

fn check_file(args: CheckArgs) -> Result<()> {
    use dncflow::steps::check::{
        check_with, CheckRequest, ContactIn, LocalAnswers, SuppressionSnapshot,
    };
    let CheckArgs {
        file,
        tenant,
        registries,
        out_dir,
        list_ids,
        snapshot,
        out,
        at,
        policy,
    } = args;
    if !tenant.given() && registries.is_empty() {
        bail!(
            "nothing to check against: give --endpoint (a CXone tenant), --registry NAME, or both"
        );
    }
    let policy = policy
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            dncflow::hours::Policy::from_json(&text).with_context(|| format!("{}", p.display()))
        })
        .transpose()?;
    use dncflow::input::{decode::for_each_part, read_rows, RowEvent};
    let mut contacts = Vec::new();
    let mut lines = Vec::new();
    let name = file.display().to_string();
    let raw = File::open(&file).with_context(|| format!("cannot open {name}"))?;
    for_each_part(&name, Box::new(raw), |part| {
        read_rows(&name, part.reader, &ReadOptions::default(), |event| {
            if let RowEvent::Row { line, phone, .. } = event {
                contacts.push(ContactIn {
                    phone_number: String::from_utf8_lossy(phone).trim().to_string(),
                    region_code: None,
                    state: None,
                });
                lines.push(line);
            }
        })?;
        Ok(())
    })?;
    let snapshot = match snapshot {
        Some(p) => {
            let (snap, bad) = SuppressionSnapshot::from_lines(
                &std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            );
            if bad > 0 {
                eprintln!("warning: {bad} malformed snapshot lines ignored");
            }
            snap
        }
        None => SuppressionSnapshot::default(),
    };
    let response = runtime()?.block_on(async {
        let api = match tenant.given() {
            true => Some(tenant.client(ClientConfig::default()).await?),
            false => None,
        };
        let api = api.as_deref();
        let store = registry::store_of(&out_dir, None).await?;
        let registries = dncflow::steps::refresh_registries(store.as_ref(), &registries, &[])
            .await
            .context("loading the registries")?;
        let request = CheckRequest {
            contacts,
            list_ids: (!list_ids.is_empty()).then_some(list_ids),
            at,
        };
        let propagating = Default::default();
        // Without a batch check (the Admin API), the answer is what the lists' verified runs in OUT_DIR say: their
        // snapshots, dead letters and propagating runs, fresh enough, or nothing is allowed.
        let knowledge = match api {
            Some(a) if !a.capabilities().batch_check => {
                let names = request.list_ids.clone().unwrap_or_default();
                let mut k = dncflow::steps::load_local_knowledge(store.as_ref(), &names).await?;
                if names.is_empty() {
                    k.incomplete = Some(
                        "no list named (--list-id NAME) to answer from its verified runs".into(),
                    );
                }
                Some(k)
            }
            _ => None,
        };
        let local = match &knowledge {
            Some(k) => LocalAnswers {
                hours: policy.as_ref(),
                registries: &registries,
                ..k.answers_for(api, chrono::Utc::now())
            },
            None => LocalAnswers {
                snapshot: &snapshot,
                propagating: &propagating,
                dead_letters: None,
                incomplete: None,
                gap: None,
                hours: policy.as_ref(),
                registries: &registries,
            },
        };
        anyhow::Ok(check_with(api, &request, local, 4).await)
    })?;
    let mut csv = String::from(
        "line,input,phoneNumber,status,reason,listMatches,callableNow,nextCallableAt,timeZone\n",
    );
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (line, r) in lines.iter().zip(&response.results) {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        csv += &format!(
            "{line},{},{},{status},{},{},{},{},{}\n",
            quote(&r.input),
            r.phone_number.as_deref().unwrap_or(""),
            quote(&r.reason),
            quote(&r.list_matches.join(" ")),
            r.callable_now,
            r.next_callable_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            quote(
                &r.time_zones
                    .iter()
                    .map(|z| z.name())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    match out {
        Some(p) => {
            std::fs::write(&p, csv).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{csv}"),
    }
    let m = &response.metrics;
    eprintln!(
        "checked {}: {} suppressed, {} allowed, {} invalid, {} errors ({} CXone calls, {} from the snapshot); suppression rate {:.1} %",
        m.total, m.suppressed, m.allowed, m.invalid, m.errors, m.cxone_calls, m.prefiltered, m.suppression_rate * 100.0
    );
    for r in &response.registries {
        eprintln!(
            "registry {} version {} as of {}: {} ({} numbers suppressed by registries, {} errors for staleness)",
            r.registry,
            r.version,
            r.as_of.format("%Y-%m-%d"),
            r.status,
            m.registry_suppressed,
            m.registry_stale
        );
    }
    eprintln!(
        "calling hours at {}: {} numbers outside them now (policy {})",
        response
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        m.outside_calling_hours,
        response.hours_policy
    );
    if !response.complete {
        bail!(
            "{} numbers could not be checked: the batch is NOT safe to dial in full",
            m.errors
        );
    }
    Ok(())
}

/// Credentials from `inner`, with the tenant URL given on the command line.
struct BaseUrlOverride {
    inner: Box<dyn CredentialSource>,
    base_url: String,
}

#[async_trait::async_trait]
impl CredentialSource for BaseUrlOverride {
    async fn load(&self) -> Result<Credentials, dncflow::adapters::cxone::CxoneError> {
        let mut c = self.inner.load().await?;
        c.base_url = self.base_url.trim_end_matches('/').to_string();
        Ok(c)
    }
}

fn normalize(args: &NormalizeArgs) -> Result<RunOutput> {
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
    let (raw, identity, size, runtime) = open_input(&args.input, args.s3_endpoint.as_deref())?;
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

fn open_input(input: &str, s3_endpoint: Option<&str>) -> Result<Opened> {
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
