//! `dncctl`: the dncflow operator CLI.

mod check;
mod download;
mod evidence;
mod hours;
mod normalize;
mod registry;
mod stack;
mod status;

use check::{check_file, CheckArgs};
use normalize::{normalize, print_summary, NormalizeArgs};

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use dncflow::adapters::cxone::auth::{
    CredentialSource, Credentials, EnvCredentials, FileCredentials, SecretsManagerCredentials,
    StaticCredentials, WithBaseUrl,
};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::LocalStore;
use dncflow::local::{ensure_list, run_local, RunSettings, ScaledClock};
use dncflow::provision::{provision, ProvisionSpec};
use dncflow::steps::{CooldownSettings, RunRef};

#[derive(Parser)]
#[command(
    name = "dncctl",
    version,
    about = "Keep NICE CXone Do-Not-Call lists correct, and prove it"
)]
struct Cli {
    /// Log lines on stderr: `text` (colour only on a terminal, never with NO_COLOR) or `json` (as the Lambdas log).
    #[arg(long, global = true, default_value = "text")]
    log_format: dncflow::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
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

    /// Where the credentials come from: a file, else a Secrets Manager secret, else the environment; `--endpoint`
    /// overrides their base URL.
    async fn source(&self) -> WithBaseUrl<Box<dyn CredentialSource>> {
        let inner: Box<dyn CredentialSource> = match (&self.credentials, &self.secret_id) {
            (Some(path), _) => Box::new(FileCredentials(path.clone())),
            (None, Some(id)) => Box::new(SecretsManagerCredentials::from_env(id, None).await),
            (None, None) => Box::new(EnvCredentials),
        };
        WithBaseUrl {
            inner,
            base_url: self.endpoint.clone(),
        }
    }

    /// A client of the dialect the credentials name.
    async fn client(&self, config: ClientConfig) -> Result<Box<dyn DncApi>> {
        let source = self.source().await;
        Ok(dncflow::adapters::cxone::connect(Box::new(source), config).await?)
    }
}

/// The runtime every async command runs on (two workers: the machine the CLI is sized for).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
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
        /// The CXone tenant to provision, and the credentials to reach it.
        #[command(flatten)]
        tenant: TenantArgs,
    },
    /// Whether dncflow can talk to a tenant, with read-only calls only: the token, discovery, the groups or lists,
    /// skills or rules, the named list's binding, one search or check of a fictional number, the calling lists. Prints
    /// each call (URL, status, time, whether the answer decoded, the keys it had if not), the capacity figures and
    /// whether the list suppresses; exits non-zero when any call failed or the list would not suppress.
    Doctor {
        /// The CXone tenant to diagnose, and the credentials to reach it.
        #[command(flatten)]
        tenant: TenantArgs,
        /// The list (DNC group) whose suppression to report.
        #[arg(long)]
        list: Option<String>,
        /// Seconds each call may take.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Normalize a DNC file into a run directory: E.164 shards, rejects and a manifest.
    Normalize(NormalizeArgs),
    /// A list's evidence over a period: index.html (every run: file, receipt, verification, business days to honour,
    /// outcome; a chart against the ten-business-day deadline), evidence.csv and each run's report.html. `evidence
    /// lookup NUMBER --list NAME`: the runs that received one number, when CXone was verified to hold it, its state.
    Evidence(evidence::EvidenceArgs),
    /// Registries (National DNC Registry, state lists) as a suppression index that `check` consults: import full
    /// downloads, apply change lists, report freshness.
    #[command(subcommand)]
    Registry(registry::RegistryCommand),
    /// Calling hours: the operator's dated closures (`hours closure add|list|remove`), which every check applies.
    #[command(subcommand)]
    Hours(hours::HoursCommand),
    /// A list's status and the numbers it received that CXone is not known to hold; an operator's corrections
    /// (remove received numbers, clear an open failure), each recorded with its reason.
    #[command(subcommand)]
    Status(status::StatusCommand),
    /// A deployed stack's recent executions, newest first: start and stop times, status, list, run id, the
    /// execution's ARN, the object it ran and, for a failed one, its error.
    Runs(stack::RunsArgs),
    /// Start a deployed stack's state machine for a list with the input the nightly schedule or a drop would give it:
    /// --key (the object's newest version), or by default the object and version of the list's latest execution.
    Rerun(stack::RerunArgs),
    /// Redrive an execution that timed out, was aborted, or failed without its failure recorder running, from the
    /// state where it stopped, after taking the list's lease back for it. One whose failure was recorded is refused:
    /// rerun its file.
    Redrive(stack::RedriveArgs),
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
    let cli = Cli::parse();
    dncflow::logs::init_cli(cli.log_format, "warn");
    match run(cli) {
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
    // Deadlines are counted in business days of this zone (runs, statuses, evidence): a setting naming no zone is
    // refused before anything is read or written.
    dncflow::hours::business_days::BusinessCalendar::configured()?;
    match cli.command {
        Command::Check(args) => check_file(args),
        Command::Hours(command) => hours::run(command),
        Command::Status(command) => status::run(command),
        Command::Runs(args) => stack::runs(args),
        Command::Rerun(args) => stack::rerun_list(args),
        Command::Redrive(args) => stack::redrive_execution(args),
        Command::Evidence(args) => evidence::run(args),
        Command::Registry(command) => {
            if !registry::run(command)? {
                bail!("the registry needs attention: stale, missing, lacking declared area codes, with a gap, or after a failed import");
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
        Command::Doctor {
            tenant,
            list,
            timeout_secs,
        } => {
            if !tenant.given() {
                bail!("doctor needs a tenant: --credentials FILE or --secret-id ID");
            }
            let diagnosis = runtime()?.block_on(async {
                let creds = tenant.source().await.load().await?;
                anyhow::Ok(
                    dncflow::adapters::cxone::doctor::diagnose(
                        &creds,
                        list.as_deref(),
                        std::time::Duration::from_secs(timeout_secs.max(1)),
                        dncflow::steps::upload::CXONE_CAPACITY,
                    )
                    .await,
                )
            })?;
            print!("{}", diagnosis.render());
            if !diagnosis.healthy() {
                bail!("the tenant cannot be used as it is");
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
