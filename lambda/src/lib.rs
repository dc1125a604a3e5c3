//! dncflow's Lambda glue: what every function binary under `functions/` shares, and nothing else uses. JSON logs,
//! settings from the environment, the CXone client from Secrets Manager, and stage errors as
//! `lambda_runtime::Diagnostic`s whose `errorType` is the stable name Step Functions `Retry`/`Catch` match.
//!
//! The library (`dncflow`) holds the steps and their logic; this crate only builds each function's container and
//! hands it invocations ([`functions`], and the check's Function URL envelope in [`check`]). The operator CLI
//! depends on the library alone, so it links no Lambda runtime.
//!
//! Environment (all optional but the secret):
//! - `DNCFLOW_SECRET_ID`: Secrets Manager secret (name or ARN) holding `{"baseUrl","clientId","clientSecret"}`.
//! - `DNCFLOW_CXONE_URL`: overrides the secret's `baseUrl` (a test tenant, the simulator).
//! - `DNCFLOW_TENANT_RATE` (50 requests/s) and `DNCFLOW_UPLOAD_WORKERS` (4, the Map's `MaxConcurrency`): each worker
//!   gets its share of the tenant's rate.

pub mod check;
pub mod functions;

pub use check::CheckFunction;
pub use functions::{
    run_step, Cooldown, FtcDownload, Lease, Normalize, Reconcile, RecordFailure, Registry, Step,
    Upload,
};
/// The error a function's `main` returns when the runtime stops.
pub use lambda_runtime::Error;

use std::time::Duration;

use lambda_runtime::Diagnostic;

use dncflow::adapters::cxone::auth::{SecretsManagerCredentials, WithBaseUrl};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::adapters::cxone::DncApi;
use dncflow::steps::{ErrorKind, StepError};

/// The log filter: `RUST_LOG` when set, else the level Lambda's logging configuration passes
/// (`AWS_LAMBDA_LOG_LEVEL`: `TRACE`…`FATAL`, the template's `ApplicationLogLevel`), else `info`.
fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    if let Some(filter) = rust_log.filter(|f| !f.trim().is_empty()) {
        return filter.to_string();
    }
    match lambda_level
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    }
    .to_string()
}

/// Install the JSON log subscriber (CloudWatch reads one JSON object a line; Lambda stamps the time).
pub fn init_logging() {
    let filter = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .without_time()
        .init();
}

/// A stage error as the Lambda error Step Functions sees, logged once: `errorType` is the kind's name (what
/// `Retry`/`Catch` match), the message the whole cause chain (what the failure recorder keeps as the reason).
pub fn diagnostic(stage: &str, e: StepError) -> Diagnostic {
    tracing::error!(stage, error_type = e.error_name(), error = %e.report(), "stage failed");
    Diagnostic {
        error_type: e.error_name().to_string(),
        error_message: e.report(),
    }
}

/// The event payload as the stage's input type; a payload of another shape is `InvalidInput`.
pub fn parse_payload<T: serde::de::DeserializeOwned>(
    stage: &str,
    payload: serde_json::Value,
) -> Result<T, Diagnostic> {
    serde_json::from_value(payload).map_err(|e| {
        diagnostic(
            stage,
            StepError::new(ErrorKind::InvalidInput, format!("not a {stage} input")).with_source(e),
        )
    })
}

/// The stage's output as the invocation's answer.
pub fn answer<T: serde::Serialize>(
    stage: &str,
    output: &T,
) -> Result<serde_json::Value, Diagnostic> {
    serde_json::to_value(output)
        .map_err(|e| diagnostic(stage, StepError::caused_by(ErrorKind::Fatal, e)))
}

/// Keep a client for the container's lifetime (its token, rate limiter and connections carry across invocations)
/// and share it with every invocation.
pub fn for_container<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The EventBridge notifier of the bus named by `DNCFLOW_EVENT_BUS` (default `default`).
pub async fn notifier_from_env() -> dncflow::adapters::eventbridge::EventBridgeNotifier {
    dncflow::adapters::eventbridge::EventBridgeNotifier::from_env(
        std::env::var("DNCFLOW_EVENT_BUS").unwrap_or_else(|_| "default".into()),
    )
    .await
}

/// A setting from the environment, `default` when unset. A value that does not parse is an error naming the
/// setting and the value, never the default: a typo in a compliance setting must stop the function loudly (the run
/// is recorded FAILED with the reason; a check answers `error`), not run it with a value nobody chose.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T, StepError> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| {
            StepError::new(
                ErrorKind::Fatal,
                format!(
                    "setting {name} is not a valid {}: {v:?}",
                    std::any::type_name::<T>()
                ),
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(StepError::new(
            ErrorKind::Fatal,
            format!("setting {name} is not UTF-8"),
        )),
    }
}

/// Seconds from the environment as a duration (see [`setting`]); negative or non-finite values are errors too.
pub fn setting_secs(name: &str, default: f64) -> Result<Duration, StepError> {
    let secs: f64 = setting(name, default)?;
    Duration::try_from_secs_f64(secs).map_err(|_| {
        StepError::new(
            ErrorKind::Fatal,
            format!("setting {name} is not a number of seconds: {secs}"),
        )
    })
}

/// The business-day calendar of the deployment (`DNCFLOW_BUSINESS_TIME_ZONE`, default `America/New_York`), checked
/// when a container starts: a zone that does not exist fails the function `Fatal` before it measures any deadline.
pub fn business_calendar(
) -> Result<&'static dncflow::hours::business_days::BusinessCalendar, StepError> {
    dncflow::hours::business_days::BusinessCalendar::configured()
        .map_err(|e| StepError::new(ErrorKind::Fatal, e.to_string()))
}

/// The deployment's S3 Object Lock on evidence (`DNCFLOW_EVIDENCE_LOCK_MODE`, `DNCFLOW_EVIDENCE_LOCK_DAYS`), read once
/// per container; a setting that does not parse fails the function `Fatal`, named, before it writes anything.
pub fn evidence_lock() -> Result<Option<dncflow::adapters::store::EvidenceLock>, StepError> {
    static LOCK: std::sync::OnceLock<Option<dncflow::adapters::store::EvidenceLock>> =
        std::sync::OnceLock::new();
    if let Some(lock) = LOCK.get() {
        return Ok(*lock);
    }
    let lock = dncflow::adapters::store::EvidenceLock::from_env()
        .map_err(|e| StepError::new(ErrorKind::Fatal, e))?;
    Ok(*LOCK.get_or_init(|| lock))
}

/// The tenant's rate divided among the upload workers.
pub fn worker_rate() -> Result<f64, StepError> {
    let tenant: f64 = setting("DNCFLOW_TENANT_RATE", 50.0)?;
    let workers: f64 = setting("DNCFLOW_UPLOAD_WORKERS", 4.0)?;
    Ok((tenant / workers.max(1.0)).max(0.1))
}

/// The CXone client of this container (built once: its token and rate limiter live across invocations), for the
/// dialect the secret names. The secret is read here, and again when CXone answers `invalid_client` (rotation).
pub async fn cxone_from_env(rate_per_sec: f64) -> Result<Box<dyn DncApi>, StepError> {
    cxone_from_env_within(rate_per_sec, ClientConfig::default().deadline).await
}

/// The same, each request (retries included) bounded by `DNCFLOW_CXONE_DEADLINE_SECS`, `deadline` by default: a
/// function whose timeout is short (the check: 60 s) must give up on CXone in time to answer `error` and audit it,
/// not be killed mid-request.
pub async fn cxone_from_env_within(
    rate_per_sec: f64,
    deadline: Duration,
) -> Result<Box<dyn DncApi>, StepError> {
    let secret_id = std::env::var("DNCFLOW_SECRET_ID")
        .map_err(|_| StepError::new(ErrorKind::Fatal, "DNCFLOW_SECRET_ID is not set"))?;
    let source = WithBaseUrl {
        inner: SecretsManagerCredentials::from_env(secret_id, None).await,
        base_url: std::env::var("DNCFLOW_CXONE_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let deadline = setting_secs("DNCFLOW_CXONE_DEADLINE_SECS", deadline.as_secs_f64())?;
    let defaults = ClientConfig::default();
    let config = ClientConfig {
        rate_per_sec,
        deadline,
        request_timeout: defaults.request_timeout.min(deadline),
        ..defaults
    };
    dncflow::adapters::cxone::connect(Box::new(source), config)
        .await
        .map_err(StepError::from)
}

/// The audit key from the Secrets Manager secret `DNCFLOW_AUDIT_KEY_SECRET_ID` (its string value is the key, its
/// version id the key version each audit record names). Read again at each refresh of the check's local knowledge,
/// so a rotation is picked up without a deployment.
pub async fn audit_key_from_env() -> Result<dncflow::steps::check::AuditKey, StepError> {
    let secret_id = std::env::var("DNCFLOW_AUDIT_KEY_SECRET_ID")
        .map_err(|_| StepError::new(ErrorKind::Fatal, "DNCFLOW_AUDIT_KEY_SECRET_ID is not set"))?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let out = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(&secret_id)
        .send()
        .await
        .map_err(|e| {
            StepError::new(
                ErrorKind::Transient,
                format!(
                    "audit key secret {secret_id}: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                ),
            )
        })?;
    let key = out.secret_string().ok_or_else(|| {
        StepError::new(
            ErrorKind::Fatal,
            format!("audit key secret {secret_id} has no string value"),
        )
    })?;
    dncflow::steps::check::AuditKey::new(out.version_id().unwrap_or("unknown"), key.as_bytes())
        .map_err(|e| {
            StepError::new(
                ErrorKind::Fatal,
                format!("audit key secret {secret_id}: {e}"),
            )
        })
}

/// The bucket the functions write runs and statuses to (`DNCFLOW_BUCKET`).
pub fn bucket_from_env() -> Result<String, StepError> {
    std::env::var("DNCFLOW_BUCKET")
        .map_err(|_| StepError::new(ErrorKind::Fatal, "DNCFLOW_BUCKET is not set"))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_level_follows_rust_log_then_lambdas_setting() {
        assert_eq!(
            log_filter(Some("debug,hyper=warn"), Some("ERROR")),
            "debug,hyper=warn"
        );
        assert_eq!(log_filter(None, Some("WARN")), "warn");
        assert_eq!(log_filter(None, Some("fatal")), "error");
        assert_eq!(log_filter(Some(" "), Some("DEBUG")), "debug");
        assert_eq!(log_filter(None, None), "info");
    }

    #[test]
    fn a_setting_that_does_not_parse_is_an_error_naming_it_never_the_default() {
        // Names no other test reads: tests share the process environment.
        std::env::set_var("DNCFLOW_TEST_SETTING_TYPO", "1O");
        std::env::set_var("DNCFLOW_TEST_SETTING_GOOD", " 12 ");
        std::env::set_var("DNCFLOW_TEST_SETTING_NEGATIVE_SECS", "-5");
        let typo = setting("DNCFLOW_TEST_SETTING_TYPO", 4u32).unwrap_err();
        assert_eq!(typo.kind(), ErrorKind::Fatal);
        assert!(
            typo.to_string().contains("DNCFLOW_TEST_SETTING_TYPO")
                && typo.to_string().contains("1O"),
            "{typo}"
        );
        assert_eq!(setting("DNCFLOW_TEST_SETTING_GOOD", 4u32).unwrap(), 12);
        assert_eq!(setting("DNCFLOW_TEST_SETTING_UNSET", 4u32).unwrap(), 4);
        assert!(setting_secs("DNCFLOW_TEST_SETTING_NEGATIVE_SECS", 1.0).is_err());
        assert_eq!(
            setting_secs("DNCFLOW_TEST_SETTING_UNSET", 1.5).unwrap(),
            Duration::from_millis(1500)
        );
    }
}
