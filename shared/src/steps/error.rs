//! The one error a step hands to its caller (the Lambda runtime, the local driver): a [`ErrorKind`] that Step
//! Functions matches, a message for people, and the error that caused it (its source chain is kept, not flattened
//! into text, so a caller can still ask what failed).

use std::error::Error as StdError;

use crate::adapters::cxone::CxoneError;
use crate::adapters::eventbridge::NotifyError;
use crate::adapters::store::StoreError;
use crate::registry::RegistryError;
use crate::run::ShardLineError;

/// Failures of a step's logic over the CXone boundary (preflight, upload, canary, read-back); a step turns one
/// into a [`StepError`] of the matching kind, keeping it as the source.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The target list does not exist.
    #[error("DNC list {list} does not exist")]
    ListNotFound {
        /// List id or name.
        list: String,
    },
    /// The target list is inactive.
    #[error("DNC list {list} is not active: entries would not suppress anything")]
    ListInactive {
        /// The list's CXone id.
        list: String,
    },
    /// Nothing binds the list to outbound traffic (v2: no active outbound BLOCK rule names it; admin: no active
    /// outbound skill scrubs the group).
    #[error("DNC list {list} is {why}: suppression would not apply")]
    NotSuppressing {
        /// The list's CXone id.
        list: String,
        /// What is missing: no active outbound BLOCK rule naming it (v2), no active outbound skill scrubbing it
        /// (admin).
        why: String,
    },
    /// A CXone call failed (its error kept as the source).
    #[error(transparent)]
    Cxone(#[from] CxoneError),
    /// A run file is unreadable.
    #[error("{what}: {reason}")]
    Data {
        /// Which file or record.
        what: String,
        /// What is wrong with it (missing, truncated, not the expected shape).
        reason: String,
    },
}

/// What kind of failure a step met: the name a `Retry` or `Catch` of `infra/statemachine.asl.json` matches
/// (`errorType` of the Lambda error), and what the local driver retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input cannot be processed as it is: retrying will not help.
    InvalidInput,
    /// A dependency failed: retrying may help.
    Transient,
    /// A bug or a broken environment.
    Fatal,
    /// Writing would not suppress anything: the list is missing, inactive, or bound to no outbound traffic.
    NotSuppressing,
    /// CXone failed repeatedly with 5xx and the client's circuit breaker opened: stop, do not hammer it.
    CircuitOpen,
    /// The canary never came back suppressed within the allowed probes.
    NotPropagated,
    /// The run holds more entries than a CXone environment can: nothing is written.
    CapacityExceeded,
}

impl ErrorKind {
    /// Every kind a step can produce.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::InvalidInput,
        ErrorKind::Transient,
        ErrorKind::Fatal,
        ErrorKind::NotSuppressing,
        ErrorKind::CircuitOpen,
        ErrorKind::NotPropagated,
        ErrorKind::CapacityExceeded,
    ];

    /// The stable name (`errorType`), as the state machine spells it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInput",
            ErrorKind::Transient => "Transient",
            ErrorKind::Fatal => "Fatal",
            ErrorKind::NotSuppressing => "NotSuppressing",
            ErrorKind::CircuitOpen => "CircuitOpen",
            ErrorKind::NotPropagated => "NotPropagated",
            ErrorKind::CapacityExceeded => "CapacityExceeded",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A step's failure: its kind, what went wrong, and (when another error caused it) that error as its source.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl StepError {
    /// A failure of `kind` described by `message`, caused by nothing further.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A failure of `kind` caused by `source`, described by the source's own message.
    pub fn caused_by(kind: ErrorKind, source: impl StdError + Send + Sync + 'static) -> Self {
        StepError {
            kind,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The same failure, caused by `source` (kept as the error's source).
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable name Step Functions matches.
    pub fn error_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The message and every cause below it, joined with `: `; a cause whose text the message already carries
    /// (most of ours quote their source) is not repeated.
    pub fn report(&self) -> String {
        let mut text = self.message.clone();
        let mut cause = self
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static));
        while let Some(e) = cause {
            let line = e.to_string();
            if !text.contains(&line) {
                text.push_str(": ");
                text.push_str(&line);
            }
            cause = e.source();
        }
        text
    }
}

impl From<PipelineError> for StepError {
    /// The kind Step Functions matches, from what failed: a breaker that opened, a failure worth retrying, a list
    /// that would not suppress, unreadable run data; anything else is fatal.
    fn from(e: PipelineError) -> Self {
        let kind = match &e {
            PipelineError::Cxone(CxoneError::CircuitOpen { .. }) => ErrorKind::CircuitOpen,
            PipelineError::Cxone(c) if c.is_transient() => ErrorKind::Transient,
            PipelineError::ListNotFound { .. }
            | PipelineError::ListInactive { .. }
            | PipelineError::NotSuppressing { .. } => ErrorKind::NotSuppressing,
            PipelineError::Data { .. } => ErrorKind::InvalidInput,
            PipelineError::Cxone(_) => ErrorKind::Fatal,
        };
        StepError::caused_by(kind, e)
    }
}

impl From<ShardLineError> for PipelineError {
    fn from(e: ShardLineError) -> Self {
        PipelineError::Data {
            what: e.what,
            reason: e.reason,
        }
    }
}

impl From<ShardLineError> for StepError {
    fn from(e: ShardLineError) -> Self {
        StepError::from(PipelineError::from(e))
    }
}

impl From<NotifyError> for StepError {
    fn from(e: NotifyError) -> Self {
        let kind = match e {
            NotifyError::Serialize(_) => ErrorKind::Fatal,
            NotifyError::Publish { .. } | NotifyError::Refused { .. } => ErrorKind::Transient,
        };
        StepError::caused_by(kind, e)
    }
}

impl From<RegistryError> for StepError {
    /// A registry failure as the registry function's error: the detailed name ([`RegistryError::kind`]) leads the
    /// message, the kind says what a caller may do (retry a store failure or a lost race; fix the input).
    fn from(e: RegistryError) -> Self {
        let kind = match &e {
            RegistryError::Store(StoreError::Denied { .. }) | RegistryError::Index { .. } => {
                ErrorKind::Fatal
            }
            // A concurrent import or apply swapped first: running again reads the new live version.
            RegistryError::Store(_) | RegistryError::Conflict(_) => ErrorKind::Transient,
            RegistryError::BadName(_)
            | RegistryError::NotFound(_)
            | RegistryError::Input { .. }
            | RegistryError::FutureDated { .. }
            | RegistryError::BadOption { .. }
            | RegistryError::Incomplete { .. }
            | RegistryError::Regresses { .. }
            | RegistryError::Shrinks { .. }
            | RegistryError::Document { .. } => ErrorKind::InvalidInput,
        };
        StepError {
            kind,
            message: format!("{}: {e}", e.kind()),
            source: Some(Box::new(e)),
        }
    }
}

impl From<CxoneError> for StepError {
    fn from(e: CxoneError) -> Self {
        StepError::from(PipelineError::from(e))
    }
}

impl From<crate::run::ReceivedError> for StepError {
    fn from(e: crate::run::ReceivedError) -> Self {
        use crate::run::ReceivedError;
        match e {
            ReceivedError::Store(s) => StepError::from(s),
            // Left as it is for an operator to repair: running again cannot help.
            ReceivedError::Unreadable { .. } => StepError::caused_by(ErrorKind::Fatal, e),
            ReceivedError::Contended(_) => StepError::caused_by(ErrorKind::Transient, e),
            ReceivedError::Shard(_) => StepError::caused_by(ErrorKind::Fatal, e),
        }
    }
}

impl From<crate::run::DocumentError> for StepError {
    /// A run's or a list's document: a store failure as the store's, an unreadable or missing document fatal (it is
    /// left for an operator to repair: running again cannot help), a refused request invalid input.
    fn from(e: crate::run::DocumentError) -> Self {
        use crate::run::DocumentError;
        match e {
            DocumentError::Store(s) => StepError::from(s),
            DocumentError::Received(r) => StepError::from(r),
            DocumentError::Shard(s) => StepError::from(s),
            DocumentError::Refused(message) => StepError::new(ErrorKind::InvalidInput, message),
            DocumentError::Unreadable { message, source } => StepError {
                kind: ErrorKind::Fatal,
                message,
                source,
            },
        }
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        // A policy that lacks a permission stays that way: retrying would only delay the FAILED status.
        let kind = match e {
            StoreError::Denied { .. } => ErrorKind::Fatal,
            _ => ErrorKind::Transient,
        };
        StepError::caused_by(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_chain_survives_and_the_report_names_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e =
            StepError::new(ErrorKind::Transient, "runs/r/manifest.json unreadable").with_source(io);
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.to_string(), "runs/r/manifest.json unreadable");
        let cause = StdError::source(&e).expect("the cause is kept");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().unwrap().kind(),
            std::io::ErrorKind::ConnectionReset
        );
        assert_eq!(e.report(), "runs/r/manifest.json unreadable: reset by peer");
        // A cause the message already quotes is not repeated.
        let quoted = StepError::caused_by(ErrorKind::Fatal, std::io::Error::other("disk full"));
        assert_eq!(quoted.report(), "disk full");
    }

    #[test]
    fn pipeline_failures_become_the_kinds_the_state_machine_matches() {
        let kind = |e: PipelineError| StepError::from(e).error_name();
        let not_suppressing = PipelineError::NotSuppressing {
            list: "l".into(),
            why: "x".into(),
        };
        assert_eq!(kind(not_suppressing), "NotSuppressing");
        assert_eq!(
            kind(PipelineError::ListNotFound { list: "l".into() }),
            "NotSuppressing"
        );
        let open = CxoneError::CircuitOpen {
            op: "x",
            failures: 5,
        };
        assert_eq!(kind(open.into()), "CircuitOpen");
        let exhausted = CxoneError::Exhausted {
            op: "x",
            attempts: 3,
            last: String::new(),
        };
        assert_eq!(kind(exhausted.into()), "Transient");
        let throttled = CxoneError::Api {
            op: "x",
            status: 429,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(kind(throttled.into()), "Transient");
        let refused = CxoneError::Unauthorized {
            op: "x",
            code: String::new(),
        };
        assert_eq!(kind(refused.into()), "Fatal");
        let bad = CxoneError::Api {
            op: "x",
            status: 400,
            code: String::new(),
            message: String::new(),
        };
        assert_eq!(kind(bad.into()), "Fatal");
        let data = PipelineError::Data {
            what: "shard".into(),
            reason: "line 3".into(),
        };
        assert_eq!(kind(data), "InvalidInput");
    }

    #[test]
    fn a_cxone_failure_keeps_the_cxone_error_as_its_source() {
        let e = StepError::from(CxoneError::CircuitOpen {
            op: "upload",
            failures: 5,
        });
        assert_eq!(e.kind(), ErrorKind::CircuitOpen);
        let pipeline = StdError::source(&e)
            .and_then(|s| s.downcast_ref::<PipelineError>())
            .expect("the pipeline error is the source");
        assert!(matches!(
            pipeline,
            PipelineError::Cxone(CxoneError::CircuitOpen { .. })
        ));
    }

    /// The rule of `rules` (a state's `Retry` or `Catch`) that an error named `name` meets first, as Step Functions
    /// picks it: the first whose `ErrorEquals` names it or is `States.ALL`.
    fn first_match<'a>(rules: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        rules.as_array().into_iter().flatten().find(|rule| {
            rule["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == name || e == "States.ALL")
        })
    }

    /// The state machine and the code agree on error names, both ways: every name a `Retry` or `Catch` matches
    /// (besides Step Functions' own `States.*` and `Lambda.*`) is a kind the code produces; and every kind the code
    /// produces, raised by any step's Task, is retried if and only if it is `Transient`, then caught into the failure
    /// recorder (a Task inside the Map fails the Map, whose own `Catch` does it), so no kind ends an execution
    /// without a status and none is retried in vain.
    #[test]
    fn the_state_machine_and_the_error_kinds_agree_both_ways() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../../infra/statemachine.asl.json")).unwrap();
        // (task name, task, the state whose Catch handles its failure)
        let mut tasks: Vec<(&str, &serde_json::Value, &serde_json::Value)> = Vec::new();
        let mut named = std::collections::BTreeSet::new();
        let top = definition["States"].as_object().unwrap();
        for (name, state) in top {
            let mut visit = |s: &serde_json::Value| {
                for key in ["Retry", "Catch"] {
                    for rule in s[key].as_array().into_iter().flatten() {
                        for e in rule["ErrorEquals"].as_array().unwrap() {
                            named.insert(e.as_str().unwrap().to_string());
                        }
                    }
                }
            };
            visit(state);
            if state["Type"] == "Task" {
                tasks.push((name.as_str(), state, state));
            }
            if let Some(inner) = state.get("ItemProcessor") {
                for (inner_name, inner_state) in inner["States"].as_object().unwrap() {
                    visit(inner_state);
                    if inner_state["Type"] == "Task" {
                        tasks.push((inner_name.as_str(), inner_state, state));
                    }
                }
            }
        }
        for name in &named {
            assert!(
                name.starts_with("States.")
                    || name.starts_with("Lambda.")
                    || ErrorKind::ALL.iter().any(|k| k.name() == name),
                "the definition matches {name}, which is no kind the code produces"
            );
        }
        let steps: Vec<_> = tasks
            .iter()
            .filter(|(name, _, _)| *name != "RecordFailure")
            .collect();
        assert!(steps.len() >= 5, "the definition's step Tasks: {steps:?}");
        for kind in ErrorKind::ALL {
            for (name, task, catcher) in &steps {
                let retried = first_match(&task["Retry"], kind.name())
                    .is_some_and(|rule| rule["MaxAttempts"].as_u64().unwrap_or(3) > 0);
                assert_eq!(
                    retried,
                    kind == ErrorKind::Transient,
                    "Task {name}: {kind} retried = {retried}"
                );
                let caught = first_match(&catcher["Catch"], kind.name())
                    .unwrap_or_else(|| panic!("Task {name}: {kind} is caught by nothing"));
                assert_eq!(
                    caught["Next"], "RecordFailure",
                    "Task {name}: {kind} must reach the failure recorder"
                );
            }
        }
    }

    /// The registry import state machine matches only kinds too, and retries `Transient` in each of its Tasks; a
    /// registry failure maps to the kind a caller can act on, its own name leading the message.
    #[test]
    fn the_registry_import_matches_kinds_and_registry_errors_have_them() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../../infra/registry-import.asl.json")).unwrap();
        let mut tasks = 0;
        let mut states = vec![&definition["States"]];
        while let Some(level) = states.pop() {
            for (name, state) in level.as_object().unwrap() {
                for key in ["Retry", "Catch"] {
                    for rule in state[key].as_array().into_iter().flatten() {
                        for e in rule["ErrorEquals"].as_array().unwrap() {
                            let e = e.as_str().unwrap();
                            assert!(
                                e.starts_with("States.")
                                    || e.starts_with("Lambda.")
                                    || ErrorKind::ALL.iter().any(|k| k.name() == e),
                                "{name} matches {e}, which is no kind the code produces"
                            );
                        }
                    }
                }
                if state["Type"] == "Task" {
                    tasks += 1;
                    assert!(
                        first_match(&state["Retry"], "Transient").is_some(),
                        "Task {name} does not retry Transient"
                    );
                }
                if let Some(inner) = state.get("ItemProcessor") {
                    states.push(&inner["States"]);
                }
            }
        }
        assert!(tasks >= 3, "the import's Tasks");
        let conflict = StepError::from(RegistryError::Conflict("national".into()));
        assert_eq!(conflict.kind(), ErrorKind::Transient);
        assert!(
            conflict.to_string().starts_with("RegistryConflict: "),
            "{conflict}"
        );
        let bad_name = StepError::from(RegistryError::BadName("Bad Name".into()));
        assert_eq!(bad_name.kind(), ErrorKind::InvalidInput);
        assert!(StdError::source(&bad_name)
            .and_then(|s| s.downcast_ref::<RegistryError>())
            .is_some());
    }
}
