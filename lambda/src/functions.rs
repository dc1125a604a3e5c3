//! Every Lambda function as a [`Step`]: what its container builds once from the environment, and what one invocation
//! does. The binaries under `functions/` are `run_step::<…>()` and nothing else, so a reader following a step goes
//! from the binary to here, then to the stage in [`dncflow::steps`].

use std::time::Duration;

use async_trait::async_trait;
use lambda_runtime::{Context, Diagnostic};
use serde_json::Value;

use crate::{
    answer, bucket_from_env, business_calendar, cxone_from_env, diagnostic, evidence_lock,
    notifier_from_env, now_ms, parse_payload, setting, setting_secs, worker_rate,
};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::eventbridge::EventBridgeNotifier;
use dncflow::adapters::store::S3Store;
use dncflow::steps::{
    acquire_lease, cooldown_stage, normalize_object, reconcile_stage, record_failure, upload_stage,
    CooldownSettings, CooldownTask, ErrorKind, LeaseTask, ReconcileTask, ShardTask, StepError,
    UploadSettings,
};

/// One Lambda function.
#[async_trait(?Send)]
pub trait Step: Send + Sync + Sized + 'static {
    /// The function's name (logs, error diagnostics).
    const NAME: &'static str;
    /// The container's clients and settings, from the environment (once per cold start).
    async fn from_env() -> Result<Self, StepError>;
    /// One invocation: the event's payload in, the answer out; a failure's `errorType` is what Step Functions
    /// `Retry`/`Catch` match.
    async fn handle(&self, payload: Value, context: &Context) -> Result<Value, Diagnostic>;
}

/// Run `S` in the Lambda runtime: JSON logs, the container built once, every invocation handed to it.
///
/// The container is built at the first invocation, and again at the next one after a failure: a cold start that
/// cannot read its secret or reach a service fails that invocation with the error's kind (`Transient`, which every
/// Task of the state machines retries), where failing the runtime's init would crash the process
/// (`Runtime.ExitError`, which no `Retry` names). A setting that does not parse still fails loudly, as
/// `InvalidInput` or `Fatal`.
pub async fn run_step<S: Step>() -> Result<(), lambda_runtime::Error> {
    crate::init_logging();
    let container: &'static tokio::sync::OnceCell<S> =
        crate::for_container(tokio::sync::OnceCell::new());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let step = container
                .get_or_try_init(S::from_env)
                .await
                .map_err(|e| diagnostic(S::NAME, e))?;
            step.handle(event.payload, &event.context).await
        },
    ))
    .await
}

/// The bucket as every function writes it: evidence with the deployment's lock. The lock setting was checked when
/// the container was built ([`evidence_lock`] in each `from_env`), so it reads here without failing.
fn store(s3: &aws_sdk_s3::Client, bucket: &str) -> S3Store {
    S3Store {
        client: s3.clone(),
        bucket: bucket.to_string(),
        evidence_lock: evidence_lock().ok().flatten(),
    }
}

/// `normalize`: an S3 drop (EventBridge "Object Created", an S3 notification, or a plain
/// `{bucket, key, versionId?, list?}` re-run input) in; `runs/<runId>/` (manifest, shards, rejects) out.
///
/// Environment: `DNCFLOW_BUCKET` (where runs are written; default: the source bucket), `DNCFLOW_DEFAULT_REGION`
/// (default `US`), `DNCFLOW_SHARDS` (default 16), `DNCFLOW_MAX_REJECT_RATIO` (0.5: a file rejecting more of its rows,
/// or accepting none, fails `InvalidInput` before anything is uploaded), `DNCFLOW_MAX_INFLATED_BYTES` (8 GiB),
/// `DNCFLOW_MAX_INFLATION_RATIO` (200), `DNCFLOW_MAX_ZIP_MEMBERS` (10,000), `DNCFLOW_MAX_REJECTS_KEPT` (100,000
/// rejects written in full; past it each reason keeps 100 samples and the rest are counted).
pub struct Normalize {
    s3: aws_sdk_s3::Client,
    out_bucket: Option<String>,
    region: dncflow::phone::DefaultRegion,
    shards: u32,
    limits: dncflow::input::decode::DecodeLimits,
    max_rejects_kept: u64,
    max_reject_ratio: f64,
}

#[async_trait(?Send)]
impl Step for Normalize {
    const NAME: &'static str = "normalize";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        // The first step of a run: a business-day zone that does not exist fails the run here, named, before any
        // receipt is recorded.
        business_calendar()?;
        let defaults = dncflow::input::decode::DecodeLimits::default();
        Ok(Normalize {
            s3: dncflow::adapters::store::s3_client(None).await,
            out_bucket: std::env::var("DNCFLOW_BUCKET").ok(),
            region: match std::env::var("DNCFLOW_DEFAULT_REGION") {
                Ok(code) => dncflow::phone::DefaultRegion::from_code(&code).ok_or_else(|| {
                    StepError::new(
                        ErrorKind::Fatal,
                        format!(
                            "setting DNCFLOW_DEFAULT_REGION is not a region we normalize: {code:?}"
                        ),
                    )
                })?,
                Err(_) => dncflow::phone::DefaultRegion::default(),
            },
            shards: setting("DNCFLOW_SHARDS", 16)?,
            limits: dncflow::input::decode::DecodeLimits {
                max_inflated_bytes: setting(
                    "DNCFLOW_MAX_INFLATED_BYTES",
                    defaults.max_inflated_bytes,
                )?,
                max_ratio: setting("DNCFLOW_MAX_INFLATION_RATIO", defaults.max_ratio)?,
                max_members: setting("DNCFLOW_MAX_ZIP_MEMBERS", defaults.max_members)?,
            },
            max_rejects_kept: setting("DNCFLOW_MAX_REJECTS_KEPT", 100_000)?,
            max_reject_ratio: setting(
                "DNCFLOW_MAX_REJECT_RATIO",
                dncflow::steps::normalize::DEFAULT_MAX_REJECT_RATIO,
            )?,
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        let source = dncflow::adapters::s3_event::parse_source_event(&payload).map_err(|e| {
            diagnostic(Self::NAME, StepError::caused_by(ErrorKind::InvalidInput, e))
        })?;
        let mut options = dncflow::steps::normalize::NormalizeOptions::new(&source.list);
        options.region = self.region;
        options.shard_count = self.shards;
        options.limits = self.limits;
        options.max_rejects_kept = self.max_rejects_kept;
        let bucket = self
            .out_bucket
            .clone()
            .unwrap_or_else(|| source.bucket.clone());
        let output = normalize_object(
            &store(&self.s3, &bucket),
            &source,
            options,
            self.max_reject_ratio,
        )
        .await
        .map_err(|e| diagnostic(Self::NAME, e))?;
        answer(Self::NAME, &output)
    }
}

/// `lease`: `{bucket, runId, list, execution, startedAt?}` in, `{acquired, duplicate, waitSeconds, heldBy?}` out.
/// Takes `status/<list>/lease.json` for the execution (and says RUNNING in the list's status), or tells the state
/// machine to wait while another execution holds the list. Released by reconcile and the failure recorder.
///
/// Asks Step Functions (`states:DescribeExecution`) whether another holder's execution has ended, and takes such a
/// lease over at once.
///
/// Environment: `DNCFLOW_LEASE_WAIT_SECS` (30: how long a waiting execution sleeps between attempts).
pub struct Lease {
    s3: aws_sdk_s3::Client,
    sfn: dncflow::adapters::sfn::SfnClient,
    wait: u64,
}

#[async_trait(?Send)]
impl Step for Lease {
    const NAME: &'static str = "lease";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        Ok(Lease {
            s3: dncflow::adapters::store::s3_client(None).await,
            sfn: dncflow::adapters::sfn::SfnClient::from_env(None).await,
            wait: setting("DNCFLOW_LEASE_WAIT_SECS", dncflow::steps::LEASE_WAIT_SECS)?,
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        let mut task: LeaseTask = parse_payload(Self::NAME, payload)?;
        task.wait_seconds.get_or_insert(self.wait);
        let out = acquire_lease(
            &store(&self.s3, &task.run.bucket),
            Some(&self.sfn),
            &task,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| diagnostic(Self::NAME, e))?;
        answer(Self::NAME, &out)
    }
}

/// `upload`: one shard per invocation (`{bucket, runId, list, shardKey, round?, cursor?}`); answers the same shape
/// with the cursor moved, `done`, counts and `lastWriteAt`. Stops starting batches when the invocation's deadline
/// nears, so the state machine resumes the shard instead of the function timing out.
///
/// Environment: `DNCFLOW_UPLOAD_MARGIN_SECS` (time kept back from the deadline, default 150: one request's retry
/// deadline plus the ledger write), `DNCFLOW_UPLOAD_CONCURRENCY` (batches in flight, default 2),
/// `DNCFLOW_CXONE_CAPACITY` (1,000,000: a run that would bring the environment above it fails `CapacityExceeded`
/// before its first write).
pub struct Upload {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    margin: Duration,
    concurrency: usize,
    capacity: u64,
}

#[async_trait(?Send)]
impl Step for Upload {
    const NAME: &'static str = "upload";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        Ok(Upload {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: cxone_from_env(worker_rate()?).await?,
            margin: setting_secs("DNCFLOW_UPLOAD_MARGIN_SECS", 150.0)?,
            concurrency: setting("DNCFLOW_UPLOAD_CONCURRENCY", 2)?,
            capacity: setting("DNCFLOW_CXONE_CAPACITY", dncflow::steps::CXONE_CAPACITY)?,
        })
    }

    async fn handle(&self, payload: Value, context: &Context) -> Result<Value, Diagnostic> {
        let task: ShardTask = parse_payload(Self::NAME, payload)?;
        let left = Duration::from_millis((context.deadline as i64 - now_ms()).max(0) as u64);
        let settings = UploadSettings {
            budget: left.saturating_sub(self.margin).max(Duration::from_secs(1)),
            concurrency: self.concurrency,
            capacity: self.capacity,
        };
        let out = upload_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket),
            &task,
            &settings,
            chrono::Utc::now,
        )
        .await
        .map_err(|e| diagnostic(Self::NAME, e))?;
        println!(
            "{}",
            dncflow::metrics::emf(
                Self::NAME,
                &[
                    ("Created", "Count", out.created as f64),
                    ("Exists", "Count", out.exists as f64),
                    ("DeadLetters", "Count", out.rejected as f64),
                    ("Unconfirmed", "Count", out.unconfirmed as f64),
                ],
                now_ms()
            )
        );
        answer(Self::NAME, &out)
    }
}

/// `cooldown`: `{bucket, runId, list, round, attempt, lastWrites}` in, `{ready, waitSeconds, attempt, …}` out. The
/// state machine's `Wait` state does the waiting.
///
/// Environment: `DNCFLOW_COOLDOWN_SECS` (minimum after the last write, default 180), `DNCFLOW_CANARY_SIZE` (20),
/// `DNCFLOW_CANARY_INTERVAL_SECS` (30), `DNCFLOW_COOLDOWN_ATTEMPTS` (20), `DNCFLOW_CANARY_SETTLE_SECS` (300: from then
/// on a partly suppressed canary is handed to reconciliation).
pub struct Cooldown {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    settings: CooldownSettings,
}

#[async_trait(?Send)]
impl Step for Cooldown {
    const NAME: &'static str = "cooldown";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        let defaults = CooldownSettings::default();
        Ok(Cooldown {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: cxone_from_env(setting("DNCFLOW_TENANT_RATE", 50.0)?).await?,
            settings: CooldownSettings {
                min: setting_secs("DNCFLOW_COOLDOWN_SECS", defaults.min.as_secs_f64())?,
                canary_size: setting("DNCFLOW_CANARY_SIZE", defaults.canary_size)?,
                canary_interval: setting_secs(
                    "DNCFLOW_CANARY_INTERVAL_SECS",
                    defaults.canary_interval.as_secs_f64(),
                )?,
                max_attempts: setting("DNCFLOW_COOLDOWN_ATTEMPTS", defaults.max_attempts)?,
                settle: setting_secs("DNCFLOW_CANARY_SETTLE_SECS", defaults.settle.as_secs_f64())?,
            },
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        let task: CooldownTask = parse_payload(Self::NAME, payload)?;
        let out = cooldown_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket),
            &task,
            &self.settings,
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| diagnostic(Self::NAME, e))?;
        answer(Self::NAME, &out)
    }
}

/// `reconcile`: `{bucket, runId, list, round, startedAt?}` in; `{status: SUCCESS|FAILED|REUPLOAD, round, shardKeys,
/// …}` out. SUCCESS and FAILED are published (report, `status/<list>/latest.json`, EventBridge event).
///
/// Environment: `DNCFLOW_RECONCILE_ROUNDS` (3), `DNCFLOW_EVENT_BUS` (`default`), `DNCFLOW_BUSINESS_TIME_ZONE`
/// (`America/New_York`: the zone whose business days the deadline is counted in).
pub struct Reconcile {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    notifier: EventBridgeNotifier,
    rounds: u32,
}

#[async_trait(?Send)]
impl Step for Reconcile {
    const NAME: &'static str = "reconcile";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        business_calendar()?;
        Ok(Reconcile {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: cxone_from_env(setting("DNCFLOW_TENANT_RATE", 50.0)?).await?,
            notifier: notifier_from_env().await,
            rounds: setting("DNCFLOW_RECONCILE_ROUNDS", 3)?,
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        let task: ReconcileTask = parse_payload(Self::NAME, payload)?;
        let out = reconcile_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket),
            &self.notifier,
            &task,
            self.rounds,
            chrono::Utc::now,
        )
        .await
        .map_err(|e| diagnostic(Self::NAME, e))?;
        answer(Self::NAME, &out)
    }
}

/// `record-failure`: the target of every `Catch`. The execution state (`source`, `run?`, `error`) in; the list's
/// status set to FAILED with the reason (the last known good run kept), a FAILED report, an event.
///
/// Environment: `DNCFLOW_BUCKET`, `DNCFLOW_EVENT_BUS` (`default`).
pub struct RecordFailure {
    store: S3Store,
    notifier: EventBridgeNotifier,
}

#[async_trait(?Send)]
impl Step for RecordFailure {
    const NAME: &'static str = "record-failure";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        Ok(RecordFailure {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &bucket_from_env()?,
            ),
            notifier: notifier_from_env().await,
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        let out = record_failure(&self.store, &self.notifier, &payload, chrono::Utc::now())
            .await
            .map_err(|e| diagnostic(Self::NAME, e))?;
        answer(Self::NAME, &out)
    }
}

/// `registry`: keeps a registry's suppression index (`registry/<name>/`) current.
/// - S3 "Object Created" (EventBridge) under `incoming-registry/<name>/`: `changes/<file>` (an FTC change list) is
///   applied; other objects are acknowledged and left (a full download's files; its `_import.json` marker starts the
///   registry import state machine, whose steps call this function: `begin`, `importPart` per file, `assemble`, and
///   on failure `importFailed`).
/// - Step Functions "Execution Status Change" of the import state machine (TIMED_OUT, ABORTED): recorded in the
///   registry's status like a caught failure.
/// - Direct: `{"action":"import","registry","prefix"|"keys","asOf","maxAgeDays"?,"areaCodes"?,"scope"?,"force"?}`
///   (the whole batch in one invocation) or `{"action":"apply","registry","keys","asOf"?}`.
///
/// Out: the version report (counts of every line, the live version's freshness and coverage). Errors are
/// `StepError`s like every step's (`Transient` for the store and a lost race, `InvalidInput`, `Fatal`), the message
/// led by the registry error's own name (`ChangeListFutureDated`, `RegistryIncomplete`, `RegistryRegresses`,
/// `InputUnreadable`, …). Invoked asynchronously: an event failed after Lambda's retries goes to its dead-letter
/// queue (template). Environment: `DNCFLOW_BUCKET`.
pub struct Registry {
    store: S3Store,
}

#[async_trait(?Send)]
impl Step for Registry {
    const NAME: &'static str = "registry";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        Ok(Registry {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &bucket_from_env()?,
            ),
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        dncflow::steps::registry::handle_event(&self.store, &self.store.bucket, payload)
            .await
            .map_err(|e| diagnostic(Self::NAME, StepError::from(e)))
    }
}

/// `check`: validates outbound numbers against the DNC lists and registries before they are dialed, fail-safe and
/// audited ([`crate::check::CheckFunction`]); a Function URL response, never an invocation error.
#[async_trait(?Send)]
impl Step for crate::check::CheckFunction {
    const NAME: &'static str = "check";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        crate::check::CheckFunction::from_env().await
    }

    async fn handle(&self, payload: Value, context: &Context) -> Result<Value, Diagnostic> {
        Ok(crate::check::CheckFunction::handle(self, &payload, &context.request_id).await)
    }
}

/// `ftc-download`: each Task of the FTC download workflow (`infra/registry-download.asl.json`) is one action of
/// [`dncflow::steps::ftc_download::DownloadTask`] (`begin`, `submit`, `poll`, `fetch`, `apply`, `noChanges`,
/// `listFull`, `fetchFull`, `importFull`, `failed`). The container reads the FTC account at its first action that
/// talks to the FTC (so `failed` records even a failure to read it) and keeps one session (logged in again once when
/// the service says it expired); the token never leaves it. After `begin`, `apply`, `noChanges`, `importFull` and
/// `failed` it publishes the registry's watch as EMF (dimension `Registry`: `RegistryDaysToStale`,
/// `RegistryDaysNotContinuous`, `FtcDaysToRenewal`, `FtcSubscribedNotCovered`, and `FtcLoginRefused` when the
/// failure recorded is an account refusal), which template.yaml alarms on.
///
/// Environment: `DNCFLOW_BUCKET`, `DNCFLOW_FTC_SECRET_ID` (the account, `docs/ftc-download.md`),
/// `DNCFLOW_FTC_ENDPOINT` (default: the secret's `endpoint`, else the FTC's), `DNCFLOW_FTC_FULL_EVERY_DAYS` (7),
/// `DNCFLOW_FTC_MAX_POLLS` (720: a day of 2-minute polls). Errors: `Fatal` for an account refusal (never retried),
/// `InvalidInput` for a damaged file, `Transient` for the service, the network, the store and Secrets Manager; the
/// message leads with the service's code (`LoginFailed: …`).
pub struct FtcDownload {
    store: S3Store,
    session: tokio::sync::OnceCell<dncflow::adapters::ftc::download::Session<'static>>,
    settings: dncflow::steps::ftc_download::DownloadSettings,
}

impl FtcDownload {
    /// The container's session, its account read from Secrets Manager at the first call that needs it (a failure to
    /// read it is `Transient`: the workflow retries it, and the next invocation reads again).
    async fn session(
        &self,
    ) -> Result<&dncflow::adapters::ftc::download::Session<'static>, StepError> {
        use dncflow::adapters::ftc::{FtcCredentials, RetryPolicy, SoapClient, DEFAULT_ENDPOINT};
        use dncflow::steps::ftc_download::step_error;
        self.session
            .get_or_try_init(|| async {
                let secret = std::env::var("DNCFLOW_FTC_SECRET_ID").map_err(|_| {
                    StepError::new(ErrorKind::Fatal, "setting DNCFLOW_FTC_SECRET_ID is missing")
                })?;
                let credentials = FtcCredentials::from_secret(&secret, None)
                    .await
                    .map_err(step_error)?;
                let endpoint = std::env::var("DNCFLOW_FTC_ENDPOINT")
                    .ok()
                    .or_else(|| credentials.endpoint.clone())
                    .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
                let client: &'static SoapClient = crate::for_container(
                    SoapClient::new(&endpoint, RetryPolicy::default()).map_err(step_error)?,
                );
                let credentials: &'static FtcCredentials = crate::for_container(credentials);
                Ok::<_, StepError>(dncflow::adapters::ftc::download::Session::new(
                    client,
                    credentials,
                ))
            })
            .await
    }
}

#[async_trait(?Send)]
impl Step for FtcDownload {
    const NAME: &'static str = "ftc-download";

    async fn from_env() -> Result<Self, StepError> {
        evidence_lock()?;
        let defaults = dncflow::steps::ftc_download::DownloadSettings::default();
        Ok(FtcDownload {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &bucket_from_env()?,
            ),
            session: tokio::sync::OnceCell::new(),
            settings: dncflow::steps::ftc_download::DownloadSettings {
                full_every_days: setting("DNCFLOW_FTC_FULL_EVERY_DAYS", defaults.full_every_days)?,
                max_polls: setting("DNCFLOW_FTC_MAX_POLLS", defaults.max_polls)?,
            },
        })
    }

    async fn handle(&self, payload: Value, _: &Context) -> Result<Value, Diagnostic> {
        use dncflow::steps::ftc_download::{self as ftc, DownloadTask};
        let task: DownloadTask = parse_payload(Self::NAME, payload)?;
        let now = chrono::Utc::now();
        let out = match &task {
            DownloadTask::Failed { input, error } => {
                ftc::record_failure(&self.store, input, error, now)
                    .await
                    .map(|f| serde_json::to_value(&f).expect("serializes"))
            }
            _ => {
                // Steps that do not talk to the FTC need no account.
                let session = if task.needs_session() {
                    self.session().await.map(Some)
                } else {
                    Ok(None)
                };
                match session {
                    Ok(session) => {
                        ftc::run_task(
                            session,
                            &self.store,
                            &self.store.bucket,
                            &task,
                            now,
                            &self.settings,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if task.publishes_watch() {
            // A refusal is counted once per execution: when its failure is recorded.
            let refused = matches!(task, DownloadTask::Failed { .. })
                && matches!(&out, Ok(v) if serde_json::from_value::<dncflow::registry::DownloadFailure>(v.clone())
                    .is_ok_and(|f| f.is_login_refusal()));
            match ftc::watch_emf(&self.store, task.registry(), now, refused).await {
                Ok(Some(line)) => println!("{line}"),
                Ok(None) => {}
                // The watch is published again at the next run; the step's own outcome stands.
                Err(e) => {
                    tracing::warn!(error = %e.report(), "the registry's watch could not be published")
                }
            }
        }
        out.map_err(|e| diagnostic(Self::NAME, e))
    }
}
