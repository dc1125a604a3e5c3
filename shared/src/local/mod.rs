//! The whole job on one machine: the state machine's loop (upload every shard, cool down until a canary is
//! suppressed, reconcile with bounded re-uploads, record any failure) driven over the same stage functions the
//! Lambdas run, with a local directory standing in for the bucket. `dncctl run` drives it against the embedded
//! simulator or a real tenant. Each state's `Retry` is read from `infra/statemachine.asl.json` ([`StateRetries`]),
//! so this loop and the deployed one cannot drift apart.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::adapters::cxone::{DncApi, DncList, NewList};
use crate::adapters::eventbridge::NoNotifier;
use crate::adapters::store::ObjectStore;
use crate::run::{Manifest, RunReport, RunStatus};
use crate::steps::PipelineError;
use crate::steps::{
    cooldown_stage, read_json, reconcile_stage, record_failure, upload_stage, CooldownSettings,
    CooldownTask, ErrorKind, ReconcileTask, RunRef, ShardTask, StepError, UploadOutput,
    UploadSettings,
};

/// Time as CXone sees it, and waiting. The embedded simulator runs a scaled clock so a local run does not wait
/// real minutes; a real tenant uses wall time.
pub trait Clock: Send + Sync {
    /// The current instant on this clock (the simulator's scaled time, or wall time).
    fn now(&self) -> DateTime<Utc>;
    /// The real duration to sleep for `d` of this clock's time.
    fn real(&self, d: Duration) -> Duration;
    /// How many times faster than wall time it runs.
    fn scale(&self) -> f64 {
        1.0
    }
}

/// Wall time, or wall time sped up by `scale` from the moment of creation.
pub struct ScaledClock {
    start_real: std::time::Instant,
    start: DateTime<Utc>,
    scale: f64,
}

impl ScaledClock {
    /// A clock running `scale` times faster than wall time (1.0: wall time).
    pub fn new(scale: f64) -> ScaledClock {
        ScaledClock {
            start_real: std::time::Instant::now(),
            start: Utc::now(),
            scale: scale.max(1e-6),
        }
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start_real.elapsed().as_secs_f64() * self.scale;
        self.start + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
    }
    fn real(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }
    fn scale(&self) -> f64 {
        self.scale
    }
}

/// Settings of a local run: the knobs the state machine and the Lambdas' environment hold in AWS.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Minimum wait after the last write, canary size, interval and checks.
    pub cooldown: CooldownSettings,
    /// Reconcile rounds (the first upload and up to `reconcile_rounds - 1` re-uploads of what is missing).
    pub reconcile_rounds: u32,
    /// Shards uploaded at once (the state machine's Map concurrency).
    pub workers: usize,
    /// Batches in flight per shard.
    pub concurrency: usize,
    /// How a stage that failed `Transient` is retried: per state, as `infra/statemachine.asl.json`'s `Retry` says
    /// (read from the definition itself, so the local loop and the deployed one cannot drift).
    pub retries: StateRetries,
    /// A run rejecting more of its rows (or accepting none) fails `InvalidInput` before any upload.
    pub max_reject_ratio: f64,
    /// A run holding more entries fails `CapacityExceeded` before its first write.
    pub capacity: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            cooldown: CooldownSettings::default(),
            reconcile_rounds: 3,
            workers: 2,
            concurrency: 2,
            retries: StateRetries::from_definition(),
            max_reject_ratio: crate::steps::normalize::DEFAULT_MAX_REJECT_RATIO,
            capacity: crate::steps::CXONE_CAPACITY,
        }
    }
}

/// Find the list by name, or create it with a single BLOCK rule of scope BOTH (the consolidated rule of the source
/// document's edge case 3). For the embedded simulator and first-time setups.
pub async fn ensure_list(api: &dyn DncApi, name: &str) -> Result<DncList, PipelineError> {
    let list = match api.find_list(name).await? {
        Some(l) => l,
        None => {
            crate::adapters::cxone::create_list_if_absent(
                api,
                &NewList {
                    name: name.to_string(),
                    description: format!("{name}: managed by dncflow"),
                    kind: "MANUAL".into(),
                    default_expiration_date: "2099-12-31T23:59:59Z".into(),
                    is_active: true,
                },
            )
            .await?
        }
    };
    for done in api.bind_outbound(&list, &[]).await? {
        tracing::info!(list = %name, "{done}");
    }
    Ok(list)
}

/// Run a normalized run through upload → cooldown → reconcile exactly as the state machine does in AWS, over the
/// same stage functions, with `store` standing in for the bucket (`runs/<runId>/…`, `status/<list>/…`). Every ending
/// is published: SUCCESS or FAILED by reconcile, any error by the failure recorder (keeping the last known good
/// run). Returns the published report; an error only when even the failure could not be recorded.
pub async fn run_local(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    clock: &dyn Clock,
    run: &RunRef,
    settings: &RunSettings,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<RunReport, StepError> {
    let started_at = clock.now().to_rfc3339();
    // Received as normalize receives a run in AWS: from now on the check answers its numbers suppressed until a
    // verified run shows CXone holding them (`refused-file:<runId>` when the junk gate refuses the file).
    let manifest: Manifest = read_json(store, &run.keys().manifest()).await?;
    let hold =
        match crate::steps::normalize::quality_gate(&manifest.counts, settings.max_reject_ratio) {
            Ok(()) => crate::run::Hold::PendingPropagation,
            Err(_) => crate::run::Hold::RefusedFile,
        };
    crate::run::receive_run(store, &manifest, None, hold, clock.now()).await?;
    drop(manifest);
    // One run per list, as in AWS; a local run does not wait for another holder (it says who holds the list).
    let execution = format!("local:{}:{started_at}", run.run_id);
    let lease = crate::steps::acquire_lease(
        store,
        None,
        &crate::steps::LeaseTask {
            run: run.clone(),
            execution: execution.clone(),
            started_at: None,
            wait_seconds: None,
        },
        clock.now(),
    )
    .await?;
    if !lease.acquired {
        return Err(StepError::new(ErrorKind::Transient, format!(
            "list {} is held by another run ({}); try again when it ends, or delete {} if that run is dead",
            run.list,
            lease.held_by.as_deref().unwrap_or("unknown"),
            crate::run::lease_key(&run.list)
        )));
    }
    let local = LocalExecution {
        id: execution.clone(),
        started_at: started_at.clone(),
    };
    if let Err(e) = drive(api, store, clock, run, settings, &local, say).await {
        say(format!("failed: {e} ({})", e.error_name()));
        let state = serde_json::json!({
            "run": run,
            "startedAt": started_at,
            "execution": execution,
            "error": {"Error": e.error_name(), "Cause": e.to_string()},
        });
        record_failure(store, &NoNotifier, &state, clock.now()).await?;
    }
    read_json(store, &run.keys().report()).await
}

/// A local execution: what Step Functions' context object gives the deployed loop.
struct LocalExecution {
    /// The lease holder's name (`local:<runId>:<start>`).
    id: String,
    /// When it started (RFC 3339).
    started_at: String,
}

/// The state machine's loop: rounds of (upload shards → cooldown ⇄ wait → reconcile) until reconcile publishes.
async fn drive(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    clock: &dyn Clock,
    run: &RunRef,
    settings: &RunSettings,
    execution: &LocalExecution,
    say: &mut (dyn FnMut(String) + Send),
) -> Result<(), StepError> {
    let manifest: Manifest = read_json(store, &run.keys().manifest()).await?;
    crate::steps::normalize::quality_gate(&manifest.counts, settings.max_reject_ratio).map_err(
        |why| {
            StepError::new(
                ErrorKind::InvalidInput,
                format!("run {} refused: {why}", run.run_id),
            )
        },
    )?;
    let mut shard_keys: Vec<String> = manifest
        .shards
        .iter()
        .map(|s| crate::run::RunKeys::new(&run.run_id).shard(&s.key))
        .collect();
    let mut round = 0u32;
    loop {
        say(format!(
            "upload round {round}: {} shard(s) to list {}",
            shard_keys.len(),
            run.list
        ));
        // As the state machine's Map: the first shard that fails fails the round, and the others are stopped.
        let uploads: Vec<UploadOutput> = futures::stream::iter(
            shard_keys
                .iter()
                .map(|key| upload_shard(api, store, clock, run, key, round, settings)),
        )
        .buffer_unordered(settings.workers.max(1))
        .try_collect()
        .await?;
        let mut last_writes = Vec::with_capacity(uploads.len());
        let (mut created, mut exists, mut rejected) = (0, 0, 0);
        for out in uploads {
            (created, exists, rejected) = (
                created + out.created,
                exists + out.exists,
                rejected + out.rejected,
            );
            last_writes.push(Some(out.last_write_at));
        }
        say(format!(
            "uploaded: {created} created, {exists} already there, {rejected} rejected"
        ));

        let mut attempt = 0;
        loop {
            let task = CooldownTask {
                run: run.clone(),
                round,
                attempt,
                last_writes: last_writes.clone(),
            };
            let c = with_retries(clock, settings.retries.cooldown, || {
                cooldown_stage(api, store, &task, &settings.cooldown, clock.now())
            })
            .await?;
            if c.ready {
                say(format!(
                    "canary: {}/{} suppressed{}",
                    c.canary_suppressed,
                    c.canary_probed,
                    if c.canary_handed_over > 0 {
                        format!(
                            ", {} handed to reconciliation (lost, or not propagating)",
                            c.canary_handed_over
                        )
                    } else {
                        String::new()
                    }
                ));
                break;
            }
            say(if c.elapsed {
                format!(
                    "canary: {}/{} suppressed, probing again in {} s",
                    c.canary_suppressed, c.canary_probed, c.wait_seconds
                )
            } else {
                format!(
                    "cooldown: {} s before the list may be probed",
                    c.wait_seconds
                )
            });
            attempt = c.attempt;
            tokio::time::sleep(clock.real(Duration::from_secs(c.wait_seconds))).await;
        }

        let task = ReconcileTask {
            run: run.clone(),
            round,
            started_at: Some(execution.started_at.clone()),
            execution: Some(execution.id.clone()),
            clock_scale: (clock.scale() != 1.0).then(|| clock.scale()),
        };
        let r = with_retries(clock, settings.retries.reconcile, || {
            reconcile_stage(
                api,
                store,
                &NoNotifier,
                &task,
                settings.reconcile_rounds,
                || clock.now(),
            )
        })
        .await?;
        say(format!(
            "reconcile round {round}: {} expected, {} found, {} missing: {}",
            r.expected, r.found, r.missing, r.status
        ));
        if r.status != RunStatus::Reupload {
            return Ok(());
        }
        shard_keys = r.shard_keys;
        round = r.round;
    }
}

/// One shard, invocation after invocation from its cursor until done (the state machine's resume loop).
async fn upload_shard(
    api: &dyn DncApi,
    store: &dyn ObjectStore,
    clock: &dyn Clock,
    run: &RunRef,
    shard_key: &str,
    round: u32,
    settings: &RunSettings,
) -> Result<UploadOutput, StepError> {
    let upload = UploadSettings {
        // No Lambda timeout here: one invocation does the whole shard unless CXone stops it.
        budget: Duration::from_secs(24 * 3600),
        concurrency: settings.concurrency,
        capacity: settings.capacity,
    };
    let mut task = ShardTask {
        run: run.clone(),
        shard_key: shard_key.to_string(),
        round,
        cursor: 0,
        offset: 0,
    };
    loop {
        let out = with_retries(clock, settings.retries.upload, || {
            upload_stage(api, store, &task, &upload, || clock.now())
        })
        .await?;
        if out.done {
            return Ok(out);
        }
        task = out.task;
    }
}

/// A `Retry` rule of the state machine for `Transient`: `IntervalSeconds`, `BackoffRate`, `MaxAttempts`,
/// `MaxDelaySeconds` (jitter is Step Functions' own; the local loop waits the full interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// The wait before the first retry (`IntervalSeconds`).
    pub interval: Duration,
    /// The factor each wait is multiplied by (`BackoffRate`).
    pub backoff_rate: f64,
    /// Retries after the first attempt.
    pub max_attempts: u32,
    /// The cap on any one wait (`MaxDelaySeconds`).
    pub max_delay: Duration,
}

/// The `Transient` retry of each Task state the local loop runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateRetries {
    /// The retry of `UploadShards` → `UploadShard` (one shard's upload), as the ASL declares it.
    pub upload: Retry,
    /// The retry of the `Cooldown` state (a round's wait and canary probe), as the ASL declares it.
    pub cooldown: Retry,
    /// The retry of the `Reconcile` state (one read-back round), as the ASL declares it.
    pub reconcile: Retry,
}

/// The deployed state machine's definition, embedded: the local loop's retry settings come from it.
const DEFINITION: &str = include_str!("../../../infra/statemachine.asl.json");

impl StateRetries {
    /// Read from `infra/statemachine.asl.json`. Panics if the definition lacks a `Transient` retry on one of the
    /// states (a unit test holds the definition to that).
    pub fn from_definition() -> StateRetries {
        let definition: serde_json::Value =
            serde_json::from_str(DEFINITION).expect("the embedded definition is JSON");
        let states = &definition["States"];
        let retry = |state: &serde_json::Value| -> Retry {
            let rule = state["Retry"]
                .as_array()
                .and_then(|rules| {
                    rules.iter().find(|r| {
                        r["ErrorEquals"]
                            .as_array()
                            .is_some_and(|e| e.iter().any(|n| n == "Transient"))
                    })
                })
                .expect("a Transient retry");
            let secs = |k: &str, default: f64| rule[k].as_f64().unwrap_or(default);
            Retry {
                interval: Duration::from_secs_f64(secs("IntervalSeconds", 1.0)),
                backoff_rate: secs("BackoffRate", 2.0),
                max_attempts: secs("MaxAttempts", 3.0) as u32,
                max_delay: Duration::from_secs_f64(secs("MaxDelaySeconds", 3600.0)),
            }
        };
        StateRetries {
            upload: retry(&states["UploadShards"]["ItemProcessor"]["States"]["UploadShard"]),
            cooldown: retry(&states["Cooldown"]),
            reconcile: retry(&states["Reconcile"]),
        }
    }
}

/// Retry `stage` while it fails `Transient`, as the state's `Retry` rule says, waiting on `clock`.
async fn with_retries<T, F, Fut>(
    clock: &dyn Clock,
    retry: Retry,
    mut stage: F,
) -> Result<T, StepError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut delay = retry.interval;
    let mut attempt = 0;
    loop {
        match stage().await {
            Err(e) if e.kind() == ErrorKind::Transient && attempt < retry.max_attempts => {
                attempt += 1;
                tracing::warn!(attempt, reason = %e.report(), "stage failed transiently; retrying");
                tokio::time::sleep(clock.real(delay.min(retry.max_delay))).await;
                delay = delay.mul_f64(retry.backoff_rate);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local loop retries as the deployed definition says: the figures come from the ASL itself.
    #[test]
    fn the_local_loop_takes_its_retries_from_the_state_machine_definition() {
        let r = StateRetries::from_definition();
        let definition: serde_json::Value = serde_json::from_str(DEFINITION).unwrap();
        let reconcile = &definition["States"]["Reconcile"]["Retry"][0];
        assert_eq!(reconcile["ErrorEquals"][0], "Transient");
        assert_eq!(
            r.reconcile.max_attempts as u64,
            reconcile["MaxAttempts"].as_u64().unwrap()
        );
        assert_eq!(
            r.reconcile.interval.as_secs(),
            reconcile["IntervalSeconds"].as_u64().unwrap()
        );
        assert!(r.upload.max_attempts >= 1 && r.cooldown.max_attempts >= 1);
        assert!(r.upload.backoff_rate >= 1.0 && r.upload.max_delay >= r.upload.interval);
    }
}
