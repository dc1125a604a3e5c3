//! `dncctl runs`, `rerun`, `redrive`: a deployed stack's state machine from the command line (Step Functions through
//! the AWS SDK, with the default AWS credentials and region).
//!
//! Which state machine: `--state-machine ARN` (or `DNCFLOW_STATE_MACHINE_ARN`), or `--stack NAME`. The template names
//! the state machine `<stack>-dncflow`, so `--stack` is resolved with Step Functions' own ListStateMachines: no
//! CloudFormation client (another SDK crate of the size of this one, for one read of one output) and no extra
//! permission beyond `states:ListStateMachines`.

use anyhow::{bail, Context, Result};
use dncflow::adapters::sfn::{Executions, SfnClient};
use dncflow::operate::{recent_runs, redrive, rerun, RerunOf, RunSummary};

use crate::runtime;

/// Where the stack's state machine is.
#[derive(clap::Args, Clone)]
pub(crate) struct StackArgs {
    /// The deployed stack's name (its state machine is `<stack>-dncflow`).
    #[arg(long, conflicts_with = "state_machine")]
    stack: Option<String>,
    /// The dncflow state machine's ARN (the stack's `StateMachineArn` output); default: $DNCFLOW_STATE_MACHINE_ARN.
    #[arg(long)]
    state_machine: Option<String>,
    /// Step Functions endpoint (an emulator); default: AWS_ENDPOINT_URL_SFN, else AWS.
    #[arg(long)]
    sfn_endpoint: Option<String>,
    /// S3 endpoint (an emulator) for the bucket `redrive` takes the list's lease in; default: AWS_ENDPOINT_URL_S3.
    #[arg(long)]
    s3_endpoint: Option<String>,
}

impl StackArgs {
    /// Whether a state machine was named (by option or environment).
    fn given(&self) -> bool {
        self.stack.is_some()
            || self.state_machine.is_some()
            || std::env::var("DNCFLOW_STATE_MACHINE_ARN").is_ok_and(|a| !a.is_empty())
    }

    /// The client and the state machine's ARN.
    async fn resolve(&self) -> Result<(SfnClient, String)> {
        let sfn = SfnClient::from_env(self.sfn_endpoint.as_deref()).await;
        let arn = match (&self.state_machine, &self.stack) {
            (Some(arn), _) => arn.clone(),
            (None, Some(stack)) => {
                let name = format!("{stack}-dncflow");
                sfn.state_machine_named(&name)
                    .await?
                    .with_context(|| format!("stack {stack}: no state machine named {name} in this account and region (AWS_REGION?)"))?
            }
            (None, None) => match std::env::var("DNCFLOW_STATE_MACHINE_ARN") {
                Ok(arn) if !arn.is_empty() => arn,
                _ => bail!(
                    "which stack? --stack NAME, --state-machine ARN or DNCFLOW_STATE_MACHINE_ARN"
                ),
            },
        };
        Ok((sfn, arn))
    }
}

#[derive(clap::Args)]
pub(crate) struct RunsArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Only the executions of this list.
    #[arg(long)]
    list: Option<String>,
    /// How many executions to show.
    #[arg(long, default_value_t = 20)]
    max: usize,
    /// How many of the newest executions to look through for --list.
    #[arg(long, default_value_t = 200)]
    scan: usize,
}

#[derive(clap::Args)]
pub(crate) struct RerunArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The list to run.
    #[arg(long)]
    list: String,
    /// The object to run (its newest version, as the nightly schedule runs its object); default: the object (and
    /// version) of the list's latest execution.
    #[arg(long)]
    key: Option<String>,
    /// The bucket of --key; default: the bucket of the list's latest execution.
    #[arg(long, requires = "key")]
    bucket: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct RedriveArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// The execution's ARN (as `dncctl runs` prints it). With --stack or --state-machine, it must be one of that
    /// state machine's.
    execution: String,
}

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

/// One line per execution, newest first, then its error when it failed.
fn print_runs(runs: &[RunSummary]) {
    println!(
        "{:<19}  {:<19}  {:<15}  {:<16}  {:<28}  EXECUTION",
        "STARTED (UTC)", "STOPPED", "STATUS", "LIST", "RUN"
    );
    for r in runs {
        let e = &r.execution;
        println!(
            "{:<19}  {:<19}  {:<15}  {:<16}  {:<28}  {}",
            time(e.started_at),
            time(e.stopped_at),
            e.status.as_str(),
            r.source.as_ref().map_or("-", |s| s.list.as_str()),
            r.run_id.as_deref().unwrap_or("-"),
            e.arn
        );
        if let Some(s) = &r.source {
            println!("    source  s3://{}/{}", s.bucket, s.key);
        }
        if let Some(error) = &e.error {
            println!(
                "    error   {error}{}",
                if e.redrive_count > 0 {
                    format!(" (redriven {}×)", e.redrive_count)
                } else {
                    String::new()
                }
            );
        }
    }
}

pub(crate) fn runs(args: RunsArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let (sfn, machine) = args.stack.resolve().await?;
        let runs = recent_runs(&sfn, &machine, args.list.as_deref(), args.max, args.scan).await?;
        if runs.is_empty() {
            println!(
                "no executions{} among the newest {} of {machine}",
                args.list
                    .map(|l| format!(" of list {l}"))
                    .unwrap_or_default(),
                args.scan
            );
        } else {
            print_runs(&runs);
        }
        Ok(())
    })
}

pub(crate) fn rerun_list(args: RerunArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let (sfn, machine) = args.stack.resolve().await?;
        let what = match args.key {
            Some(key) => RerunOf::Key {
                key,
                bucket: args.bucket,
            },
            None => RerunOf::Latest,
        };
        let started = rerun(&sfn, &machine, &args.list, what, chrono::Utc::now()).await?;
        println!("started {}", started.execution);
        println!("input   {}", started.input);
        Ok(())
    })
}

pub(crate) fn redrive_execution(args: RedriveArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let sfn = if args.stack.given() {
            let (sfn, machine) = args.stack.resolve().await?;
            let prefix = machine.replacen(":stateMachine:", ":execution:", 1) + ":";
            if !args.execution.starts_with(&prefix) {
                bail!("{} is not an execution of {machine}", args.execution);
            }
            sfn
        } else {
            SfnClient::from_env(args.stack.sfn_endpoint.as_deref()).await
        };
        let s3 = dncflow::adapters::store::s3_client(args.stack.s3_endpoint.as_deref()).await;
        // The lease and the list status are written as the stack's functions write them: the status is evidence.
        let evidence_lock = crate::registry::evidence_lock()?;
        let store_of = |bucket: &str| -> Box<dyn dncflow::adapters::store::ObjectStore> {
            Box::new(dncflow::adapters::store::S3Store {
                client: s3.clone(),
                bucket: bucket.to_string(),
                evidence_lock,
            })
        };
        let done = redrive(
            &sfn as &dyn Executions,
            store_of,
            &args.execution,
            chrono::Utc::now(),
        )
        .await?;
        println!("redriven {} (was {})", done.execution, done.was);
        if let Some(run) = &done.run {
            println!(
                "lease    status/{}/lease.json taken back for run {}",
                run.list, run.run_id
            );
        }
        Ok(())
    })
}
