//! The failure recorder: every `Catch` of the state machine ends here, so that no run can die without a status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{publish_list_status, RunRef, StepError};
use crate::adapters::eventbridge::StatusNotifier;
use crate::adapters::s3_event::parse_source_event;
use crate::adapters::store::ObjectStore;
use crate::run::lease::{read_lease, release_lease};
use crate::run::{Manifest, RunKeys, RunReport};

/// What the recorder did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecorded {
    /// The list whose status was set to FAILED (none when the input named no list).
    pub list: Option<String>,
    /// The failed run (None when the input named no run).
    pub run_id: Option<String>,
    /// The error name caught.
    pub error: String,
    /// The reason written to the list's status.
    pub reason: String,
}

/// Longest reason kept (a `Cause` can be long; the status object stays small).
const MAX_REASON: usize = 1000;

/// The error of a `Catch` (`{"Error": …, "Cause": …}`) as a reason line. A Lambda's `Cause` is itself JSON
/// (`{"errorType", "errorMessage", …}`); the message is taken from it.
fn reason_of(error: Option<&Value>) -> (String, String) {
    let name = error
        .and_then(|e| e.get("Error"))
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_string();
    let cause = error
        .and_then(|e| e.get("Cause"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| {
            c.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    let mut reason = format!("{name}: {message}");
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    (name, reason)
}

/// Record a failed execution: `state` is the execution's state when the error was caught (`source`: the trigger
/// event; `run`: normalize's output, when it got that far; `error`: the caught error). Writes a FAILED report for
/// the run (when there is one) and `status/<list>/latest.json` FAILED with the reason, keeping the last known good
/// run, then announces it. An input that names no list is logged and answered, never an error: the recorder must
/// not fail itself.
pub async fn record_failure(
    store: &dyn ObjectStore,
    notifier: &dyn StatusNotifier,
    state: &Value,
    now: DateTime<Utc>,
) -> Result<FailureRecorded, StepError> {
    let converted = from_status_change(state);
    let state = converted.as_ref().unwrap_or(state);
    let execution = state
        .get("execution")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (error, reason) = reason_of(state.get("error"));
    let mut run: Option<RunRef> = state
        .get("run")
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let list = run.as_ref().map(|r| r.list.clone()).or_else(|| {
        state
            .get("source")
            .and_then(|s| parse_source_event(s).ok())
            .map(|s| s.list)
    });
    let Some(list) = list else {
        tracing::error!(error = %error, reason = %reason, "failure of an execution that names no list");
        return Ok(FailureRecorded {
            list: None,
            run_id: None,
            error,
            reason,
        });
    };
    // An execution that ended without its Catch names no run; the lease it holds does, or (when a waiting execution
    // took the lease over as soon as this one ended, before this event arrived) the new lease names it as the one
    // it was taken from.
    if run.is_none() {
        if let (Some(exec), Some(lease)) = (&execution, read_lease(store, &list).await?) {
            let run_id = if &lease.execution == exec {
                Some(lease.run_id)
            } else {
                lease
                    .took_over
                    .filter(|t| &t.execution == exec)
                    .map(|t| t.run_id)
            };
            run = run_id.map(|run_id| RunRef {
                bucket: String::new(),
                run_id,
                list: list.clone(),
            });
        }
    }
    let run = run.unwrap_or(RunRef {
        bucket: String::new(),
        run_id: format!("{list}-unnormalized"),
        list: list.clone(),
    });
    let manifest: Option<Manifest> =
        match store.get_bytes(&RunKeys::new(&run.run_id).manifest()).await {
            Ok(Some(b)) => serde_json::from_slice(&b).ok(),
            _ => None,
        };
    let started_at = state
        .get("startedAt")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut report = RunReport::blank(manifest.as_ref(), &run.run_id, &run.list, started_at, now);
    report.reason = Some(reason.clone());
    if report.source.is_none() {
        report.source = state
            .get("source")
            .and_then(|s| parse_source_event(s).ok())
            .map(|s| s.key);
    }
    // The run's numbers stay suppressed (`run-failed:<runId>`) until a verified run shows CXone holding them. A
    // document that cannot be updated does not stop the failure from being recorded (the check answers `error`
    // for an unreadable one).
    match crate::run::update_received(store, &list, now, |r| r.run_failed(&run.run_id)).await {
        Ok((relabelled, _)) => {
            tracing::info!(list = %list, run_id = %run.run_id, relabelled, "received numbers of the failed run kept")
        }
        Err(e) => {
            tracing::error!(list = %list, run_id = %run.run_id, error = %e, "received document not updated")
        }
    }
    // The lease is released even when the status cannot be published (an unreadable status is left for an operator
    // to repair, never overwritten): the list must not stay held for the lease's whole lifetime.
    let published = publish_list_status(store, notifier, &report).await;
    if let Some(execution) = &execution {
        release_lease(store, &list, execution).await?;
    }
    published?;
    tracing::error!(list = %list, run_id = %run.run_id, error = %error, reason = %reason, "run FAILED");
    Ok(FailureRecorded {
        list: Some(list),
        run_id: Some(run.run_id),
        error,
        reason,
    })
}

/// EventBridge's "Step Functions Execution Status Change" for an execution that ended without running its own
/// Catch (`TIMED_OUT`, `ABORTED`), as the state the recorder reads: the execution's input as `source`, its ARN as
/// `execution`, the status as the error.
fn from_status_change(event: &Value) -> Option<Value> {
    if event.get("source").and_then(Value::as_str) != Some("aws.states") {
        return None;
    }
    let detail = event.get("detail")?;
    let status = detail.get("status").and_then(Value::as_str)?;
    let arn = detail.get("executionArn").and_then(Value::as_str)?;
    let input: Value = detail
        .get("input")
        .and_then(Value::as_str)
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(Value::Null);
    let started_at = detail
        .get("startDate")
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339());
    Some(serde_json::json!({
        "source": input,
        "execution": arn,
        "startedAt": started_at,
        "error": {
            "Error": format!("Execution.{status}"),
            "Cause": format!("the execution ended {status} without reaching its failure recorder"),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_takes_the_lambda_message_out_of_the_cause() {
        let e = serde_json::json!({"Error": "NotSuppressing", "Cause": "{\"errorType\":\"NotSuppressing\",\"errorMessage\":\"DNC list 7 is bound to no active BLOCK rule\"}"});
        assert_eq!(
            reason_of(Some(&e)),
            (
                "NotSuppressing".to_string(),
                "NotSuppressing: DNC list 7 is bound to no active BLOCK rule".to_string()
            )
        );
        let e = serde_json::json!({"Error": "States.Timeout", "Cause": "x".repeat(5000)});
        assert!(reason_of(Some(&e)).1.len() <= MAX_REASON + '…'.len_utf8());
        assert_eq!(reason_of(None).0, "Unknown");
    }
}
