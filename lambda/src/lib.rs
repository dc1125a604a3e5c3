//! dncflow's Lambda glue: what every function binary under `functions/` shares, and nothing else uses. JSON logs,
//! each function's settings read once into a typed struct ([`settings`]), its container and typed handler
//! ([`functions`], and the check's Function URL envelope in [`check`]), and stage errors as
//! `lambda_runtime::Diagnostic`s whose `errorType` is the stable name Step Functions `Retry`/`Catch` match.
//!
//! The library (`dncflow`) holds the steps and their logic; this crate only reads settings, builds each function's
//! container and hands it invocations. The operator CLI depends on the library alone, so it links no Lambda runtime.

pub mod check;
pub mod functions;
pub mod settings;

pub use check::CheckFunction;
pub use functions::{
    run_step, Cooldown, FtcDownload, Lease, Normalize, Reconcile, RecordFailure, Registry, Step,
    Upload,
};
/// The error a function's `main` returns when the runtime stops.
pub use lambda_runtime::Error;
pub use settings::Env;

use lambda_runtime::Diagnostic;

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

/// The audit key from the Secrets Manager secret `secret_id` (`DNCFLOW_AUDIT_KEY_SECRET_ID`: its string value is the
/// key, its version id the key version each audit record names). Read again at each refresh of the check's local
/// knowledge, so a rotation is picked up without a deployment.
pub async fn audit_key(
    secret_id: Option<&str>,
) -> Result<dncflow::steps::check::AuditKey, StepError> {
    let secret_id = secret_id.ok_or_else(|| {
        StepError::new(ErrorKind::Fatal, "DNCFLOW_AUDIT_KEY_SECRET_ID is not set")
    })?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let out = aws_sdk_secretsmanager::Client::new(&config)
        .get_secret_value()
        .secret_id(secret_id)
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
    fn a_stage_error_is_the_diagnostic_step_functions_matches() {
        let e = StepError::new(ErrorKind::Transient, "the bucket did not answer")
            .with_source(std::io::Error::other("connection reset"));
        let d = diagnostic("upload", e);
        assert_eq!(d.error_type, "Transient");
        assert_eq!(
            d.error_message,
            "the bucket did not answer: connection reset"
        );
        let bad =
            parse_payload::<dncflow::steps::ShardTask>("upload", serde_json::json!({"runId": 1}))
                .unwrap_err();
        assert_eq!(bad.error_type, "InvalidInput");
        assert!(
            bad.error_message.starts_with("not a upload input"),
            "{}",
            bad.error_message
        );
    }
}
