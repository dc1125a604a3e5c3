//! The Admin API behaviours no public description settles (`docs/cxone-api.md`, "What no public description
//! settles"): the format of `formattedPhone`, `phoneNumber`'s JSON type, a new group active or not, adding a held
//! number an upsert or an error, the largest batch and how it is refused. The simulator answers each way; for every
//! combination, provisioning (under ambiguous creates) and a whole local run (under writes applied then answered 503,
//! so held numbers are sent again) must succeed, exact: nothing that works only under one guess.

use std::collections::BTreeSet;
use std::path::Path;

use cxone_sim::{
    AdminBehaviour, Endpoint, FaultKind, FaultRule, HeldNumber, PhoneFormat, PhoneNumberType,
    SimConfig, SimDialect,
};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::LocalStore;
use dncflow::local::{run_local, RunSettings, ScaledClock};
use dncflow::provision::{provision, ProvisionSpec};
use dncflow::run::{RunStatus, SourceIdentity};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions};
use dncflow::steps::reconcile::fetch_all_entries;
use dncflow::steps::RunRef;
use futures::StreamExt;

const SCALE: f64 = 600.0;

/// Every combination of the unsettled behaviours.
fn combinations() -> Vec<(AdminBehaviour, usize)> {
    let mut out = Vec::new();
    for formatted_phone in [
        PhoneFormat::Parenthesized,
        PhoneFormat::Digits,
        PhoneFormat::E164,
        PhoneFormat::Dashed,
    ] {
        for phone_number_type in [
            PhoneNumberType::Number,
            PhoneNumberType::String,
            PhoneNumberType::Either,
        ] {
            for new_group_active in [false, true] {
                for held_number in [HeldNumber::Upsert, HeldNumber::Error] {
                    // The largest batch: the client's 100 accepted, or 7 refused with 413 or with 400.
                    for (max_batch, too_large_status) in [(100, 413), (7, 413), (7, 400)] {
                        out.push((
                            AdminBehaviour {
                                formatted_phone,
                                phone_number_type,
                                new_group_active,
                                held_number,
                                too_large_status,
                            },
                            max_batch,
                        ));
                    }
                }
            }
        }
    }
    out
}

fn input(dir: &Path, name: &str, range: std::ops::Range<u32>) -> std::path::PathBuf {
    let mut text = String::from("phone,expires\n");
    for i in range {
        text.push_str(&format!("(212) 555-{:04},2031-01-01\n", 1000 + i));
    }
    // A number the groups cannot hold: a dead letter, never lost.
    text.push_str("+44 20 7946 0018,\n");
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Provision, run a file, run an overlapping file; `Err` says what went wrong under which behaviour.
async fn one(behaviour: AdminBehaviour, max_batch: usize) -> Result<(), String> {
    let label = format!("{behaviour:?} max_batch {max_batch}");
    let fail = |what: String| format!("{label}: {what}");
    let config = SimConfig {
        dialect: SimDialect::Admin,
        clock_scale: SCALE,
        entries_rate: 2000.0,
        check_rate: 2000.0,
        token_requests_per_minute: 10_000,
        max_entries_per_request: max_batch,
        admin: behaviour,
        faults: vec![
            // Creates and links applied, then answered 503: settled by reading back by name.
            FaultRule {
                endpoint: Endpoint::Lists,
                kind: FaultKind::AppliedThen503,
                probability: 0.3,
                after: 0,
                count: Some(4),
            },
            // Writes applied, then answered 503: the retry sends numbers the group now holds.
            FaultRule {
                endpoint: Endpoint::EntriesPost,
                kind: FaultKind::AppliedThen503,
                probability: 0.3,
                after: 0,
                count: Some(6),
            },
        ],
        ..SimConfig::default()
    };
    let s = cxone_sim::spawn(config, 0)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let api = dncflow_tests::sim_api(&s, 2000.0).await;
    let api: &dyn DncApi = api.as_ref();
    let spec: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "variants"}], "rule": {"name": "R", "lists": ["variants"]},
            "scrubbedSkills": [4100001]}"#,
    )
    .unwrap();
    provision(api, &spec)
        .await
        .map_err(|e| fail(format!("provision: {e}")))?;
    let again = provision(api, &spec)
        .await
        .map_err(|e| fail(format!("provision again: {e}")))?;
    if api.lists().await.map_err(|e| fail(e.to_string()))?.len() != 1 {
        return Err(fail("provisioning twice made a second group".into()));
    }
    if again.actions.iter().any(|a| a.contains("created")) {
        return Err(fail(format!(
            "the second provisioning changed something: {again:?}"
        )));
    }
    let group = api
        .find_list("variants")
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no group".into()))?;
    let binding = api
        .suppression(&group)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !binding.suppressing {
        return Err(fail(format!("the group does not suppress: {binding:?}")));
    }

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let store = LocalStore { root: out.clone() };
    let mut expected = BTreeSet::new();
    for (name, range) in [("a.csv", 0..40), ("b.csv", 25..60)] {
        let path = input(dir.path(), name, range.clone());
        let normalized = normalize_to_dir(
            Box::new(std::fs::File::open(&path).unwrap()),
            SourceIdentity {
                path: Some(path.display().to_string()),
                ..Default::default()
            },
            &NormalizeOptions::new("variants"),
            &out,
            &mut |_| {},
        )
        .map_err(|e| fail(format!("normalize: {e}")))?;
        let run = RunRef {
            bucket: out.display().to_string(),
            run_id: normalized.manifest.run_id.clone(),
            list: "variants".into(),
        };
        let report = run_local(
            api,
            &store,
            &ScaledClock::new(SCALE),
            &run,
            &RunSettings::default(),
            &mut |_: String| {},
        )
        .await
        .map_err(|e| fail(format!("run {name}: {e}")))?;
        expected.extend(range.map(|i| format!("+1212555{:04}", 1000 + i)));
        if report.status != RunStatus::Success || report.missing != 0 {
            return Err(fail(format!("run {name}: {report:?}")));
        }
        if report.upload.rejected != 1 {
            return Err(fail(format!(
                "run {name}: the UK number is the one dead letter: {report:?}"
            )));
        }
    }
    let held: BTreeSet<String> = fetch_all_entries(api, &group.id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .into_iter()
        .map(|e| e.phone_number)
        .collect();
    if held != expected {
        return Err(fail(format!(
            "CXone holds {} numbers, {} expected",
            held.len(),
            expected.len()
        )));
    }
    if s.sim.state()["duplicates"] != 0 {
        return Err(fail("duplicate records".into()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_and_runs_succeed_under_every_unsettled_behaviour() {
    let all = combinations();
    assert_eq!(all.len(), 4 * 3 * 2 * 2 * 3);
    let failures: Vec<String> = futures::stream::iter(all)
        .map(|(b, max)| one(b, max))
        .buffer_unordered(8)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
