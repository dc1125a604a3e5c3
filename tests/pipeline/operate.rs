//! `dncctl runs`, `rerun` and `redrive` against moto's Step Functions. Two moto servers: one as moto runs by default
//! (executions stay RUNNING until stopped, no real history) for listing and re-running many executions of the stack's
//! state machine; one executing ASL, with the dncflow definition's shape (`Init` keeps the input under `source`,
//! `Normalize` answers the run under `run`, a failure goes through `RecordFailure` to a `Fail` state), for run ids
//! read from outputs and histories and for redrive's decisions. (moto_server 5.2.1 executing ASL runs one execution:
//! the next StartExecution fails deep-copying the first; so there each execution has its own server.) moto
//! does not implement RedriveExecution: what is tested of `redrive` is everything before and after the call
//! (refusals, the lease taken back, and given back with the status when Step Functions refuses), not a redrive.

use std::process::Command;
use std::time::{Duration, Instant};

use dncflow::adapters::s3_event::{run_input, SourceObject};
use dncflow::adapters::sfn::{Executions, SfnClient};
use dncflow::adapters::store::{LocalStore, ObjectStore};
use dncflow::operate::{recent_runs, redrive, rerun, OperateError, RerunOf};
use dncflow::run::{lease_key, status_key};
use dncflow::steps::{mark_running, read_lease, Lease, LEASE_TTL_SECS};
use dncflow_tests::{sfn_client, start_moto, workspace_binary, Moto};
use serde_json::{json, Value};

/// The definition's shape, with Pass states for the functions. `hold` in the input parks the execution in a Wait
/// (to be stopped: ABORTED); `fail` sends it through the recorder to the Fail state.
fn definition() -> String {
    json!({"StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Parameters": {"source.$": "$", "execution.$": "$$.Execution.Id"}, "Next": "Normalize"},
        "Normalize": {"Type": "Pass", "ResultPath": "$.run", "Next": "Route",
            "Parameters": {"runId.$": "States.Format('r-{}', $.source.list)", "list.$": "$.source.list",
                           "bucket.$": "$.source.bucket"}},
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.source.hold", "IsPresent": true, "Next": "Hold"},
            {"Variable": "$.source.fail", "IsPresent": true, "Next": "RecordFailure"}], "Default": "Verified"},
        "Hold": {"Type": "Wait", "Seconds": 600, "Next": "Verified"},
        "RecordFailure": {"Type": "Pass", "Result": {"recorded": true}, "ResultPath": "$.recorded", "Next": "Failed"},
        "Failed": {"Type": "Fail", "Error": "NotSuppressing", "Cause": "no rule"},
        "Verified": {"Type": "Succeed"}
    }})
    .to_string()
}

/// moto, executing state machines when `execute`.
async fn moto(execute: bool) -> (Moto, aws_sdk_sfn::Client) {
    let moto = start_moto();
    if execute {
        reqwest::Client::new()
            .post(format!("{}/moto-api/config", moto.url))
            .json(&json!({"stepfunctions": {"execute_state_machine": true}}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    let sdk = sfn_client(&moto.url);
    (moto, sdk)
}

/// A state machine of the definition's shape named `name`.
async fn machine(sdk: &aws_sdk_sfn::Client, name: &str) -> String {
    sdk.create_state_machine()
        .name(name)
        .definition(definition())
        .role_arn("arn:aws:iam::123456789012:role/dncflow-state-machine")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

fn source(list: &str, key: &str) -> SourceObject {
    SourceObject {
        bucket: "dnc".into(),
        key: key.into(),
        version_id: None,
        list: list.into(),
    }
}

/// Start an execution on moto executing ASL and wait until it is past `Normalize` (or ended).
async fn start(sfn: &SfnClient, machine: &str, name: &str, input: Value) -> String {
    let arn = sfn.start(machine, name, &input.to_string()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = sfn.describe(&arn).await.unwrap();
        let normalized = sfn
            .state_outputs(&arn)
            .await
            .unwrap()
            .iter()
            .any(|(s, _)| s == "Normalize");
        if e.status.has_ended() || normalized {
            return arn;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not get past Normalize"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_of(sfn: &SfnClient, arn: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = sfn.describe(arn).await.unwrap().status;
        if status.has_ended() || Instant::now() > deadline {
            return status.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn with(list: &str, key: &str, extra: Value) -> Value {
    let mut input = run_input(&source(list, key));
    input
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    input
}

/// `dncctl` against the moto at `url`, with test credentials: (success, stdout, stderr).
fn dncctl(url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(workspace_binary("dncctl"))
        .args(args)
        .args(["--sfn-endpoint", url])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("DNCFLOW_STATE_MACHINE_ARN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_a_list_and_reruns_with_the_schedules_input() {
    let (moto, sdk) = moto(false).await;
    let machine = machine(&sdk, "dncflow-dncflow").await;
    let sfn = SfnClient::new(sdk.clone());
    let mut arns = Vec::new();
    for (name, list, key) in [
        ("b-1", "b", "incoming/b/1.csv"),
        ("a-1", "a", "incoming/a/1.csv"),
        ("a-2", "a", "incoming/a/2.csv"),
    ] {
        arns.push(
            sfn.start(&machine, name, &run_input(&source(list, key)).to_string())
                .await
                .unwrap(),
        );
        // Start dates a few milliseconds apart: "newest first" is then defined.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sdk.stop_execution()
        .execution_arn(&arns[1])
        .send()
        .await
        .unwrap();

    // runs: newest first, the list's only, each with its status and object.
    let runs = recent_runs(&sfn, &machine, Some("a"), 10, 100)
        .await
        .unwrap();
    let seen: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r.execution.name.as_str(),
                r.execution.status.as_str(),
                r.source.as_ref().unwrap().key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a-2", "RUNNING", "incoming/a/2.csv"),
            ("a-1", "ABORTED", "incoming/a/1.csv")
        ]
    );
    assert_eq!(
        recent_runs(&sfn, &machine, None, 2, 100)
            .await
            .unwrap()
            .len(),
        2,
        "at most --max"
    );

    // rerun: the list's latest object, with the builder's input (what the schedule gives); or a named key in the
    // bucket of the list's latest execution.
    let now = chrono::Utc::now();
    let again = rerun(&sfn, &machine, "b", RerunOf::Latest, now)
        .await
        .unwrap();
    assert_eq!(again.input, run_input(&source("b", "incoming/b/1.csv")));
    let started = sfn.describe(&again.execution).await.unwrap();
    assert!(started.name.starts_with("rerun-b-"), "{}", started.name);
    let input: Value = serde_json::from_str(started.input.as_deref().unwrap()).unwrap();
    assert_eq!(input, again.input, "the execution got the builder's input");
    let keyed = rerun(
        &sfn,
        &machine,
        "a",
        RerunOf::Key {
            key: "incoming/a/3.csv".into(),
            bucket: None,
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(keyed.input, run_input(&source("a", "incoming/a/3.csv")));
    let nothing = rerun(&sfn, &machine, "zzz", RerunOf::Latest, now)
        .await
        .unwrap_err();
    assert!(
        nothing
            .to_string()
            .contains("no earlier execution of list zzz"),
        "{nothing}"
    );

    // The same through the binary: --stack finds the state machine by the template's name.
    let (ok, stdout, stderr) = dncctl(&moto.url, &["runs", "--stack", "dncflow", "--list", "a"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(":execution:"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[2].contains("ABORTED") && lines[2].contains("a-1"),
        "{stdout}"
    );
    assert!(stdout.contains("s3://dnc/incoming/a/1.csv"), "{stdout}");
    let (ok, stdout, stderr) = dncctl(
        &moto.url,
        &["rerun", "--state-machine", &machine, "--list", "b"],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(":execution:dncflow-dncflow:rerun-b-"),
        "{stdout}"
    );
    let (ok, _, stderr) = dncctl(&moto.url, &["runs", "--stack", "nope"]);
    assert!(
        !ok && stderr.contains("no state machine named nope-dncflow"),
        "{stderr}"
    );
    let (ok, _, stderr) = dncctl(&moto.url, &["runs"]);
    assert!(!ok && stderr.contains("which stack?"), "{stderr}");
}

/// One execution on its own moto executing ASL, past `Normalize`: (moto, client, state machine, execution).
async fn executed(name: &str, list: &str, extra: Value) -> (Moto, SfnClient, String, String) {
    let (moto, sdk) = moto(true).await;
    let sfn = SfnClient::new(sdk.clone());
    let m = machine(&sdk, "dncflow-dncflow").await;
    let arn = start(
        &sfn,
        &m,
        name,
        with(list, &format!("incoming/{list}/{name}.csv"), extra),
    )
    .await;
    (moto, sfn, m, arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ids_from_outputs_and_histories_and_what_a_redrive_does_first() {
    let (_m1, done_sfn, done_machine, done) = executed("done", "b", json!({})).await;
    let (m2, held_sfn, held_machine, held) = executed("held", "a", json!({"hold": 1})).await;
    let (m3, recorded_sfn, recorded_machine, recorded) =
        executed("recorded", "a", json!({"fail": 1})).await;
    let (_m4, live_sfn, _, live) = executed("live", "c", json!({"hold": 1})).await;
    sfn_client(&m2.url)
        .stop_execution()
        .execution_arn(&held)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(&done_sfn, &done).await, "SUCCEEDED");
    assert_eq!(status_of(&held_sfn, &held).await, "ABORTED");
    assert_eq!(status_of(&recorded_sfn, &recorded).await, "FAILED");

    // The run id: from the output of a succeeded execution, from the history of the others.
    let run_of = |sfn: &SfnClient, m: &str| {
        let sfn = sfn.clone();
        let m = m.to_string();
        async move {
            let runs = recent_runs(&sfn, &m, None, 1, 1).await.unwrap();
            (
                runs[0].execution.status.to_string(),
                runs[0].run_id.clone(),
                runs[0].execution.error.clone(),
            )
        }
    };
    assert_eq!(
        run_of(&done_sfn, &done_machine).await,
        ("SUCCEEDED".into(), Some("r-b".into()), None)
    );
    assert_eq!(
        run_of(&held_sfn, &held_machine).await,
        ("ABORTED".into(), Some("r-a".into()), None)
    );
    assert_eq!(
        run_of(&recorded_sfn, &recorded_machine).await,
        (
            "FAILED".into(),
            Some("r-a".into()),
            Some("NotSuppressing".into())
        )
    );

    // redrive: refused for a running execution and for one whose failure was recorded.
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store_of =
        |_: &str| -> Box<dyn ObjectStore> { Box::new(LocalStore { root: root.clone() }) };
    let store = LocalStore { root: root.clone() };
    let err = redrive(&live_sfn, store_of, &live, now).await.unwrap_err();
    assert!(err.to_string().contains("is RUNNING"), "{err}");
    let err = redrive(&recorded_sfn, store_of, &recorded, now)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed through its failure recorder"),
        "{err}"
    );

    // The aborted one, whose list another execution holds (one its Step Functions does not know: the lease's expiry
    // decides, and it has not expired): refused, the lease left as it is.
    let holder = Lease {
        execution: live.clone(),
        run_id: "r-c".into(),
        acquired_at: now.to_rfc3339(),
        expires_at: (now + chrono::Duration::seconds(LEASE_TTL_SECS)).to_rfc3339(),
        took_over: None,
    };
    store
        .put_bytes(&lease_key("a"), serde_json::to_vec(&holder).unwrap())
        .await
        .unwrap();
    let err = redrive(&held_sfn, store_of, &held, now).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("held by {live}")),
        "{err}"
    );
    assert_eq!(read_lease(&store, "a").await.unwrap().unwrap(), holder);

    // The list free: the lease is taken back for the execution, Step Functions asked to redrive it; moto cannot, so
    // the lease is given back and the list's status put back as it was (taking the lease says RUNNING).
    store.delete(&lease_key("a")).await.unwrap();
    mark_running(&store, "a", "r-earlier", "an-earlier-execution", now)
        .await
        .unwrap();
    let before = store.get_bytes(&status_key("a")).await.unwrap().unwrap();
    let err = redrive(&held_sfn, store_of, &held, now).await.unwrap_err();
    assert!(
        matches!(&err, OperateError::Sfn(e) if e.to_string().contains("states:RedriveExecution")),
        "{err}"
    );
    assert_eq!(
        read_lease(&store, "a").await.unwrap(),
        None,
        "the lease was given back"
    );
    assert_eq!(
        store.get_bytes(&status_key("a")).await.unwrap().unwrap(),
        before
    );

    // Through the binary: a recorded failure is refused, pointing at rerun.
    let (ok, _, stderr) = dncctl(&m3.url, &["redrive", &recorded]);
    assert!(!ok && stderr.contains("dncctl rerun"), "{stderr}");
}
