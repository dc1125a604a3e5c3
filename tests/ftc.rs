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
        let start = Utc::now().date_naive() - Days::new(10);
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
