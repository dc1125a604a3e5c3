//! Lambda `cooldown`: `{bucket, runId, list, round, attempt, lastWrites}` in, `{ready, waitSeconds, attempt, …}` out.
//! The state machine's `Wait` state does the waiting.
//!
//! Environment: see `dncflow::lambda`; `DNCFLOW_COOLDOWN_SECS` (minimum after the last write, default 180),
//! `DNCFLOW_CANARY_SIZE` (20), `DNCFLOW_CANARY_INTERVAL_SECS` (30), `DNCFLOW_COOLDOWN_ATTEMPTS` (20),
//! `DNCFLOW_CANARY_SETTLE_SECS` (300: from then on a partly suppressed canary is handed to reconciliation).

use dncflow::lambda::{
    answer, cxone_from_env, diagnostic, env_or, env_secs, for_container, init_logging,
    parse_payload,
};
use dncflow::stages::{cooldown_stage, CooldownSettings, CooldownTask};
use dncflow::store::S3Store;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = for_container(dncflow::store::s3_client(None).await);
    let api = for_container(
        cxone_from_env(env_or("DNCFLOW_TENANT_RATE", 50.0))
            .await
            .map_err(|e| diagnostic("cooldown", e).error_message)?,
    );
    let defaults = CooldownSettings::default();
    let settings = for_container(CooldownSettings {
        min: env_secs("DNCFLOW_COOLDOWN_SECS", defaults.min.as_secs_f64()),
        canary_size: env_or("DNCFLOW_CANARY_SIZE", defaults.canary_size),
        canary_interval: env_secs(
            "DNCFLOW_CANARY_INTERVAL_SECS",
            defaults.canary_interval.as_secs_f64(),
        ),
        max_attempts: env_or("DNCFLOW_COOLDOWN_ATTEMPTS", defaults.max_attempts),
        settle: env_secs("DNCFLOW_CANARY_SETTLE_SECS", defaults.settle.as_secs_f64()),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let task: CooldownTask = parse_payload("cooldown", event.payload)?;
        let store = S3Store {
            client: s3.clone(),
            bucket: task.run.bucket.clone(),
        };
        let out = cooldown_stage(&**api, &store, &task, settings, chrono::Utc::now())
            .await
            .map_err(|e| diagnostic("cooldown", e))?;
        answer("cooldown", &out)
    }))
    .await
}
