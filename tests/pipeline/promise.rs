//! The promise as a property (issue 23 §5): random sequences of operations against the simulator and a local store
//! (files from several sources with overlapping numbers and expirations past, near and far; runs that verify, that
//! CXone refuses entries of, that fail before or in the middle of their upload, that lose their writes, files the
//! junk gate refuses; an operator's removals; time passing), and after every step, for every number of the case:
//! - received, not removed since and not expired: the check never answers `allowed`;
//! - never received (and on no registry, none being configured): `allowed` exactly when the list has a status (its
//!   knowledge is complete) and CXone, which never saw it, allows it.
//!
//! Cases: `DNCFLOW_PROPERTY_CASES` (default 200, about a minute on 2 cores; `DNCFLOW_PROPERTY_CASES=2000` locally).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::eventbridge::NoNotifier;
use dncflow::adapters::store::LocalStore;
use dncflow::run::{parse_shard, Hold, Manifest, RunKeys, RunStatus, SourceIdentity};
use dncflow::steps::check::{check_with, CheckRequest, ContactIn, Verdict};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions};
use dncflow::steps::{
    load_local_knowledge, reconcile_stage, record_failure, upload_stage, ReconcileTask, RunRef,
    ShardTask, UploadSettings,
};
use proptest::prelude::*;

/// Numbers per case: few enough that files overlap often.
const POOL: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    None,
    Past,
    Soon,
    Far,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Verified,
    DeadLetters,
    FailedBeforeUpload,
    FailedMidUpload,
    LostWrites,
    Refused,
}

#[derive(Debug, Clone)]
enum Op {
    Drop {
        source: u8,
        rows: Vec<(u8, Expiry)>,
        fate: Fate,
    },
    Remove(u8),
    TimePasses(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let expiry = prop_oneof![
        Just(Expiry::None),
        Just(Expiry::Past),
        Just(Expiry::Soon),
        Just(Expiry::Far)
    ];
    let fate = prop_oneof![
        3 => Just(Fate::Verified),
        2 => Just(Fate::DeadLetters),
        1 => Just(Fate::FailedBeforeUpload),
        1 => Just(Fate::FailedMidUpload),
        1 => Just(Fate::LostWrites),
        1 => Just(Fate::Refused),
    ];
    prop_oneof![
        6 => (0..3u8, prop::collection::vec((0..POOL, expiry), 1..8), fate)
            .prop_map(|(source, rows, fate)| Op::Drop { source, rows, fate }),
        1 => (0..POOL).prop_map(Op::Remove),
        1 => (1..3u32).prop_map(Op::TimePasses),
    ]
}

struct World {
    runtime: tokio::runtime::Runtime,
    sim: RunningSim,
    api: Box<dyn DncApi>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (sim, api) = runtime.block_on(async {
            let sim = cxone_sim::spawn(
                SimConfig {
                    propagation_secs: (0, 0),
                    entries_rate: 5000.0,
                    check_rate: 5000.0,
                    token_requests_per_minute: 10_000,
                    ..SimConfig::default()
                },
                0,
            )
            .await
            .unwrap();
            let api = dncflow_tests::sim_api(&sim, 5000.0).await;
            (sim, api)
        });
        World { runtime, sim, api }
    })
}

/// What the case knows of each number: received (with the expiration its last receipt gave it, the latest one
/// kept) or not.
#[derive(Default)]
struct Model {
    /// Numbers received and not removed since: their expiration (`None`: never).
    received: BTreeMap<u8, Option<DateTime<Utc>>>,
    /// Numbers ever received.
    ever: BTreeSet<u8>,
    /// The list has a status (some run ended).
    has_status: bool,
    /// Time passed, in days.
    days: u32,
}

async fn run_case(case: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let w = world();
    let api = w.api.as_ref();
    let list = format!("promise-{case}");
    dncflow::local::ensure_list(api, &list).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore {
        root: dir.path().to_path_buf(),
    };
    // Distinct numbers per case (CXone's check asks every list): +1 303/720/719/970, an exchange per case.
    let area = [303, 720, 719, 970][(case / 700) as usize % 4];
    let number = |i: u8| format!("+1{area}{:03}{:04}", 200 + case % 700, 1000 + u32::from(i));
    let mut model = Model::default();
    let today = Utc::now();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Drop { source, rows, fate } => {
                let mut text = String::from("phone,expires\n");
                for (i, e) in rows {
                    let when = match e {
                        Expiry::None => String::new(),
                        Expiry::Past => "2020-01-01".into(),
                        Expiry::Soon => (today + chrono::Duration::days(1))
                            .format("%Y-%m-%d")
                            .to_string(),
                        Expiry::Far => "2031-01-01".into(),
                    };
                    text += &format!("{},{when}\n", number(*i));
                }
                if *fate == Fate::Refused {
                    // More junk than numbers: the gate refuses the file.
                    for j in 0..rows.len() + 1 {
                        text += &format!("junk{j},\n");
                    }
                }
                // Each drop is another file (a blank line per step): the same content again would be the same
                // run, whose directory a local normalize replaces, snapshot included (S3 keeps it).
                text += &"\n".repeat(step + 1);
                let path = dir.path().join(format!("source-{source}-{step}.csv"));
                fs::write(&path, &text).unwrap();
                let mut options = NormalizeOptions::new(&list);
                options.shard_count = 2;
                let normalized = normalize_to_dir(
                    Box::new(fs::File::open(&path).unwrap()),
                    SourceIdentity {
                        path: Some(format!("source-{source}.csv")),
                        ..Default::default()
                    },
                    &options,
                    dir.path(),
                    &mut |_| {},
                )
                .unwrap();
                let manifest = normalized.manifest;
                // The model: every accepted number is received, with the expiration its shard line holds.
                for (i, _) in rows {
                    let n = number(*i);
                    if let Some(exp) = shard_expiration(&store, &manifest, &n) {
                        model.ever.insert(*i);
                        // Received again: the later expiration stands (none is the latest of all).
                        let merged = match model.received.get(i) {
                            None => exp,
                            Some(None) => None,
                            Some(Some(a)) => exp.map(|b| b.max(*a)),
                        };
                        model.received.insert(*i, merged);
                    }
                }
                drive(api, &store, &w.sim, &manifest, *fate).await;
                model.has_status = true;
            }
            Op::Remove(i) => {
                dncflow::steps::remove_received(
                    &store,
                    &list,
                    &dncflow::steps::RemovalTarget::Numbers(vec![number(*i)]),
                    "property test: operator removal",
                    "proptest",
                    Utc::now(),
                )
                .await
                .unwrap();
                model.received.remove(i);
            }
            Op::TimePasses(days) => {
                w.sim.sim.advance(f64::from(*days) * 86_400.0);
                model.days += days;
            }
        }
        // The promise, after every step.
        let at = Utc::now() + chrono::Duration::days(i64::from(model.days));
        let knowledge = load_local_knowledge(&store, std::slice::from_ref(&list))
            .await
            .unwrap();
        let request = CheckRequest {
            contacts: (0..POOL)
                .map(|i| ContactIn {
                    phone_number: number(i),
                    region_code: None,
                    state: None,
                })
                .collect(),
            list_ids: None,
            at: Some(at),
            call_type: None,
        };
        let response = check_with(
            Some(api),
            &request,
            knowledge.answers_for(Some(api), at, None),
            2,
        )
        .await;
        for i in 0..POOL {
            let r = &response.results[i as usize];
            match model.received.get(&i) {
                Some(exp) if exp.is_none_or(|e| e > at) => prop_assert_ne!(
                    r.status,
                    Verdict::Allowed,
                    "step {} ({:?}): {} received (expiring {:?}) answered allowed: {}",
                    step,
                    op,
                    r.input,
                    exp,
                    r.reason
                ),
                _ if !model.ever.contains(&i) => prop_assert_eq!(
                    r.status == Verdict::Allowed,
                    model.has_status,
                    "step {} ({:?}): {} never received answered {:?} ({})",
                    step,
                    op,
                    r.input,
                    r.status,
                    r.reason
                ),
                _ => {}
            }
        }
    }
    Ok(())
}

/// The expiration `number`'s shard line holds (`Some(None)`: none), `None` when the run did not accept it.
fn shard_expiration(
    store: &LocalStore,
    manifest: &Manifest,
    number: &str,
) -> Option<Option<DateTime<Utc>>> {
    let keys = RunKeys::new(&manifest.run_id);
    for shard in &manifest.shards {
        let text = fs::read_to_string(store.root.join(keys.shard(&shard.key))).unwrap();
        for e in parse_shard(&text, &shard.key).unwrap() {
            if e.phone_number == number {
                return Some(e.expiration_date.map(|d| d.parse().unwrap()));
            }
        }
    }
    None
}

fn fault(kind: FaultKind) -> FaultRule {
    FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind,
        probability: 1.0,
        after: 0,
        count: None,
    }
}

/// Take the run to `fate` through the steps the state machine runs.
async fn drive(api: &dyn DncApi, store: &LocalStore, sim: &RunningSim, m: &Manifest, fate: Fate) {
    let run = RunRef {
        bucket: String::new(),
        run_id: m.run_id.clone(),
        list: m.list.clone(),
    };
    let hold = match fate {
        Fate::Refused => Hold::RefusedFile,
        _ => Hold::PendingPropagation,
    };
    dncflow::run::receive_run(store, m, None, hold, Utc::now())
        .await
        .unwrap();
    let fail = |error: &str| serde_json::json!({"run": run, "error": {"Error": error, "Cause": "property test"}});
    let settings = UploadSettings {
        budget: Duration::from_secs(60),
        concurrency: 2,
        capacity: dncflow::steps::CXONE_CAPACITY,
    };
    let upload = |shard_key: String, round: u32| {
        let task = ShardTask {
            run: run.clone(),
            shard_key,
            round,
            cursor: 0,
            offset: 0,
        };
        let settings = settings.clone();
        async move {
            let mut task = task;
            loop {
                let out = upload_stage(api, store, &task, &settings, Utc::now)
                    .await
                    .unwrap();
                if out.done {
                    return;
                }
                task = out.task;
            }
        }
    };
    match fate {
        Fate::Refused => {
            record_failure(store, &NoNotifier, &fail("InvalidInput"), Utc::now())
                .await
                .unwrap();
            return;
        }
        Fate::FailedBeforeUpload => {
            record_failure(store, &NoNotifier, &fail("NotSuppressing"), Utc::now())
                .await
                .unwrap();
            return;
        }
        Fate::FailedMidUpload => {
            if let Some(first) = m.shards.first() {
                upload(RunKeys::new(&m.run_id).shard(&first.key), 0).await;
            }
            record_failure(store, &NoNotifier, &fail("States.Timeout"), Utc::now())
                .await
                .unwrap();
            return;
        }
        Fate::DeadLetters => sim.sim.set_faults(vec![fault(FaultKind::RejectEntries {
            code: "INVALID_PHONE_NUMBER".into(),
            per_entry: 0.5,
        })]),
        Fate::LostWrites => sim
            .sim
            .set_faults(vec![fault(FaultKind::LoseWrites { per_entry: 1.0 })]),
        Fate::Verified => {}
    }
    for shard in &m.shards {
        upload(RunKeys::new(&m.run_id).shard(&shard.key), 0).await;
    }
    if fate == Fate::DeadLetters {
        sim.sim.set_faults(Vec::new());
    }
    let mut round = 0;
    loop {
        let out = reconcile_stage(
            api,
            store,
            &NoNotifier,
            &ReconcileTask {
                run: run.clone(),
                round,
                started_at: None,
                execution: None,
                clock_scale: None,
            },
            2,
            Utc::now,
        )
        .await
        .unwrap();
        match out.status {
            RunStatus::Reupload => {
                for key in out.shard_keys {
                    upload(key, out.round).await;
                }
                round = out.round;
            }
            // Lost writes of numbers CXone already holds lose nothing: the run may verify.
            _ => break,
        }
    }
    sim.sim.set_faults(Vec::new());
}

#[test]
fn nothing_received_is_ever_allowed_whatever_happens() {
    let cases = std::env::var("DNCFLOW_PROPERTY_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(200);
    static CASE: AtomicU32 = AtomicU32::new(0);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in prop::collection::vec(op(), 1..7))| {
        let case = CASE.fetch_add(1, Ordering::SeqCst);
        world().runtime.block_on(run_case(case, ops))?;
    });
}
