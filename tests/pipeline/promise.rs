//! The promise as a property (issue 23 §5): random sequences of operations against the simulator (either dialect:
//! v2, which has a batch check, or the Admin API, which has none) and a local store: files from several sources with
//! overlapping numbers and expirations past, near and far; runs that verify, that CXone refuses entries of, that fail
//! before or in the middle of their upload, that lose their writes (the cooldown's canary then never comes back and
//! the run fails `NotPropagated`), files the junk gate refuses; full imports of a registry and change lists adding and
//! deleting its numbers; an operator's removals and clearing of open failures; time passing (days on the simulator's
//! clock and the check's, expirations passing; the cooldown's minutes inside each run). After every step, and in the
//! middle of every run (uploaded, cooling down), for every number of the case:
//! - received, not removed since and not expired: the check never answers `allowed`;
//! - on the registry: never `allowed`;
//! - never received and not on the registry: `allowed` exactly when CXone and the list's verification allow it: v2
//!   asks CXone (which never saw it) once the list has a status (its knowledge is complete); the Admin API answers
//!   from what dncflow verified, while the list's last SUCCESS is younger than `VERIFIED_MAX_AGE` (26 h).
//!
//! Cases: `PROPTEST_CASES` (or `DNCFLOW_PROPERTY_CASES`), default [`CI_CASES`]; `PROPTEST_CASES=2000` locally.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig, SimDialect};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::eventbridge::NoNotifier;
use dncflow::adapters::store::LocalStore;
use dncflow::registry::{apply, import, ApplyOptions, ImportOptions, Scope};
use dncflow::run::{parse_shard, Hold, Manifest, RunKeys, RunStatus, SourceIdentity};
use dncflow::steps::check::{check_with, CheckRequest, ContactIn, Verdict};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions};
use dncflow::steps::{
    cooldown_stage, load_local_knowledge, reconcile_stage, record_failure, refresh_registries,
    upload_stage, CooldownSettings, CooldownTask, ErrorKind, ReconcileTask, RunRef, ShardTask,
    UploadSettings,
};
use proptest::prelude::*;

/// Numbers per case: few enough that files overlap often.
const POOL: u8 = 16;

/// Cases run by `cargo test` (CI): see the README for how long they take.
const CI_CASES: u32 = 120;

/// The registry of every case (its own store): the national one, subscribed to the case's area code only.
const REGISTRY: &str = "national";

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
    /// A full download of the registry replaces it: these numbers.
    RegistryImport(Vec<u8>),
    /// A change list: each number added (`true`) or deleted, in order (later lines are later changes).
    ChangeList(Vec<(u8, bool)>),
    /// The operator clears every open failure of the list.
    ClearFailures,
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
        1 => prop::collection::vec(0..POOL, 1..6).prop_map(Op::RegistryImport),
        1 => prop::collection::vec((0..POOL, any::<bool>()), 1..5).prop_map(Op::ChangeList),
        1 => Just(Op::ClearFailures),
    ]
}

/// A simulator of one dialect and a client of it.
struct Cxone {
    sim: RunningSim,
    api: Box<dyn DncApi>,
}

struct World {
    runtime: tokio::runtime::Runtime,
    v2: Cxone,
    admin: Cxone,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cxone = |dialect: SimDialect| async move {
            let sim = cxone_sim::spawn(
                SimConfig {
                    dialect,
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
            Cxone { sim, api }
        };
        let (v2, admin) = runtime
            .block_on(async { (cxone(SimDialect::V2).await, cxone(SimDialect::Admin).await) });
        World { runtime, v2, admin }
    })
}

/// What the case knows of each number: received (with the expiration its last receipt gave it, the latest one
/// kept) or not.
#[derive(Default)]
struct Model {
    /// Numbers received and not removed since: their expiration (`None`: never).
    received: BTreeMap<u8, Option<DateTime<Utc>>>,
    /// Numbers received at any time (removed or expired since included): one never received must be answered as CXone
    /// and the registry say.
    ever: BTreeSet<u8>,
    /// The list has a status (some run ended).
    has_status: bool,
    /// Time passed, in days.
    days: u32,
    /// The registry's numbers, once imported.
    registry: Option<BTreeSet<u8>>,
    /// When the list's last run verified (a SUCCESS).
    verified_at: Option<DateTime<Utc>>,
}

impl Model {
    /// The case's clock: the wall clock and the days passed. Every step runs on it (the simulator's clock is moved
    /// by as much), so a run that ends after days have passed ends on that day.
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::days(i64::from(self.days))
    }
}

/// One case's world: the dialect, the list, its store, its numbers.
struct Case<'a> {
    /// The Admin API (no batch check: what dncflow verified is the whole answer) rather than v2.
    admin: bool,
    api: &'a dyn DncApi,
    sim: &'a RunningSim,
    store: LocalStore,
    list: String,
    area: u16,
    exchange: u32,
}

impl Case<'_> {
    /// Number `i` of the case (E.164).
    fn number(&self, i: u8) -> String {
        format!(
            "+1{}{:03}{:04}",
            self.area,
            self.exchange,
            1000 + u32::from(i)
        )
    }

    /// The promise, checked now: every number of the case asked of the check as the Lambda answers it (the list's
    /// received numbers and verified snapshot, the registry once imported, then CXone).
    async fn promise_holds(&self, model: &Model, when: &str) -> Result<(), TestCaseError> {
        let at = model.now();
        let mut knowledge = load_local_knowledge(&self.store, std::slice::from_ref(&self.list))
            .await
            .unwrap();
        if model.registry.is_some() {
            knowledge.registries = refresh_registries(&self.store, &[REGISTRY.to_string()], &[])
                .await
                .unwrap();
        }
        let request = CheckRequest {
            contacts: (0..POOL)
                .map(|i| ContactIn {
                    phone_number: self.number(i),
                    region_code: None,
                    state: None,
                })
                .collect(),
            list_ids: None,
            at: Some(at),
            call_type: None,
        };
        let response = check_with(
            Some(self.api),
            &request,
            knowledge.answers_for(Some(self.api), at, None),
            2,
        )
        .await;
        let on_registry = |i: u8| model.registry.as_ref().is_some_and(|r| r.contains(&i));
        // A number CXone never saw: v2 asks CXone, which allows it, once the list's knowledge is complete (it has a
        // status); through the Admin API (no batch check) it is allowed only while the list's last verification is
        // younger than the allowed age.
        let allowed = if self.admin {
            model.verified_at.is_some_and(|v| {
                (at - v).to_std().unwrap_or_default() <= dncflow::steps::VERIFIED_MAX_AGE
            })
        } else {
            model.has_status
        };
        for i in 0..POOL {
            let r = &response.results[i as usize];
            match model.received.get(&i) {
                Some(exp) if exp.is_none_or(|e| e > at) => prop_assert_ne!(
                    r.status,
                    Verdict::Allowed,
                    "{}: {} received (expiring {:?}) answered allowed: {}",
                    when,
                    r.input,
                    exp,
                    r.reason
                ),
                _ if on_registry(i) => prop_assert_ne!(
                    r.status,
                    Verdict::Allowed,
                    "{}: {} on the registry answered allowed: {}",
                    when,
                    r.input,
                    r.reason
                ),
                _ if !model.ever.contains(&i) => prop_assert_eq!(
                    r.status == Verdict::Allowed,
                    allowed,
                    "{}: {} never received, on no registry, answered {:?} ({})",
                    when,
                    r.input,
                    r.status,
                    r.reason
                ),
                _ => {}
            }
        }
        Ok(())
    }
}

async fn run_case(case: u32, admin: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let w = world();
    let cxone = if admin { &w.admin } else { &w.v2 };
    let api = cxone.api.as_ref();
    let list = format!("promise-{case}");
    dncflow::local::ensure_list(api, &list).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Distinct numbers per case (CXone's check asks every list): +1 303/720/719/970, an exchange per case.
    let c = Case {
        admin,
        api,
        sim: &cxone.sim,
        store: LocalStore {
            root: dir.path().to_path_buf(),
        },
        list: list.clone(),
        area: [303, 720, 719, 970][(case / 700) as usize % 4],
        exchange: 200 + case % 700,
    };
    let mut model = Model::default();
    let today = Utc::now();
    // Change lists are dated after the import's day began and increase line by line (the last change wins).
    let midnight = today.date_naive().and_hms_opt(0, 0, 1).unwrap().and_utc();
    let mut change_at = (today - chrono::Duration::minutes(20)).max(midnight);
    for (step, op) in ops.iter().enumerate() {
        let when = format!("step {step} ({op:?})");
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
                    text += &format!("{},{when}\n", c.number(*i));
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
                    let n = c.number(*i);
                    if let Some(exp) = shard_expiration(&c.store, &manifest, &n) {
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
                if drive(&c, &model, &manifest, *fate, &when).await? {
                    model.verified_at = Some(model.now());
                }
                model.has_status = true;
            }
            Op::Remove(i) => {
                dncflow::steps::remove_received(
                    &c.store,
                    &list,
                    &dncflow::steps::RemovalTarget::Numbers(vec![c.number(*i)]),
                    "property test: operator removal",
                    "proptest",
                    model.now(),
                )
                .await
                .unwrap();
                model.received.remove(i);
            }
            Op::TimePasses(days) => {
                cxone.sim.sim.advance(f64::from(*days) * 86_400.0);
                model.days += days;
            }
            Op::RegistryImport(numbers) => {
                let path = dir.path().join(format!("registry-{step}.txt"));
                let lines: String = numbers
                    .iter()
                    .map(|i| format!("{}\n", &c.number(*i)[2..]))
                    .collect();
                fs::write(&path, lines).unwrap();
                let options = ImportOptions {
                    as_of: today.date_naive(),
                    max_age_days: 31,
                    // A full download replaces the registry whole, however much smaller (the model's rule).
                    force: true,
                    scope: Some(Scope::National([c.area].into_iter().collect())),
                };
                import(&c.store, REGISTRY, &[path], &options, &mut |_| {})
                    .await
                    .unwrap();
                model.registry = Some(numbers.iter().copied().collect());
            }
            Op::ChangeList(changes) => {
                // A change list applies to an imported registry only.
                if let Some(registry) = model.registry.as_mut() {
                    let path = dir.path().join(format!("changes-{step}.txt"));
                    let mut lines = String::new();
                    for (i, add) in changes {
                        change_at += chrono::Duration::seconds(1);
                        lines += &format!(
                            "{},{},{}\n",
                            &c.number(*i)[2..],
                            change_at.format("%Y-%m-%dT%H:%M:%S"),
                            if *add { "A" } else { "D" }
                        );
                        if *add {
                            registry.insert(*i);
                        } else {
                            registry.remove(i);
                        }
                    }
                    fs::write(&path, lines).unwrap();
                    apply(&c.store, REGISTRY, &[path], &ApplyOptions::default())
                        .await
                        .unwrap();
                }
            }
            Op::ClearFailures => {
                if let Some(status) = dncflow::steps::read_list_status(&c.store, &list)
                    .await
                    .unwrap()
                {
                    for f in &status.open_failures {
                        dncflow::steps::clear_failure(
                            &c.store,
                            &list,
                            &f.run_id,
                            "property test: failure cleared by the operator",
                            "proptest",
                            model.now(),
                        )
                        .await
                        .unwrap();
                    }
                    let after = dncflow::steps::read_list_status(&c.store, &list)
                        .await
                        .unwrap()
                        .unwrap();
                    prop_assert!(after.open_failures.is_empty(), "{}: {:?}", when, after);
                }
            }
        }
        // The promise, after every step.
        c.promise_holds(&model, &when).await?;
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

/// Take the run to `fate` through the steps the state machine runs, checking the promise while it is in flight.
/// Whether the run verified (a SUCCESS).
async fn drive(
    c: &Case<'_>,
    model: &Model,
    m: &Manifest,
    fate: Fate,
    when: &str,
) -> Result<bool, TestCaseError> {
    let (api, store, sim) = (c.api, &c.store, c.sim);
    let offset = chrono::Duration::days(i64::from(model.days));
    let now = move || Utc::now() + offset;
    let run = RunRef {
        bucket: String::new(),
        run_id: m.run_id.clone(),
        list: m.list.clone(),
    };
    let hold = match fate {
        Fate::Refused => Hold::RefusedFile,
        _ => Hold::PendingPropagation,
    };
    dncflow::run::receive_run(store, m, None, hold, model.now())
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
                let out = upload_stage(api, store, &task, &settings, now)
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
            record_failure(store, &NoNotifier, &fail("InvalidInput"), now())
                .await
                .unwrap();
            return Ok(false);
        }
        Fate::FailedBeforeUpload => {
            record_failure(store, &NoNotifier, &fail("NotSuppressing"), now())
                .await
                .unwrap();
            return Ok(false);
        }
        Fate::FailedMidUpload => {
            if let Some(first) = m.shards.first() {
                upload(RunKeys::new(&m.run_id).shard(&first.key), 0).await;
            }
            c.promise_holds(model, &format!("{when}, mid-upload"))
                .await?;
            record_failure(store, &NoNotifier, &fail("States.Timeout"), now())
                .await
                .unwrap();
            return Ok(false);
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
    let mut round = 0;
    let mut shard_keys: Vec<String> = m
        .shards
        .iter()
        .map(|s| RunKeys::new(&m.run_id).shard(&s.key))
        .collect();
    let outcome = loop {
        for key in &shard_keys {
            upload(key.clone(), round).await;
        }
        if fate == Fate::DeadLetters {
            sim.sim.set_faults(Vec::new());
        }
        // The cooldown, its minutes passing on a clock of its own: waits after the last write, then probes a canary.
        if let Err(kind) = cool_down(c, &run, round, model, when).await? {
            break Err(kind);
        }
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
            now,
        )
        .await;
        match out {
            Ok(out) if out.status == RunStatus::Reupload => {
                shard_keys = out.shard_keys;
                round = out.round;
            }
            // Lost writes of numbers CXone already holds lose nothing: the run may verify.
            Ok(out) => break Ok(out.status == RunStatus::Success),
            Err(e) => break Err(e.kind()),
        }
    };
    sim.sim.set_faults(Vec::new());
    match outcome {
        Ok(verified) => Ok(verified),
        Err(kind) => {
            // What the state machine's Catch does: the failure recorder ends the run.
            record_failure(store, &NoNotifier, &fail(kind.name()), now())
                .await
                .unwrap();
            Ok(false)
        }
    }
}

/// The cooldown of `round` as the state machine runs it: checks until ready, each at the time the previous one said
/// to wait for (a clock of its own, from the uploads' end), the promise checked while it waits. A canary that never
/// comes back (every write lost) ends in `NotPropagated`.
async fn cool_down(
    c: &Case<'_>,
    run: &RunRef,
    round: u32,
    model: &Model,
    when: &str,
) -> Result<Result<(), ErrorKind>, TestCaseError> {
    let settings = CooldownSettings {
        max_attempts: 3,
        ..CooldownSettings::default()
    };
    let mut clock = model.now();
    let mut task = CooldownTask {
        run: run.clone(),
        round,
        attempt: 0,
        last_writes: vec![Some(clock.to_rfc3339())],
    };
    loop {
        match cooldown_stage(c.api, &c.store, &task, &settings, clock).await {
            Ok(out) if out.ready => return Ok(Ok(())),
            Ok(out) => {
                if task.attempt == 0 {
                    c.promise_holds(model, &format!("{when}, cooling down (round {round})"))
                        .await?;
                }
                clock += chrono::Duration::seconds(out.wait_seconds as i64);
                task.attempt = out.attempt;
                task.last_writes = out.last_writes;
            }
            Err(e) => return Ok(Err(e.kind())),
        }
    }
}

#[test]
fn nothing_received_is_ever_allowed_whatever_happens() {
    let cases = ["PROPTEST_CASES", "DNCFLOW_PROPERTY_CASES"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(CI_CASES);
    static CASE: AtomicU32 = AtomicU32::new(0);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(admin in any::<bool>(), ops in prop::collection::vec(op(), 1..7))| {
        let case = CASE.fetch_add(1, Ordering::SeqCst);
        world().runtime.block_on(run_case(case, admin, ops))?;
    });
}
