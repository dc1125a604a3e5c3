//! Nothing received is ever `allowed` (issue 23's scenario, as a new user meets it): one list fed by several sources
//! against the simulator, which answers `allowed` for any number it does not hold. After a clean file, a file CXone
//! refused entries of, a file whose every write failed (run FAILED), a clean file of another source, a file of 60 %
//! expired rows and 40 % opt-outs, and a file of junk the gate refuses, every number the list was given is
//! `suppressed` (with its reason) or `error`: none is `allowed`.

use std::fs;
use std::path::Path;

use cxone_sim::{Endpoint, FaultKind, FaultRule, SimConfig};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::LocalStore;
use dncflow::local::{ensure_list, run_local, RunSettings, ScaledClock};
use dncflow::run::{Hold, RunReport, RunStatus, SourceIdentity};
use dncflow::steps::check::{check_with, CheckRequest, ContactIn, Verdict};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions, RunOutput};
use dncflow::steps::{load_local_knowledge, RunRef};
use dncflow_tests::sim_api;

const SCALE: f64 = 600.0;

fn normalize(dir: &Path, name: &str, text: &str, out: &Path) -> RunOutput {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    let source = SourceIdentity {
        path: Some(path.display().to_string()),
        ..Default::default()
    };
    normalize_to_dir(
        Box::new(fs::File::open(&path).unwrap()),
        source,
        &NormalizeOptions::new("optouts"),
        out,
        &mut |_| {},
    )
    .unwrap()
}

async fn run(api: &dyn DncApi, normalized: &RunOutput, out: &Path) -> RunReport {
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: normalized.manifest.list.clone(),
    };
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let clock = ScaledClock::new(SCALE);
    let mut say = |_: String| {};
    run_local(api, &store, &clock, &run, &RunSettings::default(), &mut say)
        .await
        .unwrap()
}

/// `count` numbers from `first` on (`+1 303 555 xxxx`), one a line, with an expiration column.
fn numbers(first: u32, count: u32) -> Vec<String> {
    (first..first + count)
        .map(|i| format!("+1303555{i:04}"))
        .collect()
}

fn csv(rows: &[(String, &str)]) -> String {
    let mut text = String::from("phone,expires\n");
    for (n, e) in rows {
        text.push_str(&format!("{n},{e}\n"));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_number_received_is_suppressed_whatever_its_run_became() {
    let sim = cxone_sim::spawn(
        SimConfig {
            clock_scale: SCALE,
            entries_rate: 500.0,
            check_rate: 500.0,
            token_requests_per_minute: 1000,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = sim_api(&sim, 500.0).await;
    ensure_list(api.as_ref(), "optouts").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let future = "2031-01-01";
    let mut received: Vec<String> = Vec::new();

    // 1. A clean file.
    let clean = numbers(0, 100);
    let a = normalize(
        dir.path(),
        "a.csv",
        &csv(&clean
            .iter()
            .map(|n| (n.clone(), future))
            .collect::<Vec<_>>()),
        &out,
    );
    assert_eq!(run(api.as_ref(), &a, &out).await.status, RunStatus::Success);
    received.extend(clean);

    // 2. A file of which CXone refuses entries (dead letters): SUCCESS, with dead letters.
    sim.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind: FaultKind::RejectEntries {
            code: "INVALID_PHONE_NUMBER".into(),
            per_entry: 0.2,
        },
        probability: 1.0,
        after: 0,
        count: None,
    }]);
    let refused_by_cxone = numbers(1000, 100);
    let b = normalize(
        dir.path(),
        "b.csv",
        &csv(&refused_by_cxone
            .iter()
            .map(|n| (n.clone(), future))
            .collect::<Vec<_>>()),
        &out,
    );
    let report = run(api.as_ref(), &b, &out).await;
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    assert!(report.upload.rejected > 0, "{report:?}");
    let dead_letters = report.upload.rejected;
    received.extend(refused_by_cxone);

    // 3. A file whose every write fails: FAILED.
    sim.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind: FaultKind::ServerError { status: 503 },
        probability: 1.0,
        after: 0,
        count: None,
    }]);
    let failed = numbers(2000, 200);
    let c = normalize(
        dir.path(),
        "c.csv",
        &csv(&failed
            .iter()
            .map(|n| (n.clone(), future))
            .collect::<Vec<_>>()),
        &out,
    );
    let report = run(api.as_ref(), &c, &out).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    received.extend(failed.clone());
    sim.sim.set_faults(Vec::new());
    // A new client, as a later execution's Lambdas have (the failed run opened this one's breaker).
    let api = sim_api(&sim, 500.0).await;

    // 4. A clean file from another source: SUCCESS (the earlier dead letters and the failed run's numbers stay).
    let other = numbers(3000, 100);
    let d = normalize(
        dir.path(),
        "other-source.csv",
        &csv(&other
            .iter()
            .map(|n| (n.clone(), future))
            .collect::<Vec<_>>()),
        &out,
    );
    let report = run(api.as_ref(), &d, &out).await;
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    received.extend(other);

    // 5. 60 % expired rows, 40 % opt-outs: not junk, uploaded, SUCCESS.
    let mut rows: Vec<(String, &str)> = numbers(4000, 60)
        .into_iter()
        .map(|n| (n, "2020-01-01"))
        .collect();
    let valid = numbers(4100, 40);
    rows.extend(valid.iter().map(|n| (n.clone(), future)));
    let e = normalize(dir.path(), "expired.csv", &csv(&rows), &out);
    assert_eq!(e.manifest.counts.reject_reasons.get("EXPIRED"), Some(&60));
    let report = run(api.as_ref(), &e, &out).await;
    assert_eq!(report.status, RunStatus::Success, "{report:?}");
    received.extend(valid);

    // 6. A file of junk (60 of 100 rows not numbers): refused before upload; its 40 numbers are still received.
    let mut junk: Vec<(String, &str)> = (0..60).map(|i| (format!("junk{i}"), future)).collect();
    let kept = numbers(5000, 40);
    junk.extend(kept.iter().map(|n| (n.clone(), future)));
    let f = normalize(dir.path(), "junk.csv", &csv(&junk), &out);
    let report = run(api.as_ref(), &f, &out).await;
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    assert!(
        report.reason.as_deref().unwrap_or("").contains("refused"),
        "{report:?}"
    );
    received.extend(kept.clone());

    // The check, as the Lambda answers it: the list's received numbers and verified snapshot, then CXone.
    let store = LocalStore { root: out.clone() };
    let knowledge = load_local_knowledge(&store, &["optouts".to_string()])
        .await
        .unwrap();
    assert_eq!(knowledge.incomplete, None);
    let counts = knowledge.received[0].counts();
    assert_eq!(counts.dead_letters, dead_letters, "{counts:?}");
    assert_eq!(counts.run_failed, 200, "{counts:?}");
    assert_eq!(counts.refused_file, 40, "{counts:?}");
    assert_eq!(counts.pending_propagation, 0, "{counts:?}");
    let request = CheckRequest {
        contacts: received
            .iter()
            .map(|n| ContactIn {
                phone_number: n.clone(),
                region_code: None,
                state: None,
            })
            .collect(),
        list_ids: None,
        at: None,
        call_type: None,
    };
    let now = chrono::Utc::now();
    let response = check_with(
        Some(api.as_ref()),
        &request,
        knowledge.answers_for(Some(api.as_ref()), now, None),
        4,
    )
    .await;
    let allowed: Vec<&str> = response
        .results
        .iter()
        .filter(|r| r.status == Verdict::Allowed)
        .map(|r| r.input.as_str())
        .collect();
    assert!(
        allowed.is_empty(),
        "{} received numbers answered allowed: {allowed:?}",
        allowed.len()
    );
    assert_eq!(response.metrics.suppressed, received.len());
    let reason = |n: &str| {
        response
            .results
            .iter()
            .find(|r| r.input == n)
            .unwrap()
            .reason
            .clone()
    };
    assert_eq!(
        reason(&failed[0]),
        format!("run-failed:{}", c.manifest.run_id)
    );
    assert_eq!(
        reason(&kept[0]),
        format!("refused-file:{}", f.manifest.run_id)
    );
    let dead = knowledge.received[0].numbers_of(None, Some(Hold::DeadLetter));
    assert_eq!(dead.len() as u64, dead_letters);
    assert!(dead.iter().all(|n| reason(n) == "dead-letter"));
    // The status counts the dead letters carried forward, across the other source's success.
    let status: dncflow::run::ListStatus =
        serde_json::from_slice(&fs::read(out.join("status/optouts/latest.json")).unwrap()).unwrap();
    assert_eq!(status.dead_letters, dead_letters, "{status:?}");
    assert_eq!(status.received_not_held.run_failed, 200, "{status:?}");

    // An operator removes the dead letters with a recorded reason: they leave the document, are recorded, and the
    // check answers them as CXone does (it holds none of them).
    let removed = dncflow::steps::remove_received(
        &store,
        "optouts",
        &dncflow::steps::RemovalTarget::Run {
            run_id: b.manifest.run_id.clone(),
            hold: Some(Hold::DeadLetter),
        },
        "numbers disconnected, confirmed with the carrier",
        "tester",
        now,
    )
    .await
    .unwrap();
    assert_eq!(removed.len() as u64, dead_letters);
    let log = fs::read_to_string(out.join("status/optouts/operator.jsonl")).unwrap();
    assert_eq!(log.lines().count() as u64, dead_letters);
    assert!(
        log.contains("\"was\":\"dead-letter\"") && log.contains("disconnected"),
        "{log}"
    );
    let status: dncflow::run::ListStatus =
        serde_json::from_slice(&fs::read(out.join("status/optouts/latest.json")).unwrap()).unwrap();
    assert_eq!(status.dead_letters, 0, "{status:?}");
}
