//! Outbound protection against the simulator: verdicts, chunking, de-duplication, fail-safe errors, the local
//! snapshot and numbers still propagating.

use dncflow_tests::sim_client;
use std::collections::HashSet;

use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig};
use dncflow::adapters::cxone::v2::V2Client;
use dncflow::adapters::cxone::{idempotency_key, EntryInput};
use dncflow::local::ensure_list;
use dncflow::steps::check::{
    audit_record, check, CheckRequest, ContactIn, SuppressionSnapshot, Verdict,
};

async fn setup(suppressed: &[String]) -> (RunningSim, V2Client, String) {
    let s = cxone_sim::spawn(
        SimConfig {
            entries_rate: 2000.0,
            check_rate: 2000.0,
            token_requests_per_minute: 1000,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = sim_client(&s, 2000.0);
    let list = ensure_list(&api, "outbound").await.unwrap();
    let entries: Vec<EntryInput> = suppressed
        .iter()
        .map(|p| EntryInput {
            phone_number: p.clone(),
            jurisdiction: "US-DC".into(),
            expiration_date: None,
            source: "t".into(),
            idempotency_key: idempotency_key(&list.id, p, "v1"),
        })
        .collect();
    for chunk in entries.chunks(100) {
        use dncflow::adapters::cxone::DncApi;
        api.upload_batch(&list.id, chunk).await.unwrap();
    }
    s.sim.advance(200.0); // past propagation
    (s, api, list.id)
}

fn request(numbers: &[&str]) -> CheckRequest {
    CheckRequest {
        contacts: numbers
            .iter()
            .map(|n| ContactIn {
                phone_number: n.to_string(),
                region_code: None,
                state: None,
            })
            .collect(),
        list_ids: None,
        // A Wednesday noon, Eastern: inside every US zone's calling hours.
        at: Some("2026-12-09T17:00:00Z".parse().unwrap()),
        call_type: None,
    }
}

fn contact_calls(s: &RunningSim) -> Vec<usize> {
    s.sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v2/dnc/contacts/batch")
        .filter_map(|r| r.items)
        .collect()
}

#[tokio::test]
async fn suppressed_allowed_and_invalid_in_input_order() {
    let (s, api, _) = setup(&["+12025550198".to_string()]).await;
    let req = request(&[
        "(202) 555-0198",
        "415-555-0100",
        "555-0100",
        "+1 202 555 0198",
        "not a number",
    ]);
    let resp = check(
        &api,
        &req,
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        4,
    )
    .await;
    let verdicts: Vec<Verdict> = resp.results.iter().map(|r| r.status).collect();
    assert_eq!(
        verdicts,
        vec![
            Verdict::Suppressed,
            Verdict::Allowed,
            Verdict::Invalid,
            Verdict::Suppressed,
            Verdict::Invalid
        ]
    );
    assert_eq!(
        resp.results[0].phone_number.as_deref(),
        Some("+12025550198")
    );
    assert_eq!(resp.results[2].reason, "TOO_SHORT");
    // Every number checked; not dialable in full (two listed, two invalid), all inside calling hours.
    assert!(resp.complete);
    assert!(!resp.safe_to_dial);
    assert_eq!(
        resp.blocked_by,
        [
            dncflow::steps::check::Blocker::Suppressed,
            dncflow::steps::check::Blocker::Invalid
        ]
    );
    assert_eq!(resp.metrics.outside_calling_hours, 0);
    assert_eq!(
        contact_calls(&s),
        vec![2],
        "duplicates answered once, invalid never sent"
    );
    let m = &resp.metrics;
    assert_eq!(
        (
            m.total,
            m.suppressed,
            m.allowed,
            m.invalid,
            m.errors,
            m.distinct
        ),
        (5, 2, 1, 2, 0, 2)
    );
    let key = dncflow::steps::check::AuditKey::new("v1", b"a test audit key, 16+ bytes").unwrap();
    let audit = serde_json::to_string(&audit_record(&resp, "2026-01-01T00:00:00Z", &key)).unwrap();
    assert!(
        !audit.contains("2025550198") && !audit.contains("415"),
        "the audit holds hashes only: {audit}"
    );
}

#[tokio::test]
async fn a_batch_of_2500_goes_in_three_chunks() {
    let (s, api, _) = setup(&[]).await;
    let numbers: Vec<String> = (0..2500)
        .map(|i| format!("+1202{:07}", 2_000_000 + i))
        .collect();
    let mut with_dups: Vec<&str> = numbers.iter().map(String::as_str).collect();
    with_dups.extend(numbers[..100].iter().map(String::as_str));
    let resp = check(
        &api,
        &request(&with_dups),
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        3,
    )
    .await;
    assert_eq!(resp.results.len(), 2600);
    assert!(resp.results.iter().all(|r| r.status == Verdict::Allowed));
    let mut calls = contact_calls(&s);
    calls.sort();
    assert_eq!(calls, vec![500, 1000, 1000]);
}

#[tokio::test]
async fn a_5xx_burst_yields_errors_never_allowed() {
    let (s, api, _) = setup(&[]).await;
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::Contacts,
        kind: FaultKind::ServerError { status: 503 },
        probability: 1.0,
        after: 1,
        count: Some(100),
    }]);
    let numbers: Vec<String> = (0..2000)
        .map(|i| format!("+1202{:07}", 3_000_000 + i))
        .collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let resp = check(
        &api,
        &request(&refs),
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        1,
    )
    .await;
    let allowed = resp
        .results
        .iter()
        .filter(|r| r.status == Verdict::Allowed)
        .count();
    let errors = resp
        .results
        .iter()
        .filter(|r| r.status == Verdict::Error)
        .count();
    assert_eq!(
        (allowed, errors),
        (1000, 1000),
        "the first chunk was checked, the second failed"
    );
    assert!(!resp.safe_to_dial && !resp.complete);
    assert!(resp
        .results
        .iter()
        .filter(|r| r.status == Verdict::Error)
        .all(|r| r.reason.starts_with("check failed")));
}

/// Every CXone wait of a check, the token request included, ends within the client's deadline
/// (`DNCFLOW_CXONE_DEADLINE_SECS` in the Lambda), all chunks together: a token endpoint hanging 40 s leaves 2,500
/// numbers (three chunks, one at a time) `error`, never `allowed`, in about one deadline (3 s), not three nor forty
/// seconds.
#[tokio::test]
async fn a_token_endpoint_hanging_40_s_is_answered_error_within_the_deadline() {
    use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
    let (s, _, _) = setup(&[]).await;
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::Token,
        kind: FaultKind::Slow { ms: 40_000 },
        probability: 1.0,
        after: 0,
        count: None,
    }]);
    let (id, secret) = SimConfig::default().clients[0].clone();
    let deadline = std::time::Duration::from_secs(3);
    let api = V2Client::new(
        Box::new(StaticCredentials(Credentials::v2(
            &s.base_url,
            &id,
            &secret,
        ))),
        dncflow::adapters::cxone::v2::ClientConfig {
            deadline,
            ..Default::default()
        },
    )
    .unwrap();
    let numbers: Vec<String> = (0..2500)
        .map(|i| format!("+1202{:07}", 4_000_000 + i))
        .collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let resp = check(
        &api,
        &request(&refs),
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        1,
    )
    .await;
    let took = started.elapsed();
    // One deadline for the CXone phase, plus the local work on 2,500 numbers (normalizing, calling hours: slow in a
    // debug build under load); chunk by chunk it would be three deadlines, or forty seconds without one.
    assert!(took >= deadline && took < deadline * 2, "{took:?}");
    assert!(resp.results.iter().all(|r| r.status == Verdict::Error));
    assert!(!resp.safe_to_dial && !resp.complete);
    assert!(contact_calls(&s).is_empty(), "no token, no check request");
}

#[tokio::test]
async fn the_prefilter_and_propagating_numbers_answer_without_a_call() {
    let (s, api, _) = setup(&[]).await;
    let snapshot = SuppressionSnapshot::from_numbers(["+12025550198", "+14155550100"]);
    let propagating: HashSet<String> = ["+12125550111".to_string()].into();
    let resp = check(
        &api,
        &request(&["202-555-0198", "(415) 555-0100", "212.555.0111"]),
        &snapshot,
        &propagating,
        2,
    )
    .await;
    assert!(resp.results.iter().all(|r| r.status == Verdict::Suppressed));
    assert_eq!(resp.results[0].reason, "local-snapshot");
    assert_eq!(resp.results[2].reason, "pending-propagation");
    assert!(contact_calls(&s).is_empty(), "no call to CXone");
    assert_eq!(
        (
            resp.metrics.prefiltered,
            resp.metrics.pending_propagation,
            resp.metrics.cxone_calls
        ),
        (2, 1, 0)
    );
}

/// CXone's results are paired with the numbers asked by phone number, never by position: a reordered answer still
/// gives every number its own verdict; an answer naming a number that was not asked is a protocol error, and every
/// number of that call is `error`, never `allowed`. The canary probe pairs the same way.
#[tokio::test]
async fn check_results_are_paired_by_number_and_a_mismatch_is_an_error() {
    let (s, api, list_id) = setup(&["+12025550198".to_string()]).await;
    let tamper = |mode: &str| {
        vec![FaultRule {
            endpoint: Endpoint::Contacts,
            kind: FaultKind::TamperResults { mode: mode.into() },
            probability: 1.0,
            after: 0,
            count: None,
        }]
    };
    let asked = ["202-555-0198", "415-555-0100", "212-555-0111"];

    s.sim.set_faults(tamper("reverse"));
    let resp = check(
        &api,
        &request(&asked),
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        1,
    )
    .await;
    let verdicts: Vec<Verdict> = resp.results.iter().map(|r| r.status).collect();
    assert_eq!(
        verdicts,
        [Verdict::Suppressed, Verdict::Allowed, Verdict::Allowed],
        "a reversed answer pairs by number: {resp:?}"
    );

    s.sim.set_faults(tamper("renumber"));
    let resp = check(
        &api,
        &request(&asked),
        &SuppressionSnapshot::default(),
        &HashSet::new(),
        1,
    )
    .await;
    assert!(
        resp.results.iter().all(|r| r.status == Verdict::Error),
        "{resp:?}"
    );
    assert!(
        resp.results[0].reason.contains("protocol error"),
        "{resp:?}"
    );
    assert!(!resp.safe_to_dial && !resp.complete);

    // The canary probe: a mismatch is an error, not a silent pairing.
    let err = dncflow::steps::probe_canary(&api, &list_id, &["+12025550198".to_string()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("canary probe"), "{err}");
    s.sim.set_faults(tamper("reverse"));
    let probe = dncflow::steps::probe_canary(
        &api,
        &list_id,
        &["+12025550198".to_string(), "+14155550100".to_string()],
    )
    .await
    .unwrap();
    assert_eq!(probe.pending, ["+14155550100"], "{probe:?}");
}

/// Registries (suppression indexes) consulted beside CXone: built from area-code zips, changed by change lists
/// (adds, deletes, a repeated file, an out-of-order file refused), and a stale one never clearing a number.
mod registries {
    use super::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use chrono::{Duration as Days, NaiveDate, Utc};
    use dncflow::adapters::store::LocalStore;
    use dncflow::registry::{
        self, apply, import, load, ApplyOptions, Freshness, ImportOptions, RegistryError, Scope,
    };

    fn national(codes: &[u16]) -> Option<Scope> {
        Some(Scope::National(codes.iter().copied().collect()))
    }
    use dncflow::steps::check::{check_with, LocalAnswers};

    fn zip_file(path: &Path, entry: &str, text: &str) -> PathBuf {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        zip.start_file(entry, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(text.as_bytes()).unwrap();
        zip.finish().unwrap();
        path.to_path_buf()
    }

    fn day(days_ago: i64) -> NaiveDate {
        (Utc::now() - Days::days(days_ago)).date_naive()
    }

    fn ts(date: NaiveDate, time: &str) -> String {
        format!("{}T{time}", date.format("%Y-%m-%d"))
    }

    #[tokio::test]
    async fn registries_suppress_change_lists_apply_in_order_and_a_stale_registry_never_clears() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("ftc");
        std::fs::create_dir_all(&input).unwrap();
        zip_file(
            &input.join("2026-11-1_202_a.txt.zip"),
            "2026-11-1_202_a.txt",
            "202,4561234\n202,4561235\n202,4561235\n202,0561236\n",
        );
        zip_file(
            &input.join("2026-11-1_415_b.txt.zip"),
            "2026-11-1_415_b.txt",
            "415,5550101\n415,5550102\n",
        );
        zip_file(
            &input.join("2026-11-1_214_c.txt.zip"),
            "2026-11-1_214_c.txt",
            "214,5550999\n",
        );
        let store = LocalStore {
            root: dir.path().join("out"),
        };
        let as_of = day(3);
        // The subscription: three area codes. 206 and 303 are US area codes outside it.
        let options = ImportOptions {
            as_of,
            max_age_days: 31,
            force: false,
            scope: national(&[202, 214, 415]),
        };
        let mut seen = Vec::new();
        let report = import(
            &store,
            "national",
            std::slice::from_ref(&input),
            &options,
            &mut |s| seen.push(s.name.clone()),
        )
        .await
        .unwrap();
        assert_eq!(seen.len(), 3);
        let i = report.import;
        assert_eq!((i.rows, i.accepted, i.duplicates, i.rejected), (7, 5, 1, 1));
        assert_eq!(report.status.total, 5);
        assert_eq!(report.status.covered_area_codes, ["202", "214", "415"]);
        assert!(report.status.missing_area_codes.is_empty());
        assert_eq!(report.status.status, Freshness::Current);
        let rejects = std::fs::read_to_string(store.root.join(&report.rejects_key)).unwrap();
        assert!(
            rejects.contains("\"line\":4,\"reason\":\"INVALID_EXCHANGE\""),
            "{rejects}"
        );
        // A partial download (the 214 and 415 zips missing) must not replace the live version: its numbers would
        // stop being suppressed. Refused (the scope declared before is the default), and nothing changed.
        let partial = dir.path().join("partial");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::copy(
            dir.path().join("ftc/2026-11-1_202_a.txt.zip"),
            partial.join("2026-11-1_202_a.txt.zip"),
        )
        .unwrap();
        let refused = import(
            &store,
            "national",
            std::slice::from_ref(&partial),
            &options,
            &mut |_| {},
        )
        .await;
        match refused {
            Err(RegistryError::Incomplete { missing, .. }) => {
                assert_eq!(missing, ["214", "415"]);
            }
            other => panic!("{other:?}"),
        }
        // Declared anew without them, it would still drop the live version's area codes: refused as shrinking.
        let shrinking = import(
            &store,
            "national",
            std::slice::from_ref(&partial),
            &ImportOptions {
                scope: national(&[202]),
                ..options.clone()
            },
            &mut |_| {},
        )
        .await;
        assert!(
            matches!(shrinking, Err(RegistryError::Shrinks { ref missing, .. }) if missing.len() == 2),
            "{shrinking:?}"
        );
        // An import older than the live version would drop what was applied since: refused.
        let older = import(
            &store,
            "national",
            std::slice::from_ref(&input),
            &ImportOptions {
                as_of: day(5),
                ..options.clone()
            },
            &mut |_| {},
        )
        .await;
        assert!(
            matches!(older, Err(RegistryError::Regresses { .. })),
            "{older:?}"
        );
        // Nor can a typo date it in the future, or stretch its freshness past the safe harbor.
        for (as_of, max_age_days) in [(day(-2), 31), (as_of, 3650)] {
            let refused = import(
                &store,
                "national",
                std::slice::from_ref(&input),
                &ImportOptions {
                    as_of,
                    max_age_days,
                    ..options.clone()
                },
                &mut |_| {},
            )
            .await;
            assert!(
                matches!(refused, Err(RegistryError::BadOption { .. })),
                "{refused:?}"
            );
        }
        let live = registry::status(&store, "national", Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            live.version,
            report.version.clone().unwrap(),
            "nothing changed"
        );

        // Change list 1: a delete, an add, a delete of a number never registered.
        let c1 = dir.path().join("changes-1.txt");
        std::fs::write(
            &c1,
            format!(
                "2024561234,{},D\n2024569999,{},A\n2025550000,{},D\n",
                ts(day(2), "10:00:00"),
                ts(day(2), "10:00:01"),
                ts(day(2), "10:00:02")
            ),
        )
        .unwrap();
        let r1 = apply(
            &store,
            "national",
            std::slice::from_ref(&c1),
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
        let c = r1.changes;
        assert_eq!(
            (c.rows, c.adds, c.deletes, c.deletes_absent, c.rejected),
            (3, 1, 2, 1, 0)
        );
        assert_eq!((r1.area_codes_written, r1.area_codes_carried), (1, 2));
        assert_eq!(r1.status.total, 5);
        // The same file again is one change, not two.
        let again = apply(
            &store,
            "national",
            std::slice::from_ref(&c1),
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(again.version, None);
        assert_eq!(again.already_applied, vec![c1.display().to_string()]);
        // Change list 2: within it the last change of a number wins, whatever the line order.
        let c2 = dir.path().join("changes-2.txt");
        std::fs::write(
            &c2,
            format!(
                "4155550199,{},A\n2024569999,{},A\n2024569999,{},D\nnot a line\n",
                ts(day(1), "09:00:00"),
                ts(day(1), "12:00:00"),
                ts(day(1), "11:00:00")
            ),
        )
        .unwrap();
        let r2 = apply(&store, "national", &[c2], &ApplyOptions::default())
            .await
            .unwrap();
        assert_eq!((r2.changes.rows, r2.changes.rejected), (4, 1));
        assert_eq!(r2.status.total, 6);
        assert_eq!(r2.status.change_lists, 2);
        // A change list dated before the import: its change is already in the full download, so it is recorded and
        // counted, not applied (the number deleted since stays deleted).
        let old = dir.path().join("changes-0.txt");
        std::fs::write(&old, format!("2024561234,{},A\n", ts(day(10), "10:00:00"))).unwrap();
        let merged = apply(
            &store,
            "national",
            std::slice::from_ref(&old),
            &ApplyOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!((merged.changes.adds, merged.changes.superseded), (1, 1));
        assert_eq!(merged.status.total, 6);
        // A line dated 2099 refuses the whole list, naming the line; the live version is unchanged.
        let typo = dir.path().join("changes-typo.txt");
        std::fs::write(
            &typo,
            format!(
                "2024561240,{},A\n2024561241,2099-01-01T00:00:00,A\n",
                ts(day(1), "13:00:00")
            ),
        )
        .unwrap();
        let refused = apply(
            &store,
            "national",
            std::slice::from_ref(&typo),
            &ApplyOptions::default(),
        )
        .await;
        match refused {
            Err(RegistryError::FutureDated { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
        let live = registry::status(&store, "national", Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.version, merged.version.clone().unwrap());
        assert!(live.as_of < Utc::now(), "{live:?}");
        // Two quiet days in a row: two empty change lists, the same content. Each is its own day (known by its name
        // and the day it covers), not the first one again; the same file dropped twice is applied once.
        let quiet = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, "").unwrap();
            p
        };
        let (q1, q2) = (quiet("quiet-1.txt"), quiet("quiet-2.txt"));
        let on = |d: i64| ApplyOptions {
            as_of: Some(day(d)),
        };
        let first = apply(&store, "national", std::slice::from_ref(&q1), &on(1))
            .await
            .unwrap();
        assert!(
            first.version.is_some() && first.already_applied.is_empty(),
            "{first:?}"
        );
        let second = apply(&store, "national", std::slice::from_ref(&q2), &on(0))
            .await
            .unwrap();
        assert!(
            second.version.is_some() && second.already_applied.is_empty(),
            "a second quiet day is not the first one again: {second:?}"
        );
        let live = load(&store, "national").await.unwrap();
        let days: Vec<NaiveDate> = live
            .manifest
            .change_lists
            .iter()
            .flat_map(|c| c.days.clone())
            .collect();
        assert!(days.contains(&day(1)) && days.contains(&day(0)), "{days:?}");
        let replayed = apply(&store, "national", std::slice::from_ref(&q2), &on(0))
            .await
            .unwrap();
        assert_eq!(replayed.already_applied, vec![q2.display().to_string()]);

        // A Texas list published 200 days ago: its refresh rule (shared/data/state_lists.json: quarterly, the next
        // list in use within 60 days of its publication) ran out long ago: stale.
        let tx = dir.path().join("tx.txt");
        std::fs::write(&tx, "2145550100\n").unwrap();
        let stale = ImportOptions {
            as_of: day(200),
            max_age_days: 31,
            force: false,
            scope: Some(Scope::State("US-TX".into())),
        };
        // A TX list lacking most of TX's area codes: refused unless forced; forced, those are answered error.
        let incomplete = import(&store, "tx", std::slice::from_ref(&tx), &stale, &mut |_| {}).await;
        assert!(
            matches!(incomplete, Err(RegistryError::Incomplete { ref missing, .. }) if missing.contains(&"512".to_string())),
            "{incomplete:?}"
        );
        let tx_report = import(
            &store,
            "tx",
            &[tx],
            &ImportOptions {
                force: true,
                ..stale
            },
            &mut |_| {},
        )
        .await
        .unwrap();
        assert!(tx_report
            .status
            .missing_area_codes
            .contains(&"512".to_string()));
        // Its limit is the rule's (more than the national 31 days), and its status names the list it should have.
        let rule = registry::state_rules::rule("US-TX").unwrap();
        assert_eq!(tx_report.status.max_age_days, rule.max_age_days(day(200)));
        assert!(tx_report.status.max_age_days > 31);
        assert_eq!(tx_report.status.status, Freshness::Stale);
        let next = tx_report
            .status
            .next_list
            .clone()
            .expect("a state list's next list");
        assert_eq!(next.published_on, rule.next_list(day(200)).published_on);
        assert!(next.use_by < day(0), "{next:?}");

        let registries = vec![
            Arc::new(load(&store, "national").await.unwrap()),
            Arc::new(load(&store, "tx").await.unwrap()),
        ];
        let (s, api, _) = setup(&["+14165550100".to_string()]).await;
        let snapshot = SuppressionSnapshot::default();
        let propagating = HashSet::new();
        let local = LocalAnswers {
            snapshot: &snapshot,
            propagating: &propagating,
            dead_letters: None,
            received: &[],
            incomplete: None,
            gap: None,
            hours: None,
            closures: None,
            registries: &registries,
        };
        let numbers = [
            "202-456-1235", // registered
            "202-456-1234", // deleted by change list 1
            "202-456-9999", // deleted at 11:00, added at 12:00 (a line before): the later change wins
            "415-555-0199", // added by change list 2
            "416-555-0100", // Canadian, on the CXone list only
            "214-555-0100", // on the stale TX registry: still suppressed
            "214-555-0101", // covered by the stale TX registry, not on it: error
            "+44 20 7946 0018",
            "206-555-0100", // a US area code the national registry does not cover: error, never allowed
            "512-555-0100", // a TX area code the forced TX import lacks (national lacks it too): error
        ];
        let response = check_with(Some(&api), &request(&numbers), local.clone(), 2).await;
        let got: Vec<(Verdict, &str)> = response
            .results
            .iter()
            .map(|r| (r.status, r.reason.as_str()))
            .collect();
        assert_eq!(got[0], (Verdict::Suppressed, "registry:national"));
        assert_eq!(got[1].0, Verdict::Allowed);
        assert_eq!(got[2], (Verdict::Suppressed, "registry:national"));
        assert_eq!(got[3], (Verdict::Suppressed, "registry:national"));
        assert_eq!(got[4].0, Verdict::Suppressed);
        assert_eq!(got[5], (Verdict::Suppressed, "registry:tx"));
        assert_eq!(got[6], (Verdict::Error, "registry-stale:tx"));
        assert_eq!(got[7].0, Verdict::Allowed);
        assert_eq!(got[8], (Verdict::Error, "registry-not-covering:206"));
        assert_eq!(got[9], (Verdict::Error, "registry-not-covering:512"));
        assert_eq!(response.results[0].list_matches, vec!["national"]);
        assert!(!response.complete && !response.safe_to_dial);
        assert_eq!(
            (
                response.metrics.registry_suppressed,
                response.metrics.registry_stale,
                response.metrics.registry_not_covering
            ),
            (4, 1, 2)
        );
        let states: Vec<Freshness> = response.registries.iter().map(|r| r.status).collect();
        assert_eq!(states, vec![Freshness::Current, Freshness::Stale]);
        // Registry numbers never reach CXone: only the numbers no registry answered were asked.
        assert_eq!(contact_calls(&s).iter().sum::<usize>(), 3);

        // Registry-only: no CXone; an unregistered number is allowed as far as the registries go, a number of an area
        // code the registry does not cover (303), or one newer than the numbering table (374), is not.
        let only = vec![registries[0].clone()];
        let local = LocalAnswers {
            registries: &only,
            ..local
        };
        let response = check_with(None, &request(&numbers[..2]), local.clone(), 2).await;
        assert_eq!(response.results[0].status, Verdict::Suppressed);
        assert_eq!(response.results[1].status, Verdict::Allowed);
        assert!(response.complete);
        let response = check_with(
            None,
            &request(&["303-555-0100", "+1 374 555 0198"]),
            local,
            2,
        )
        .await;
        let got: Vec<(Verdict, &str)> = response
            .results
            .iter()
            .map(|r| (r.status, r.reason.as_str()))
            .collect();
        assert_eq!(
            got[0],
            (Verdict::Error, "registry-not-covering:303"),
            "{got:?}"
        );
        assert_eq!(
            got[1],
            (Verdict::Error, "registry-not-covering:374"),
            "{got:?}"
        );
        assert!(!response.complete);
    }

    #[tokio::test]
    async fn a_fanned_out_import_merges_an_area_code_shared_by_two_files_and_balances() {
        use dncflow::adapters::store::ObjectStore;
        use dncflow::registry::fanout::{assemble, import_part, plan};
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore {
            root: dir.path().to_path_buf(),
        };
        let batch = "incoming-registry/state/full/b1/";
        store
            .put_bytes(
                &format!("{batch}a.txt"),
                b"2025550100\n2025550101\n3125550100\nnot a number\n".to_vec(),
            )
            .await
            .unwrap();
        store
            .put_bytes(
                &format!("{batch}b.txt"),
                b"2025550101\n2025550102\n2025550102\n".to_vec(),
            )
            .await
            .unwrap();
        let p = plan(
            "bucket",
            "state",
            registry::fanout::PlanRequest {
                prefix: batch.into(),
                as_of: day(0),
                max_age_days: 31,
                force: false,
                scope: None,
                area_codes: Some(vec!["202".into(), "312".into()]),
            },
        )
        .unwrap();
        for key in store.list(batch).await.unwrap() {
            let part = import_part(&store, &p, &key).await.unwrap();
            assert!(!part.skipped);
        }
        let report = assemble(&store, &p).await.unwrap();
        let i = report.import;
        // 7 lines: 4 distinct numbers, 2 duplicates (one within b, one across a and b), 1 rejected.
        assert_eq!(
            (i.rows, i.accepted, i.duplicates, i.rejected),
            (7, 4, 2, 1),
            "{report:?}"
        );
        assert_eq!(report.status.total, 4);
        let live = load(&store, "state").await.unwrap();
        assert_eq!(live.manifest.sources.len(), 2);
        for n in [
            12_025_550_100u64,
            12_025_550_101,
            12_025_550_102,
            13_125_550_100,
        ] {
            assert_eq!(live.lookup(n), registry::Lookup::Listed, "{n}");
        }
        // 312 came from one file: carried from its part; 202 from both: merged into the version itself.
        assert!(live.manifest.area_codes["312"].key.contains("/parts/"));
        assert!(!live.manifest.area_codes["202"].key.contains("/parts/"));
        let rejects = std::fs::read_to_string(dir.path().join(&report.rejects_key)).unwrap();
        assert!(rejects.contains("\"line\":4"), "{rejects}");
    }

    #[tokio::test]
    async fn a_damaged_index_file_fails_the_load_and_concurrent_applies_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("list.txt");
        // 415 holds 400,000 numbers: written as a bitmap, loaded into the huge-page arena.
        let dense: String = (0..400_000u32)
            .map(|i| format!("415,{}\n", 2_000_000 + i * 19))
            .collect();
        // 646 holds 10,000: written as a sorted array, held as a bitmap in memory.
        let mid: String = (0..10_000u32)
            .map(|i| format!("646,{}\n", 3_000_000 + i * 7))
            .collect();
        std::fs::write(&src, format!("2025550100\n3125550100\n{dense}{mid}")).unwrap();
        let store = LocalStore {
            root: dir.path().join("out"),
        };
        let report = import(
            &store,
            "state",
            &[src],
            &ImportOptions {
                as_of: day(1),
                max_age_days: 31,
                force: false,
                scope: national(&[202, 312, 415, 646]),
            },
            &mut |_| {},
        )
        .await
        .unwrap();
        // Two applies at once: the one that loses the swap reads the winner's version and applies again, so both land.
        let lists: Vec<PathBuf> = (0..2)
            .map(|i| {
                let p = dir.path().join(format!("c{i}.txt"));
                std::fs::write(&p, format!("20255501{i:02},{},A\n", ts(day(0), "00:00:01")))
                    .unwrap();
                p
            })
            .collect();
        let defaults = ApplyOptions::default();
        let (a, b) = tokio::join!(
            apply(&store, "state", &lists[..1], &defaults),
            apply(&store, "state", &lists[1..], &defaults)
        );
        a.unwrap();
        b.unwrap();
        let live = load(&store, "state").await.unwrap();
        for p in &lists {
            assert!(
                live.manifest
                    .change_lists
                    .iter()
                    .any(|c| c.name == p.display().to_string()),
                "{} landed but is not in the live version",
                p.display()
            );
        }
        assert_eq!(live.manifest.area_codes["415"].count, 400_000);
        assert!(
            live.manifest.area_codes["415"].bytes > 1_000_000,
            "a bitmap"
        );
        assert_eq!(live.lookup(14_152_000_019), registry::Lookup::Listed);
        assert_eq!(live.lookup(14_152_000_020), registry::Lookup::NotListed);
        assert_eq!(
            live.lookup(14_152_000_000 + 399_999 * 19),
            registry::Lookup::Listed
        );
        assert_eq!(live.lookup(13_125_550_100), registry::Lookup::Listed);
        assert!(
            live.manifest.area_codes["646"].bytes < 100_000,
            "a sorted array"
        );
        for i in [0u64, 1, 9_999] {
            assert_eq!(
                live.lookup(16_463_000_000 + i * 7),
                registry::Lookup::Listed
            );
            assert_eq!(
                live.lookup(16_463_000_001 + i * 7),
                registry::Lookup::NotListed
            );
        }
        let mut many = Vec::new();
        live.lookup_many(
            &[
                16_463_000_007,
                16_463_000_008,
                14_152_000_019,
                447_911_123_456,
            ],
            &mut many,
        );
        assert_eq!(
            many,
            [
                registry::Lookup::Listed,
                registry::Lookup::NotListed,
                registry::Lookup::Listed,
                registry::Lookup::NotCovered
            ]
        );
        // Flip one byte of an index file: the load refuses it instead of answering from a damaged index.
        let key = &live.manifest.area_codes["415"].key;
        let path = store.root.join(key);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let err = load(&store, "state").await.unwrap_err();
        assert_eq!(err.kind(), "RegistryIndexDamaged", "{err}");
        assert!(report.version.is_some());
    }

    /// `dncctl check` streams a campaign file batch by batch: every row comes out once, in input order (across
    /// batches, with rows that cannot be read answered `invalid` in their place), the verdicts are the registry's, the
    /// totals add up over the batches, and the output file appears whole (written aside, then renamed).
    #[tokio::test]
    async fn the_cli_check_streams_a_file_larger_than_a_batch_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("ftc");
        std::fs::create_dir_all(&input).unwrap();
        // Every even line number of 202-456-xxxx is registered.
        let listed: String = (0..10_000u32)
            .step_by(2)
            .map(|l| format!("202,456{l:04}\n"))
            .collect();
        zip_file(&input.join("202.txt.zip"), "202.txt", &listed);
        zip_file(&input.join("415.txt.zip"), "415.txt", "415,5550101\n");
        let store = LocalStore {
            root: dir.path().join("out"),
        };
        import(
            &store,
            "national",
            std::slice::from_ref(&input),
            &ImportOptions {
                as_of: day(1),
                max_age_days: 31,
                force: false,
                scope: national(&[202, 415]),
            },
            &mut |_| {},
        )
        .await
        .unwrap();
        // 40,000 rows (more than two batches): numbers cycling through 202-456-0000..9999 in three formats (so
        // every number repeats across batches), an invalid one every 1,000 rows, a row without its phone field
        // every 7,001 rows, and a 303 number (an area code the registry does not cover) every 5,000.
        let mut csv = String::from("name,phone\n");
        let mut expected = Vec::new();
        for i in 0..40_000u32 {
            let l = i % 10_000;
            if i % 7_001 == 7_000 {
                csv += "no phone here\n";
                expected.push(("invalid", "MISSING_FIELD".to_string()));
            } else if i % 1_000 == 999 {
                csv += "n,12345\n";
                expected.push(("invalid", String::new()));
            } else if i % 5_000 == 4_998 {
                csv += "n,303-555-0199\n";
                expected.push(("error", "registry-not-covering:303".into()));
            } else {
                csv += &match i % 3 {
                    0 => format!("n,+1202456{l:04}\n"),
                    1 => format!("n,(202) 456-{l:04}\n"),
                    _ => format!("n,202.456.{l:04}\n"),
                };
                expected.push(if l % 2 == 0 {
                    ("suppressed", "registry:national".to_string())
                } else {
                    ("allowed", "not on any registry consulted".to_string())
                });
            }
        }
        let campaign = dir.path().join("campaign.csv");
        std::fs::write(&campaign, csv).unwrap();
        let results = dir.path().join("checked.csv");
        let out = std::process::Command::new(dncflow_tests::workspace_binary("dncctl"))
            .arg("check")
            .arg(&campaign)
            .args(["--registry", "national", "--at", "2026-12-07T17:00:00Z"])
            .arg("--out-dir")
            .arg(&store.root)
            .arg("--out")
            .arg(&results)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The 303 numbers are `error`: the check says the file is not safe to dial in full, and exits non-zero.
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("NOT safe to dial"), "{stderr}");
        assert!(!dir.path().join("checked.csv.partial").exists());
        let text = std::fs::read_to_string(&results).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("line,input,phoneNumber,status,reason,listMatches,callableNow,nextCallableAt,timeZone")
        );
        let rows: Vec<Vec<String>> = lines
            .map(|l| {
                // No field of this file holds a comma: a plain split reads it.
                l.split(',')
                    .map(|f| f.trim_matches('"').to_string())
                    .collect()
            })
            .collect();
        assert_eq!(rows.len(), expected.len(), "one line per input row");
        for (i, (row, (status, reason))) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(
                row[0],
                (i + 2).to_string(),
                "input order, line numbers of the file"
            );
            assert_eq!(row[3], *status, "row {i}: {row:?}");
            if !reason.is_empty() {
                assert_eq!(row[4], *reason, "row {i}: {row:?}");
            }
        }
        let count = |s: &str| expected.iter().filter(|(v, _)| *v == s).count();
        assert!(
            stderr.contains(&format!(
                "checked 40000: {} suppressed, {} allowed, {} invalid, {} errors",
                count("suppressed"),
                count("allowed"),
                count("invalid"),
                count("error")
            )),
            "{stderr}"
        );
    }
}
