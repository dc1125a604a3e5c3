//! The whole job on one machine (`dncctl run`): normalize, then the state machine's loop over the stage functions
//! (upload → cooldown and canary → reconcile, re-uploads, failure recording) against the simulator, with a local
//! directory as the bucket: faults, re-runs, and a list that suppresses nothing.

use dncflow_tests::{both_dialects, sim_api};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig, SimDialect};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::eventbridge::NoNotifier;
use dncflow::adapters::store::{LocalStore, ObjectStore};
use dncflow::local::{ensure_list, run_local, RunSettings, ScaledClock};
use dncflow::run::canary::CanaryProbe;
use dncflow::run::{ListStatus, RunReport, SourceIdentity};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions, RunOutput};
use dncflow::steps::reconcile::fetch_all_entries;
use dncflow::steps::{
    reconcile_stage, upload_stage, ReconcileTask, RunRef, ShardTask, UploadSettings,
};

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

async fn sim(dialect: SimDialect, faults: Vec<FaultRule>) -> RunningSim {
    let config = SimConfig {
        dialect,
        clock_scale: SCALE,
        entries_rate: 500.0,
        check_rate: 500.0,
        token_requests_per_minute: 1000,
        faults,
        ..SimConfig::default()
    };
    cxone_sim::spawn(config, 0).await.unwrap()
}

/// A simulator on the wall clock (entries propagate in 60–120 real seconds), for what happens before they do.
async fn wall_clock_sim(dialect: SimDialect) -> RunningSim {
    let config = SimConfig {
        dialect,
        entries_rate: 500.0,
        check_rate: 500.0,
        ..SimConfig::default()
    };
    cxone_sim::spawn(config, 0).await.unwrap()
}

async fn client(s: &RunningSim) -> Box<dyn DncApi> {
    sim_api(s, 500.0).await
}

/// `dncctl run`'s loop over the stages for `normalized`, with `out` as the bucket.
async fn run_stages(api: &dyn DncApi, normalized: &RunOutput, out: &Path) -> RunReport {
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

async fn run(api: &dyn DncApi, normalized: &RunOutput, out: &Path) -> RunReport {
    ensure_list(api, &normalized.manifest.list).await.unwrap();
    run_stages(api, normalized, out).await
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

both_dialects!(
    a_run_with_faults_ends_success_with_exactly_the_expected_entries_and_a_rerun_adds_nothing
);
async fn a_run_with_faults_ends_success_with_exactly_the_expected_entries_and_a_rerun_adds_nothing(
    dialect: SimDialect,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "national");
    let c = &normalized.manifest.counts;
    assert_eq!(
        (c.rows, c.accepted, c.duplicates, c.rejected),
        (1503, 1500, 1, 2)
    );
    let s = sim(
        dialect,
        vec![
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
        ],
    )
    .await;
    let api = client(&s).await;
    let api = api.as_ref();
    let report = run(api, &normalized, &out).await;
    assert!(report.success(), "{report:?}");
    assert!(
        report.upload.reuploaded > 0,
        "lost writes were found and re-uploaded: {report:?} {}",
        s.sim.state()
    );
    assert!(report.reconcile_rounds >= 2);
    assert_eq!(
        (report.expected, report.found, report.missing),
        (1500, 1500, 0)
    );

    // The simulator holds exactly the accepted numbers, once each.
    let list = api.find_list("national").await.unwrap().unwrap();
    let held: BTreeSet<String> = fetch_all_entries(api, &list.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.phone_number)
        .collect();
    assert_eq!(held, accepted_numbers(&normalized));
    assert_eq!(s.sim.state()["duplicates"], 0);
    let st = status(&out, "national");
    assert_eq!((st.status.as_str(), st.verified_entries), ("SUCCESS", 1500));
    // The run directory holds what the Lambdas write to S3: report, suppression snapshot, the re-upload shard and
    // the ledger segments of every round.
    for file in [
        "report.md",
        "report.json",
        "snapshot.txt",
        "dead-letters.jsonl",
        "reupload/001.jsonl",
    ] {
        assert!(normalized.dir.join(file).exists(), "{file} was not written");
    }
    assert!(normalized.dir.join("ledger/0").is_dir() && normalized.dir.join("ledger/1").is_dir());

    // A second run of the same input adds nothing.
    s.sim.set_faults(vec![]);
    let again = normalize(&input(dir.path()), &out, "national");
    assert_eq!(again.manifest.run_id, normalized.manifest.run_id);
    assert!(run(api, &again, &out).await.success());
    assert_eq!(s.sim.state()["entries"], 1500);

    // The next export holds the same numbers (another file, another run): nothing is created. v2 answers every
    // entry `exists`; the Admin API, which has no idempotency keys, is not even written to: the list's verified
    // read-back holds every number.
    let writes = |s: &RunningSim| {
        s.sim
            .requests()
            .iter()
            .filter(|r| {
                r.method == "POST" && (r.path.ends_with("/records") || r.path.ends_with("/entries"))
            })
            .count()
    };
    let before = writes(&s);
    let next = dir.path().join("next.csv");
    fs::write(&next, fs::read_to_string(input(dir.path())).unwrap() + "\n").unwrap();
    let next = normalize(&next, &out, "national");
    assert_ne!(next.manifest.run_id, normalized.manifest.run_id);
    let report = run(api, &next, &out).await;
    assert!(report.success(), "{report:?}");
    assert_eq!(
        (report.upload.created, report.upload.exists),
        (0, 1500),
        "{report:?}"
    );
    assert_eq!(s.sim.state()["entries"], 1500);
    if dialect == SimDialect::Admin {
        assert_eq!(writes(&s), before, "no record written again");
    }
}

both_dialects!(a_run_above_cxone_capacity_fails_capacity_exceeded_writing_nothing);
/// A registry-sized file dropped for a CXone list: refused before the first write (CXone holds 1,000,000 records),
/// the status FAILED naming the figures, nothing on the list, no number marked propagating.
async fn a_run_above_cxone_capacity_fails_capacity_exceeded_writing_nothing(dialect: SimDialect) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "too-big");
    let s = sim(dialect, vec![]).await;
    let api = client(&s).await;
    let api = api.as_ref();
    ensure_list(api, "too-big").await.unwrap();
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: "too-big".into(),
    };
    let store = LocalStore { root: out.clone() };
    let settings = RunSettings {
        capacity: 1000,
        ..RunSettings::default()
    };
    let mut say = |_: String| {};
    let report = run_local(
        api,
        &store,
        &ScaledClock::new(SCALE),
        &run,
        &settings,
        &mut say,
    )
    .await
    .unwrap();
    assert!(!report.success());
    let reason = report.reason.clone().unwrap();
    assert!(
        reason.contains("CapacityExceeded")
            && reason.contains("1500 entries")
            && reason.contains("1000 records"),
        "{reason}"
    );
    assert_eq!(status(&out, "too-big").status, "FAILED");
    assert_eq!(s.sim.state()["entries"], 0, "nothing was written");
    assert!(!out.join("status/too-big/uploading.json").exists());
}

both_dialects!(the_capacity_guard_counts_what_the_environment_holds);
/// The cap counts what the environment holds: a run that fits alone is refused, writing nothing, when the lists
/// (and, on the Admin API, the calling lists) already hold enough; a re-run of numbers the list holds adds nothing
/// and is not refused.
async fn the_capacity_guard_counts_what_the_environment_holds(dialect: SimDialect) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = cxone_sim::spawn(
        SimConfig {
            dialect,
            clock_scale: SCALE,
            entries_rate: 500.0,
            check_rate: 500.0,
            token_requests_per_minute: 1000,
            calling_list_records: 300,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = client(&s).await;
    let api = api.as_ref();
    let settings = RunSettings {
        capacity: 2000,
        ..RunSettings::default()
    };
    let store = LocalStore { root: out.clone() };
    let bucket = out.display().to_string();
    let go = |normalized: RunOutput| {
        let (store, settings, bucket) = (&store, &settings, bucket.clone());
        async move {
            ensure_list(api, &normalized.manifest.list).await.unwrap();
            let run = RunRef {
                bucket,
                run_id: normalized.manifest.run_id.clone(),
                list: normalized.manifest.list.clone(),
            };
            let mut say = |_: String| {};
            run_local(
                api,
                store,
                &ScaledClock::new(SCALE),
                &run,
                settings,
                &mut say,
            )
            .await
            .unwrap()
        }
    };
    let numbers = |name: &str, from: u32, n: u32| {
        let path = dir.path().join(name);
        // The file name in the header: the same numbers in two files make two runs.
        let text: String = std::iter::once(format!("phone,{name}\n"))
            .chain((from..from + n).map(|i| format!("303555{i:04}\n")))
            .collect();
        fs::write(&path, text).unwrap();
        path
    };
    let first = go(normalize(&numbers("a.csv", 0, 1500), &out, "optouts")).await;
    assert!(first.success(), "{first:?}");
    // The same numbers again, in another file: nothing new, so not refused although 1500 + 1500 > 2000.
    let again = go(normalize(&numbers("a2.csv", 0, 1500), &out, "optouts")).await;
    assert!(again.success(), "{again:?}");
    // 1000 new numbers for another list: 1500 held (+300 on calling lists for the Admin API) + 1000 > 2000.
    let refused = go(normalize(&numbers("b.csv", 5000, 1000), &out, "complaints")).await;
    assert!(!refused.success());
    let reason = refused.reason.clone().unwrap();
    assert!(
        reason.contains("CapacityExceeded")
            && reason.contains("1000 new entries")
            && reason.contains("cap of 2000"),
        "{reason}"
    );
    match dialect {
        SimDialect::V2 => assert!(
            reason.contains("2500 records") && reason.contains("not counted: calling lists"),
            "{reason}"
        ),
        SimDialect::Admin => assert!(
            reason.contains("2800 records") && reason.contains("300 on calling lists"),
            "{reason}"
        ),
    }
    let complaints = api.find_list("complaints").await.unwrap().unwrap();
    assert!(
        fetch_all_entries(api, &complaints.id)
            .await
            .unwrap()
            .is_empty(),
        "nothing was written"
    );
    assert_eq!(s.sim.state()["entries"], 1500);
}

both_dialects!(a_list_without_a_suppressing_rule_ends_failed_keeping_the_last_good_status);
async fn a_list_without_a_suppressing_rule_ends_failed_keeping_the_last_good_status(
    dialect: SimDialect,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "state-tx");
    let s = sim(dialect, vec![]).await;
    let api = client(&s).await;
    let api = api.as_ref();
    let good = run(api, &normalized, &out).await;
    assert!(good.success());

    // Someone deactivates the rule (v2) or unlinks the scrubbed skills (admin): the list now suppresses nothing.
    s.sim.unbind_outbound("state-tx");
    let report = run_stages(api, &normalized, &out).await;
    assert!(!report.success());
    let reason = report.reason.clone().unwrap();
    let why = match dialect {
        SimDialect::V2 => "no active BLOCK rule",
        SimDialect::Admin => "scrubbed by no active outbound skill",
    };
    assert!(
        reason.contains(why) && reason.contains("NotSuppressing"),
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

both_dialects!(
    a_lost_write_in_the_canary_is_reuploaded_not_taken_for_a_list_that_does_not_propagate
);
async fn a_lost_write_in_the_canary_is_reuploaded_not_taken_for_a_list_that_does_not_propagate(
    dialect: SimDialect,
) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "internal");
    // The first batch is answered `created` and stored nowhere. A shard holds ~94 of the 1,500 entries and the
    // canary takes every 75th, so at least one canary number is lost, whichever shard goes first.
    let s = sim(
        dialect,
        vec![FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::LoseWrites { per_entry: 1.0 },
            probability: 1.0,
            after: 0,
            count: Some(1),
        }],
    )
    .await;
    let api = client(&s).await;
    let api = api.as_ref();
    let report = run(api, &normalized, &out).await;
    assert!(report.success(), "{report:?}");
    assert!(report.upload.reuploaded > 0);
    assert_eq!(
        (report.expected, report.found, report.missing),
        (1500, 1500, 0)
    );

    // Round 0's cooldown handed the lost canary numbers over; round 1's canary (the re-upload) is all suppressed.
    let first: CanaryProbe =
        serde_json::from_slice(&fs::read(normalized.dir.join("canary/0.json")).unwrap()).unwrap();
    assert!(
        !first.pending.is_empty() && first.suppressed() > 0,
        "{first:?}"
    );
    let last = report.canary.clone().unwrap();
    assert!(last.propagated(), "{last:?}");
    assert_eq!(s.sim.state()["entries"], 1500);
}

/// Normalize three numbers and upload them (round 0) without waiting for propagation.
async fn uploaded_run(api: &dyn DncApi, dir: &Path, list: &str) -> (RunOutput, RunRef, LocalStore) {
    let path = dir.join("three.csv");
    fs::write(&path, "phone\n2025550101\n2025550102\n2025550103\n").unwrap();
    let out = dir.join("out");
    let normalized = normalize(&path, &out, list);
    ensure_list(api, list).await.unwrap();
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: list.to_string(),
    };
    let store = LocalStore { root: out };
    let settings = UploadSettings {
        budget: Duration::from_secs(60),
        concurrency: 1,
        capacity: dncflow::steps::CXONE_CAPACITY,
    };
    for shard in &normalized.manifest.shards {
        let task = ShardTask {
            run: run.clone(),
            shard_key: format!("runs/{}/{}", run.run_id, shard.key),
            round: 0,
            cursor: 0,
            offset: 0,
        };
        let done = upload_stage(api, &store, &task, &settings, chrono::Utc::now)
            .await
            .unwrap();
        assert!(done.done);
    }
    (normalized, run, store)
}

both_dialects!(reconcile_fails_not_propagated_for_a_handed_over_canary_number_on_the_list_that_does_not_suppress);
async fn reconcile_fails_not_propagated_for_a_handed_over_canary_number_on_the_list_that_does_not_suppress(
    dialect: SimDialect,
) {
    // Wall-clock simulator: entries take 60–120 s to propagate, so right after the upload they are on the list
    // and not suppressed.
    let s = wall_clock_sim(dialect).await;
    let api = client(&s).await;
    let api = api.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let (normalized, run, store) = uploaded_run(api, dir.path(), "slow").await;
    let task = ReconcileTask {
        run: run.clone(),
        round: 0,
        started_at: None,
        execution: None,
        clock_scale: None,
    };
    // What the cooldown records when it hands `pending` (of a 3-number canary) to reconcile.
    let hand_over = |pending: &[&str]| {
        let probe = CanaryProbe {
            probed: 3,
            pending: pending.iter().map(|n| n.to_string()).collect(),
            ..CanaryProbe::default()
        };
        let (store, key) = (&store, run.keys().canary(0));
        async move {
            store
                .put_bytes(&key, serde_json::to_vec(&probe).unwrap())
                .await
                .unwrap()
        }
    };

    // Handed over: one number CXone does not hold (a lost write) — not a propagation failure, and the run is clean.
    hand_over(&["+12025550199"]).await;
    let clean = reconcile_stage(api, &store, &NoNotifier, &task, 3, chrono::Utc::now)
        .await
        .unwrap();
    assert_eq!(clean.status, "SUCCESS", "{clean:?}");
    let report: RunReport =
        serde_json::from_slice(&fs::read(normalized.dir.join("report.json")).unwrap()).unwrap();
    let shown = report.canary.unwrap();
    assert_eq!((shown.probed, shown.suppressed), (3, 2));
    assert!(
        !shown.pending[0].contains("555019"),
        "report numbers are masked: {shown:?}"
    );

    // Handed over: a number that is on the list and still not suppressed — the list does not propagate.
    hand_over(&["+12025550102"]).await;
    let err = reconcile_stage(api, &store, &NoNotifier, &task, 3, chrono::Utc::now)
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "NotPropagated", "{err}");
    assert!(
        err.to_string()
            .contains("on the list and still not suppressed")
            && !err.to_string().contains("5550102"),
        "{err}"
    );
}

both_dialects!(an_existing_entry_that_expired_is_rewritten_by_the_reupload);
/// A number already on the list whose record expires after the upload answered `exists`: by reconcile it suppresses
/// nothing, so it is missing; the re-upload re-writes it (CXone replaces an expired record) and the run ends SUCCESS
/// with the record live again. (The Admin API's add extends the held record instead: live from the first round.)
async fn an_existing_entry_that_expired_is_rewritten_by_the_reupload(dialect: SimDialect) {
    use dncflow::adapters::cxone::{idempotency_key, EntryInput, EntryOutcome};
    let s = wall_clock_sim(dialect).await;
    let api = client(&s).await;
    let api = api.as_ref();
    let list = ensure_list(api, "stale").await.unwrap();
    // On the list before the run, expiring in three seconds.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let seeded = api
        .upload_batch(
            &list.id,
            &[EntryInput {
                phone_number: "+12025550101".into(),
                jurisdiction: "US-DC".into(),
                expiration_date: Some(soon),
                source: "an older file".into(),
                idempotency_key: idempotency_key(&list.id, "+12025550101", "older"),
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(seeded[0], EntryOutcome::Created { .. }),
        "{seeded:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_, run, store) = uploaded_run(api, dir.path(), "stale").await;
    // A few seconds later (by CXone's clock and ours) the old record has expired.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reconcile = |round: u32| ReconcileTask {
        run: run.clone(),
        round,
        started_at: None,
        execution: None,
        clock_scale: None,
    };
    let first = reconcile_stage(api, &store, &NoNotifier, &reconcile(0), 3, chrono::Utc::now)
        .await
        .unwrap();
    if dialect == SimDialect::Admin {
        // The Admin API's add of a number the group holds extends its expiration in place (an upsert): the record
        // was live again before it could lapse, and the first reconcile finds it.
        assert_eq!(first.status, "SUCCESS", "{first:?}");
    } else {
        assert_eq!(
            (first.status.as_str(), first.missing),
            ("REUPLOAD", 1),
            "{first:?}"
        );
        let up = upload_stage(
            api,
            &store,
            &ShardTask {
                run: run.clone(),
                shard_key: first.shard_keys[0].clone(),
                round: 1,
                cursor: 0,
                offset: 0,
            },
            &UploadSettings {
                budget: Duration::from_secs(60),
                concurrency: 1,
                capacity: dncflow::steps::CXONE_CAPACITY,
            },
            chrono::Utc::now,
        )
        .await
        .unwrap();
        assert_eq!(up.created, 1, "the expired record was re-written: {up:?}");
        let second = reconcile_stage(api, &store, &NoNotifier, &reconcile(1), 3, chrono::Utc::now)
            .await
            .unwrap();
        assert_eq!(second.status, "SUCCESS", "{second:?}");
    }
    let held = fetch_all_entries(api, &list.id).await.unwrap();
    let record = held
        .iter()
        .find(|e| e.phone_number == "+12025550101")
        .unwrap();
    // No expiration (the Admin API's `expiredDate: null`) never lapses.
    let expires: Option<chrono::DateTime<chrono::Utc>> = record
        .expiration_date
        .as_deref()
        .map(|d| d.parse().unwrap());
    assert!(
        expires.is_none_or(|e| e > chrono::Utc::now() + chrono::Duration::days(365)),
        "live again: {record:?}"
    );
    assert_eq!(held.len(), 3, "no duplicate record");
}

both_dialects!(a_resumed_upload_reads_from_its_offset_and_loses_nothing);
/// A resumed upload reads its shard from the cursor's byte offset (not the whole shard again), and the invocations
/// together upload every entry exactly once.
async fn a_resumed_upload_reads_from_its_offset_and_loses_nothing(dialect: SimDialect) {
    let s = cxone_sim::spawn(
        SimConfig {
            dialect,
            entries_rate: 2000.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = client(&s).await;
    let api = api.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.csv");
    let text: String = std::iter::once("phone\n".to_string())
        .chain((0..350).map(|i| format!("202555{i:04}\n")))
        .collect();
    fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    let mut options = NormalizeOptions::new("resume");
    options.shard_count = 1;
    let normalized = normalize_to_dir(
        Box::new(fs::File::open(&path).unwrap()),
        SourceIdentity {
            path: Some(path.display().to_string()),
            ..Default::default()
        },
        &options,
        &out,
        &mut |_| {},
    )
    .unwrap();
    ensure_list(api, "resume").await.unwrap();
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: "resume".into(),
    };
    let store = LocalStore { root: out };
    // A budget that lets each invocation send one batch of 100.
    let settings = UploadSettings {
        budget: Duration::from_millis(1),
        concurrency: 1,
        capacity: dncflow::steps::CXONE_CAPACITY,
    };
    let mut task = ShardTask {
        run: run.clone(),
        shard_key: format!("runs/{}/{}", run.run_id, normalized.manifest.shards[0].key),
        round: 0,
        cursor: 0,
        offset: 0,
    };
    let mut offsets = Vec::new();
    let mut created = 0;
    loop {
        let up = upload_stage(api, &store, &task, &settings, chrono::Utc::now)
            .await
            .unwrap();
        created += up.created;
        assert_eq!(up.entries, 350);
        if up.done {
            break;
        }
        offsets.push(up.task.offset);
        task = up.task;
    }
    assert_eq!(
        offsets.len(),
        3,
        "350 entries in batches of 100: {offsets:?}"
    );
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert_eq!(created, 350, "every entry once");
    assert_eq!(s.sim.state()["entries"], 350);
}

/// A client of the simulator's dialect with the given request policy (short backoffs, as every test client).
async fn client_with(
    s: &RunningSim,
    config: dncflow::adapters::cxone::v2::ClientConfig,
) -> Box<dyn DncApi> {
    use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
    let creds = Credentials::from_json(&s.credentials_document(), "simulator").unwrap();
    dncflow::adapters::cxone::connect(Box::new(StaticCredentials(creds)), config)
        .await
        .unwrap()
}

fn twenty_thousand(dir: &Path) -> std::path::PathBuf {
    let text: String = std::iter::once("phone\n".to_string())
        .chain((0..20_000).map(|i| format!("(303) {:03}-{:04}\n", 200 + i / 10_000, i % 10_000)))
        .collect();
    let p = dir.join("twenty-thousand.csv");
    fs::write(&p, text).unwrap();
    p
}

fn faults(endpoint: Endpoint, kind: FaultKind, probability: f64) -> FaultRule {
    FaultRule {
        endpoint,
        kind,
        probability,
        after: 0,
        count: None,
    }
}

both_dialects!(a_degraded_service_is_not_a_dead_one);
/// Heavy but partial faults (15 % 5xx, 5 % resets, 15 % of writes applied then answered 503, 3 % of answers 1.5 s
/// late), 4 requests in flight, 20,000 entries: the request policy's retries absorb them, the breaker (judged on
/// requests that failed after their retries) never stops the run, and it ends SUCCESS with exactly the 20,000
/// numbers on the list, once each.
async fn a_degraded_service_is_not_a_dead_one(dialect: SimDialect) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&twenty_thousand(dir.path()), &out, "degraded");
    assert_eq!(normalized.manifest.counts.accepted, 20_000);
    let s = sim(dialect, vec![]).await;
    let api = client(&s).await;
    let api = api.as_ref();
    ensure_list(api, "degraded").await.unwrap();
    s.sim.set_faults(vec![
        faults(Endpoint::Any, FaultKind::ServerError { status: 503 }, 0.15),
        faults(Endpoint::Any, FaultKind::Reset, 0.05),
        faults(Endpoint::EntriesPost, FaultKind::AppliedThen503, 0.15),
        faults(Endpoint::Any, FaultKind::Slow { ms: 1500 }, 0.03),
    ]);
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: "degraded".into(),
    };
    let store = LocalStore { root: out.clone() };
    let settings = RunSettings {
        workers: 2,
        concurrency: 2,
        ..RunSettings::default()
    };
    let started = std::time::Instant::now();
    let mut say = |_: String| {};
    let report = run_local(
        api,
        &store,
        &ScaledClock::new(SCALE),
        &run,
        &settings,
        &mut say,
    )
    .await
    .unwrap();
    eprintln!(
        "{dialect:?}: 20,000 entries under partial faults in {:.1} s, {} requests",
        started.elapsed().as_secs_f64(),
        s.sim.requests().len()
    );
    assert!(report.success(), "{report:?}");
    assert_eq!(
        (report.expected, report.found, report.missing),
        (20_000, 20_000, 0)
    );
    s.sim.set_faults(vec![]);
    let list = api.find_list("degraded").await.unwrap().unwrap();
    let held: BTreeSet<String> = fetch_all_entries(api, &list.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.phone_number)
        .collect();
    assert_eq!(held, accepted_numbers(&normalized));
    assert_eq!(s.sim.state()["duplicates"], 0);
    assert_eq!(status(&out, "degraded").status, "SUCCESS");
}

both_dialects!(a_service_that_is_down_ends_failed_fast);
/// A service that answers nothing but 503: requests fail after their retries, the fifth opens the breaker, nothing
/// is sent while it is open, the half-open trials fail, and once it stays open past the request's deadline the run
/// ends FAILED `CircuitOpen`, the last known good status kept, in seconds.
async fn a_service_that_is_down_ends_failed_fast(dialect: SimDialect) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let normalized = normalize(&input(dir.path()), &out, "down");
    let s = sim(dialect, vec![]).await;
    let api = client_with(
        &s,
        dncflow::adapters::cxone::v2::ClientConfig {
            rate_per_sec: 500.0,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_attempts: 3,
            deadline: Duration::from_secs(2),
            breaker_cool_off: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let api = api.as_ref();
    let good = run(api, &normalized, &out).await;
    assert!(good.success());
    s.sim.set_faults(vec![faults(
        Endpoint::Any,
        FaultKind::ServerError { status: 503 },
        1.0,
    )]);
    let next = normalize(&twenty_thousand(dir.path()), &out, "down");
    let started = std::time::Instant::now();
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: next.manifest.run_id.clone(),
        list: "down".into(),
    };
    let store = LocalStore { root: out.clone() };
    let mut say = |_: String| {};
    let report = run_local(
        api,
        &store,
        &ScaledClock::new(SCALE),
        &run,
        &RunSettings::default(),
        &mut say,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    eprintln!(
        "{dialect:?}: down service FAILED after {:.1} s",
        took.as_secs_f64()
    );
    assert!(!report.success());
    let reason = report.reason.clone().unwrap();
    assert!(reason.contains("CircuitOpen"), "{reason}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    let st = status(&out, "down");
    assert_eq!(st.status, "FAILED");
    assert!(st.last_success.is_some(), "the last known good is kept");
}

/// One run through the stages on the caller's clock (`now`: the simulator's clock, which the test moves): receive is
/// skipped (the check is not under test), upload every shard, reconcile until it publishes.
async fn run_on_clock(
    api: &dyn DncApi,
    normalized: &RunOutput,
    out: &Path,
    now: &(dyn Fn() -> chrono::DateTime<chrono::Utc> + Sync),
) -> dncflow::steps::ReconcileOutput {
    let run = RunRef {
        bucket: out.display().to_string(),
        run_id: normalized.manifest.run_id.clone(),
        list: normalized.manifest.list.clone(),
    };
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let settings = UploadSettings {
        budget: Duration::from_secs(60),
        concurrency: 1,
        capacity: dncflow::steps::CXONE_CAPACITY,
    };
    let mut shards: Vec<String> = normalized
        .manifest
        .shards
        .iter()
        .map(|s| format!("runs/{}/{}", run.run_id, s.key))
        .collect();
    for round in 0..3 {
        for shard_key in &shards {
            let task = ShardTask {
                run: run.clone(),
                shard_key: shard_key.clone(),
                round,
                cursor: 0,
                offset: 0,
            };
            assert!(
                upload_stage(api, &store, &task, &settings, now)
                    .await
                    .unwrap()
                    .done
            );
        }
        let task = ReconcileTask {
            run: run.clone(),
            round,
            started_at: None,
            execution: None,
            clock_scale: None,
        };
        let out = reconcile_stage(api, &store, &NoNotifier, &task, 3, now)
            .await
            .unwrap();
        if out.status != "REUPLOAD" {
            return out;
        }
        shards = out.shard_keys.clone();
    }
    unreachable!("three rounds at most")
}

/// The Admin API's lists heal themselves. A held number is skipped only when CXone holds it at least as long as the
/// file asks: a newer file extending its expiration (2027 → 2028) sends it again and the upsert renews it; a record
/// that expired on the simulator's clock is sent again on the next run. Re-uploads keep each entry's own source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_heal_renewed_and_expired_numbers_are_sent_again() {
    let s = cxone_sim::spawn(
        SimConfig {
            dialect: SimDialect::Admin,
            propagation_secs: (0, 0),
            entries_rate: 500.0,
            check_rate: 500.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = client(&s).await;
    let api = api.as_ref();
    let list = ensure_list(api, "heal").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Record writes (token requests are POSTs too).
    let writes = |s: &RunningSim| {
        s.sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/records"))
            .count()
    };
    let file = |name: &str, expires: &str| {
        let p = dir.path().join(name);
        let rows: String = (0..20)
            .map(|i| format!("202555{:04},{expires},\n", 1000 + i))
            .collect();
        // The file's name in the header: the same rows in two files make two runs (a run is its content).
        fs::write(&p, format!("phone,expires,{name}\n{rows}")).unwrap();
        normalize(&p, &out, "heal")
    };
    // The simulator's clock, which the test moves: the stages judge expirations on the same clock.
    let offset = std::sync::Arc::new(std::sync::Mutex::new(chrono::Duration::zero()));
    let o = offset.clone();
    let now = move || chrono::Utc::now() + *o.lock().unwrap();
    let held = |entries: Vec<dncflow::adapters::cxone::RemoteEntry>| {
        entries
            .into_iter()
            .map(|e| e.expiration_date.unwrap_or_default()[..4].to_string())
            .collect::<BTreeSet<String>>()
    };

    let first = run_on_clock(api, &file("a.csv", "2027-06-01"), &out, &now).await;
    assert_eq!(first.status, "SUCCESS", "{first:?}");
    assert_eq!(
        held(fetch_all_entries(api, &list.id).await.unwrap()),
        ["2027".to_string()].into()
    );

    // Renewed: every number sent again (none skipped as held), the upsert extends it, SUCCESS, CXone holds 2028.
    let writes_before = writes(&s);
    let renewed = run_on_clock(api, &file("b.csv", "2028-06-01"), &out, &now).await;
    assert_eq!(renewed.status, "SUCCESS", "{renewed:?}");
    assert!(writes(&s) > writes_before);
    assert_eq!(
        held(fetch_all_entries(api, &list.id).await.unwrap()),
        ["2028".to_string()].into()
    );

    // The same numbers again with the same expiration: held as asked, nothing sent.
    let writes_before = writes(&s);
    let same = run_on_clock(api, &file("c.csv", "2028-06-01"), &out, &now).await;
    assert_eq!(same.status, "SUCCESS", "{same:?}");
    assert_eq!(
        writes(&s),
        writes_before,
        "held with the same expiration: not sent"
    );

    // The records expire on the simulator's clock (past 2028-06-01); a file asking the list's default (no
    // expiration) re-sends them all, and the run ends SUCCESS with live records.
    let past = "2028-06-03T00:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        - chrono::Utc::now();
    s.sim.advance(past.num_seconds() as f64);
    *offset.lock().unwrap() = past;
    let writes_before = writes(&s);
    let p = dir.path().join("d.csv");
    let rows: String = (0..20)
        .map(|i| format!("202555{:04}\n", 1000 + i))
        .collect();
    fs::write(&p, format!("phone\n{rows}")).unwrap();
    let again = run_on_clock(api, &normalize(&p, &out, "heal"), &out, &now).await;
    assert_eq!(again.status, "SUCCESS", "{again:?}");
    assert!(
        writes(&s) > writes_before,
        "expired records were sent again"
    );
    let live = fetch_all_entries(api, &list.id).await.unwrap();
    assert_eq!(live.len(), 20);
    assert!(live.iter().all(|e| e
        .expiration_date
        .as_deref()
        .is_none_or(|d| d.parse::<chrono::DateTime<chrono::Utc>>().unwrap() > now())));
}
