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
        /// Registry.
        registry: String,
        /// Objects.
        #[serde(default)]
        keys: Vec<String>,
        /// Or a prefix.
        #[serde(default)]
        prefix: Option<String>,
        /// As of.
        as_of: NaiveDate,
        /// Freshness limit.
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less.
        #[serde(default)]
        force: bool,
    },
    /// The first step of the fanned-out import (the registry import state machine): the plan every part follows,
    /// from the `_import.json` marker's drop event, or given.
    #[serde(rename = "begin")]
    Begin {
        /// The marker's S3 "Object Created" event.
        #[serde(default)]
        event: Option<serde_json::Value>,
        /// Or the registry…
        #[serde(default)]
        registry: Option<String>,
        /// …the batch's prefix…
        #[serde(default)]
        prefix: Option<String>,
        /// …its as-of…
        #[serde(default)]
        as_of: Option<NaiveDate>,
        /// …and freshness limit.
        #[serde(default = "default_max_age")]
        max_age_days: u32,
        /// Replace the live version even when the import covers less.
        #[serde(default)]
        force: bool,
    },
    /// One file of the batch (a Distributed Map child).
    #[serde(rename = "importPart")]
    ImportPart {
        /// The plan.
        plan: fanout::ImportPlan,
        /// The object.
        key: String,
    },
    /// The last step: the parts merged into the version, made live.
    #[serde(rename = "assemble")]
    Assemble {
        /// The plan.
        plan: fanout::ImportPlan,
    },
    /// Apply change lists.
    #[serde(rename = "apply")]
    Apply {
        /// Registry.
        registry: String,
        /// Objects.
        keys: Vec<String>,
        /// Apply a list older than the registry.
        #[serde(default)]
        force: bool,
        /// The lists' as-of.
        #[serde(default)]
        as_of: Option<NaiveDate>,
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
            force: false,
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
    let task: RegistryTask =
        if payload.get("source").and_then(serde_json::Value::as_str) == Some("aws.s3") {
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
        } => {
            // Started from the console, the execution's input (the `event`) names them itself.
            let console = event
                .as_ref()
                .filter(|e| e.get("registry").is_some())
                .map(|e| serde_json::from_value::<ConsoleImport>(e.clone()))
                .transpose()
                .map_err(|e| RegistryError::Input {
                    path: "execution input".into(),
                    reason: format!("expected {{registry, prefix, asOf, maxAgeDays?}}: {e}"),
                })?;
            let given = registry
                .clone()
                .zip(prefix.clone())
                .zip(*as_of)
                .map(|((r, p), a)| (r, p, a, *max_age_days, *force))
                .or(console.map(|c| (c.registry, c.prefix, c.as_of, c.max_age_days, c.force)));
            let (registry, prefix, as_of, max_age_days, force) = match (given, event) {
                (Some(given), _) => given,
                (None, Some(event)) => {
                    let key = event
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
                            ..
                        }) => (registry, prefix, as_of, max_age_days, force),
                        _ => {
                            return Err(RegistryError::Input {
                                path: key.to_string(),
                                reason: format!("not an import marker (incoming-registry/<name>/full/<batch>/{IMPORT_MARKER})"),
                            })
                        }
                    }
                }
                (None, None) => {
                    return Err(RegistryError::Input {
                        path: "event".into(),
                        reason: "begin needs the marker's event, or registry, prefix and asOf"
                            .into(),
                    })
                }
            };
            Ok(json(&fanout::plan(
                bucket,
                &registry,
                &prefix,
                as_of,
                max_age_days,
                force,
            )?))
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
            force,
            as_of,
        } => {
            let mut inputs = ObjectInputs::new(store, bucket, keys.clone());
            let options = ApplyOptions {
                force: *force,
                as_of: *as_of,
            };
            Ok(json(
                &apply_from(store, registry, &mut inputs, &options).await?,
            ))
        }
    }
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
        let marker = br#"{"asOf":"2026-10-01","maxAgeDays":92}"#;
        let Some(RegistryTask::Import {
            prefix,
            max_age_days,
            ..
        }) = task_for_drop("incoming-registry/tx/full/q4/_import.json", Some(marker)).unwrap()
        else {
            panic!("an import");
        };
        assert_eq!(
            (prefix.as_deref(), max_age_days),
            (Some("incoming-registry/tx/full/q4/"), 92)
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
