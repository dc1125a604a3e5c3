//! The download flow, one step at a time (the state machine runs each step in its own invocation; `dncctl registry
//! download` runs them in a loop):
//!
//! 1. a [`Session`] logs in (certifying, as the service requires) and logs in again, once, when the service says the
//!    session expired; an account refusal (`LoginFailed`, `LoginDisabled`, `CertificationNotAgreed`,
//!    `InvalidCompanyID`) fails at once and is never retried, so a wrong password cannot lock the account;
//! 2. change lists: [`submit_changes`] → [`poll_changes`] (`RequestPending` keeps polling, `NoChanges` is a success)
//!    → [`fetch_changes`]; full lists: [`full_files`] → [`fetch_full`] per area code;
//! 3. a file's raw SOAP answer is written to the store **before** it is decoded ([`fetch_file`]): the service gives
//!    a file once a day, so an answer lost after it was counted could not be fetched again; `AlreadyDownloadedToday`
//!    re-uses the answer saved that day (UTC), and fails naming the file when none was saved;
//! 4. the answer is decoded ([`check_file`]: base64 → zip, its entry's CRC → the line layout) and only a file that
//!    passes is written beside it as a zip and handed to the registry ([`apply_changes`], [`import_full`]). A file
//!    that fails stays in the store and the step fails naming the reason.

use std::collections::BTreeSet;
use std::io::Read;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::wire::{self, Answer, Operation, NAMESPACE};
use super::{FtcApi, FtcCredentials, FtcError, ResultCode};
use crate::adapters::store::ObjectStore;
use crate::registry::{self, ApplyOptions, ImportOptions, ObjectInputs, VersionReport};
use crate::run::RegistryKeys;

/// The files are asked for in the flat format (`NPA,NNNNNNN`; change lists `NNNNNNNNNN,timestamp,A|D`).
const FORMAT: &str = "Flat";

/// A logged-in session. The token stays in this process: it is never logged, returned or put in a state.
pub struct Session<'a> {
    api: &'a dyn FtcApi,
    credentials: &'a FtcCredentials,
    token: tokio::sync::Mutex<Option<SecretString>>,
    logins: std::sync::atomic::AtomicU32,
}

impl<'a> Session<'a> {
    /// A session of `credentials` with the service; it logs in at its first call.
    pub fn new(api: &'a dyn FtcApi, credentials: &'a FtcCredentials) -> Session<'a> {
        Session {
            api,
            credentials,
            token: tokio::sync::Mutex::new(None),
            logins: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Logins made so far.
    pub fn logins(&self) -> u32 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The company id (the service takes it with every call).
    pub fn company_id(&self) -> &str {
        &self.credentials.company_id
    }

    /// Log in now unless logged in (an account refusal fails here, before anything is asked of the service).
    pub async fn login_now(&self) -> Result<(), FtcError> {
        self.token().await.map(|_| ())
    }

    async fn login(&self) -> Result<SecretString, FtcError> {
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let op = Operation::Login {
            xmlns: NAMESPACE,
            company_id: self.credentials.company_id.clone(),
            password: self.credentials.password.expose_secret().to_string(),
            user_type: self.credentials.user_type.name().to_string(),
            certify: "Agree",
        };
        let raw = self.api.call(&op).await?;
        match wire::response("Login", &raw)? {
            Answer::Code(ResultCode::LoginOk, token) if !token.trim().is_empty() => {
                tracing::info!(company = %self.credentials.company_id, "logged in to the FTC download service");
                Ok(SecretString::from(token.trim().to_string()))
            }
            Answer::Code(code, _) if code.is_account_refusal() => {
                tracing::error!(code = %code, "FTC refused the login: not retried");
                Err(FtcError::LoginRefused { code })
            }
            Answer::Code(code, _) => Err(FtcError::Refused {
                op: "Login",
                code,
                detail: Some("no session token".into()),
            }),
            Answer::Fault(fault) => Err(FtcError::Fault { op: "Login", fault }),
            Answer::Strings(_) => {
                unreachable!("wire::response reads GetURLS answers only for GetURLS")
            }
        }
    }

    async fn token(&self) -> Result<SecretString, FtcError> {
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref() {
            return Ok(t.clone());
        }
        let t = self.login().await?;
        *held = Some(t.clone());
        Ok(t)
    }

    /// Call the operation `make` builds from the session token; its answer, raw and read. When the service says the
    /// session is gone, log in again and call once more (a second expiry fails).
    async fn call(
        &self,
        op: &'static str,
        make: &(dyn Fn(String) -> Operation + Sync),
    ) -> Result<Answer, FtcError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let raw = self
                .api
                .call(&make(token.expose_secret().to_string()))
                .await?;
            let answer = wire::response(op, &raw)?;
            match &answer {
                Answer::Code(code, _) if code.is_session_gone() => {
                    if attempt == 1 {
                        return Err(FtcError::SessionLost {
                            op,
                            code: code.clone(),
                        });
                    }
                    tracing::warn!(op, code = %code, "FTC session gone: logging in again");
                    *self.token.lock().await = None;
                }
                Answer::Fault(fault) => {
                    return Err(FtcError::Fault {
                        op,
                        fault: fault.clone(),
                    })
                }
                _ => return Ok(answer),
            }
        }
        unreachable!("the loop returns")
    }
}

/// What `SubmitDeltaFileRequest` answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "submitted")]
pub enum Submitted {
    /// `SubmitOK`: poll with this file token (not a secret: it names the request, and needs a session to be used).
    Requested {
        /// The file token to poll with.
        file_token: String,
    },
    /// `AlreadyDownloadedToday`: the change list of today was fetched already; re-use the answer saved then.
    AlreadyDownloadedToday,
}

/// Ask for today's change list.
pub async fn submit_changes(session: &Session<'_>) -> Result<Submitted, FtcError> {
    let company = session.company_id().to_string();
    let answer = session
        .call("SubmitDeltaFileRequest", &|session| {
            Operation::SubmitDeltaFileRequest {
                xmlns: NAMESPACE,
                company_id: company.clone(),
                file_format: FORMAT,
                session,
            }
        })
        .await?;
    match answer {
        Answer::Code(ResultCode::SubmitOk, token) if !token.trim().is_empty() => {
            Ok(Submitted::Requested {
                file_token: token.trim().to_string(),
            })
        }
        Answer::Code(ResultCode::AlreadyDownloadedToday, _) => {
            Ok(Submitted::AlreadyDownloadedToday)
        }
        Answer::Code(code, _) => Err(refused("SubmitDeltaFileRequest", code)),
        _ => Err(unexpected("SubmitDeltaFileRequest")),
    }
}

/// Where a change-list request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Poll {
    /// `RequestPending`: poll again (public clients wait 2 minutes; the FTC allows itself up to 24 hours).
    RequestPending,
    /// `RequestCompleted`: the change list is ready; fetch it.
    RequestCompleted,
    /// `NoChanges`: nothing changed since the last change list; a success.
    NoChanges,
}

/// Ask where the change-list request `file_token` stands.
pub async fn poll_changes(session: &Session<'_>, file_token: &str) -> Result<Poll, FtcError> {
    let company = session.company_id().to_string();
    let answer = session
        .call("GetDeltaFileRequestStatus", &|session| {
            Operation::GetDeltaFileRequestStatus {
                xmlns: NAMESPACE,
                company_id: company.clone(),
                file_token: file_token.to_string(),
                session,
            }
        })
        .await?;
    match answer {
        Answer::Code(ResultCode::RequestPending, _) => Ok(Poll::RequestPending),
        Answer::Code(ResultCode::RequestCompleted, _) => Ok(Poll::RequestCompleted),
        Answer::Code(ResultCode::NoChanges, _) => Ok(Poll::NoChanges),
        Answer::Code(code, _) => Err(refused("GetDeltaFileRequestStatus", code)),
        _ => Err(unexpected("GetDeltaFileRequestStatus")),
    }
}

/// A file fetched, checked and written as a zip, ready for the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fetched {
    /// The object key of the checked zip (written only after every check passed).
    pub file_key: String,
    /// The raw SOAP answer it was decoded from.
    pub raw_key: String,
    /// Lines in the file (each a number and its change, or a number).
    pub lines: u64,
    /// The answer was one saved earlier (a step run again, or `AlreadyDownloadedToday`), not fetched now.
    pub reused: bool,
}

/// Fetch the completed change list of `file_token` (or, with `None`, after `AlreadyDownloadedToday`, the one saved
/// today: UTC's day, which may differ from the service's; a list saved on another day was applied then).
pub async fn fetch_changes(
    session: &Session<'_>,
    store: &dyn ObjectStore,
    registry: &str,
    now: DateTime<Utc>,
    file_token: Option<&str>,
) -> Result<Fetched, FtcError> {
    let keys = RegistryKeys::new(registry);
    let Some(file_token) = file_token else {
        return reuse_today(store, &keys, now, "changes", &FileKind::Changes)
            .await?
            .ok_or_else(|| FtcError::Refused {
                op: "SubmitDeltaFileRequest",
                code: ResultCode::AlreadyDownloadedToday,
                detail: Some(
                    "today's change list was downloaded already and no answer of it was saved here: it is lost for \
                     today, the next one can be downloaded tomorrow"
                        .into(),
                ),
            });
    };
    // A step run again after its file was saved does not spend the day's download twice.
    if let Some(saved) = reuse_today(store, &keys, now, "changes", &FileKind::Changes).await? {
        return Ok(saved);
    }
    let company = session.company_id().to_string();
    let answer = session
        .call("GetDeltaFileUrl", &|session| Operation::GetDeltaFileUrl {
            xmlns: NAMESPACE,
            company_id: company.clone(),
            file_token: file_token.to_string(),
            session,
        })
        .await?;
    let url = match answer {
        Answer::Code(ResultCode::DownloadOk, url) if !url.trim().is_empty() => {
            url.trim().to_string()
        }
        Answer::Code(code, _) => return Err(refused("GetDeltaFileUrl", code)),
        _ => return Err(unexpected("GetDeltaFileUrl")),
    };
    fetch_file(
        session,
        store,
        &keys,
        now,
        "changes",
        &url,
        &FileKind::Changes,
    )
    .await
}

/// One file of a full download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullFile {
    /// Its area code (from the file's name, `2026-8-5_818_<guid>.txt.zip`).
    pub area_code: u16,
    /// The URL `GetURLS` gave for the file (passed back to `GetDNCFileByUrl`).
    pub url: String,
}

/// What `GetURLS` offers: a file per area code, and messages (`714:File was already downloaded Today…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FullFiles {
    /// The files, by area code.
    pub files: Vec<FullFile>,
    /// The messages in place of URLs.
    pub messages: Vec<String>,
}

/// The area code of a full-list file URL (`…/2026-8-5_818_<guid>.txt.zip`).
pub fn area_code_of_url(url: &str) -> Option<u16> {
    let name = url.rsplit('/').next()?;
    let npa = name.split('_').nth(1)?;
    (npa.len() == 3 && npa.bytes().all(|b| b.is_ascii_digit()))
        .then(|| npa.parse().ok())
        .flatten()
}

/// The full list's files (`GetURLS`), those of `area_codes` only when given.
pub async fn full_files(
    session: &Session<'_>,
    area_codes: Option<&BTreeSet<u16>>,
) -> Result<FullFiles, FtcError> {
    let company = session.company_id().to_string();
    let answer = session
        .call("GetURLS", &|session| Operation::GetUrls {
            xmlns: NAMESPACE,
            file_format: FORMAT,
            session,
            company_id: company.clone(),
        })
        .await?;
    let Answer::Strings(items) = answer else {
        return Err(unexpected("GetURLS"));
    };
    let mut out = FullFiles::default();
    for item in items {
        let item = item.trim().to_string();
        match area_code_of_url(&item) {
            Some(npa) if item.contains("://") => {
                if area_codes.is_none_or(|a| a.contains(&npa)) {
                    out.files.push(FullFile {
                        area_code: npa,
                        url: item,
                    });
                }
            }
            _ => out.messages.push(item),
        }
    }
    out.files.sort_by_key(|f| f.area_code);
    Ok(out)
}

/// Fetch one area code's full list.
pub async fn fetch_full(
    session: &Session<'_>,
    store: &dyn ObjectStore,
    registry: &str,
    now: DateTime<Utc>,
    file: &FullFile,
) -> Result<Fetched, FtcError> {
    let keys = RegistryKeys::new(registry);
    let name = format!("full-{:03}", file.area_code);
    let kind = FileKind::Full(Some(file.area_code));
    if let Some(saved) = reuse_today(store, &keys, now, &name, &kind).await? {
        return Ok(saved);
    }
    fetch_file(session, store, &keys, now, &name, &file.url, &kind).await
}

/// An area code offered no URL (`GetURLS` answered a message such as `714:File was already downloaded Today`): the
/// answer saved today, if any.
pub async fn reuse_full(
    store: &dyn ObjectStore,
    registry: &str,
    now: DateTime<Utc>,
    area_code: u16,
) -> Result<Option<Fetched>, FtcError> {
    let keys = RegistryKeys::new(registry);
    let name = format!("full-{area_code:03}");
    reuse_today(store, &keys, now, &name, &FileKind::Full(Some(area_code))).await
}

/// The area codes whose full-list answer was saved today (UTC).
pub async fn saved_full_today(
    store: &dyn ObjectStore,
    registry: &str,
    now: DateTime<Utc>,
) -> Result<BTreeSet<u16>, FtcError> {
    let prefix = RegistryKeys::new(registry).download_raw(now.date_naive(), "full-");
    let prefix = prefix.trim_end_matches(".xml");
    Ok(store
        .list(prefix)
        .await?
        .iter()
        .filter_map(|k| {
            k.rsplit('/')
                .next()?
                .strip_prefix("full-")?
                .strip_suffix(".xml")?
                .parse()
                .ok()
        })
        .collect())
}

/// The answer saved today, checked, if it holds a file.
async fn reuse_today(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    now: DateTime<Utc>,
    name: &str,
    kind: &FileKind,
) -> Result<Option<Fetched>, FtcError> {
    let day = now.date_naive();
    let raw_key = keys.download_raw(day, name);
    let Some(raw) = store.get_bytes(&raw_key).await? else {
        return Ok(None);
    };
    match wire::response("GetDNCFileByUrl", &raw) {
        Ok(Answer::Code(ResultCode::DownloadOk, _)) => {
            tracing::info!(raw_key, "re-using the answer saved today");
            keep_checked(store, keys, day, name, &raw_key, &raw, kind)
                .await
                .map(|mut f| {
                    f.reused = true;
                    Some(f)
                })
        }
        // An answer without a file (a session expiry, a refusal): nothing to re-use.
        _ => Ok(None),
    }
}

/// `GetDNCFileByUrl`: the answer written to `download_raw(day, name)` before it is read, then checked.
pub async fn fetch_file(
    session: &Session<'_>,
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    now: DateTime<Utc>,
    name: &str,
    url: &str,
    kind: &FileKind,
) -> Result<Fetched, FtcError> {
    let day = now.date_naive();
    let raw_key = keys.download_raw(day, name);
    let company = session.company_id().to_string();
    // Each answer is written before it is read (`Session::call` reads first, so the file's fetch has its own loop).
    let answer = {
        let mut result = None;
        for attempt in 0..2 {
            let token = session.token().await?;
            let raw = session
                .api
                .call(&Operation::GetDncFileByUrl {
                    xmlns: NAMESPACE,
                    file_url: url.to_string(),
                    session: token.expose_secret().to_string(),
                    company_id: company.clone(),
                })
                .await?;
            store.put_bytes(&raw_key, raw.clone()).await?;
            tracing::info!(
                raw_key,
                bytes = raw.len(),
                "FTC answer saved before decoding"
            );
            let answer = wire::response("GetDNCFileByUrl", &raw)?;
            match answer {
                Answer::Code(ref code, _) if code.is_session_gone() && attempt == 0 => {
                    tracing::warn!(code = %code, "FTC session gone: logging in again");
                    *session.token.lock().await = None;
                    session.token().await?;
                }
                other => {
                    result = Some((other, raw));
                    break;
                }
            }
        }
        result
    };
    let Some((answer, raw)) = answer else {
        return Err(FtcError::SessionLost {
            op: "GetDNCFileByUrl",
            code: ResultCode::SessionExpired,
        });
    };
    match answer {
        Answer::Code(ResultCode::DownloadOk, _) => {
            keep_checked(store, keys, day, name, &raw_key, &raw, kind).await
        }
        // Counted before (by a run whose answer was lost: a reset after the service counted it). Only an answer
        // saved today (UTC) is taken as the same file (and none was, or it would have been used before this call):
        // an older one would be a list applied already, and taking it would hide the loss.
        Answer::Code(ResultCode::AlreadyDownloadedToday, _) => Err(FtcError::Refused {
            op: "GetDNCFileByUrl",
            code: ResultCode::AlreadyDownloadedToday,
            detail: Some(format!(
                "{name} was downloaded today already and no answer of it was saved here: it is lost for today"
            )),
        }),
        Answer::Code(code, _) if code.is_session_gone() => Err(FtcError::SessionLost {
            op: "GetDNCFileByUrl",
            code,
        }),
        Answer::Code(code, _) => Err(refused("GetDNCFileByUrl", code)),
        Answer::Fault(fault) => Err(FtcError::Fault {
            op: "GetDNCFileByUrl",
            fault,
        }),
        Answer::Strings(_) => Err(unexpected("GetDNCFileByUrl")),
    }
}

/// Check the file inside `raw` and write it as a zip beside it.
async fn keep_checked(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    day: NaiveDate,
    name: &str,
    raw_key: &str,
    raw: &[u8],
    kind: &FileKind,
) -> Result<Fetched, FtcError> {
    let damaged = |reason: String| FtcError::Damaged {
        file: name.to_string(),
        reason,
        raw_key: raw_key.to_string(),
    };
    let Answer::Code(ResultCode::DownloadOk, b64) = wire::response("GetDNCFileByUrl", raw)? else {
        return Err(unexpected("GetDNCFileByUrl"));
    };
    let checked = check_file(kind, &b64).map_err(damaged)?;
    let file_key = keys.download_file(day, name);
    store.put_bytes(&file_key, checked.zip).await?;
    tracing::info!(
        file_key,
        lines = checked.lines,
        "FTC file checked: CRC and line layout"
    );
    Ok(Fetched {
        file_key,
        raw_key: raw_key.to_string(),
        lines: checked.lines,
        reused: false,
    })
}

/// What a file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A change list: `NNNNNNNNNN,YYYY-MM-DDThh:mm:ss,A|D`.
    Changes,
    /// A full list: `NPA,NNNNNNN`, of this area code when known.
    Full(Option<u16>),
}

/// A file that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFile {
    /// The zip, as the service sent it.
    pub zip: Vec<u8>,
    /// Lines in the file, each of them checked.
    pub lines: u64,
}

/// Decode the base64 of a file answer, open the zip, read its one text entry whole (the zip reader checks the
/// entry's CRC at its end: a truncated file parses line by line, so only the CRC tells), and check every line's
/// layout. The reason names the first thing wrong (and the line).
pub fn check_file(kind: &FileKind, b64: &str) -> Result<CheckedFile, String> {
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let zip = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| format!("the answer's base64 does not decode: {e}"))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    let mut text = Vec::new();
    let mut entries = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("zip entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        entries += 1;
        let entry_name = entry.name().to_string();
        entry
            .read_to_end(&mut text)
            .map_err(|e| format!("zip entry {entry_name}: {e} (a truncated or altered file)"))?;
    }
    if entries != 1 {
        return Err(format!("the zip holds {entries} files, the FTC sends one"));
    }
    let lines = check_layout(kind, &text)?;
    Ok(CheckedFile { zip, lines })
}

/// Every line of `text` in the layout of `kind` (LF or CRLF ends, a last line without one allowed); the count.
pub fn check_layout(kind: &FileKind, text: &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        n += 1;
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let ok = match kind {
            FileKind::Full(npa) => {
                line.len() == 11
                    && line[3] == b','
                    && digits(&line[..3])
                    && digits(&line[4..])
                    && npa.is_none_or(|a| line[..3] == *format!("{a:03}").as_bytes())
            }
            FileKind::Changes => {
                line.len() == 32
                    && line[10] == b','
                    && line[30] == b','
                    && digits(&line[..10])
                    && std::str::from_utf8(&line[11..30])
                        .ok()
                        .and_then(|t| {
                            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok()
                        })
                        .is_some()
                    && matches!(line[31], b'A' | b'D' | b'a' | b'd')
            }
        };
        if !ok {
            let shown: String = String::from_utf8_lossy(&line[..line.len().min(40)])
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .collect();
            let expected = match kind {
                FileKind::Full(Some(a)) => format!("`{a:03},NNNNNNN`"),
                FileKind::Full(None) => "`NPA,NNNNNNN`".into(),
                FileKind::Changes => "`NNNNNNNNNN,YYYY-MM-DDThh:mm:ss,A|D`".into(),
            };
            return Err(format!(
                "line {n} is not in the layout {expected} (digits masked: {shown})"
            ));
        }
    }
    Ok(n)
}

/// Hand a checked change list to the registry's apply (the same path as a list dropped in the bucket).
pub async fn apply_changes(
    store: &dyn ObjectStore,
    bucket: &str,
    registry: &str,
    fetched: &Fetched,
) -> Result<VersionReport, FtcError> {
    let mut inputs = ObjectInputs::new(store, bucket, vec![fetched.file_key.clone()]);
    Ok(registry::apply_from(store, registry, &mut inputs, &ApplyOptions::default()).await?)
}

/// `NoChanges`: the registry's continuity advances (see [`registry::apply_no_changes`]).
pub async fn apply_no_changes(
    store: &dyn ObjectStore,
    registry: &str,
    at: DateTime<Utc>,
) -> Result<VersionReport, FtcError> {
    Ok(registry::apply_no_changes(
        store,
        registry,
        at,
        &format!("FTC NoChanges {}", at.to_rfc3339()),
    )
    .await?)
}

/// Hand a full download's checked files to the registry's import, as of the day they were downloaded.
pub async fn import_full(
    store: &dyn ObjectStore,
    bucket: &str,
    registry: &str,
    fetched: &[Fetched],
    as_of: NaiveDate,
    scope: Option<registry::Scope>,
) -> Result<VersionReport, FtcError> {
    let keys = fetched.iter().map(|f| f.file_key.clone()).collect();
    let mut inputs = ObjectInputs::new(store, bucket, keys);
    let options = ImportOptions {
        as_of,
        max_age_days: registry::DEFAULT_MAX_AGE_DAYS,
        force: false,
        scope,
    };
    Ok(registry::import_from(store, registry, &mut inputs, &options, &mut |_| {}).await?)
}

/// How `RequestPending` is waited out in one process (`dncctl registry download`; the state machine uses a `Wait`
/// state instead).
#[derive(Debug, Clone, Copy)]
pub struct PollPolicy {
    /// Between polls (public clients: 2 minutes).
    pub interval: std::time::Duration,
    /// Polls before giving up (`StillPending`).
    pub max_polls: u32,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            interval: std::time::Duration::from_secs(120),
            max_polls: 360,
        }
    }
}

/// What a change-list download did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum ChangesOutcome {
    /// A change list was fetched, checked and applied.
    Applied {
        /// The change list fetched and checked, with its object keys.
        fetched: Fetched,
        /// Polls answered `RequestPending` before it was ready.
        pending_polls: u32,
        /// What the apply did.
        report: Box<VersionReport>,
    },
    /// `NoChanges`: the registry's continuity advanced.
    NoChanges {
        /// What the apply did.
        report: Box<VersionReport>,
    },
}

/// The nightly change list, start to end in this process: submit, poll, fetch (raw kept first), check, apply.
pub async fn download_changes(
    session: &Session<'_>,
    store: &dyn ObjectStore,
    bucket: &str,
    registry: &str,
    now: DateTime<Utc>,
    poll: PollPolicy,
) -> Result<ChangesOutcome, FtcError> {
    let token = match submit_changes(session).await? {
        Submitted::Requested { file_token } => Some(file_token),
        Submitted::AlreadyDownloadedToday => None,
    };
    let mut pending = 0;
    if let Some(token) = &token {
        loop {
            match poll_changes(session, token).await? {
                Poll::RequestCompleted => break,
                Poll::NoChanges => {
                    let report = apply_no_changes(store, registry, now).await?;
                    record(store, registry, now, "noChanges", None, 0).await?;
                    return Ok(ChangesOutcome::NoChanges {
                        report: Box::new(report),
                    });
                }
                Poll::RequestPending => {
                    pending += 1;
                    if pending >= poll.max_polls {
                        return Err(FtcError::StillPending { polls: pending });
                    }
                    tracing::info!(polls = pending, "change list RequestPending: waiting");
                    tokio::time::sleep(poll.interval).await;
                }
            }
        }
    }
    let fetched = fetch_changes(session, store, registry, now, token.as_deref()).await?;
    let report = apply_changes(store, bucket, registry, &fetched).await?;
    // The same list again (the answer saved today) was recorded when it was first applied.
    if report.already_applied.is_empty() {
        record(
            store,
            registry,
            now,
            "applied",
            Some(&fetched.file_key),
            report.changes.rows,
        )
        .await?;
    }
    Ok(ChangesOutcome::Applied {
        fetched,
        pending_polls: pending,
        report: Box::new(report),
    })
}

/// The full download of `area_codes` (all the subscription's when `None`) in this process: every file fetched (raw
/// kept first), checked, then imported as of `now`'s day. A file offered as already downloaded today is taken from
/// the answer saved today; one that was not saved here fails the download, naming it.
pub async fn download_full(
    session: &Session<'_>,
    store: &dyn ObjectStore,
    bucket: &str,
    registry: &str,
    now: DateTime<Utc>,
    area_codes: Option<&BTreeSet<u16>>,
    scope: Option<registry::Scope>,
) -> Result<(Vec<Fetched>, VersionReport), FtcError> {
    let offered = full_files(session, area_codes).await?;
    let mut fetched = Vec::new();
    let mut got = BTreeSet::new();
    for file in &offered.files {
        fetched.push(fetch_full(session, store, registry, now, file).await?);
        got.insert(file.area_code);
    }
    // Area codes offered as a message (`714:File was already downloaded Today`): their answer saved today.
    let wanted: BTreeSet<u16> = match area_codes {
        Some(a) => a.clone(),
        None => saved_full_today(store, registry, now)
            .await?
            .into_iter()
            .chain(got.iter().copied())
            .collect(),
    };
    let mut lost = Vec::new();
    for npa in wanted.difference(&got.clone()) {
        match reuse_full(store, registry, now, *npa).await? {
            Some(f) => {
                fetched.push(f);
                got.insert(*npa);
            }
            None => lost.push(format!("{npa:03}")),
        }
    }
    let unexplained = offered
        .messages
        .len()
        .saturating_sub(got.len().saturating_sub(offered.files.len()));
    if !lost.is_empty() || (area_codes.is_none() && unexplained > 0) {
        return Err(FtcError::Refused {
            op: "GetURLS",
            code: ResultCode::AlreadyDownloadedToday,
            detail: Some(format!(
                "{} file(s) were downloaded today already and their answers were not saved here (area codes: {};                  messages: {}); they can be downloaded again tomorrow",
                lost.len().max(unexplained),
                if lost.is_empty() { "unknown".to_string() } else { lost.join(", ") },
                offered.messages.join(" | ")
            )),
        });
    }
    // The declared subscription's area codes are the import's scope; without one, a first import declares those the
    // service offered, and later ones keep the live version's scope, so a file missing from a later download is
    // `RegistryIncomplete`.
    let declared = registry::watch::subscription(store, registry).await?;
    let scope = match (scope, declared) {
        (Some(s), _) => Some(s),
        (None, Some(sub)) => Some(registry::Scope::National(sub.codes()?)),
        (None, None) if registry::status(store, registry, now).await?.is_none() => {
            Some(registry::Scope::National(got.clone()))
        }
        (None, None) => None,
    };
    let report = import_full(store, bucket, registry, &fetched, now.date_naive(), scope).await?;
    registry::watch::record_download(store, registry, &|log| {
        for a in &got {
            log.full.insert(format!("{a:03}"), now);
        }
    })
    .await?;
    registry::watch::clear_download_failure(store, registry).await?;
    Ok((fetched, report))
}

/// A change list downloaded: recorded for the registry's status (`downloads.json`), the last failure cleared.
async fn record(
    store: &dyn ObjectStore,
    registry: &str,
    at: DateTime<Utc>,
    outcome: &str,
    file_key: Option<&str>,
    lines: u64,
) -> Result<(), FtcError> {
    registry::watch::record_download(store, registry, &|log| {
        log.last_change_list = Some(registry::ChangeListDownload {
            at,
            outcome: outcome.to_string(),
            file_key: file_key.map(str::to_string),
            lines,
        })
    })
    .await?;
    registry::watch::clear_download_failure(store, registry).await?;
    Ok(())
}

fn refused(op: &'static str, code: ResultCode) -> FtcError {
    if code.is_account_refusal() {
        return FtcError::LoginRefused { code };
    }
    let detail = match code {
        ResultCode::NoFullDownloadPerformed => {
            Some("a change list needs a full download first: run a full download".to_string())
        }
        ResultCode::InvalidRequest => Some("the subscription has no area code yet".into()),
        _ => None,
    };
    FtcError::Refused { op, code, detail }
}

fn unexpected(op: &'static str) -> FtcError {
    FtcError::Protocol {
        op,
        reason: "an answer of another shape".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(name: &str, text: &[u8]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(text).unwrap();
        w.finish().unwrap();
        out.into_inner()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn a_good_file_passes_and_every_damage_is_named() {
        let full = b"818,2000001\n818,2000002\n";
        let ok = check_file(&FileKind::Full(Some(818)), &b64(&zip_of("a.txt", full))).unwrap();
        assert_eq!(ok.lines, 2);
        // Line breaks inside the base64 (as XML may carry it) are not damage.
        let wrapped: String = b64(&zip_of("a.txt", full))
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert!(check_file(&FileKind::Full(Some(818)), &wrapped).is_ok());
        let e = check_file(&FileKind::Full(None), "not base64!").unwrap_err();
        assert!(e.contains("base64"), "{e}");
        let e = check_file(&FileKind::Full(None), &b64(b"PK\x03\x04 nothing")).unwrap_err();
        assert!(e.contains("zip"), "{e}");
        // One byte of the stored data flipped: the CRC tells, though every line would still parse.
        let mut z = {
            let mut out = std::io::Cursor::new(Vec::new());
            let mut w = zip::ZipWriter::new(&mut out);
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            w.start_file("a.txt", stored).unwrap();
            w.write_all(full).unwrap();
            w.finish().unwrap();
            out.into_inner()
        };
        let at = z.windows(11).position(|w| w == b"818,2000002").unwrap();
        z[at + 10] = b'9';
        let e = check_file(&FileKind::Full(Some(818)), &b64(&z)).unwrap_err();
        assert!(
            e.to_lowercase().contains("checksum") || e.contains("CRC"),
            "{e}"
        );
        // A file of another area code than its name says.
        let e = check_file(&FileKind::Full(Some(212)), &b64(&zip_of("a.txt", full))).unwrap_err();
        assert!(e.contains("line 1") && e.contains("`212,NNNNNNN`"), "{e}");
        // Two files in one zip.
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for n in ["a.txt", "b.txt"] {
            w.start_file(n, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(full).unwrap();
        }
        w.finish().unwrap();
        assert!(check_file(&FileKind::Full(None), &b64(&out.into_inner()))
            .unwrap_err()
            .contains("2 files"));
    }

    #[test]
    fn line_layouts() {
        let changes = b"8185550100,2026-12-05T02:20:18,A\r\n8185550101,2026-12-05T03:00:00,D\n";
        assert_eq!(check_layout(&FileKind::Changes, changes), Ok(2));
        assert_eq!(check_layout(&FileKind::Changes, b""), Ok(0));
        for bad in [
            &b"8185550100,2026-12-05T02:20:18,X"[..],
            b"8185550100,2026-13-05T02:20:18,A",
            b"818555010,2026-12-05T02:20:18,AA",
            b"818,5550100",
            b"<html>",
        ] {
            let e = check_layout(&FileKind::Changes, bad).unwrap_err();
            assert!(e.starts_with("line 1"), "{e}");
            // No number of the file appears in the reason.
            assert!(!e.contains("555"), "{e}");
        }
        let e = check_layout(&FileKind::Full(None), b"202,5550100\n202,555010\n").unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
    }

    #[test]
    fn area_codes_from_file_names() {
        assert_eq!(
            area_code_of_url("https://x/y/2026-8-5_818_0f1e2d.txt.zip"),
            Some(818)
        );
        assert_eq!(
            area_code_of_url("714:File was already downloaded Today"),
            None
        );
        assert_eq!(area_code_of_url("https://x/2026-8-5_81_a.zip"), None);
    }
}
