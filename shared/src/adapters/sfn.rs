//! Step Functions, behind [`Executions`]: what the lease step asks about the execution holding a list (has it
//! ended?), and what an operator does with a deployed stack's executions (list, start, redrive).
//!
//! The client is the AWS SDK's, from the default configuration (`AWS_ENDPOINT_URL_SFN` or `AWS_ENDPOINT_URL` point it
//! at an emulator; tests pass the URL). Its calls retry as every AWS call of the crate does: the SDK's standard
//! retry mode (three attempts, throttling and 5xx retried with backoff). Each attempt is bounded in time, so the
//! lease function (60 s) can never hang on Step Functions: an answer that does not come is an error, and the lease
//! step then keeps the expiry rule.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use super::store::sdk_error_summary;

/// The status of an execution, as Step Functions names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    /// Still running.
    Running,
    /// Ended: succeeded (its output is the run's outcome).
    Succeeded,
    /// Ended: failed (a `Fail` state, or an error no `Catch` handled).
    Failed,
    /// Ended: the state machine's `TimeoutSeconds` passed.
    TimedOut,
    /// Ended: stopped (StopExecution, the console's Stop).
    Aborted,
    /// A redrive was asked for and has not started yet: about to run again, so not ended.
    PendingRedrive,
    /// A status this client does not know (a newer API): treated as not ended.
    Other(String),
}

impl ExecutionStatus {
    /// The API's name of the status.
    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
            ExecutionStatus::PendingRedrive => "PENDING_REDRIVE",
            ExecutionStatus::Other(s) => s,
        }
    }

    /// From the API's name.
    pub fn parse(s: &str) -> ExecutionStatus {
        match s {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            "PENDING_REDRIVE" => ExecutionStatus::PendingRedrive,
            other => ExecutionStatus::Other(other.to_string()),
        }
    }

    /// Whether the execution has ended and will run no further state unless redriven. Only the four final statuses
    /// count: a status this client does not know is taken as live (a lease is never taken from a run that may be
    /// running).
    pub fn has_ended(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded
                | ExecutionStatus::Failed
                | ExecutionStatus::TimedOut
                | ExecutionStatus::Aborted
        )
    }

    /// Whether Step Functions can redrive an execution of this status (it refuses RUNNING and SUCCEEDED ones).
    pub fn redrivable(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted
        )
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One execution, as DescribeExecution or ListExecutions answer it (ListExecutions gives no input, error or cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Its ARN (`arn:aws:states:…:execution:<machine>:<name>`).
    pub arn: String,
    /// Its name (the last part of the ARN).
    pub name: String,
    /// Its status: running, or how it ended.
    pub status: ExecutionStatus,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (none while it runs).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Its input (JSON text), when described.
    pub input: Option<String>,
    /// Its output (JSON text), when it succeeded and was described.
    pub output: Option<String>,
    /// The error it failed with, when described.
    pub error: Option<String>,
    /// The cause of that error, when described.
    pub cause: Option<String>,
    /// How many times it was redriven.
    pub redrive_count: i32,
}

/// A Step Functions call that did not succeed.
#[derive(Debug, Error)]
pub enum SfnError {
    /// No such execution or state machine (or it belongs to another account or region).
    #[error("{action}: {what} does not exist ({reason})")]
    NotFound {
        /// The API action (`states:DescribeExecution`).
        action: &'static str,
        /// The ARN or name asked about.
        what: String,
        /// What Step Functions said.
        reason: String,
    },
    /// The caller's IAM policy does not allow the action: a deployment error, retrying cannot help.
    #[error(
        "access denied: {action} on {what} is not allowed by this caller's IAM policy ({reason})"
    )]
    Denied {
        /// The API action refused.
        action: &'static str,
        /// The ARN asked about.
        what: String,
        /// What Step Functions said.
        reason: String,
    },
    /// Step Functions refused the request (not redrivable, an execution of that name exists, a bad ARN).
    #[error("{action} on {what} refused: {reason}")]
    Refused {
        /// The IAM action of the call refused (`states:StartExecution`, `states:RedriveExecution`, …).
        action: &'static str,
        /// The ARN asked about.
        what: String,
        /// The service's code and message.
        reason: String,
    },
    /// Step Functions could not be reached or failed (after the SDK's retries).
    #[error("{action} on {what} failed: {reason}")]
    Unavailable {
        /// The IAM action of the call that failed (`states:ListExecutions`, …): the permission an operator needs.
        action: &'static str,
        /// The ARN asked about.
        what: String,
        /// The SDK's error, as text.
        reason: String,
    },
}

/// What dncflow asks of Step Functions.
#[async_trait]
pub trait Executions: Send + Sync {
    /// One execution, with its input, output, error and cause.
    async fn describe(&self, execution_arn: &str) -> Result<Execution, SfnError>;
    /// The most recent executions of a state machine, newest first, at most `max` (no input: describe each for it).
    async fn list(&self, state_machine_arn: &str, max: usize) -> Result<Vec<Execution>, SfnError>;
    /// Start an execution named `name` with `input` (JSON text); its ARN.
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, SfnError>;
    /// Redrive an execution that failed, timed out or was aborted, from the state where it stopped.
    async fn redrive(&self, execution_arn: &str) -> Result<(), SfnError>;
    /// The output of every state the execution left (`StateExited` events of its history, oldest first): (state
    /// name, output JSON text).
    async fn state_outputs(&self, execution_arn: &str) -> Result<Vec<(String, String)>, SfnError>;
    /// The ARN of the state machine named `name` in this account and region, if there is one.
    async fn state_machine_named(&self, name: &str) -> Result<Option<String>, SfnError>;
}

/// [`Executions`] over the AWS SDK.
#[derive(Clone)]
pub struct SfnClient {
    client: aws_sdk_sfn::Client,
}

/// How long one attempt of a call may take, and the call with its retries: a lease decision cannot wait longer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

impl SfnClient {
    /// A client from the default AWS configuration (which honours `AWS_ENDPOINT_URL_SFN`); `endpoint_url` overrides
    /// it (an emulator).
    pub async fn from_env(endpoint_url: Option<&str>) -> SfnClient {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        let mut builder = aws_sdk_sfn::config::Builder::from(&config);
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        SfnClient {
            client: aws_sdk_sfn::Client::from_conf(builder.build()),
        }
    }

    /// A client over an SDK client configured by the caller.
    pub fn new(client: aws_sdk_sfn::Client) -> SfnClient {
        SfnClient { client }
    }
}

fn time(t: &aws_sdk_sfn::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// The error of a call: denied, not found and refused told apart from "could not ask".
fn sfn_error<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    action: &'static str,
    what: &str,
) -> SfnError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sfn::error::ProvideErrorMetadata;
    let reason = sdk_error_summary(e);
    let what = what.to_string();
    match e.code() {
        Some("AccessDeniedException" | "AccessDenied") => SfnError::Denied {
            action,
            what,
            reason,
        },
        Some("ExecutionDoesNotExist" | "StateMachineDoesNotExist" | "ResourceNotFound") => {
            SfnError::NotFound {
                action,
                what,
                reason,
            }
        }
        Some(
            "ExecutionNotRedrivable"
            | "ExecutionAlreadyExists"
            | "ExecutionLimitExceeded"
            | "InvalidArn"
            | "InvalidName"
            | "InvalidExecutionInput"
            | "ValidationException"
            | "StateMachineDeleting",
        ) => SfnError::Refused {
            action,
            what,
            reason,
        },
        _ => SfnError::Unavailable {
            action,
            what,
            reason,
        },
    }
}

#[async_trait]
impl Executions for SfnClient {
    async fn describe(&self, execution_arn: &str) -> Result<Execution, SfnError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sfn_error(&e, "states:DescribeExecution", execution_arn))?;
        Ok(Execution {
            arn: out.execution_arn().to_string(),
            name: out.name().unwrap_or_default().to_string(),
            status: ExecutionStatus::parse(out.status().as_str()),
            started_at: time(out.start_date()),
            stopped_at: out.stop_date().and_then(time),
            input: out.input().map(str::to_string),
            output: out.output().map(str::to_string),
            error: out.error().map(str::to_string),
            cause: out.cause().map(str::to_string),
            redrive_count: out.redrive_count().unwrap_or(0),
        })
    }

    async fn list(&self, state_machine_arn: &str, max: usize) -> Result<Vec<Execution>, SfnError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        while found.len() < max {
            let page = self
                .client
                .list_executions()
                .state_machine_arn(state_machine_arn)
                .max_results((max - found.len()).min(1000) as i32)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sfn_error(&e, "states:ListExecutions", state_machine_arn))?;
            for item in page.executions() {
                found.push(Execution {
                    arn: item.execution_arn().to_string(),
                    name: item.name().to_string(),
                    status: ExecutionStatus::parse(item.status().as_str()),
                    started_at: time(item.start_date()),
                    stopped_at: item.stop_date().and_then(time),
                    input: None,
                    output: None,
                    error: None,
                    cause: None,
                    redrive_count: item.redrive_count().unwrap_or(0),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && !page.executions().is_empty() => {
                    token = Some(t.to_string())
                }
                _ => break,
            }
        }
        // Newest first, whatever order the service pages in.
        found.sort_by_key(|e| std::cmp::Reverse(e.started_at));
        found.truncate(max);
        Ok(found)
    }

    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, SfnError> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| sfn_error(&e, "states:StartExecution", state_machine_arn))?;
        Ok(out.execution_arn().to_string())
    }

    async fn redrive(&self, execution_arn: &str) -> Result<(), SfnError> {
        self.client
            .redrive_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sfn_error(&e, "states:RedriveExecution", execution_arn))?;
        Ok(())
    }

    async fn state_outputs(&self, execution_arn: &str) -> Result<Vec<(String, String)>, SfnError> {
        let mut outputs = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sfn_error(&e, "states:GetExecutionHistory", execution_arn))?;
            for event in page.events() {
                if let Some(exited) = event.state_exited_event_details() {
                    outputs.push((
                        exited.name().to_string(),
                        exited.output().unwrap_or_default().to_string(),
                    ));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && !page.events().is_empty() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(outputs),
            }
        }
    }

    async fn state_machine_named(&self, name: &str) -> Result<Option<String>, SfnError> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_state_machines()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sfn_error(&e, "states:ListStateMachines", name))?;
            if let Some(m) = page.state_machines().iter().find(|m| m.name() == name) {
                return Ok(Some(m.state_machine_arn().to_string()));
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && !page.state_machines().is_empty() => {
                    token = Some(t.to_string())
                }
                _ => return Ok(None),
            }
        }
    }
}

/// Whether `holder` names a Step Functions execution (`arn:<partition>:states:<region>:<account>:execution:…`), as
/// opposed to a local run (`local:…`) or anything else, which Step Functions cannot be asked about.
pub fn is_execution_arn(holder: &str) -> bool {
    let parts: Vec<&str> = holder.splitn(7, ':').collect();
    parts.len() == 7
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "execution"
        && !parts[6].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_final_statuses_have_ended() {
        for (s, ended) in [
            ("RUNNING", false),
            ("PENDING_REDRIVE", false),
            ("SOMETHING_NEW", false),
            ("SUCCEEDED", true),
            ("FAILED", true),
            ("TIMED_OUT", true),
            ("ABORTED", true),
        ] {
            let status = ExecutionStatus::parse(s);
            assert_eq!(status.has_ended(), ended, "{s}");
            assert_eq!(status.as_str(), s);
        }
        assert!(!ExecutionStatus::Succeeded.redrivable());
        assert!(ExecutionStatus::Aborted.redrivable());
    }

    #[test]
    fn execution_arns_are_told_from_local_holders() {
        assert!(is_execution_arn(
            "arn:aws:states:us-east-1:123456789012:execution:dncflow-dncflow:nightly-1"
        ));
        assert!(is_execution_arn(
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:sm:a:b"
        ));
        assert!(!is_execution_arn("local:r1:2026-12-02T04:30:00Z"));
        assert!(!is_execution_arn(
            "arn:aws:states:us-east-1:123456789012:stateMachine:dncflow-dncflow"
        ));
        assert!(!is_execution_arn("exec-a"));
        assert!(!is_execution_arn(
            "arn:aws:states:us-east-1:123456789012:execution:"
        ));
    }
}
