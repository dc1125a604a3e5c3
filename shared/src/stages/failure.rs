//! The failure recorder: every `Catch` of the state machine ends here, so that no run can die without a status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::reconcile::blank_report;
use super::status::{publish_list_status, StatusNotifier};
use super::{RunKeys, RunRef, StageError};
use crate::events::parse_source_event;
use crate::run::Manifest;
use crate::store::ObjectStore;

/// What the recorder did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRecorded {
    /// The list whose status was set to FAILED (none when the input named no list).
    pub list: Option<String>,
    /// The run.
    pub run_id: Option<String>,
    /// The error name caught.
    pub error: String,
    /// The reason recorded.
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
) -> Result<FailureRecorded, StageError> {
    let (error, reason) = reason_of(state.get("error"));
    let run: Option<RunRef> = state
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
    let mut report = blank_report(manifest.as_ref(), &run, started_at, now);
    report.reason = Some(reason.clone());
    publish_list_status(store, notifier, &report).await?;
    tracing::error!(list = %list, run_id = %run.run_id, error = %error, reason = %reason, "run FAILED");
    Ok(FailureRecorded {
        list: Some(list),
        run_id: Some(run.run_id),
        error,
        reason,
    })
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
