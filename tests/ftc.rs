//! The FTC download client (`dncflow::adapters::ftc`) against the stand-in service (`tools/ftc-sim`) over HTTP on
//! loopback: every result code and fault the service can answer, the raw answer kept before decoding, and the
//! downloaded files handed to a local registry, checked number by number against the simulator's own registry.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use dncflow::adapters::ftc::download::{self, ChangesOutcome, PollPolicy, Session, Submitted};
use dncflow::adapters::ftc::{FtcCredentials, FtcError, ResultCode, RetryPolicy, SoapClient};
use dncflow::adapters::store::{LocalStore, ObjectStore};
use dncflow::registry::{self, Lookup, Scope};
use dncflow::run::RegistryKeys;
use ftc_sim::{FaultKind, FaultRule, RunningSim, SimConfig};

const AREAS: [u16; 3] = [202, 415, 818];

struct Rig {
    sim: RunningSim,
    client: SoapClient,
    creds: FtcCredentials,
    _dir: tempfile::TempDir,
    store: LocalStore,
    bucket: String,
    /// The simulator's start date: ten days ago, so every change it generates is in the past.
    start: NaiveDate,
}

impl Rig {
    async fn new(config: SimConfig) -> Rig {
        Rig::started(config, 10).await
    }

    /// A rig whose simulator starts `days_ago` days before today.
    async fn started(config: SimConfig, days_ago: u64) -> Rig {
        let start = Utc::now().date_naive() - Days::new(days_ago);
        let sim = ftc_sim::spawn(
            SimConfig {
                start_date: Some(start),
                ..config
            },
            0,
        )
        .await
        .unwrap();
        let client = SoapClient::new(&sim.base_url, fast_retries()).unwrap();
        let creds = FtcCredentials::from_json(&sim.credentials_document(), "sim").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore {
            root: dir.path().to_path_buf(),
        };
        Rig {
            bucket: dir.path().display().to_string(),
            sim,
            client,
            creds,
            _dir: dir,
            store,
            start,
        }
    }

    /// The instant the client believes it is on the simulator's today (noon UTC, in the past).
    fn now(&self) -> DateTime<Utc> {
        self.sim
            .sim
            .today()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .min(Utc::now())
    }

    fn raw_exists(&self, name: &str) -> Option<Vec<u8>> {
        let key = RegistryKeys::new("national").download_raw(self.now().date_naive(), name);
        std::fs::read(self.store.root.join(key)).ok()
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
    }
}

fn quick_poll() -> PollPolicy {
    PollPolicy {
        interval: Duration::from_millis(5),
        max_polls: 20,
    }
}

fn fault(op: &str, kind: FaultKind, count: u32) -> FaultRule {
    FaultRule {
        op: op.into(),
        kind,
        count: Some(count),
    }
}

fn code(op: &str, code: &str, count: u32) -> FaultRule {
    fault(op, FaultKind::Code { code: code.into() }, count)
}

fn scope() -> Option<Scope> {
    Some(Scope::National(AREAS.into_iter().collect()))
}

/// Every number the simulator ever registered or changed in `AREAS`, looked up in the local registry: listed exactly
/// when the simulator's registry of `day` holds it.
async fn assert_registry_matches(rig: &Rig, day: NaiveDate) -> usize {
    let loaded = registry::load(&rig.store, "national").await.unwrap();
    let mut checked = 0;
    for npa in AREAS {
        let truth = rig.sim.sim.registered(npa, day);
        let mut candidates: BTreeSet<u32> = rig.sim.sim.registered(npa, rig.start);
        candidates.extend(truth.iter().copied());
        for c in rig.sim.sim.changes_between(rig.start, day + Days::new(1)) {
            if c.number / 10_000_000 == u64::from(npa) {
                candidates.insert((c.number % 10_000_000) as u32);
            }
        }
        for local in candidates {
            let e164 = 10_000_000_000 + u64::from(npa) * 10_000_000 + u64::from(local);
            let want = if truth.contains(&local) {
                Lookup::Listed
            } else {
                Lookup::NotListed
            };
            assert_eq!(loaded.lookup(e164), want, "{npa}-{local:07} as of {day}");
            checked += 1;
        }
    }
    checked
}

#[tokio::test]
async fn full_download_then_nightly_change_lists_keep_the_registry_exact_and_continuous() {
    let rig = Rig::new(SimConfig::default()).await;
    let session = Session::new(&rig.client, &rig.creds);
    // Day 1: the full download of every area code, imported as of the day.
    rig.sim.sim.advance_days(1);
    let (fetched, report) = download::download_full(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        None,
        scope(),
    )
    .await
    .unwrap();
    assert_eq!(fetched.len(), 3);
    assert!(fetched.iter().all(|f| f.lines == 2000 && !f.reused));
    assert_eq!(report.import.accepted, 6000);
    // The raw answers are in the store, as the service sent them.
    for npa in AREAS {
        let raw = rig.raw_exists(&format!("full-{npa}")).expect("raw kept");
        assert!(String::from_utf8_lossy(&raw).contains("<GetDNCFileByUrlResponse"));
    }
    let checked = assert_registry_matches(&rig, rig.start).await;
    assert!(checked >= 6000);

    // The same day's change list: nothing happened since the start: NoChanges advances continuity.
    let outcome = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap();
    let ChangesOutcome::NoChanges { report } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(report.status.continuous_through, Some(rig.sim.sim.today()));

    // Day 2: RequestPending three times, then the list of day 1's changes.
    rig.sim.sim.advance_days(1);
    let outcome = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap();
    let ChangesOutcome::Applied {
        fetched,
        pending_polls,
        report,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(pending_polls, 3);
    // Day 1: three RequestPending then NoChanges; day 2: three RequestPending then RequestCompleted.
    assert_eq!(rig.sim.sim.count("GetDeltaFileRequestStatus"), 4 + 4);
    assert_eq!(fetched.lines, 42);
    assert_eq!(
        (
            report.changes.adds,
            report.changes.deletes,
            report.changes.superseded
        ),
        (30, 12, 0)
    );
    let day1 = rig.start + Days::new(1);
    assert_registry_matches(&rig, day1).await;
    let status = registry::status(&rig.store, "national", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(status.gaps.is_empty(), "{:?}", status.gaps);
    assert_eq!(status.continuous_through, Some(day1));
    // One login served every call of both days.
    assert_eq!(session.logins(), 1);

    // Run again the same day (a retried step): the service says AlreadyDownloadedToday; the saved answer is used,
    // and the registry recognises the list it already applied.
    let calls = rig.sim.sim.count("GetDNCFileByUrl");
    assert_eq!(
        download::submit_changes(&session).await.unwrap(),
        Submitted::AlreadyDownloadedToday
    );
    let outcome = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap();
    let ChangesOutcome::Applied {
        fetched, report, ..
    } = outcome
    else {
        panic!()
    };
    assert!(fetched.reused);
    assert_eq!(report.version, None);
    assert_eq!(report.already_applied.len(), 1);
    assert_eq!(
        rig.sim.sim.count("GetDNCFileByUrl"),
        calls,
        "no second download"
    );

    // Day 3 and 4: two more lists, each applied; the registry stays exact and continuous.
    for _ in 0..2 {
        rig.sim.sim.advance_days(1);
        download::download_changes(
            &session,
            &rig.store,
            &rig.bucket,
            "national",
            rig.now(),
            quick_poll(),
        )
        .await
        .unwrap();
    }
    let day3 = rig.start + Days::new(3);
    assert_registry_matches(&rig, day3).await;
    let status = registry::status(&rig.store, "national", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.continuous_through, Some(day3));
    assert!(status.gaps.is_empty());
}

#[tokio::test]
async fn account_refusals_fail_at_once_naming_the_code_and_are_never_retried() {
    type Alter = Box<dyn Fn(&mut FtcCredentials)>;
    let cases: [(&str, Alter, Vec<FaultRule>); 4] = [
        (
            "LoginFailed",
            Box::new(|c| c.password = "wrong".to_string().into()),
            vec![],
        ),
        (
            "InvalidCompanyID",
            Box::new(|c| c.company_id = "NOPE-1".into()),
            vec![],
        ),
        (
            "LoginDisabled",
            Box::new(|_| {}),
            vec![code("Login", "LoginDisabled", 5)],
        ),
        (
            "CertificationNotAgreed",
            Box::new(|_| {}),
            vec![code("Login", "CertificationNotAgreed", 5)],
        ),
    ];
    for (name, alter, faults) in cases {
        let rig = Rig::new(SimConfig {
            faults,
            ..SimConfig::default()
        })
        .await;
        let mut creds = rig.creds.clone();
        alter(&mut creds);
        let session = Session::new(&rig.client, &creds);
        let err = download::download_changes(
            &session,
            &rig.store,
            &rig.bucket,
            "national",
            rig.now(),
            quick_poll(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, FtcError::LoginRefused { code } if code.name() == name),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert!(!err.is_transient());
        assert_eq!(err.code(), name);
        assert_eq!(rig.sim.sim.count("Login"), 1, "{name}: one login, no retry");
        assert!(!err.to_string().contains("wrong"), "no password in {err}");
    }
}

#[tokio::test]
async fn an_expired_session_logs_in_again_once() {
    let rig = Rig::new(SimConfig {
        pending_polls: 2,
        ..SimConfig::default()
    })
    .await;
    let session = Session::new(&rig.client, &rig.creds);
    let Submitted::Requested { file_token } = download::submit_changes(&session).await.unwrap()
    else {
        panic!()
    };
    rig.sim.sim.expire_sessions();
    assert_eq!(
        download::poll_changes(&session, &file_token).await.unwrap(),
        download::Poll::RequestPending
    );
    assert_eq!(session.logins(), 2);
    // Expired again right after the new login: fails, naming the code, after one more login only.
    rig.sim
        .sim
        .set_faults(vec![code("GetDeltaFileRequestStatus", "SessionExpired", 2)]);
    let err = download::poll_changes(&session, &file_token)
        .await
        .unwrap_err();
    assert!(matches!(err, FtcError::SessionLost { .. }), "{err}");
    assert!(err.to_string().contains("SessionExpired"));
    assert_eq!(session.logins(), 3);
    // The session of a new token works again.
    assert_eq!(
        download::poll_changes(&session, &file_token).await.unwrap(),
        download::Poll::RequestPending
    );
}

#[tokio::test]
async fn a_damaged_file_is_kept_and_refused_and_the_registry_is_unchanged() {
    let rig = Rig::new(SimConfig {
        pending_polls: 0,
        ..SimConfig::default()
    })
    .await;
    let session = Session::new(&rig.client, &rig.creds);
    rig.sim.sim.advance_days(1);
    download::download_full(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        None,
        scope(),
    )
    .await
    .unwrap();
    let before = registry::status(&rig.store, "national", Utc::now())
        .await
        .unwrap()
        .unwrap();
    rig.sim.sim.advance_days(1);
    rig.sim
        .sim
        .set_faults(vec![fault("GetDNCFileByUrl", FaultKind::CorruptCrc, 1)]);
    let err = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap_err();
    let FtcError::Damaged {
        reason, raw_key, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        reason.to_lowercase().contains("checksum") || reason.contains("CRC"),
        "{reason}"
    );
    assert_eq!(err.code(), "FileDamaged");
    assert!(!err.is_transient());
    // The raw answer is kept; no zip was written beside it; the registry did not move.
    assert!(std::fs::metadata(rig.store.root.join(raw_key)).is_ok());
    let zip = RegistryKeys::new("national").download_file(rig.now().date_naive(), "changes");
    assert!(rig.store.get_bytes(&zip).await.unwrap().is_none());
    let after = registry::status(&rig.store, "national", Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.version, after.version);
    // A second run the same day does not spend a download: it reads the kept answer and fails the same way.
    let downloads = rig.sim.sim.count("GetDNCFileByUrl");
    let again = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap_err();
    assert!(matches!(again, FtcError::Damaged { .. }), "{again}");
    assert_eq!(rig.sim.sim.count("GetDNCFileByUrl"), downloads);

    // Base64 that does not decode, on the next day.
    rig.sim.sim.advance_days(1);
    rig.sim
        .sim
        .set_faults(vec![fault("GetDNCFileByUrl", FaultKind::BadBase64, 1)]);
    let err = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("base64"), "{err}");
}

#[tokio::test]
async fn transport_faults_are_retried_and_a_reset_after_counting_loses_the_day_loudly() {
    let rig = Rig::new(SimConfig {
        pending_polls: 0,
        ..SimConfig::default()
    })
    .await;
    let session = Session::new(&rig.client, &rig.creds);
    rig.sim.sim.advance_days(1);
    download::download_full(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        None,
        scope(),
    )
    .await
    .unwrap();
    rig.sim.sim.advance_days(1);
    // 503 twice, then a SOAP Server fault, then a slow answer within the timeout: all ride through.
    rig.sim.sim.set_faults(vec![
        fault(
            "SubmitDeltaFileRequest",
            FaultKind::ServerError { status: 503 },
            2,
        ),
        fault("GetDeltaFileRequestStatus", FaultKind::SoapFault, 1),
        fault("GetDeltaFileUrl", FaultKind::Slow { ms: 150 }, 1),
    ]);
    let outcome = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, ChangesOutcome::Applied { .. }));
    assert_eq!(rig.sim.sim.count("SubmitDeltaFileRequest"), 3);
    // A 503 on every attempt: a transient failure naming the status and the attempts.
    rig.sim.sim.advance_days(1);
    rig.sim.sim.set_faults(vec![fault(
        "SubmitDeltaFileRequest",
        FaultKind::ServerError { status: 503 },
        3,
    )]);
    let err = download::submit_changes(&session).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string().contains("HTTP 503 after 3 attempt(s)"),
        "{err}"
    );
    // Slower than the client's timeout on every attempt: a transient transport failure.
    rig.sim.sim.set_faults(vec![fault(
        "SubmitDeltaFileRequest",
        FaultKind::Slow { ms: 700 },
        3,
    )]);
    let err = download::submit_changes(&session).await.unwrap_err();
    assert!(
        matches!(err, FtcError::Transport { .. }) && err.is_transient(),
        "{err}"
    );
    // The file's connection reset after the service counted it: the retry is told AlreadyDownloadedToday, and no
    // answer was saved: the run fails naming it, it does not pretend.
    rig.sim
        .sim
        .set_faults(vec![fault("GetDNCFileByUrl", FaultKind::Reset, 1)]);
    let err = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &err,
            FtcError::Refused {
                code: ResultCode::AlreadyDownloadedToday,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("lost for today"), "{err}");
}

#[tokio::test]
async fn every_other_code_is_handled_by_name() {
    let rig = Rig::new(SimConfig {
        pending_polls: 0,
        ..SimConfig::default()
    })
    .await;
    let session = Session::new(&rig.client, &rig.creds);
    rig.sim.sim.advance_days(1);
    download::download_full(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        None,
        scope(),
    )
    .await
    .unwrap();
    // NoChanges forced on a day that had changes is still a success that advances continuity (the service's word).
    rig.sim.sim.advance_days(1);
    rig.sim
        .sim
        .set_faults(vec![code("GetDeltaFileRequestStatus", "NoChanges", 1)]);
    let outcome = download::download_changes(
        &session,
        &rig.store,
        &rig.bucket,
        "national",
        rig.now(),
        quick_poll(),
    )
    .await
    .unwrap();
    let ChangesOutcome::NoChanges { report } = outcome else {
        panic!()
    };
    assert_eq!(report.status.continuous_through, Some(rig.sim.sim.today()));
    // Codes a step cannot go on with fail naming them, with what they mean where it is known.
    for (op, name, meaning) in [
        (
            "SubmitDeltaFileRequest",
            "NoFullDownloadPerformed",
            "full download first",
        ),
        ("SubmitDeltaFileRequest", "InvalidRequest", "no area code"),
        ("SubmitDeltaFileRequest", "SubmitFailed", ""),
        ("GetDeltaFileRequestStatus", "InvalidFileReqToken", ""),
        ("GetDeltaFileUrl", "FileNotValidForDownload", ""),
        ("GetDNCFileByUrl", "DownloadFailed", ""),
    ] {
        rig.sim.sim.advance_days(1);
        rig.sim.sim.set_faults(vec![code(op, name, 1)]);
        let err = download::download_changes(
            &session,
            &rig.store,
            &rig.bucket,
            "national",
            rig.now(),
            quick_poll(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), name, "{err}");
        assert!(
            err.to_string().contains(op) && err.to_string().contains(meaning),
            "{err}"
        );
    }
    // The WSDL is served.
    let wsdl = reqwest::get(format!("{}/?WSDL", rig.sim.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(wsdl.contains(
        "soapAction=\"https://telemarketing.donotcall.gov/DownloadSvc/GetDNCFileByUrl\""
    ));
    // The file URL itself is not downloadable: the file travels in the envelope.
    let url = format!("{}/files/2026-8-5_818_x.txt.zip", rig.sim.base_url);
    assert_eq!(reqwest::get(url).await.unwrap().status().as_u16(), 404);
}

/// How one execution of the download workflow ended.
#[derive(Debug)]
enum Ended {
    Succeeded(serde_json::Value),
    Failed(registry::DownloadFailure),
}

/// The transitions of `infra/registry-download.asl.json` in one process: each Task is the `ftc-download` function's
/// step (`steps::ftc_download::run_task`, as the function runs it), a `Transient` error is retried up to three times
/// (each Task's `Retry`), any other error (or the retries spent) is caught into `failed` (the `Catch` and
/// `RecordFailure`), the `Wait` states are not waited. A full download's marker is then imported as
/// `infra/registry-import.asl.json` does it: the registry function's `begin`, `importPart` for each object of the
/// batch, `assemble`. The state machines themselves run in tests/e2e.rs (the nightly run, the failure paths, a lost
/// night repaired by a full download).
async fn execute(rig: &Rig, session: &Session<'_>, mode: &str, now: DateTime<Utc>) -> Ended {
    use dncflow::steps::ftc_download::{self as ftc, DownloadSettings, DownloadTask};
    use dncflow::steps::ErrorKind;
    use serde_json::{json, Value};
    let settings = DownloadSettings::default();
    let input = json!({"registry": "national", "mode": mode});
    let task = move |t: Value| async move {
        let task: DownloadTask = serde_json::from_value(t).unwrap();
        let mut retries = 0;
        loop {
            match ftc::run_task(
                Some(session),
                &rig.store,
                &rig.bucket,
                &task,
                now,
                &settings,
            )
            .await
            {
                Err(e) if e.kind() == ErrorKind::Transient && retries < 3 => retries += 1,
                other => return other,
            }
        }
    };
    let run = async {
        let plan = task(json!({"action": "begin", "registry": "national", "mode": mode})).await?;
        let mut state = json!({"plan": plan});
        let mut full = plan["mode"] == "full";
        if !full {
            let mut request = task(json!({"action": "submit", "registry": "national"})).await?;
            let applied = if request["submitted"] == "alreadyDownloadedToday" {
                // FetchSaved: the answer saved today.
                let fetched = task(json!({"action": "fetch", "registry": "national"})).await?;
                task(json!({"action": "apply", "registry": "national", "fileKey": fetched["fileKey"]}))
                    .await?
            } else {
                loop {
                    request = task(json!({"action": "poll", "registry": "national",
                        "fileToken": request["fileToken"], "polls": request["polls"]}))
                    .await?;
                    match request["poll"].as_str() {
                        Some("RequestPending") => continue,
                        Some("NoChanges") => {
                            break task(json!({"action": "noChanges", "registry": "national"}))
                                .await?
                        }
                        Some("RequestCompleted") => {
                            let fetched = task(json!({"action": "fetch", "registry": "national",
                                "fileToken": request["fileToken"]}))
                            .await?;
                            break task(json!({"action": "apply", "registry": "national",
                                "fileKey": fetched["fileKey"]}))
                            .await?;
                        }
                        other => panic!("UnknownPoll {other:?}"),
                    }
                }
            };
            full = applied["continuous"] == false;
            state["applied"] = applied;
        }
        if full {
            let files = task(json!({"action": "listFull", "registry": "national"})).await?;
            for file in files["files"].as_array().unwrap() {
                task(
                    json!({"action": "fetchFull", "registry": "national", "batch": plan["batch"],
                    "file": file}),
                )
                .await?;
            }
            state["import"] = task(json!({"action": "importFull", "registry": "national",
                "batch": plan["batch"], "areaCodes": files["areaCodes"]}))
            .await?;
        }
        Ok::<Value, dncflow::steps::StepError>(state)
    };
    let state = match run.await {
        Ok(state) => state,
        Err(e) => {
            let error = json!({"Error": e.error_name(),
                "Cause": json!({"errorType": e.error_name(), "errorMessage": e.report()}).to_string()});
            return Ended::Failed(
                ftc::record_failure(&rig.store, &input, &error, now)
                    .await
                    .unwrap(),
            );
        }
    };
    if let Some(marker) = state["import"]["marker"].as_str() {
        import_batch(rig, marker).await;
    }
    Ended::Succeeded(state)
}

/// `infra/registry-import.asl.json` on the batch of `marker`, through the registry function's steps.
async fn import_batch(rig: &Rig, marker: &str) {
    use dncflow::steps::registry::{run_task, RegistryTask};
    use serde_json::json;
    let event = json!({"source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": rig.bucket}, "object": {"key": marker}}});
    let begin: RegistryTask =
        serde_json::from_value(json!({"action": "begin", "event": event})).unwrap();
    let planned = run_task(&rig.store, &rig.bucket, &begin).await.unwrap();
    let plan = &planned["plan"];
    let plan = if plan.is_null() { &planned } else { plan };
    for key in rig
        .store
        .list(plan["prefix"].as_str().unwrap())
        .await
        .unwrap()
    {
        let part: RegistryTask =
            serde_json::from_value(json!({"action": "importPart", "plan": plan, "key": key}))
                .unwrap();
        run_task(&rig.store, &rig.bucket, &part).await.unwrap();
    }
    let assemble: RegistryTask =
        serde_json::from_value(json!({"action": "assemble", "plan": plan})).unwrap();
    run_task(&rig.store, &rig.bucket, &assemble).await.unwrap();
}

/// The "done when": a nightly run against the stand-in keeps a registry continuous for 40 simulated days
/// without a person. Day 1 finds no registry and downloads the full list; every night then runs the download
/// workflow at 05:30 as its schedule does, which downloads the change list, or the full list when it is a week old
/// or the last list was lost. Faults on some nights, each recovered from without a person: a SOAP fault and 503s
/// (retried), a damaged zip, a bad base64 and a connection reset after the file was counted (the night fails and is
/// recorded; the next night downloads the full list), an expired session (logged in again once), a refused login
/// (the night fails; the next list holds both days), 5 polls `RequestPending`, quiet days (`NoChanges`), a second run
/// the same day (the saved answer, no second download). Each night that succeeds: the registry holds exactly the
/// simulator's registry of the day before, is continuous through it, CURRENT, covers every subscribed area code, and
/// the failure recorded before is cleared; no night leaves it two days behind (the continuity alarm's threshold).
/// The subscription's renewal (day 60) comes within 30 days on day 29, as its alarm would say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_nights_against_the_stand_in_keep_the_registry_continuous_without_a_person() {
    const DAYS: u64 = 40;
    let days_ago = DAYS + 1;
    let start = Utc::now().date_naive() - Days::new(days_ago);
    let rig = Rig::started(
        SimConfig {
            numbers_per_area: 500,
            pending_polls: 1,
            quiet_days: (24..=26).map(|d| start + Days::new(d)).collect(),
            ..SimConfig::default()
        },
        days_ago,
    )
    .await;
    let session = Session::new(&rig.client, &rig.creds);
    let subscription = registry::Subscription::new(
        "SAN0026",
        &AREAS.into_iter().collect(),
        start + Days::new(60),
        Utc::now(),
    )
    .unwrap();
    registry::watch::declare_subscription(&rig.store, "national", &subscription)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // The nights that fail, and the code each names.
    let failing = |day: u64| match day {
        9 | 37 => Some("FileDamaged"),
        17 => Some("LoginFailed"),
        33 => Some("AlreadyDownloadedToday"),
        _ => None,
    };
    let (mut full_days, mut no_changes) = (Vec::new(), 0);
    for day in 1..=DAYS {
        rig.sim.sim.advance_days(1);
        let today = rig.sim.sim.today();
        let at = |h: u32, m: u32| today.and_hms_opt(h, m, 0).unwrap().and_utc();
        rig.sim.sim.set_faults(match day {
            3 => vec![fault("SubmitDeltaFileRequest", FaultKind::SoapFault, 1)],
            4 => vec![fault("Login", FaultKind::ServerError { status: 503 }, 4)],
            9 => vec![fault("GetDNCFileByUrl", FaultKind::CorruptCrc, 1)],
            17 => vec![code("Login", "LoginFailed", 1)],
            22 => vec![code("GetDeltaFileRequestStatus", "RequestPending", 5)],
            33 => vec![fault("GetDNCFileByUrl", FaultKind::Reset, 1)],
            37 => vec![fault("GetDNCFileByUrl", FaultKind::BadBase64, 1)],
            _ => Vec::new(),
        });
        let logins = session.logins();
        if day == 14 {
            rig.sim.sim.expire_sessions();
        }
        // A fault on Login needs a login: that night runs in a new container (a new session).
        let cold = Session::new(&rig.client, &rig.creds);
        let tonight = if matches!(day, 4 | 17) {
            &cold
        } else {
            &session
        };
        let nightly = execute(&rig, tonight, "changes", at(5, 30)).await;
        if day == 14 {
            assert_eq!(session.logins(), logins + 1, "logged in again once");
        }
        match (&nightly, failing(day)) {
            (Ended::Succeeded(state), None) => {
                if state.get("import").is_some() {
                    full_days.push(day);
                }
                if state["applied"]["changes"]["rows"] == 0
                    && state["applied"]["version"].is_string()
                {
                    no_changes += 1;
                }
                if day == 29 {
                    // Run again the same day: the answer saved this morning, no second download.
                    assert!(
                        state["applied"]["changes"]["rows"].as_u64() > Some(0),
                        "{state}"
                    );
                    let downloads = rig.sim.sim.count("GetDNCFileByUrl");
                    let again = execute(&rig, &session, "changes", at(7, 0)).await;
                    let Ended::Succeeded(again) = again else {
                        panic!("{again:?}")
                    };
                    assert_eq!(again["applied"]["alreadyApplied"], 1, "{again}");
                    assert_eq!(rig.sim.sim.count("GetDNCFileByUrl"), downloads);
                }
            }
            (Ended::Failed(f), Some(code)) => {
                assert_eq!(f.code(), code, "day {day}: {f:?}");
                assert_eq!(f.is_login_refusal(), day == 17);
            }
            other => panic!("day {day}: {other:?}"),
        }
        rig.sim.sim.set_faults(Vec::new());

        let status = registry::status(&rig.store, "national", at(7, 30))
            .await
            .unwrap()
            .expect("a registry from day 1");
        let behind = status.days_not_continuous.unwrap();
        assert!(
            behind < registry::watch::NOT_CONTINUOUS_ALARM_DAYS,
            "day {day}: {behind} days behind: {status:?}"
        );
        assert_eq!(status.status, registry::Freshness::Current, "day {day}");
        assert!(status.days_to_stale > registry::watch::STALE_WARNING_DAYS);
        assert!(status.gaps.is_empty(), "day {day}: {:?}", status.gaps);
        assert!(status.subscribed_not_covered.is_empty());
        assert_eq!(status.covered_area_codes, vec!["202", "415", "818"]);
        assert_eq!(status.last_full_download.len(), 3);
        assert_eq!(
            status.download_failure.is_some(),
            failing(day).is_some(),
            "day {day}"
        );
        if failing(day).is_none() {
            assert_eq!(behind, 0, "day {day}: {status:?}");
            assert!(status.continuous_through.unwrap() >= today - Days::new(1));
            // What the registry holds: the simulator's registry at the end of yesterday.
            assert_registry_matches(&rig, today - Days::new(1)).await;
        }
        // The renewal alarm's figure (the SAN renews on day 60): 30 whole days or fewer from day 29's morning on.
        let renewal = status.days_to_renewal.unwrap();
        assert_eq!(renewal, 59 - day as i64);
        assert_eq!(
            renewal <= registry::watch::RENEWAL_WARNING_DAYS,
            day >= 29,
            "day {day}: {renewal}"
        );
    }
    // Full downloads: the first day, the night after each lost list, and otherwise at most a week apart.
    for day in [1, 10, 34, 38] {
        assert!(
            full_days.contains(&day),
            "no full download on day {day}: {full_days:?}"
        );
    }
    assert!(
        full_days.windows(2).all(|w| w[1] - w[0] <= 8),
        "{full_days:?}"
    );
    assert!(no_changes >= 1, "a quiet night answered NoChanges");
    eprintln!(
        "{DAYS} simulated days in {:.1} s ({} SOAP calls; full downloads on days {full_days:?}; {no_changes} NoChanges)",
        started.elapsed().as_secs_f64(),
        rig.sim.sim.calls().len()
    );
}
