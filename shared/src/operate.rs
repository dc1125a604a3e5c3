//! Operating a deployed stack's state machine: its recent runs (`dncctl runs`), a run started as the schedule or a
//! drop would start it (`dncctl rerun`), and a redrive of an execution that ended without its failure being recorded
//! (`dncctl redrive`). Everything goes through [`Executions`] (Step Functions) and, for the lease a redrive takes
//! back, the bucket's [`ObjectStore`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use thiserror::Error;

use crate::adapters::s3_event::{parse_source_event, run_input, SourceObject};
use crate::adapters::sfn::{Execution, ExecutionStatus, Executions, SfnError};
use crate::adapters::store::ObjectStore;
use crate::run::status_key;
use crate::steps::{acquire_lease, release_lease, LeaseTask, RunRef, StepError};

/// The state of the definition (`infra/statemachine.asl.json`) whose output names the run (`$.run.runId`).
pub const NORMALIZE_STATE: &str = "Normalize";
/// The state every caught error goes through: the failure recorder.
pub const RECORDER_STATE: &str = "RecordFailure";

/// What went wrong operating the stack.
#[derive(Debug, Error)]
pub enum OperateError {
    /// Step Functions refused or failed.
    #[error(transparent)]
    Sfn(#[from] SfnError),
    /// The bucket (the lease) failed.
    #[error(transparent)]
    Step(#[from] StepError),
    /// The list's lease document could not be read or written.
    #[error(transparent)]
    Document(#[from] crate::run::DocumentError),
    /// What was asked cannot be done, and why.
    #[error("{0}")]
    Refused(String),
}

/// One execution as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The execution as Step Functions describes it (ARN, name, status, times, error).
    pub execution: Execution,
    /// The object it ran, as its input names it (none for an input that names none).
    pub source: Option<SourceObject>,
    /// The run id, once normalize has answered (none before, or when the history cannot be read).
    pub run_id: Option<String>,
}

/// The run id in a state's output (`$.run.runId`: normalize's answer kept under `run`).
fn run_id_in(output: &str) -> Option<String> {
    serde_json::from_str::<Value>(output)
        .ok()?
        .pointer("/run/runId")?
        .as_str()
        .map(str::to_string)
}

/// The run id of `execution`: from its output when it succeeded, else from its history (normalize's exit).
async fn run_id_of(executions: &dyn Executions, execution: &Execution) -> Option<String> {
    if let Some(id) = execution.output.as_deref().and_then(run_id_in) {
        return Some(id);
    }
    match executions.state_outputs(&execution.arn).await {
        Ok(outputs) => outputs
            .iter()
            .rev()
            .filter(|(state, _)| state == NORMALIZE_STATE)
            .find_map(|(_, output)| run_id_in(output)),
        Err(e) => {
            tracing::warn!(execution = %execution.arn, error = %e, "run id unknown: the history cannot be read");
            None
        }
    }
}

/// The source object an execution's input names (the trigger event or a plain re-run input).
fn source_of(execution: &Execution) -> Option<SourceObject> {
    let input: Value = serde_json::from_str(execution.input.as_deref()?).ok()?;
    parse_source_event(&input).ok()
}

/// The most recent executions of `machine`, newest first, described: at most `max`, of `list` only when given (up
/// to `scan` executions are looked at to find them).
pub async fn recent_runs(
    executions: &dyn Executions,
    machine: &str,
    list: Option<&str>,
    max: usize,
    scan: usize,
) -> Result<Vec<RunSummary>, OperateError> {
    let mut runs = Vec::new();
    for item in executions.list(machine, scan.max(max)).await? {
        if runs.len() >= max {
            break;
        }
        let execution = executions.describe(&item.arn).await?;
        let source = source_of(&execution);
        if list.is_some_and(|l| source.as_ref().map(|s| s.list.as_str()) != Some(l)) {
            continue;
        }
        let run_id = run_id_of(executions, &execution).await;
        runs.push(RunSummary {
            execution,
            source,
            run_id,
        });
    }
    Ok(runs)
}

/// An execution name for a re-run of `list` at `now`: `rerun-<list>-<UTC time>`, within the 80 characters Step
/// Functions allows (a list name is `[A-Za-z0-9_.-]+`, all allowed in a name).
pub fn rerun_name(list: &str, now: DateTime<Utc>) -> String {
    let stamp = now.format("%Y%m%dT%H%M%S%3fZ").to_string();
    let room = 80 - "rerun--".len() - stamp.len();
    let list: String = list
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(room)
        .collect();
    format!("rerun-{list}-{stamp}")
}

/// What to re-run: an object named by the operator, or the one the list's latest execution ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RerunOf {
    /// This key (the newest version, as the schedule names its object), in this bucket (else the bucket of the list's
    /// latest execution).
    Key {
        /// The object key to run (`incoming/<list>/…`).
        key: String,
        /// The bucket, when the operator named it.
        bucket: Option<String>,
    },
    /// The object (and version) the list's latest execution ran.
    Latest,
}

/// A re-run `dncctl rerun` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// The new execution's ARN.
    pub execution: String,
    /// The input it was started with.
    pub input: Value,
}

/// Start `machine` for `list` with the input the schedule or a drop would give it ([`run_input`]).
pub async fn rerun(
    executions: &dyn Executions,
    machine: &str,
    list: &str,
    what: RerunOf,
    now: DateTime<Utc>,
) -> Result<Rerun, OperateError> {
    let latest = || async {
        recent_runs(executions, machine, Some(list), 1, 200)
            .await
            .map(|r| r.into_iter().next().and_then(|r| r.source))
    };
    let source = match what {
        RerunOf::Key {
            key,
            bucket: Some(bucket),
        } => SourceObject {
            bucket,
            key,
            version_id: None,
            list: list.to_string(),
        },
        RerunOf::Key { key, bucket: None } => {
            let Some(earlier) = latest().await? else {
                return Err(OperateError::Refused(format!(
                    "no earlier execution of list {list} names the bucket: give --bucket"
                )));
            };
            SourceObject {
                bucket: earlier.bucket,
                key,
                version_id: None,
                list: list.to_string(),
            }
        }
        RerunOf::Latest => latest().await?.ok_or_else(|| {
            OperateError::Refused(format!(
                "no earlier execution of list {list} among the state machine's last 200: give --key (and --bucket)"
            ))
        })?,
    };
    let input = run_input(&source);
    let execution = executions
        .start(machine, &rerun_name(list, now), &input.to_string())
        .await?;
    tracing::info!(list = %list, execution = %execution, key = %source.key, "re-run started");
    Ok(Rerun { execution, input })
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    /// The execution (a redrive keeps its ARN).
    pub execution: String,
    /// Its status before the redrive (`TIMED_OUT`, `ABORTED` or `FAILED`).
    pub was: ExecutionStatus,
    /// The run whose list's lease was taken back for it (none when it ended before normalize named a run).
    pub run: Option<RunRef>,
}

/// Redrive `execution_arn` from the state where it stopped, when that can resume the run safely:
///
/// - only an execution that ended `FAILED`, `TIMED_OUT` or `ABORTED` (Step Functions refuses the others);
/// - not one whose failure the recorder handled (a caught error: the run is recorded FAILED and its lease released,
///   and the execution ended in the `Fail` state, the state a redrive would run again): re-run its file instead;
/// - the list's lease is taken back for the execution first (the recorder of a timed-out or aborted execution
///   released it), so that the resumed run never runs beside another of the same list; a list another live
///   execution holds is refused, and the lease is given back when Step Functions refuses the redrive.
pub async fn redrive(
    executions: &dyn Executions,
    bucket_store: impl Fn(&str) -> Box<dyn ObjectStore>,
    execution_arn: &str,
    now: DateTime<Utc>,
) -> Result<Redriven, OperateError> {
    let execution = executions.describe(execution_arn).await?;
    if !execution.status.redrivable() {
        return Err(OperateError::Refused(format!(
            "execution {execution_arn} is {}: only a FAILED, TIMED_OUT or ABORTED execution can be redriven",
            execution.status
        )));
    }
    let outputs = executions.state_outputs(execution_arn).await?;
    if outputs.iter().any(|(state, _)| state == RECORDER_STATE) {
        return Err(OperateError::Refused(format!(
            "execution {execution_arn} failed through its failure recorder ({}): the run is recorded FAILED and \
             its lease released, and a redrive would only run the Fail state again; run the file again with \
             `dncctl rerun`",
            execution.error.as_deref().unwrap_or("no error name")
        )));
    }
    let run_id = outputs
        .iter()
        .rev()
        .filter(|(state, _)| state == NORMALIZE_STATE)
        .find_map(|(_, output)| run_id_in(output));
    let source = source_of(&execution);
    let run = match (run_id, &source) {
        (Some(run_id), Some(source)) => Some(RunRef {
            bucket: source.bucket.clone(),
            run_id,
            list: source.list.clone(),
        }),
        // Normalize never answered: the redriven execution takes the lease itself, as a new one would.
        (None, _) => None,
        (Some(_), None) => {
            return Err(OperateError::Refused(format!(
                "execution {execution_arn}'s input names no list: cannot take its list's lease back"
            )))
        }
    };
    let store = run.as_ref().map(|r| bucket_store(&r.bucket));
    // The list's status as it was, put back if Step Functions refuses the redrive (taking the lease says RUNNING).
    let mut status_before = None;
    if let (Some(run), Some(store)) = (&run, &store) {
        status_before = Some(
            store
                .get_bytes(&status_key(&run.list))
                .await
                .map_err(StepError::from)?,
        );
        let task = LeaseTask {
            run: run.clone(),
            execution: execution_arn.to_string(),
            started_at: None,
            wait_seconds: None,
        };
        let lease = acquire_lease(store.as_ref(), Some(executions), &task, now).await?;
        if !lease.acquired {
            return Err(OperateError::Refused(format!(
                "list {} is held by {}: redrive when it has ended (`dncctl runs --list {}`)",
                run.list,
                lease.held_by.as_deref().unwrap_or("another execution"),
                run.list
            )));
        }
    }
    if let Err(e) = executions.redrive(execution_arn).await {
        if let (Some(run), Some(store)) = (&run, &store) {
            release_lease(store.as_ref(), &run.list, execution_arn).await?;
            if let Some(Some(before)) = status_before {
                store
                    .put_bytes(&status_key(&run.list), before)
                    .await
                    .map_err(StepError::from)?;
            }
        }
        return Err(e.into());
    }
    tracing::warn!(execution = %execution_arn, was = %execution.status, "execution redriven");
    Ok(Redriven {
        execution: execution_arn.to_string(),
        was: execution.status,
        run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerun_names_fit_step_functions() {
        let now: DateTime<Utc> = "2026-12-06T11:30:05.123Z".parse().unwrap();
        assert_eq!(
            rerun_name("national", now),
            "rerun-national-20261206T113005123Z"
        );
        let long = rerun_name(&"x".repeat(200), now);
        assert_eq!(long.len(), 80);
        assert!(long.ends_with("-20261206T113005123Z"));
        assert_eq!(rerun_name("a b", now), "rerun-a_b-20261206T113005123Z");
    }

    #[test]
    fn the_run_id_is_read_from_normalizes_answer() {
        assert_eq!(
            run_id_in(r#"{"source":{},"run":{"runId":"r-1","list":"l","bucket":"b"}}"#).as_deref(),
            Some("r-1")
        );
        assert_eq!(run_id_in(r#"{"source":{}}"#), None);
        assert_eq!(run_id_in("not json"), None);
    }
}
