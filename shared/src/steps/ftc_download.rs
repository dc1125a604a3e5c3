//! The FTC download step: each Task of the download workflow (`infra/registry-download.asl.json`) is one action of
//! the `ftc-download` function, over the flow of [`crate::adapters::ftc::download`]. The session token never leaves
//! the function: each container logs in once and again when the service says the session expired; what the state
//! carries is the registry, the mode, the change list's file token and counts.
//!
//! - `begin`: log in (an account refusal fails here, at once, never retried) and choose the mode: `full` when asked,
//!   when the registry has no live version, lacks declared area codes, has a gap, or its full download is older than
//!   the cadence (`DNCFLOW_FTC_FULL_EVERY_DAYS`, default 7); else `changes`.
//! - changes: `submit` → (`Wait` 2 min) `poll` … → `fetch` (raw answer kept, checked) → `apply`; or `noChanges`.
//!   Either answers `continuous`: when the list leaves a gap (a night's list lost: damaged, or counted by the
//!   service and never received), the workflow goes on to the full download in the same execution.
//! - full: `listFull` (the files, and the area codes whose answer was saved today) → `fetchFull` per file (into
//!   `incoming-registry/<name>/full/<batch>/`) → `importFull` (the batch's `_import.json` marker: the registry import
//!   state machine imports it, a Distributed Map over the files).
//! - `failed`: the catch: the failure is recorded (`registry/<name>/download-failure.json`; cleared by the next
//!   download that succeeds) before the execution fails and its alarm fires. It needs no FTC session.
//!
//! Each successful end records what was fetched in `downloads.json` (the registry's status shows the last full
//! download of each area code and the last change list: [`crate::registry::watch`]).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::adapters::ftc::download::{self, Fetched, FullFile, Poll, Session, Submitted};
use crate::adapters::ftc::{FtcError, ResultCode};
use crate::adapters::store::ObjectStore;
use crate::registry::{
    self, ChangeListDownload, DownloadFailure, ImportMarker, VersionReport, IMPORT_MARKER,
};
use crate::run::REGISTRY_INCOMING;
use crate::steps::{ErrorKind, StepError};

/// Which download a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The day's change list.
    Changes,
    /// The full list of every subscribed area code.
    Full,
}

/// One action of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all_fields = "camelCase")]
pub enum DownloadTask {
    /// Log in and choose the mode.
    #[serde(rename = "begin")]
    Begin {
        /// The registry's name (`national`; its objects live under `registry/<name>/`).
        registry: String,
        /// The mode asked for (the schedule's input); `changes` may become `full` (see the module).
        #[serde(default)]
        mode: Option<Mode>,
    },
    /// `SubmitDeltaFileRequest`.
    #[serde(rename = "submit")]
    Submit {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
    },
    /// `GetDeltaFileRequestStatus`.
    #[serde(rename = "poll")]
    Poll {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The request's file token.
        file_token: String,
        /// Polls made before this one.
        #[serde(default)]
        polls: u32,
    },
    /// `GetDeltaFileUrl` and `GetDNCFileByUrl`: the raw answer kept, the file checked.
    #[serde(rename = "fetch")]
    Fetch {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The request's file token; absent after `AlreadyDownloadedToday` (the answer saved today is used).
        #[serde(default)]
        file_token: Option<String>,
    },
    /// Apply the checked change list.
    #[serde(rename = "apply")]
    Apply {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The object key of the checked zip `Fetch` kept.
        file_key: String,
    },
    /// `NoChanges`: the registry's continuity advances.
    #[serde(rename = "noChanges")]
    NoChanges {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
    },
    /// The full list's files.
    #[serde(rename = "listFull")]
    ListFull {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
    },
    /// One area code's file into the batch.
    #[serde(rename = "fetchFull")]
    FetchFull {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The batch (`incoming-registry/<registry>/full/<batch>/`).
        batch: String,
        /// The area code's file, as `ListFull` planned it.
        file: PlannedFile,
    },
    /// Drop the batch's `_import.json` marker: the import state machine takes it from there.
    #[serde(rename = "importFull")]
    ImportFull {
        /// The registry's name (its objects live under `registry/<name>/`).
        registry: String,
        /// The batch's name (`incoming-registry/<registry>/full/<batch>/`).
        batch: String,
        /// The area codes of the batch (declared as the subscription when the registry has none yet).
        area_codes: Vec<u16>,
    },
    /// Record the failure caught by the workflow.
    #[serde(rename = "failed")]
    Failed {
        /// The execution's input, as the workflow was started (the registry and the mode asked for).
        input: Value,
        /// `{Error, Cause}`.
        error: Value,
    },
}

/// A file of a full download: fetched from its URL, or (no URL) the answer saved today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFile {
    /// The file's area code.
    pub area_code: u16,
    /// The URL `GetURLS` offered, `None` when it offered `714: already downloaded today` and the answer was saved.
    #[serde(default)]
    pub url: Option<String>,
}

/// Settings of the step.
#[derive(Debug, Clone, Copy)]
pub struct DownloadSettings {
    /// A full download at least this often (days).
    pub full_every_days: i64,
    /// Polls before `StillPending` (at the workflow's 2 minutes, 720 is a day).
    pub max_polls: u32,
}

impl Default for DownloadSettings {
    fn default() -> Self {
        DownloadSettings {
            full_every_days: 7,
            max_polls: 720,
        }
    }
}

/// The step's error for an FTC failure: `Transient` when trying again later may work (the service, the network,
/// the store), `InvalidInput` for a damaged file, `Fatal` for the rest (an account refusal above all: never
/// retried); the message leads with the code.
pub fn step_error(e: FtcError) -> StepError {
    let e = match e {
        FtcError::Registry(r) => return StepError::from(r),
        other => other,
    };
    let kind = match &e {
        e if e.is_transient() => ErrorKind::Transient,
        FtcError::Damaged { .. } => ErrorKind::InvalidInput,
        _ => ErrorKind::Fatal,
    };
    let message = format!("{}: {e}", e.code());
    StepError::new(kind, message).with_source(e)
}

/// What the mode is: `full` when asked or when the registry needs one (see the module), else `changes`.
pub fn choose_mode(
    asked: Option<Mode>,
    status: Option<&registry::RegistryStatus>,
    now: DateTime<Utc>,
    settings: &DownloadSettings,
) -> (Mode, String) {
    if asked == Some(Mode::Full) {
        return (Mode::Full, "asked".into());
    }
    let Some(s) = status else {
        return (Mode::Full, "the registry has no live version".into());
    };
    if !s.missing_area_codes.is_empty() {
        return (
            Mode::Full,
            format!("area codes missing: {}", s.missing_area_codes.join(",")),
        );
    }
    if !s.subscribed_not_covered.is_empty() {
        return (
            Mode::Full,
            format!(
                "area codes subscribed and not covered: {}",
                s.subscribed_not_covered.join(",")
            ),
        );
    }
    if !s.gaps.is_empty() {
        return (
            Mode::Full,
            format!("{} day(s) without a change list", s.gaps.len()),
        );
    }
    // The last change list was counted by the service and never applied (damaged, or its answer lost): the days it
    // held are in no later list, so only the full list restores them.
    if let Some(f) = s
        .download_failure
        .as_ref()
        .filter(|f| matches!(f.code(), "FileDamaged" | "AlreadyDownloadedToday"))
    {
        return (
            Mode::Full,
            format!("the last change list was lost ({})", f.code()),
        );
    }
    match s.imported_as_of {
        Some(imported) if (now - imported).num_days() < settings.full_every_days => {
            (Mode::Changes, "nightly".into())
        }
        Some(imported) => (
            Mode::Full,
            format!(
                "the full download is {} days old (cadence {} days)",
                (now - imported).num_days(),
                settings.full_every_days
            ),
        ),
        None => (Mode::Full, "no full download recorded".into()),
    }
}

fn summary(r: &VersionReport) -> Value {
    json!({
        "version": r.version,
        "changes": r.changes,
        "alreadyApplied": r.already_applied.len(),
        "asOf": r.status.as_of,
        "continuousThrough": r.status.continuous_through,
        "gaps": r.status.gaps,
        // The workflow's `Continuous` choice: a gap left after this list is repaired by a full download now.
        "continuous": r.status.gaps.is_empty(),
    })
}

/// Run one action of the download workflow; its JSON output is the next state's input. `ftc_session` is needed only by
/// the actions that talk to the FTC.
pub async fn run_task(
    ftc_session: Option<&Session<'_>>,
    store: &dyn ObjectStore,
    bucket: &str,
    task: &DownloadTask,
    now: DateTime<Utc>,
    settings: &DownloadSettings,
) -> Result<Value, StepError> {
    let ftc = step_error;
    let session = || {
        ftc_session.ok_or_else(|| {
            StepError::new(
                ErrorKind::Fatal,
                "this action talks to the FTC and was given no session",
            )
        })
    };
    match task {
        DownloadTask::Begin { registry, mode } => {
            registry::check_name(registry)?;
            session()?.login_now().await.map_err(ftc)?;
            let status = registry::status(store, registry, now).await?;
            let (mode, reason) = choose_mode(*mode, status.as_ref(), now, settings);
            tracing::info!(registry = %registry, ?mode, reason = %reason, "FTC download");
            Ok(json!({
                "registry": registry,
                "mode": mode,
                "reason": reason,
                "batch": format!("ftc-{}", now.format("%Y%m%dT%H%M%SZ")),
            }))
        }
        DownloadTask::Submit { .. } => Ok(
            match download::submit_changes(session()?).await.map_err(ftc)? {
                Submitted::Requested { file_token } => {
                    json!({"submitted": "requested", "fileToken": file_token, "polls": 0})
                }
                Submitted::AlreadyDownloadedToday => {
                    json!({"submitted": "alreadyDownloadedToday", "polls": 0})
                }
            },
        ),
        DownloadTask::Poll {
            file_token, polls, ..
        } => {
            let polls = polls + 1;
            let answer = download::poll_changes(session()?, file_token)
                .await
                .map_err(ftc)?;
            if answer == Poll::RequestPending && polls >= settings.max_polls {
                return Err(ftc(FtcError::StillPending { polls }));
            }
            Ok(json!({"poll": answer, "fileToken": file_token, "polls": polls}))
        }
        DownloadTask::Fetch {
            registry,
            file_token,
        } => {
            let fetched =
                download::fetch_changes(session()?, store, registry, now, file_token.as_deref())
                    .await
                    .map_err(ftc)?;
            Ok(serde_json::to_value(&fetched).expect("serializes"))
        }
        DownloadTask::Apply { registry, file_key } => {
            let fetched = Fetched {
                file_key: file_key.clone(),
                raw_key: String::new(),
                lines: 0,
                reused: false,
            };
            let report = download::apply_changes(store, bucket, registry, &fetched)
                .await
                .map_err(ftc)?;
            let lines = report.changes.rows;
            // The same list again (the answer saved today) keeps the record of its first application.
            let again = !report.already_applied.is_empty();
            record_success(store, registry, &|log| {
                if !again {
                    log.last_change_list = Some(ChangeListDownload {
                        at: now,
                        outcome: "applied".into(),
                        file_key: Some(file_key.clone()),
                        lines,
                    })
                }
            })
            .await?;
            Ok(summary(&report))
        }
        DownloadTask::NoChanges { registry } => {
            let report = download::apply_no_changes(store, registry, now)
                .await
                .map_err(ftc)?;
            record_success(store, registry, &|log| {
                log.last_change_list = Some(ChangeListDownload {
                    at: now,
                    outcome: "noChanges".into(),
                    file_key: None,
                    lines: 0,
                })
            })
            .await?;
            Ok(summary(&report))
        }
        DownloadTask::ListFull { registry } => {
            let offered = download::full_files(session()?, None).await.map_err(ftc)?;
            let mut files: Vec<PlannedFile> = offered
                .files
                .iter()
                .map(|f| PlannedFile {
                    area_code: f.area_code,
                    url: Some(f.url.clone()),
                })
                .collect();
            let offered_codes: BTreeSet<u16> = files.iter().map(|f| f.area_code).collect();
            // Files offered as `714: already downloaded today`: those whose answer was saved today.
            let saved = download::saved_full_today(store, registry, now)
                .await
                .map_err(ftc)?;
            let reused: Vec<u16> = saved.difference(&offered_codes).copied().collect();
            if offered.messages.len() > reused.len() {
                return Err(ftc(FtcError::Refused {
                    op: "GetURLS",
                    code: ResultCode::AlreadyDownloadedToday,
                    detail: Some(format!(
                        "{} file(s) were downloaded today already and their answers were not saved here: they can be \
                         downloaded again tomorrow",
                        offered.messages.len() - reused.len()
                    )),
                }));
            }
            files.extend(reused.into_iter().map(|area_code| PlannedFile {
                area_code,
                url: None,
            }));
            files.sort_by_key(|f| f.area_code);
            let area_codes: Vec<u16> = files.iter().map(|f| f.area_code).collect();
            Ok(json!({"files": files, "areaCodes": area_codes}))
        }
        DownloadTask::FetchFull {
            registry,
            batch,
            file,
        } => {
            let fetched = match &file.url {
                Some(url) => download::fetch_full(
                    session()?,
                    store,
                    registry,
                    now,
                    &FullFile {
                        area_code: file.area_code,
                        url: url.clone(),
                    },
                )
                .await
                .map_err(ftc)?,
                None => download::reuse_full(store, registry, now, file.area_code)
                    .await
                    .map_err(ftc)?
                    .ok_or_else(|| {
                        StepError::new(
                            ErrorKind::Fatal,
                            format!(
                                "AlreadyDownloadedToday: the answer of area code {:03} saved today is gone",
                                file.area_code
                            ),
                        )
                    })?,
            };
            let zip = store.get_bytes(&fetched.file_key).await?.ok_or_else(|| {
                StepError::new(
                    ErrorKind::Transient,
                    format!("{} vanished", fetched.file_key),
                )
            })?;
            let key = format!(
                "{REGISTRY_INCOMING}{registry}/full/{batch}/{:03}.zip",
                file.area_code
            );
            store.put_bytes(&key, zip).await?;
            Ok(
                json!({"areaCode": file.area_code, "lines": fetched.lines, "reused": fetched.reused}),
            )
        }
        DownloadTask::ImportFull {
            registry,
            batch,
            area_codes,
        } => {
            // The declared subscription's area codes are the import's scope (a file missing from the batch is then
            // `RegistryIncomplete`); without one, the batch's area codes are declared when the registry has none
            // yet, and after that the live version's scope holds.
            let declared = match registry::watch::subscription(store, registry).await? {
                Some(s) => Some(s.area_codes),
                None => registry::status(store, registry, now)
                    .await?
                    .is_none()
                    .then(|| area_codes.iter().map(|a| format!("{a:03}")).collect()),
            };
            let marker = ImportMarker {
                as_of: now.date_naive(),
                max_age_days: registry::DEFAULT_MAX_AGE_DAYS,
                force: false,
                scope: None,
                area_codes: declared,
            };
            let key = format!("{REGISTRY_INCOMING}{registry}/full/{batch}/{IMPORT_MARKER}");
            store
                .put_bytes(&key, serde_json::to_vec(&marker).expect("serializes"))
                .await?;
            record_success(store, registry, &|log| {
                for a in area_codes {
                    log.full.insert(format!("{a:03}"), now);
                }
            })
            .await?;
            Ok(json!({"marker": key, "files": area_codes.len()}))
        }
        DownloadTask::Failed { input, error } => {
            let failure = record_failure(store, input, error, now).await?;
            Ok(serde_json::to_value(&failure).expect("serializes"))
        }
    }
}

/// The `failed` action: record the failure the workflow caught (or its end without its catch: a timeout, an abort)
/// beside the registry its input names. Needs no FTC session, so a failure to read the account is recorded too.
pub async fn record_failure(
    store: &dyn ObjectStore,
    input: &Value,
    error: &Value,
    now: DateTime<Utc>,
) -> Result<DownloadFailure, StepError> {
    let registry = input
        .get("registry")
        .and_then(Value::as_str)
        .unwrap_or("national");
    registry::check_name(registry)?;
    let text = |k: &str| {
        error
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let failure = DownloadFailure {
        at: now,
        error: text("Error"),
        cause: reason_of(&text("Cause")).chars().take(2000).collect(),
    };
    tracing::error!(registry, error = %failure.error, cause = %failure.cause, "FTC download failed: recorded in the registry's status");
    registry::watch::record_download_failure(store, registry, &failure).await?;
    Ok(failure)
}

/// A Lambda failure's `Cause` is the function's error document (`{"errorType","errorMessage"}`): its message, which
/// leads with the code; any other cause as it is.
fn reason_of(cause: &str) -> String {
    serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string())
}

/// A download step succeeded: what it fetched is recorded, the failure recorded before it is over.
async fn record_success(
    store: &dyn ObjectStore,
    registry: &str,
    update: &(dyn Fn(&mut registry::DownloadLog) + Sync),
) -> Result<(), StepError> {
    registry::watch::record_download(store, registry, update).await?;
    registry::watch::clear_download_failure(store, registry).await?;
    Ok(())
}

impl DownloadTask {
    /// The registry the action is for (`national` when a failure's input names none).
    pub fn registry(&self) -> &str {
        match self {
            DownloadTask::Begin { registry, .. }
            | DownloadTask::Submit { registry }
            | DownloadTask::Poll { registry, .. }
            | DownloadTask::Fetch { registry, .. }
            | DownloadTask::Apply { registry, .. }
            | DownloadTask::NoChanges { registry }
            | DownloadTask::ListFull { registry }
            | DownloadTask::FetchFull { registry, .. }
            | DownloadTask::ImportFull { registry, .. } => registry,
            DownloadTask::Failed { input, .. } => input
                .get("registry")
                .and_then(Value::as_str)
                .unwrap_or("national"),
        }
    }

    /// Whether the action ends or begins a run: the watch's metrics are published after it.
    pub fn publishes_watch(&self) -> bool {
        matches!(
            self,
            DownloadTask::Begin { .. }
                | DownloadTask::Apply { .. }
                | DownloadTask::NoChanges { .. }
                | DownloadTask::ImportFull { .. }
                | DownloadTask::Failed { .. }
        )
    }

    /// Whether the action talks to the FTC (needs the account and a session).
    pub fn needs_session(&self) -> bool {
        !matches!(
            self,
            DownloadTask::Apply { .. }
                | DownloadTask::NoChanges { .. }
                | DownloadTask::ImportFull { .. }
                | DownloadTask::Failed { .. }
        )
    }
}

/// The watch's metrics of `registry` as it now stands, one EMF line (`None` before its first version); with
/// `login_refused`, the refusal counted too.
pub async fn watch_emf(
    store: &dyn ObjectStore,
    registry: &str,
    now: DateTime<Utc>,
    login_refused: bool,
) -> Result<Option<String>, StepError> {
    let mut metrics = match registry::status(store, registry, now).await? {
        Some(status) => registry::watch::watch_metrics(&status),
        None => Vec::new(),
    };
    if login_refused {
        metrics.push((registry::watch::LOGIN_REFUSED_METRIC, 1.0));
    }
    Ok((!metrics.is_empty())
        .then(|| registry::watch::emf_line(registry, &metrics, now.timestamp_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(extra: Value) -> registry::RegistryStatus {
        let mut v = json!({
            "registry": "national", "version": "v", "asOf": "2026-12-05T10:00:00Z", "ageDays": 1,
            "maxAgeDays": 31, "status": "CURRENT", "total": 10, "areaCodes": 3, "indexBytes": 1,
            "changeLists": 2, "importedAsOf": "2026-12-01T00:00:00Z",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_mode_is_full_when_asked_or_when_the_registry_needs_it() {
        let now: DateTime<Utc> = "2026-12-06T05:30:00Z".parse().unwrap();
        let s = DownloadSettings::default();
        let ok = status(json!({}));
        assert_eq!(
            choose_mode(Some(Mode::Changes), Some(&ok), now, &s).0,
            Mode::Changes
        );
        assert_eq!(choose_mode(None, Some(&ok), now, &s).0, Mode::Changes);
        assert_eq!(
            choose_mode(Some(Mode::Full), Some(&ok), now, &s).0,
            Mode::Full
        );
        let (mode, why) = choose_mode(Some(Mode::Changes), None, now, &s);
        assert_eq!(
            (mode, why.as_str()),
            (Mode::Full, "the registry has no live version")
        );
        let (mode, why) = choose_mode(
            None,
            Some(&status(json!({"missingAreaCodes": ["206"]}))),
            now,
            &s,
        );
        assert_eq!(mode, Mode::Full);
        assert!(why.contains("206"));
        let gap = status(json!({"gaps": ["2026-12-03"]}));
        assert_eq!(choose_mode(None, Some(&gap), now, &s).0, Mode::Full);
        // A list counted by the service and never applied: only the full list restores its days. A refused login
        // lost nothing (the next list holds both days).
        let lost = status(
            json!({"downloadFailure": {"at": "2026-12-05T05:31:00Z", "error": "InvalidInput",
            "cause": "FileDamaged: FTC file changes is damaged"}}),
        );
        let (mode, why) = choose_mode(None, Some(&lost), now, &s);
        assert_eq!(
            (mode, why.as_str()),
            (Mode::Full, "the last change list was lost (FileDamaged)")
        );
        let refused = status(
            json!({"downloadFailure": {"at": "2026-12-05T05:31:00Z", "error": "Fatal",
            "cause": "LoginFailed: FTC refused the login"}}),
        );
        assert_eq!(choose_mode(None, Some(&refused), now, &s).0, Mode::Changes);
        // The cadence: seven days after the full download, a change-list run downloads the full list instead.
        let old = status(json!({"importedAsOf": "2026-11-29T00:00:00Z"}));
        let (mode, why) = choose_mode(Some(Mode::Changes), Some(&old), now, &s);
        assert_eq!(mode, Mode::Full);
        assert!(why.contains("7 days old"), "{why}");
        let weekly = DownloadSettings {
            full_every_days: 30,
            ..s
        };
        assert_eq!(choose_mode(None, Some(&old), now, &weekly).0, Mode::Changes);
    }

    #[test]
    fn errors_keep_their_kind_and_lead_with_the_code() {
        let refused = step_error(FtcError::LoginRefused {
            code: ResultCode::LoginDisabled,
        });
        assert_eq!(refused.kind(), ErrorKind::Fatal);
        assert!(
            refused.to_string().starts_with("LoginDisabled: "),
            "{refused}"
        );
        let damaged = step_error(FtcError::Damaged {
            file: "changes".into(),
            reason: "CRC".into(),
            raw_key: "k".into(),
        });
        assert_eq!(damaged.kind(), ErrorKind::InvalidInput);
        let http = step_error(FtcError::Http {
            op: "Login",
            status: 503,
            attempts: 4,
        });
        assert_eq!(http.kind(), ErrorKind::Transient);
        // Secrets Manager failing at a cold start is retried; a document that does not parse is not.
        let unavailable = step_error(FtcError::CredentialsUnavailable {
            origin: "secret dncflow/ftc".into(),
            reason: "dispatch failure".into(),
        });
        assert_eq!(unavailable.kind(), ErrorKind::Transient);
        assert!(unavailable
            .to_string()
            .starts_with("CredentialsUnavailable: "));
        let unreadable = step_error(FtcError::Credentials {
            origin: "secret dncflow/ftc".into(),
            reason: "not JSON".into(),
        });
        assert_eq!(unreadable.kind(), ErrorKind::Fatal);
        let pending = step_error(FtcError::StillPending { polls: 720 });
        assert_eq!(pending.kind(), ErrorKind::Fatal);
        assert!(pending.to_string().starts_with("StillPending: "));
    }
}
