//! Declarative provisioning against the simulator: idempotent, and reporting fragmentation and priority inversion.

use dncflow_tests::sim_client;

use cxone_sim::SimConfig;
use dncflow::adapters::cxone::{DncApi, DncRule, RuleAction, RuleScope};
use dncflow::provision::{provision, ProvisionSpec};

#[tokio::test]
async fn provisioning_is_idempotent_and_reports_edge_case_3() {
    let s = cxone_sim::spawn(
        SimConfig {
            entries_rate: 1000.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = sim_client(&s, 50.0);
    let spec: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "TCPA_National"}, {"name": "State_TX"}],
            "rule": {"name": "DNC_Enforcement", "lists": ["TCPA_National", "State_TX"]}}"#,
    )
    .unwrap();
    let first = provision(&api, &spec).await.unwrap();
    assert!(
        first
            .actions
            .iter()
            .any(|a| a.starts_with("list TCPA_National: created")),
        "{first:?}"
    );
    assert!(first
        .actions
        .iter()
        .any(|a| a.starts_with("rule DNC_Enforcement: created")));
    assert!(first.findings.is_empty(), "{:?}", first.findings);

    let second = provision(&api, &spec).await.unwrap();
    assert!(
        second
            .actions
            .iter()
            .all(|a| a.contains("exists") || a.contains("unchanged")),
        "{second:?}"
    );
    assert_eq!(api.lists().await.unwrap().len(), 2);
    assert_eq!(api.rules().await.unwrap().len(), 1);

    // Drift: someone changes the priority; provisioning puts it back.
    let mut rule = api.rules().await.unwrap().remove(0);
    rule.priority = 20;
    api.update_rule(&rule.id.clone(), &rule).await.unwrap();
    let third = provision(&api, &spec).await.unwrap();
    assert!(third
        .actions
        .iter()
        .any(|a| a.starts_with("rule DNC_Enforcement: updated")));
    assert_eq!(api.rules().await.unwrap()[0].priority, 5);

    // Edge case 3: an INBOUND rule with an earlier priority and an ALLOW exception rule evaluated first.
    let lists = api.lists().await.unwrap();
    let tx = lists
        .iter()
        .find(|l| l.name == "State_TX")
        .unwrap()
        .id
        .clone();
    for (name, scope, priority, action) in [
        ("Legacy_Inbound", RuleScope::Inbound, 1, RuleAction::Block),
        ("Safe_Harbor", RuleScope::Outbound, 2, RuleAction::Allow),
    ] {
        api.create_rule(&DncRule {
            id: String::new(),
            name: name.into(),
            description: String::new(),
            scope,
            priority,
            list_ids: vec![tx.clone()],
            action,
            is_active: true,
        })
        .await
        .unwrap();
    }
    let report = provision(&api, &spec).await.unwrap();
    let text = report.findings.join("\n");
    assert!(
        text.contains("fragmentation: list State_TX is in 3 active rules"),
        "{text}"
    );
    assert!(text.contains("INBOUND-only rule Legacy_Inbound"), "{text}");
    assert!(text.contains("priority inversion: ALLOW rule Safe_Harbor (priority 2) is evaluated before DNC_Enforcement"), "{text}");
    assert!(
        !text.contains("TCPA_National"),
        "the national list is consolidated: {text}"
    );
}

/// A create answered with a 5xx (applied or not) or a reset may or may not have happened: provisioning reads the
/// list or rule back by name and creates it only if absent, so it neither fails nor duplicates.
#[tokio::test]
async fn provisioning_survives_ambiguous_failures_of_its_creates() {
    use cxone_sim::{Endpoint, FaultKind, FaultRule};
    let fault = |endpoint, kind, after| FaultRule {
        endpoint,
        kind,
        probability: 1.0,
        after,
        count: Some(1),
    };
    let s = cxone_sim::spawn(
        SimConfig {
            entries_rate: 1000.0,
            faults: vec![
                // The first list create is applied, then answered 503 (the first GET of the lists passes).
                fault(Endpoint::Lists, FaultKind::AppliedThen503, 1),
                // The rule create is answered 503 without being applied (the first GET of the rules passes).
                fault(Endpoint::Rules, FaultKind::ServerError { status: 503 }, 1),
            ],
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = sim_client(&s, 50.0);
    let spec: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "TCPA_National"}, {"name": "State_TX"}],
            "rule": {"name": "DNC_Enforcement", "lists": ["TCPA_National", "State_TX"]}}"#,
    )
    .unwrap();
    let report = provision(&api, &spec).await.unwrap();
    assert!(report.findings.is_empty(), "{report:?}");
    let lists = api.lists().await.unwrap();
    let mut names: Vec<&str> = lists.iter().map(|l| l.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["State_TX", "TCPA_National"], "no duplicate list");
    let rules = api.rules().await.unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].list_ids.len(), 2);
    let faults_fired = s.sim.requests().iter().filter(|r| r.status == 503).count();
    assert_eq!(faults_fired, 2, "both injected failures happened");

    // A reset in the middle of a create: the same.
    s.sim
        .set_faults(vec![fault(Endpoint::Lists, FaultKind::Reset, 1)]);
    let list = dncflow::local::ensure_list(&api, "optouts").await.unwrap();
    assert_eq!(
        api.lists()
            .await
            .unwrap()
            .iter()
            .filter(|l| l.name == "optouts")
            .count(),
        1
    );
    assert!(api
        .rules()
        .await
        .unwrap()
        .iter()
        .any(|r| r.blocks_outbound(&list.id)));
}

/// The provisioning file says which lists are registries: they are reported, never created in CXone, and a file
/// that declares a name both a registry and a CXone list (or puts a registry in the rule) is refused before any
/// change. The example file provisions as it is.
#[tokio::test]
async fn registries_are_declared_apart_from_cxone_lists() {
    let s = cxone_sim::spawn(SimConfig::default(), 0).await.unwrap();
    let api = sim_client(&s, 50.0);
    let example: ProvisionSpec = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/provision.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(example.problems().is_empty(), "{:?}", example.problems());
    let report = provision(&api, &example).await.unwrap();
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.starts_with("registry national: suppression index")),
        "{report:?}"
    );
    let names: Vec<String> = api
        .lists()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert!(
        !names.iter().any(|n| n.eq_ignore_ascii_case("national")),
        "{names:?}"
    );

    let contradictory: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "National"}, {"name": "Opt_Outs"}],
            "rule": {"name": "R", "lists": ["National", "Opt_Outs"]},
            "registries": [{"name": "national"}]}"#,
    )
    .unwrap();
    let before = api.lists().await.unwrap().len();
    let err = provision(&api, &contradictory)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("both a registry and a CXone list"), "{err}");
    assert!(err.contains("the rule names national"), "{err}");
    assert_eq!(
        api.lists().await.unwrap().len(),
        before,
        "nothing was created"
    );
}

/// The same provisioning file against the Admin API: groups created and activated, bound by the named outbound skill
/// (the dialect's binding in place of the rule), idempotent, the headroom reported; an inbound skill is refused.
#[tokio::test]
async fn the_same_file_provisions_admin_groups_bound_by_scrubbed_skills() {
    let s = cxone_sim::spawn(
        SimConfig {
            dialect: cxone_sim::SimDialect::Admin,
            entries_rate: 1000.0,
            calling_list_records: 1234,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let api = dncflow_tests::sim_api(&s, 50.0).await;
    let api = api.as_ref();
    let spec: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "TCPA_National"}, {"name": "State_TX"}],
            "rule": {"name": "DNC_Enforcement", "lists": ["TCPA_National", "State_TX"]},
            "scrubbedSkills": ["Outbound Sales"]}"#,
    )
    .unwrap();
    let first = provision(api, &spec).await.unwrap();
    assert!(
        first
            .actions
            .iter()
            .any(|a| a.contains("scrubbed by outbound skill Outbound Sales")),
        "{first:?}"
    );
    assert!(
        first
            .headroom
            .as_deref()
            .unwrap()
            .contains("1234 on calling lists"),
        "{first:?}"
    );
    for name in ["TCPA_National", "State_TX"] {
        let group = api.find_list(name).await.unwrap().unwrap();
        assert!(group.is_active, "{group:?}");
        let binding = api.suppression(&group).await.unwrap();
        assert!(
            binding.suppressing && binding.detail.contains("Outbound Sales"),
            "{binding:?}"
        );
    }
    let second = provision(api, &spec).await.unwrap();
    assert!(
        second
            .actions
            .iter()
            .filter(|a| a.starts_with("list "))
            .all(|a| a.contains("exists") || a.contains("already bound")),
        "{second:?}"
    );
    assert_eq!(api.lists().await.unwrap().len(), 2);

    let inbound: ProvisionSpec = serde_json::from_str(
        r#"{"lists": [{"name": "Inbound_Only"}],
            "rule": {"name": "R", "lists": ["Inbound_Only"]},
            "scrubbedSkills": ["Inbound Support"]}"#,
    )
    .unwrap();
    let err = provision(api, &inbound).await.unwrap_err().to_string();
    assert!(err.contains("not outbound"), "{err}");
}

/// `dncctl provision` succeeds on its first call under the simulator's standard faults (5 % 429, 5 % 5xx, 2 %
/// resets, 5 % applied-then-503, tokens expiring), in both dialects and for several seeds: an ambiguous create is
/// settled by reading back by name, in the published shape. Re-running it changes nothing.
async fn provisioning_succeeds_first_time_under_standard_faults(dialect: cxone_sim::SimDialect) {
    use cxone_sim::{Endpoint, FaultKind, FaultRule};
    let rule = |kind, probability| FaultRule {
        endpoint: Endpoint::Any,
        kind,
        probability,
        after: 0,
        count: None,
    };
    for seed in 1..=8 {
        let s = cxone_sim::spawn(
            SimConfig {
                dialect,
                seed,
                entries_rate: 2000.0,
                token_requests_per_minute: 10_000,
                faults: vec![
                    rule(FaultKind::TooManyRequests { retry_after: None }, 0.05),
                    rule(FaultKind::ServerError { status: 503 }, 0.05),
                    rule(FaultKind::Reset, 0.02),
                    rule(FaultKind::AppliedThen503, 0.05),
                    rule(FaultKind::ExpireTokens, 0.03),
                ],
                ..SimConfig::default()
            },
            0,
        )
        .await
        .unwrap();
        let api = dncflow_tests::sim_api(&s, 2000.0).await;
        let api = api.as_ref();
        let spec: ProvisionSpec = serde_json::from_str(
            r#"{"lists": [{"name": "TCPA_National"}, {"name": "State_TX"}, {"name": "Internal"}],
                "rule": {"name": "DNC_Enforcement", "lists": ["TCPA_National", "State_TX", "Internal"]},
                "scrubbedSkills": ["Outbound Sales", 4100002]}"#,
        )
        .unwrap();
        let first = provision(api, &spec).await;
        assert!(first.is_ok(), "seed {seed}: {first:?}");
        // A fault-free view of the result: no duplicate, every list suppressing.
        s.sim.set_faults(vec![]);
        let lists = api.lists().await.unwrap();
        assert_eq!(lists.len(), 3, "seed {seed}: {lists:?}");
        for l in &lists {
            assert!(
                api.suppression(l).await.unwrap().suppressing,
                "seed {seed}: {l:?}"
            );
        }
        let again = provision(api, &spec).await.unwrap();
        // Nothing created, updated, activated or linked the second time.
        assert!(
            again.actions.iter().all(|a| !a.contains(": created")
                && !a.contains(": updated")
                && !a.starts_with("activated")
                && !a.starts_with("DNC group ")),
            "seed {seed}: {again:?}"
        );
        assert_eq!(api.lists().await.unwrap().len(), 3);
    }
}
dncflow_tests::both_dialects!(provisioning_succeeds_first_time_under_standard_faults);
