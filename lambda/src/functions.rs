//! Every Lambda function as a [`Step`]: its settings (read once per container, [`crate::settings`]), the clients its
//! container builds from them, and what one invocation does with its typed input. The binaries under `functions/`
//! are `run_step::<…>()` and nothing else, so a reader following a step goes from the binary to here, then to the
//! stage in [`dncflow::steps`].

use std::time::Duration;

use async_trait::async_trait;
use lambda_runtime::Context;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::settings::{self, Env};
use crate::{answer, diagnostic, now_ms, parse_payload};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::eventbridge::EventBridgeNotifier;
use dncflow::adapters::s3_event::SourceObject;
use dncflow::adapters::store::{EvidenceLock, S3Store};
use dncflow::steps::{
    acquire_lease, cooldown_stage, normalize_object, reconcile_stage, record_failure, upload_stage,
    CooldownOutput, CooldownTask, ErrorKind, FailureRecorded, LeaseOutcome, LeaseTask,
    NormalizeOutput, ReconcileOutput, ReconcileTask, ShardTask, StepError, UploadOutput,
    UploadSettings,
};

/// One Lambda function.
#[async_trait(?Send)]
pub trait Step: Send + Sync + Sized + 'static {
    /// The function's name (logs, error diagnostics).
    const NAME: &'static str;
    /// Its settings, read from the environment once per container.
    type Settings: Send + Sync + 'static;
    /// What one invocation is given: the event's payload read as this type (another shape is `InvalidInput`).
    type Input: serde::de::DeserializeOwned;
    /// What one invocation answers.
    type Output: serde::Serialize;
    /// The settings from `env`. A value that does not parse is a `Fatal` error naming it.
    fn settings(env: &Env) -> Result<Self::Settings, StepError>;
    /// The container: its clients, built from its settings.
    async fn new(settings: &Self::Settings) -> Result<Self, StepError>;
    /// One invocation. A failure's kind is the `errorType` Step Functions `Retry`/`Catch` match.
    async fn handle(
        &self,
        input: Self::Input,
        context: &Context,
    ) -> Result<Self::Output, StepError>;
}

/// Run `S` in the Lambda runtime: JSON logs, the settings read once, the container built once, every invocation
/// handed to it.
///
/// The container is built at the first invocation, and again at the next one after a failure: a cold start that
/// cannot read its secret or reach a service fails that invocation with the error's kind (`Transient`, which every
/// Task of the state machines retries), where failing the runtime's init would crash the process
/// (`Runtime.ExitError`, which no `Retry` names). A setting that does not parse fails every invocation `Fatal`,
/// naming it, before the payload is read.
pub async fn run_step<S: Step>() -> Result<(), lambda_runtime::Error> {
    crate::init_logging();
    let settings: &'static Result<S::Settings, StepError> =
        crate::for_container(S::settings(&Env::process()));
    let container: &'static tokio::sync::OnceCell<S> =
        crate::for_container(tokio::sync::OnceCell::new());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            let settings = settings
                .as_ref()
                .map_err(|e| diagnostic(S::NAME, StepError::new(e.kind(), e.report())))?;
            let step = container
                .get_or_try_init(|| S::new(settings))
                .await
                .map_err(|e| diagnostic(S::NAME, e))?;
            let input: S::Input = parse_payload(S::NAME, event.payload)?;
            let output = step
                .handle(input, &event.context)
                .await
                .map_err(|e| diagnostic(S::NAME, e))?;
            answer(S::NAME, &output)
        },
    ))
    .await
}

/// The bucket as every function writes it: evidence with the deployment's lock.
fn store(s3: &aws_sdk_s3::Client, bucket: &str, evidence_lock: Option<EvidenceLock>) -> S3Store {
    S3Store {
        client: s3.clone(),
        bucket: bucket.to_string(),
        evidence_lock,
    }
}

/// The object dropped for `normalize`: an EventBridge "Object Created", an S3 notification, or a plain
/// `{bucket, key, versionId?, list?}` re-run input, read as [`dncflow::adapters::s3_event::parse_source_event`]
/// reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedObject(pub SourceObject);

impl<'de> Deserialize<'de> for DroppedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let event = Value::deserialize(deserializer)?;
        dncflow::adapters::s3_event::parse_source_event(&event)
            .map(DroppedObject)
            .map_err(serde::de::Error::custom)
    }
}

/// `normalize`: an S3 drop in; `runs/<runId>/` (manifest, shards, rejects) out. Settings: [`settings::Normalize`].
pub struct Normalize {
    s3: aws_sdk_s3::Client,
    settings: settings::Normalize,
}

#[async_trait(?Send)]
impl Step for Normalize {
    const NAME: &'static str = "normalize";
    type Settings = settings::Normalize;
    type Input = DroppedObject;
    type Output = NormalizeOutput;

    fn settings(env: &Env) -> Result<settings::Normalize, StepError> {
        settings::Normalize::read(env)
    }

    async fn new(settings: &settings::Normalize) -> Result<Self, StepError> {
        Ok(Normalize {
            s3: dncflow::adapters::store::s3_client(None).await,
            settings: settings.clone(),
        })
    }

    async fn handle(
        &self,
        DroppedObject(source): DroppedObject,
        _: &Context,
    ) -> Result<NormalizeOutput, StepError> {
        let s = &self.settings;
        let mut options = dncflow::steps::normalize::NormalizeOptions::new(&source.list);
        options.region = s.region;
        options.shard_count = s.shards;
        options.limits = s.limits;
        options.max_rejects_kept = s.max_rejects_kept;
        let bucket = s.out_bucket.as_deref().unwrap_or(&source.bucket);
        normalize_object(
            &store(&self.s3, bucket, s.evidence_lock),
            &source,
            options,
            s.max_reject_ratio,
        )
        .await
    }
}

/// `lease`: `{bucket, runId, list, execution, startedAt?}` in, `{acquired, duplicate, waitSeconds, heldBy?}` out.
/// Takes `status/<list>/lease.json` for the execution (and says RUNNING in the list's status), or tells the state
/// machine to wait while another execution holds the list. Released by reconcile and the failure recorder.
///
/// Asks Step Functions (`states:DescribeExecution`) whether another holder's execution has ended, and takes such a
/// lease over at once. Settings: [`settings::Lease`].
pub struct Lease {
    s3: aws_sdk_s3::Client,
    sfn: dncflow::adapters::sfn::SfnClient,
    settings: settings::Lease,
}

#[async_trait(?Send)]
impl Step for Lease {
    const NAME: &'static str = "lease";
    type Settings = settings::Lease;
    type Input = LeaseTask;
    type Output = LeaseOutcome;

    fn settings(env: &Env) -> Result<settings::Lease, StepError> {
        settings::Lease::read(env)
    }

    async fn new(settings: &settings::Lease) -> Result<Self, StepError> {
        Ok(Lease {
            s3: dncflow::adapters::store::s3_client(None).await,
            sfn: dncflow::adapters::sfn::SfnClient::from_env(None).await,
            settings: settings.clone(),
        })
    }

    async fn handle(&self, mut task: LeaseTask, _: &Context) -> Result<LeaseOutcome, StepError> {
        task.wait_seconds.get_or_insert(self.settings.wait_secs);
        acquire_lease(
            &store(&self.s3, &task.run.bucket, self.settings.evidence_lock),
            Some(&self.sfn),
            &task,
            chrono::Utc::now(),
        )
        .await
    }
}

/// `upload`: one shard per invocation (`{bucket, runId, list, shardKey, round?, cursor?}`); answers the same shape
/// with the cursor moved, `done`, counts and `lastWriteAt`. Stops starting batches when the invocation's deadline
/// nears, so the state machine resumes the shard instead of the function timing out. Settings:
/// [`settings::Upload`].
pub struct Upload {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    settings: settings::Upload,
}

#[async_trait(?Send)]
impl Step for Upload {
    const NAME: &'static str = "upload";
    type Settings = settings::Upload;
    type Input = ShardTask;
    type Output = UploadOutput;

    fn settings(env: &Env) -> Result<settings::Upload, StepError> {
        settings::Upload::read(env)
    }

    async fn new(settings: &settings::Upload) -> Result<Self, StepError> {
        Ok(Upload {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: settings.cxone.connect().await?,
            settings: settings.clone(),
        })
    }

    async fn handle(&self, task: ShardTask, context: &Context) -> Result<UploadOutput, StepError> {
        let s = &self.settings;
        let left = Duration::from_millis((context.deadline as i64 - now_ms()).max(0) as u64);
        let stage = UploadSettings {
            budget: left.saturating_sub(s.margin).max(Duration::from_secs(1)),
            concurrency: s.concurrency,
            capacity: s.capacity,
        };
        let out = upload_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket, s.evidence_lock),
            &task,
            &stage,
            chrono::Utc::now,
        )
        .await?;
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
        Ok(out)
    }
}

/// `cooldown`: `{bucket, runId, list, round, attempt, lastWrites}` in, `{ready, waitSeconds, attempt, …}` out. The
/// state machine's `Wait` state does the waiting. Settings: [`settings::Cooldown`].
pub struct Cooldown {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    settings: settings::Cooldown,
}

#[async_trait(?Send)]
impl Step for Cooldown {
    const NAME: &'static str = "cooldown";
    type Settings = settings::Cooldown;
    type Input = CooldownTask;
    type Output = CooldownOutput;

    fn settings(env: &Env) -> Result<settings::Cooldown, StepError> {
        settings::Cooldown::read(env)
    }

    async fn new(settings: &settings::Cooldown) -> Result<Self, StepError> {
        Ok(Cooldown {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: settings.cxone.connect().await?,
            settings: settings.clone(),
        })
    }

    async fn handle(&self, task: CooldownTask, _: &Context) -> Result<CooldownOutput, StepError> {
        cooldown_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket, self.settings.evidence_lock),
            &task,
            &self.settings.stage,
            chrono::Utc::now(),
        )
        .await
    }
}

/// `reconcile`: `{bucket, runId, list, round, startedAt?}` in; `{status: SUCCESS|FAILED|REUPLOAD, round, shardKeys,
/// …}` out. SUCCESS and FAILED are published (report, `status/<list>/latest.json`, EventBridge event). Settings:
/// [`settings::Reconcile`].
pub struct Reconcile {
    s3: aws_sdk_s3::Client,
    api: Box<dyn DncApi>,
    notifier: EventBridgeNotifier,
    settings: settings::Reconcile,
}

#[async_trait(?Send)]
impl Step for Reconcile {
    const NAME: &'static str = "reconcile";
    type Settings = settings::Reconcile;
    type Input = ReconcileTask;
    type Output = ReconcileOutput;

    fn settings(env: &Env) -> Result<settings::Reconcile, StepError> {
        settings::Reconcile::read(env)
    }

    async fn new(settings: &settings::Reconcile) -> Result<Self, StepError> {
        Ok(Reconcile {
            s3: dncflow::adapters::store::s3_client(None).await,
            api: settings.cxone.connect().await?,
            notifier: EventBridgeNotifier::from_env(settings.event_bus.clone()).await,
            settings: settings.clone(),
        })
    }

    async fn handle(&self, task: ReconcileTask, _: &Context) -> Result<ReconcileOutput, StepError> {
        reconcile_stage(
            self.api.as_ref(),
            &store(&self.s3, &task.run.bucket, self.settings.evidence_lock),
            &self.notifier,
            &task,
            self.settings.rounds,
            chrono::Utc::now,
        )
        .await
    }
}

/// `record-failure`: the target of every `Catch`. The execution state (`source`, `run?`, `error`) in; the list's
/// status set to FAILED with the reason (the last known good run kept), a FAILED report, an event. Its input stays
/// JSON: whatever shape the failed execution left, the failure is recorded (the recorder reads what it can).
/// Settings: [`settings::RecordFailure`].
pub struct RecordFailure {
    store: S3Store,
    notifier: EventBridgeNotifier,
}

#[async_trait(?Send)]
impl Step for RecordFailure {
    const NAME: &'static str = "record-failure";
    type Settings = settings::RecordFailure;
    type Input = Value;
    type Output = FailureRecorded;

    fn settings(env: &Env) -> Result<settings::RecordFailure, StepError> {
        settings::RecordFailure::read(env)
    }

    async fn new(settings: &settings::RecordFailure) -> Result<Self, StepError> {
        Ok(RecordFailure {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &settings.bucket,
                settings.evidence_lock,
            ),
            notifier: EventBridgeNotifier::from_env(settings.event_bus.clone()).await,
        })
    }

    async fn handle(&self, state: Value, _: &Context) -> Result<FailureRecorded, StepError> {
        record_failure(&self.store, &self.notifier, &state, chrono::Utc::now()).await
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
/// Its input stays JSON: [`dncflow::steps::registry::handle_event`] tells these events apart. Out: the version
/// report (counts of every line, the live version's freshness and coverage). Errors are `StepError`s like every
/// step's (`Transient` for the store and a lost race, `InvalidInput`, `Fatal`), the message led by the registry
/// error's own name (`ChangeListFutureDated`, `RegistryIncomplete`, `RegistryRegresses`, `InputUnreadable`, …).
/// Invoked asynchronously: an event failed after Lambda's retries goes to its dead-letter queue (template).
/// Settings: [`settings::Registry`].
pub struct Registry {
    store: S3Store,
}

#[async_trait(?Send)]
impl Step for Registry {
    const NAME: &'static str = "registry";
    type Settings = settings::Registry;
    type Input = Value;
    type Output = Value;

    fn settings(env: &Env) -> Result<settings::Registry, StepError> {
        settings::Registry::read(env)
    }

    async fn new(settings: &settings::Registry) -> Result<Self, StepError> {
        Ok(Registry {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &settings.bucket,
                settings.evidence_lock,
            ),
        })
    }

    async fn handle(&self, event: Value, _: &Context) -> Result<Value, StepError> {
        dncflow::steps::registry::handle_event(&self.store, &self.store.bucket, event)
            .await
            .map_err(StepError::from)
    }
}

/// `check`: validates outbound numbers against the DNC lists and registries before they are dialed, fail-safe and
/// audited ([`crate::check::CheckFunction`]); a Function URL response, never an invocation error. Its input stays
/// JSON: a Function URL event, or a check request invoked directly. Settings: [`settings::Check`].
#[async_trait(?Send)]
impl Step for crate::check::CheckFunction {
    const NAME: &'static str = "check";
    type Settings = settings::Check;
    type Input = Value;
    type Output = crate::check::UrlResponse;

    fn settings(env: &Env) -> Result<settings::Check, StepError> {
        settings::Check::read(env)
    }

    async fn new(settings: &settings::Check) -> Result<Self, StepError> {
        Ok(crate::check::CheckFunction::new(settings.clone()).await)
    }

    async fn handle(
        &self,
        event: Value,
        context: &Context,
    ) -> Result<crate::check::UrlResponse, StepError> {
        Ok(self.respond(&event, &context.request_id).await)
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
/// Errors: `Fatal` for an account refusal (never retried), `InvalidInput` for a damaged file, `Transient` for the
/// service, the network, the store and Secrets Manager; the message leads with the service's code
/// (`LoginFailed: …`). Settings: [`settings::FtcDownload`].
pub struct FtcDownload {
    store: S3Store,
    session: tokio::sync::OnceCell<dncflow::adapters::ftc::download::Session<'static>>,
    settings: settings::FtcDownload,
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
                let secret = self.settings.secret_id.as_deref().ok_or_else(|| {
                    StepError::new(ErrorKind::Fatal, "setting DNCFLOW_FTC_SECRET_ID is missing")
                })?;
                let credentials = FtcCredentials::from_secret(secret, None)
                    .await
                    .map_err(step_error)?;
                let endpoint = self
                    .settings
                    .endpoint
                    .clone()
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
    type Settings = settings::FtcDownload;
    type Input = dncflow::steps::ftc_download::DownloadTask;
    type Output = Value;

    fn settings(env: &Env) -> Result<settings::FtcDownload, StepError> {
        settings::FtcDownload::read(env)
    }

    async fn new(settings: &settings::FtcDownload) -> Result<Self, StepError> {
        Ok(FtcDownload {
            store: store(
                &dncflow::adapters::store::s3_client(None).await,
                &settings.bucket,
                settings.evidence_lock,
            ),
            session: tokio::sync::OnceCell::new(),
            settings: settings.clone(),
        })
    }

    async fn handle(
        &self,
        task: dncflow::steps::ftc_download::DownloadTask,
        _: &Context,
    ) -> Result<Value, StepError> {
        use dncflow::steps::ftc_download::{self as ftc, DownloadTask};
        let now = chrono::Utc::now();
        // A refusal is counted once per execution: when its failure is recorded.
        let mut refused = false;
        let out = match &task {
            DownloadTask::Failed { input, error } => {
                ftc::record_failure(&self.store, input, error, now)
                    .await
                    .and_then(|f| {
                        refused = f.is_login_refusal();
                        serde_json::to_value(&f)
                            .map_err(|e| StepError::caused_by(ErrorKind::Fatal, e))
                    })
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
                            &self.settings.stage,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if task.publishes_watch() {
            match ftc::watch_emf(&self.store, task.registry(), now, refused).await {
                Ok(Some(line)) => println!("{line}"),
                Ok(None) => {}
                // The watch is published again at the next run; the step's own outcome stands.
                Err(e) => {
                    tracing::warn!(error = %e.report(), "the registry's watch could not be published")
                }
            }
        }
        out
    }
}
