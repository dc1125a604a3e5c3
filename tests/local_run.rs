//! The whole job on one machine: normalize, then upload → cooldown → reconcile → canary against the simulator, with
//! faults, re-runs, and a list that suppresses nothing.

use dncflow_tests::sim_client;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig};
use dncflow::cxone::v2::V2Client;
use dncflow::cxone::DncApi;
use dncflow::normalize::{normalize_to_dir, NormalizeOptions, RunOutput};
use dncflow::orchestrate::{
    ensure_list, run_pipeline, ListStatus, RunFiles, RunReport, RunSettings, ScaledClock,
};
use dncflow::pipeline::fetch_all_entries;
use dncflow::run::SourceIdentity;

const SCALE: f64 = 600.0;

fn input(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("phone,expires\n");
    for i in 0..1_500 {
        text.push_str(&format!(
            "(202) {:03}-{:04},2031-01-01\n",
            200 + i / 10_000,
            2000 + i
        ));
    }
    text.push_str("(202) 200-2000,\n555-0100,\nnot a number,\n");
    let p = dir.join("dnc.csv");
    fs::write(&p, text).unwrap();
    p
}

fn normalize(path: &Path, out: &Path, list: &str) -> RunOutput {
    let source = SourceIdentity {
        path: Some(path.display().to_string()),
        ..Default::default()
    };
    normalize_to_dir(
        Box::new(fs::File::open(path).unwrap()),
        source,
        &NormalizeOptions::new(list),
        out,
        &mut |_| {},
    )
    .unwrap()
}

async fn sim(faults: Vec<FaultRule>) -> RunningSim {
    let config = SimConfig {
        clock_scale: SCALE,
        entries_rate: 500.0,
        check_rate: 500.0,
        token_requests_per_minute: 1000,
        faults,
        ..SimConfig::default()
    };
    cxone_sim::spawn(config, 0).await.unwrap()
}

fn client(s: &RunningSim) -> V2Client {
    sim_client(s, 500.0)
}

fn settings() -> RunSettings {
    RunSettings {
        canary_interval: Duration::from_secs(30),
        ..RunSettings::default()
    }
}

async fn run(s: &RunningSim, api: &V2Client, normalized: &RunOutput, out: &Path) -> RunReport {
    let list = ensure_list(api, &normalized.manifest.list).await.unwrap();
    let clock = ScaledClock::new(SCALE);
    let mut lines = Vec::new();
    let mut say = |l: String| lines.push(l);
    let report = run_pipeline(
        api,
        &clock,
        &files(normalized, out),
        &list,
        &settings(),
        &mut say,
    )
    .await
    .unwrap();
    let _ = s;
    report
}

fn files<'a>(run: &'a RunOutput, out: &'a Path) -> RunFiles<'a> {
    RunFiles {
        manifest: &run.manifest,
        run_dir: &run.dir,
        out_root: out,
    }
}

fn accepted_numbers(run: &RunOutput) -> BTreeSet<String> {
    run.manifest
        .shards
        .iter()
        .flat_map(|s| {
            fs::read_to_string(run.dir.join(&s.key))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(&l).unwrap()["phoneNumber"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn status(out: &Path, list: &str) -> ListStatus {
    serde_json::from_slice(&fs::read(out.join("status").join(list).join("latest.json")).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_faults_ends_success_with_exactly_the_expected_entries_and_a_rerun_adds_nothing()
{
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "national");
    let c = &normalized.manifest.counts;
    assert_eq!(
        (c.rows, c.accepted, c.duplicates, c.rejected),
        (1503, 1500, 1, 2)
    );
    let s = sim(vec![
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::LoseWrites { per_entry: 0.1 },
            probability: 1.0,
            after: 2,
            count: Some(3),
        },
        FaultRule {
            endpoint: Endpoint::Any,
            kind: FaultKind::ServerError { status: 503 },
            probability: 0.1,
            after: 0,
            count: None,
        },
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::TooManyRequests { retry_after: None },
            probability: 0.1,
            after: 0,
            count: None,
        },
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::AppliedThen503,
            probability: 1.0,
            after: 5,
            count: Some(1),
        },
    ])
    .await;
    let api = client(&s);
    let report = run(&s, &api, &normalized, &out).await;
    assert!(report.success(), "{report:?}");
    assert!(
        report.upload.reuploaded > 0,
        "lost writes were found and re-uploaded"
    );
    assert!(report.reconcile_rounds >= 2);
    assert_eq!(
        (report.expected, report.found, report.missing),
        (1500, 1500, 0)
    );

    // The simulator holds exactly the accepted numbers, once each.
    let list = api.find_list("national").await.unwrap().unwrap();
    let held: BTreeSet<String> = fetch_all_entries(&api, &list.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.phone_number)
        .collect();
    assert_eq!(held, accepted_numbers(&normalized));
    assert_eq!(s.sim.state()["duplicates"], 0);
    let st = status(&out, "national");
    assert_eq!((st.status.as_str(), st.verified_entries), ("SUCCESS", 1500));
    assert!(
        normalized.dir.join("report.md").exists() && normalized.dir.join("ledger.jsonl").exists()
    );

    // A second run of the same input adds nothing.
    s.sim.set_faults(vec![]);
    let again = normalize(&input(dir.path()), &out, "national");
    assert_eq!(again.manifest.run_id, normalized.manifest.run_id);
    let report = run(&s, &api, &again, &out).await;
    assert!(report.success());
    assert_eq!(s.sim.state()["entries"], 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_without_a_suppressing_rule_ends_failed_keeping_the_last_good_status() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "state-tx");
    let s = sim(vec![]).await;
    let api = client(&s);
    let good = run(&s, &api, &normalized, &out).await;
    assert!(good.success());

    // Someone deactivates the rule: the list now suppresses nothing.
    let list = api.find_list("state-tx").await.unwrap().unwrap();
    let mut rule = api
        .rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.list_ids.contains(&list.id))
        .unwrap();
    rule.is_active = false;
    api.update_rule(&rule.id.clone(), &rule).await.unwrap();
    let clock = ScaledClock::new(SCALE);
    let mut say = |_: String| {};
    let report = run_pipeline(
        &api,
        &clock,
        &files(&normalized, &out),
        &list,
        &settings(),
        &mut say,
    )
    .await
    .unwrap();
    assert!(!report.success());
    let reason = report.reason.clone().unwrap();
    assert!(
        reason.contains("no active BLOCK rule") && reason.contains("NotSuppressing"),
        "{reason}"
    );
    let st = status(&out, "state-tx");
    assert_eq!(st.status, "FAILED");
    assert_eq!(
        st.last_success.unwrap().run_id,
        good.run_id,
        "the last known good run is kept"
    );
}
