//! The registry step: what a drop under `incoming-registry/<name>/` or a direct invocation asks of the registry
//! function (apply a change list, import a batch, a part of the import state machine), and running it over the
//! suppression index (`crate::registry`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::adapters::store::ObjectStore;
use crate::registry::*;

/// What the registry Lambda is asked to do: a direct invocation, or derived from an S3 "Object Created" event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase", tag = "action")]
pub enum RegistryTask {
    /// Build a new version from full downloads: the objects `keys`, or every object under `prefix` but the
    /// `_import.json` marker.
    #[serde(rename = "import")]
    Import {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The object keys of the dropped files, in the order they arrived.
        #[serde(default)]
        keys: Vec<String>,
        /// Every object under this prefix but the `_import.json` marker, instead of `keys`.
        #[serde(default)]
        prefix: Option<String>,
        /// The date the full download is current as of (the new version's as-of starts there).
        as_of: NaiveDate,
        /// Days after `as_of` the registry may be used (default 31); past them `check` answers `error` for what it
        /// covers.
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less, lacks declared area codes, or is older.
        #[serde(default)]
        force: bool,
        /// `national` or a state (`US-TX`); default: the live version's, else national.
        #[serde(default)]
        scope: Option<String>,
        /// A national subscription's area codes (default: every US area code of the numbering table).
        #[serde(default)]
        area_codes: Option<Vec<String>>,
    },
    /// The first step of the fanned-out import (the registry import state machine): the plan every part follows,
    /// from the `_import.json` marker's drop event, or given.
    #[serde(rename = "begin")]
    Begin {
        /// The marker's S3 "Object Created" event.
        #[serde(default)]
        event: Option<serde_json::Value>,
        /// The registry's name, when no event is given (an import started by hand).
        #[serde(default)]
        registry: Option<String>,
        /// The batch's prefix (`incoming-registry/<name>/full/<batch>/`), when no event is given.
        #[serde(default)]
        prefix: Option<String>,
        /// The date the batch is current as of, when no event is given (else the marker's).
        #[serde(default)]
        as_of: Option<NaiveDate>,
        /// Days after `as_of` the registry may be used (default 31), when no event is given (else the marker's).
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less, lacks declared area codes, or is older.
        #[serde(default)]
        force: bool,
        /// `national` or a state (`US-TX`); default: the live version's, else national.
        #[serde(default)]
        scope: Option<String>,
        /// A national subscription's area codes (default: every US area code of the numbering table).
        #[serde(default)]
        area_codes: Option<Vec<String>>,
    },
    /// One file of the batch (a Distributed Map child).
    #[serde(rename = "importPart")]
    ImportPart {
        /// The plan `begin` made: the bucket, the registry, the version being built, the batch and its dates.
        plan: fanout::ImportPlan,
        /// The object key of this part's file.
        key: String,
    },
    /// The last step: the parts merged into the version, made live.
    #[serde(rename = "assemble")]
    Assemble {
        /// The plan `begin` made; every part has written its index files under its version.
        plan: fanout::ImportPlan,
    },
    /// Apply change lists (the FTC's daily additions and deletions) to the live version, making a new one.
    #[serde(rename = "apply")]
    Apply {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The object keys of the dropped files, in the order they arrived.
        keys: Vec<String>,
        /// The date the lists are current as of (default: each list's latest change).
        #[serde(default)]
        as_of: Option<NaiveDate>,
    },
    /// The import state machine's catch: an import failed (a step's error, a timeout); recorded in the registry's
    /// status so `registry status` says so until an import succeeds.
    #[serde(rename = "importFailed")]
    ImportFailed {
        /// The execution's input (the marker's event, or the console's `{registry, prefix, …}`).
        input: serde_json::Value,
        /// The caught error (`{"Error", "Cause"}`).
        error: serde_json::Value,
    },
}

/// The registry import state machine's input when started from the console.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsoleImport {
    registry: String,
    prefix: String,
    as_of: NaiveDate,
    #[serde(default = "default_max_age")]
    max_age_days: u32,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    area_codes: Option<Vec<String>>,
}

/// What a dropped object under `incoming-registry/<name>/` asks of the registry function: `changes/<file>` is
/// applied; anything else asks nothing of it (an area-code file of a batch; the batch's `_import.json` marker starts
/// the registry import state machine instead).
pub fn task_for_key(key: &str) -> Result<Option<RegistryTask>, RegistryError> {
    if key.ends_with(&format!("/{IMPORT_MARKER}")) {
        return Ok(None);
    }
    Ok(match task_for_drop(key, None)? {
        Some(task @ RegistryTask::Apply { .. }) => Some(task),
        _ => None,
    })
}

/// What a dropped object asks for: `changes/<file>` is applied; `full/<batch>/_import.json` imports every other
/// object of `full/<batch>/` (`marker` is its content); any other object asks for nothing.
pub fn task_for_drop(
    key: &str,
    marker: Option<&[u8]>,
) -> Result<Option<RegistryTask>, RegistryError> {
    let Some(rest) = key.strip_prefix(crate::run::REGISTRY_INCOMING) else {
        return Ok(None);
    };
    let Some((registry, path)) = rest.split_once('/') else {
        return Ok(None);
    };
    check_name(registry)?;
    if path.starts_with("changes/") && path.len() > "changes/".len() {
        return Ok(Some(RegistryTask::Apply {
            registry: registry.to_string(),
            keys: vec![key.to_string()],
            as_of: None,
        }));
    }
    if path.starts_with("full/") && key.ends_with(&format!("/{IMPORT_MARKER}")) {
        let marker: ImportMarker =
            serde_json::from_slice(marker.unwrap_or_default()).map_err(|e| {
                RegistryError::Document {
                    key: key.to_string(),
                    reason: format!("not an import marker ({{\"asOf\":\"YYYY-MM-DD\"}}): {e}"),
                }
            })?;
        return Ok(Some(RegistryTask::Import {
            registry: registry.to_string(),
            keys: Vec::new(),
            prefix: Some(key[..key.len() - IMPORT_MARKER.len()].to_string()),
            as_of: marker.as_of,
            max_age_days: marker.max_age_days,
            force: marker.force,
            scope: marker.scope,
            area_codes: marker.area_codes,
        }));
    }
    Ok(None)
}

/// Handle one invocation of the registry function: an S3 "Object Created" event (a change list dropped under
/// `changes/` is applied; any other object is acknowledged, `{"ignored": key}`) or a task given directly.
pub async fn handle_event(
    store: &dyn ObjectStore,
    bucket: &str,
    payload: serde_json::Value,
) -> Result<serde_json::Value, RegistryError> {
    let source = payload.get("source").and_then(serde_json::Value::as_str);
    let task: RegistryTask = if source == Some("aws.states") {
        // The registry import state machine timed out or was aborted: its catch never ran, so its status-change
        // event records the failure instead.
        let detail = payload.get("detail").cloned().unwrap_or_default();
        let input: serde_json::Value = detail
            .get("input")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let status = detail
            .get("status")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("UNKNOWN");
        let execution = detail
            .get("executionArn")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let machine = detail
            .get("stateMachineArn")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        // The FTC download workflow's input is `{registry, mode}`: its end without its catch (the 26-hour timeout,
        // an abort) is recorded as the registry's download failure, which its status shows and alarms on.
        if machine.ends_with("-registry-download") || input.get("mode").is_some() {
            let registry = input
                .get("registry")
                .and_then(serde_json::Value::as_str)
                .unwrap_or(NATIONAL)
                .to_string();
            let failure = DownloadFailure {
                at: chrono::Utc::now(),
                error: format!("Execution.{status}"),
                cause: format!(
                    "the download execution {execution} ended {status} without reaching its catch (a change list \
                     pending past the execution's timeout, or an abort)"
                ),
            };
            tracing::error!(registry = %registry, error = %failure.error, "FTC download ended without its catch: recorded in the registry's status");
            watch::record_download_failure(store, &registry, &failure).await?;
            return Ok(serde_json::to_value(&failure).expect("serializes"));
        }
        RegistryTask::ImportFailed {
            input,
            error: serde_json::json!({
                "Error": format!("States.{status}"),
                "Cause": format!("the import execution {execution} ended {status} without reaching its catch"),
            }),
        }
    } else if source == Some("aws.s3") {
        let key = payload
            .pointer("/detail/object/key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        match task_for_key(&key)? {
            Some(task) => task,
            None => return Ok(serde_json::json!({ "ignored": key })),
        }
    } else {
        serde_json::from_value(payload).map_err(|e| RegistryError::Input {
            path: "event".into(),
            reason: format!("not a registry task: {e}"),
        })?
    };
    tracing::info!(?task, "registry task");
    let answer = run_task(store, bucket, &task).await?;
    tracing::info!(version = %answer["version"], total = %answer["status"]["total"], "registry task done");
    Ok(answer)
}

/// Run `task` against the bucket `store` (named `bucket`): inputs are read from it one object at a time, the index
/// written to it. The answer: a [`VersionReport`], or for the fanned-out import's steps an
/// [`fanout::ImportPlan`] / [`fanout::PartSummary`].
pub async fn run_task(
    store: &dyn ObjectStore,
    bucket: &str,
    task: &RegistryTask,
) -> Result<serde_json::Value, RegistryError> {
    fn json<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).expect("answers serialize")
    }
    match task {
        RegistryTask::Begin {
            event,
            registry,
            prefix,
            as_of,
            max_age_days,
            force,
            scope,
            area_codes,
        } => {
            let (registry, request) = match (registry, prefix, as_of, event) {
                (Some(registry), Some(prefix), Some(as_of), _) => (
                    registry.clone(),
                    fanout::PlanRequest {
                        prefix: prefix.clone(),
                        as_of: *as_of,
                        max_age_days: *max_age_days,
                        force: *force,
                        scope: scope.clone(),
                        area_codes: area_codes.clone(),
                    },
                ),
                (_, _, _, Some(event)) => import_of_input(store, event).await?,
                _ => {
                    return Err(RegistryError::Input {
                        path: "event".into(),
                        reason: "begin needs the marker's event, or registry, prefix and asOf"
                            .into(),
                    })
                }
            };
            Ok(json(&fanout::plan(bucket, &registry, request)?))
        }
        RegistryTask::ImportFailed { input, error } => {
            let (registry, prefix) = registry_of_input(input);
            let Some(registry) = registry else {
                tracing::error!(%error, "an import failed and its registry cannot be told from its input");
                return Err(RegistryError::Input {
                    path: "execution input".into(),
                    reason: "names no registry: the failure cannot be recorded".into(),
                });
            };
            let text = |k: &str| {
                error
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let failure = ImportFailure {
                at: chrono::Utc::now(),
                prefix,
                error: text("Error"),
                cause: text("Cause").chars().take(2000).collect(),
            };
            tracing::error!(registry = %registry, error = %failure.error, cause = %failure.cause, "registry import failed: recorded in its status");
            record_import_failure(store, &registry, &failure).await?;
            Ok(json(&failure))
        }
        RegistryTask::ImportPart { plan, key } => {
            Ok(json(&fanout::import_part(store, plan, key).await?))
        }
        RegistryTask::Assemble { plan } => Ok(json(&fanout::assemble(store, plan).await?)),
        RegistryTask::Import {
            registry,
            keys,
            prefix,
            as_of,
            max_age_days,
            force,
            scope,
            area_codes,
        } => {
            let mut keys = keys.clone();
            if let Some(prefix) = prefix {
                keys.extend(
                    store
                        .list(prefix)
                        .await?
                        .into_iter()
                        .filter(|k| !k.ends_with(IMPORT_MARKER) && !k.ends_with('/')),
                );
            }
            if keys.is_empty() {
                return Err(RegistryError::Input {
                    path: format!("s3://{bucket}/{}", prefix.as_deref().unwrap_or("")),
                    reason: "no files to import".into(),
                });
            }
            let mut inputs = ObjectInputs::new(store, bucket, keys);
            let options = ImportOptions {
                as_of: *as_of,
                max_age_days: *max_age_days,
                force: *force,
                scope: Scope::from_request(scope.as_deref(), area_codes.as_deref())?,
            };
            let report = import_from(store, registry, &mut inputs, &options, &mut |s| {
                tracing::info!(source = %s.name, rows = s.counts.rows, accepted = s.counts.accepted, rejected = s.counts.rejected, "registry file imported");
            })
            .await?;
            Ok(json(&report))
        }
        RegistryTask::Apply {
            registry,
            keys,
            as_of,
        } => {
            let mut inputs = ObjectInputs::new(store, bucket, keys.clone());
            let options = ApplyOptions { as_of: *as_of };
            Ok(json(
                &apply_from(store, registry, &mut inputs, &options).await?,
            ))
        }
    }
}

/// The import an execution's input asks for: the console's `{registry, prefix, asOf, …}`, or the `_import.json`
/// marker's drop event (the marker read from the bucket).
async fn import_of_input(
    store: &dyn ObjectStore,
    input: &serde_json::Value,
) -> Result<(String, fanout::PlanRequest), RegistryError> {
    if input.get("registry").is_some() {
        let c: ConsoleImport =
            serde_json::from_value(input.clone()).map_err(|e| RegistryError::Input {
                path: "execution input".into(),
                reason: format!(
                    "expected {{registry, prefix, asOf, maxAgeDays?, scope?, areaCodes?}}: {e}"
                ),
            })?;
        return Ok((
            c.registry,
            fanout::PlanRequest {
                prefix: c.prefix,
                as_of: c.as_of,
                max_age_days: c.max_age_days,
                force: c.force,
                scope: c.scope,
                area_codes: c.area_codes,
            },
        ));
    }
    let key = input
        .pointer("/detail/object/key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let marker = store.get_bytes(key).await?;
    match task_for_drop(key, marker.as_deref())? {
        Some(RegistryTask::Import {
            registry,
            prefix: Some(prefix),
            as_of,
            max_age_days,
            force,
            scope,
            area_codes,
            ..
        }) => Ok((
            registry,
            fanout::PlanRequest {
                prefix,
                as_of,
                max_age_days,
                force,
                scope,
                area_codes,
            },
        )),
        _ => Err(RegistryError::Input {
            path: key.to_string(),
            reason: format!(
                "not an import marker (incoming-registry/<name>/full/<batch>/{IMPORT_MARKER})"
            ),
        }),
    }
}

/// The registry and batch an execution's input names, without reading anything (the failure path must not fail
/// for want of a readable marker).
fn registry_of_input(input: &serde_json::Value) -> (Option<String>, Option<String>) {
    if let Some(r) = input.get("registry").and_then(serde_json::Value::as_str) {
        let prefix = input
            .get("prefix")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        return (Some(r.to_string()), prefix);
    }
    let key = input
        .pointer("/detail/object/key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let rest = key.strip_prefix(crate::run::REGISTRY_INCOMING);
    let registry = rest
        .and_then(|r| r.split_once('/'))
        .map(|(name, _)| name.to_string())
        .filter(|n| check_name(n).is_ok());
    let prefix = key
        .strip_suffix(IMPORT_MARKER)
        .filter(|_| registry.is_some())
        .map(str::to_string);
    (registry, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_read_from_invocations_and_drops() {
        let t: RegistryTask = serde_json::from_str(
            r#"{"action":"import","registry":"national","prefix":"incoming-registry/national/full/b/","asOf":"2026-11-30"}"#,
        )
        .unwrap();
        assert!(matches!(
            t,
            RegistryTask::Import {
                max_age_days: 31,
                ..
            }
        ));
        let drop = task_for_key("incoming-registry/tx/changes/2026-12-01.txt").unwrap();
        assert!(matches!(drop, Some(RegistryTask::Apply { ref keys, .. }) if keys.len() == 1));
        let marker = br#"{"asOf":"2026-10-01","maxAgeDays":30,"scope":"US-TX"}"#;
        let Some(RegistryTask::Import {
            prefix,
            max_age_days,
            scope,
            ..
        }) = task_for_drop("incoming-registry/tx/full/q4/_import.json", Some(marker)).unwrap()
        else {
            panic!("an import");
        };
        assert_eq!(
            (prefix.as_deref(), max_age_days, scope.as_deref()),
            (Some("incoming-registry/tx/full/q4/"), 30, Some("US-TX"))
        );
        let event = serde_json::json!({"source": "aws.s3", "detail": {"object": {"key": "incoming-registry/tx/full/q4/_import.json"}}});
        assert_eq!(
            registry_of_input(&event),
            (
                Some("tx".into()),
                Some("incoming-registry/tx/full/q4/".into())
            )
        );
        assert_eq!(
            task_for_key("incoming-registry/tx/full/q4/202.zip").unwrap(),
            None
        );
        // The marker starts the import state machine, not the function.
        assert_eq!(
            task_for_key("incoming-registry/tx/full/q4/_import.json").unwrap(),
            None
        );
        assert!(task_for_drop("incoming-registry/tx/full/q4/_import.json", Some(b"{}")).is_err());
        assert!(matches!(
            task_for_key("incoming-registry/Bad Name/changes/x"),
            Err(RegistryError::BadName(_))
        ));
    }
}

#[cfg(test)]
mod status_change_tests {
    use super::*;
    use crate::adapters::store::LocalStore;

    /// The download workflow ending without its catch is recorded as the registry's download failure (not as an
    /// import failure): its status shows it and needs someone.
    #[tokio::test]
    async fn a_download_that_timed_out_is_recorded_as_the_registrys_download_failure() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore {
            root: dir.path().to_path_buf(),
        };
        let event = serde_json::json!({
            "version": "0", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "executionArn": "arn:aws:states:us-east-1:1:execution:dncflow-registry-download:nightly",
                "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:dncflow-registry-download",
                "status": "TIMED_OUT",
                "input": "{\"registry\": \"national\", \"mode\": \"changes\"}",
            },
        });
        let out = handle_event(&store, "b", event).await.unwrap();
        assert_eq!(out["error"], "Execution.TIMED_OUT");
        let failure = watch::download_failure(&store, "national")
            .await
            .unwrap()
            .expect("recorded");
        assert_eq!(failure.error, "Execution.TIMED_OUT");
        assert!(failure.cause.contains("nightly"), "{failure:?}");
        assert!(import_failure(&store, "national").await.unwrap().is_none());
    }
}
