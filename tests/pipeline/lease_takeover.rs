//! The lease step asking Step Functions (moto's) about the execution holding a list: an ended holder's lease is taken
//! over at once and the lease document says whose it was; a running holder's is not; Step Functions not answering
//! keeps the expiry rule. And the recorder of the ended execution, arriving after the takeover, still finds its run.

use chrono::{DateTime, Duration, Utc};
use dncflow::adapters::eventbridge::NoNotifier;
use dncflow::adapters::sfn::{Executions, SfnClient};
use dncflow::adapters::store::{LocalStore, ObjectStore};
use dncflow::run::{lease_key, ListStatus};
use dncflow::steps::{
    acquire_lease, read_lease, record_failure, Lease, LeaseTask, RunRef, LEASE_TTL_SECS,
};
use dncflow_tests::{create_state_machine, free_port, sfn_client, start_moto};
use serde_json::json;

fn task(list: &str, execution: &str, run_id: &str) -> LeaseTask {
    LeaseTask {
        run: RunRef {
            bucket: "b".into(),
            run_id: run_id.into(),
            list: list.into(),
        },
        execution: execution.into(),
        started_at: None,
        wait_seconds: None,
    }
}

/// A lease held by `execution` for run `r-old`, taken at `now` (so unexpired for 12 h 15 min).
async fn hold(store: &LocalStore, list: &str, execution: &str, now: DateTime<Utc>) {
    let lease = Lease {
        execution: execution.into(),
        run_id: "r-old".into(),
        acquired_at: now.to_rfc3339(),
        expires_at: (now + Duration::seconds(LEASE_TTL_SECS)).to_rfc3339(),
        took_over: None,
    };
    store
        .put_bytes(&lease_key(list), serde_json::to_vec(&lease).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_holders_lease_is_taken_over_at_once_a_running_or_unknown_ones_is_not() {
    let moto = start_moto();
    let sdk = sfn_client(&moto.url);
    let machine = create_state_machine(&sdk, "dncflow-dncflow").await;
    let sfn = SfnClient::new(sdk.clone());
    let start = |name: &'static str| {
        let sfn = sfn.clone();
        let machine = machine.clone();
        async move {
            sfn.start(
                &machine,
                name,
                r#"{"bucket":"b","key":"incoming/optouts/a.csv"}"#,
            )
            .await
            .unwrap()
        }
    };
    let aborted = start("aborted").await;
    let running = start("running").await;
    sdk.stop_execution()
        .execution_arn(&aborted)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sfn.describe(&aborted).await.unwrap().status.as_str(),
        "ABORTED"
    );
    let waiter = machine.replace(":stateMachine:", ":execution:") + ":waiter";

    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore {
        root: dir.path().to_path_buf(),
    };
    let now = Utc::now();

    // Ended (ABORTED): taken over now, not in 12 h 15 min; the lease says from whom and why.
    hold(&store, "optouts", &aborted, now).await;
    let out = acquire_lease(&store, Some(&sfn), &task("optouts", &waiter, "r-new"), now)
        .await
        .unwrap();
    assert!(out.acquired, "{out:?}");
    let lease = read_lease(&store, "optouts").await.unwrap().unwrap();
    assert_eq!(lease.execution, waiter);
    let took = lease.took_over.expect("the takeover is recorded");
    assert_eq!(
        (
            took.execution.as_str(),
            took.run_id.as_str(),
            took.reason.as_str(),
            took.holder_status.as_deref()
        ),
        (aborted.as_str(), "r-old", "holder-ended", Some("ABORTED"))
    );
    assert!(took.holder_stopped_at.is_some());

    // The aborted execution's recorder (its status-change event) arrives after the takeover: it still records the
    // run the lease was taken from, leaves the new holder's lease alone, and keeps the new run said in flight.
    let event = json!({
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"status": "ABORTED", "executionArn": aborted,
                   "input": r#"{"bucket":"b","key":"incoming/optouts/a.csv"}"#},
    });
    let recorded = record_failure(&store, &NoNotifier, &event, now)
        .await
        .unwrap();
    assert_eq!(recorded.run_id.as_deref(), Some("r-old"));
    assert_eq!(
        read_lease(&store, "optouts")
            .await
            .unwrap()
            .unwrap()
            .execution,
        waiter
    );
    let status: ListStatus = serde_json::from_slice(
        &store
            .get_bytes("status/optouts/latest.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status.status, "FAILED");
    assert_eq!(status.open_failures[0].run_id, "r-old");
    assert_eq!(
        status.running.expect("the new run is in flight").run_id,
        "r-new"
    );

    // Running: the waiter waits, told who holds the list.
    hold(&store, "internal", &running, now).await;
    let out = acquire_lease(&store, Some(&sfn), &task("internal", &waiter, "r-new"), now)
        .await
        .unwrap();
    assert_eq!(
        (out.acquired, out.held_by.as_deref()),
        (false, Some(running.as_str()))
    );

    // A holder Step Functions does not know (another account, a deleted machine): the expiry rule decides.
    let unknown = machine.replace(":stateMachine:", ":execution:") + ":never-started";
    hold(&store, "unknown", &unknown, now).await;
    let out = acquire_lease(&store, Some(&sfn), &task("unknown", &waiter, "r-new"), now)
        .await
        .unwrap();
    assert!(!out.acquired, "{out:?}");

    // Step Functions unreachable: an ended holder's lease is kept until it expires, then taken over as expired.
    let nowhere = SfnClient::new(sfn_client(&format!("http://127.0.0.1:{}", free_port())));
    hold(&store, "offline", &aborted, now).await;
    let out = acquire_lease(
        &store,
        Some(&nowhere),
        &task("offline", &waiter, "r-new"),
        now,
    )
    .await
    .unwrap();
    assert!(!out.acquired, "{out:?}");
    let later = now + Duration::seconds(LEASE_TTL_SECS + 1);
    let out = acquire_lease(
        &store,
        Some(&nowhere),
        &task("offline", &waiter, "r-new"),
        later,
    )
    .await
    .unwrap();
    assert!(out.acquired);
    let took = read_lease(&store, "offline")
        .await
        .unwrap()
        .unwrap()
        .took_over
        .unwrap();
    assert_eq!(
        (took.reason.as_str(), took.holder_status),
        ("expired", None)
    );

    // A local run's holder is never asked about: without Step Functions it waits out the expiry as before.
    hold(&store, "local", "local:r-old:2026-12-02T04:30:00Z", now).await;
    let out = acquire_lease(&store, Some(&sfn), &task("local", &waiter, "r-new"), now)
        .await
        .unwrap();
    assert!(!out.acquired);
}
