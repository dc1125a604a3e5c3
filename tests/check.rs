//! Outbound protection against the simulator: verdicts, chunking, de-duplication, fail-safe errors, the local
//! snapshot and numbers still propagating.

use dncflow_tests::sim_client;
use std::collections::HashSet;

use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig};
use dncflow::check::{audit_record, check, CheckRequest, ContactIn, SuppressionSnapshot, Verdict};
use dncflow::cxone::v2::V2Client;
use dncflow::cxone::{idempotency_key, EntryInput};
use dncflow::orchestrate::ensure_list;

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
        use dncflow::cxone::DncApi;
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
            dncflow::check::Blocker::Suppressed,
            dncflow::check::Blocker::Invalid
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
    let key = dncflow::check::AuditKey::new("v1", b"a test audit key, 16+ bytes").unwrap();
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
    let err = dncflow::pipeline::probe_canary(&api, &list_id, &["+12025550198".to_string()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("canary probe"), "{err}");
    s.sim.set_faults(tamper("reverse"));
    let probe = dncflow::pipeline::probe_canary(
        &api,
        &list_id,
        &["+12025550198".to_string(), "+14155550100".to_string()],
    )
    .await
    .unwrap();
    assert_eq!(probe.pending, ["+14155550100"], "{probe:?}");
}
