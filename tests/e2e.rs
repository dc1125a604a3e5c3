//! End to end: the real `infra/statemachine.asl.json` executed by aws-local-stepfunctions, every Task running the real
//! function binary (through a local Lambda Runtime API, `tests/e2e/run-statemachine.mjs`), S3, Secrets Manager and
//! EventBridge served by moto_server, CXone played by the simulator over HTTP.
//!
//! Needs the function binaries (`cargo build --workspace --bins`) and `tests/e2e/node_modules` (`npm ci`):
//! `scripts/test.sh` does both before `cargo test`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use cxone_sim::{Endpoint, FaultKind, FaultRule, SimConfig};
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::{ObjectStore, S3Store};
use dncflow::local::ensure_list;
use dncflow::run::{ListStatus, Manifest, RunReport};
use dncflow::steps::reconcile::fetch_all_entries;
use dncflow_tests::{
    both_dialects, create_state_machine, s3_client, s3_client_as, secrets_client, sfn_client,
    sfn_client_as, sim_api, sim_client, start_moto, start_moto_with, Moto,
};
use serde_json::{json, Value};

const BUCKET: &str = "dncflow-e2e";
const SECRET: &str = "dncflow/cxone";
const AUDIT_KEY_SECRET: &str = "dncflow/audit-key";
const WORKERS: u32 = 3;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn binary(name: &str) -> PathBuf {
    dncflow_tests::workspace_binary(name)
}

/// One local AWS + CXone world.
struct World {
    moto: Moto,
    sim: cxone_sim::RunningSim,
    s3: aws_sdk_s3::Client,
    dir: tempfile::TempDir,
    /// With IAM enforced: each function binary's own access key (`{binary: {AWS_ACCESS_KEY_ID, …}}`).
    function_keys: Value,
    /// Step Functions on moto, as the test (the admin user when IAM is enforced).
    sfn: aws_sdk_sfn::Client,
}

/// How an execution ended.
#[derive(Debug)]
struct Outcome {
    status: String,
    /// The execution's output (when it succeeded).
    output: Value,
    error: Option<String>,
    cause: Option<String>,
    invocations: Value,
    /// The largest state input or output: `{bytes, state}`.
    max_payload: Value,
    /// Per function: `{peakRssKiB, busyMs, longestMs, environments}`.
    resources: Value,
}

impl Outcome {
    /// From the harness's answer.
    fn of(v: &Value) -> Outcome {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Outcome {
            status: text("status").unwrap_or_default(),
            output: v["output"].clone(),
            error: text("error"),
            cause: text("cause"),
            invocations: v["invocations"].clone(),
            max_payload: v["maxPayload"].clone(),
            resources: v["resources"].clone(),
        }
    }
}

impl World {
    async fn new(sim_config: SimConfig) -> World {
        let moto = start_moto();
        let sim = cxone_sim::spawn(sim_config, 0).await.unwrap();
        let s3 = s3_client(&moto.url);
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        secrets_client(&moto.url)
            .create_secret()
            .name(SECRET)
            .secret_string(sim.credentials_document())
            .send()
            .await
            .unwrap();
        secrets_client(&moto.url)
            .create_secret()
            .name(AUDIT_KEY_SECRET)
            .secret_string("e2e audit key: 32 bytes or more of it")
            .send()
            .await
            .unwrap();
        let sfn = sfn_client(&moto.url);
        World {
            moto,
            sim,
            s3,
            dir: tempfile::tempdir().unwrap(),
            function_keys: Value::Null,
            sfn,
        }
    }

    /// A world where moto enforces IAM and every function binary signs as an IAM user holding exactly the statements
    /// of its role in the SAM-transformed `template.yaml` (`scripts/iam.py moto-world`); `drop` removes statements
    /// (`upload:1`) for the negative test. The test itself acts as an admin user.
    async fn with_iam(sim_config: SimConfig, drop: &[&str]) -> World {
        let moto = start_moto_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
        let sim = cxone_sim::spawn(sim_config, 0).await.unwrap();
        let secret_string = sim.credentials_document();
        let mut cmd = Command::new("python3");
        cmd.current_dir(workspace()).args([
            "scripts/iam.py",
            "moto-world",
            "template.yaml",
            "--endpoint",
            &moto.url,
            "--bucket",
            BUCKET,
            "--secret-name",
            SECRET,
            "--secret-string",
            &secret_string,
            "--audit-key-secret",
            AUDIT_KEY_SECRET,
        ]);
        for d in drop {
            cmd.args(["--drop", d]);
        }
        let out = cmd.output().expect("python3");
        assert!(
            out.status.success(),
            "iam.py moto-world: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let world: Value = serde_json::from_slice(&out.stdout).unwrap();
        let admin = &world["admin"];
        let s3 = s3_client_as(
            &moto.url,
            admin["AWS_ACCESS_KEY_ID"].as_str().unwrap(),
            admin["AWS_SECRET_ACCESS_KEY"].as_str().unwrap(),
        );
        let sfn = sfn_client_as(
            &moto.url,
            admin["AWS_ACCESS_KEY_ID"].as_str().unwrap(),
            admin["AWS_SECRET_ACCESS_KEY"].as_str().unwrap(),
        );
        World {
            moto,
            sim,
            s3,
            dir: tempfile::tempdir().unwrap(),
            function_keys: world["functions"].clone(),
            sfn,
        }
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.s3.clone(), BUCKET)
    }

    async fn drop_file(&self, key: &str, body: String) {
        self.s3
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .unwrap();
    }

    /// Every current object of the bucket written under `dir` at its key (what a local output root holds).
    async fn copy_bucket(&self, dir: &Path) {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.unwrap().contents() {
                let key = object.key().unwrap();
                let bytes = self.store().get_bytes(key).await.unwrap().unwrap();
                let path = dir.join(key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
        }
    }

    /// `dncctl ARGS` against this world's moto (with `--s3-endpoint` when reading `s3://`): its stdout, after
    /// asserting that it succeeded.
    fn dncctl(&self, args: &[&str]) -> String {
        let mut command = Command::new(binary("dncctl"));
        command
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1");
        if args.iter().any(|a| a.starts_with("s3://")) {
            command.args(["--s3-endpoint", &self.moto.url]);
        }
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "dncctl {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> T {
        let bytes = self
            .store()
            .get_bytes(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} was not written"));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Execute the state machine on `input`; the upload function gets `upload_deadline_ms` per invocation.
    fn execute(&self, name: &str, input: Value, upload_deadline_ms: u64) -> Outcome {
        self.execute_with(name, input, upload_deadline_ms, &[])
    }

    /// Run `infra/registry-import.asl.json` (the registry function for every Task) on `input`.
    fn execute_registry_import(&self, name: &str, input: Value) -> Outcome {
        let config = json!({
            "definition": workspace().join("infra/registry-import.asl.json"),
            "substitutions": {
                "RegistryFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:registry",
            },
            "functions": {"registry": binary("registry")},
            "env": self.function_env(&[]),
            "functionEnv": self.function_keys,
            "executionName": name,
            "retryIntervalMs": 200,
            "maxInstances": 2,
            "input": input,
            "logFile": self.dir.path().join("functions.log"),
            "timeoutMs": 120_000,
        });
        Outcome::of(&self.harness(&format!("registry-import-{name}"), &config))
    }

    /// The same, with environment variables of the functions overridden.
    fn execute_with(
        &self,
        name: &str,
        input: Value,
        upload_deadline_ms: u64,
        env: &[(&str, &str)],
    ) -> Outcome {
        self.execute_for(name, input, upload_deadline_ms, env, 240_000)
    }

    /// The same, the execution aborted after `timeout_ms` (as Step Functions ends one that times out).
    fn execute_for(
        &self,
        name: &str,
        input: Value,
        upload_deadline_ms: u64,
        env: &[(&str, &str)],
        timeout_ms: u64,
    ) -> Outcome {
        let config = json!({
            "definition": workspace().join("infra/statemachine.asl.json"),
            "substitutions": {
                "NormalizeFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:normalize",
                "UploadFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:upload",
                "CooldownFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:cooldown",
                "ReconcileFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:reconcile",
                "RecordFailureFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:record-failure",
                "LeaseFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:lease",
                "UploadWorkers": WORKERS,
            },
            "functions": {
                "normalize": binary("normalize"),
                "upload": binary("upload"),
                "cooldown": binary("cooldown"),
                "reconcile": binary("reconcile"),
                "record-failure": binary("record-failure"),
                "lease": binary("lease"),
            },
            "env": self.function_env(env),
            "functionEnv": self.function_keys,
            "executionName": name,
            "deadlineMs": {"upload": upload_deadline_ms},
            "retryIntervalMs": 200,
            "maxInstances": WORKERS,
            "input": input,
            "logFile": self.dir.path().join("functions.log"),
            "timeoutMs": timeout_ms,
        });
        Outcome::of(&self.harness(name, &config))
    }

    /// Invoke one function binary directly, one payload after another on the same warm environment (as a Function
    /// URL or a console test does); one result per payload: `{ok: true, output}` or `{ok: false, error, cause}`.
    fn invoke(&self, function: &str, payloads: Vec<Value>, env: &[(&str, &str)]) -> Vec<Value> {
        self.invoke_measured(function, payloads, env).0
    }

    /// The same, with the function's resources (`{peakRssKiB, busyMs, longestMs, environments}`).
    fn invoke_measured(
        &self,
        function: &str,
        payloads: Vec<Value>,
        env: &[(&str, &str)],
    ) -> (Vec<Value>, Value) {
        let config = json!({
            "functions": {function: binary(function)},
            "env": self.function_env(env),
            "functionEnv": self.function_keys,
            "logFile": self.dir.path().join("functions.log"),
            "invoke": {"function": function, "payloads": payloads},
        });
        let v = self.harness(&format!("invoke-{function}"), &config);
        (
            v["results"].as_array().cloned().unwrap_or_default(),
            v["resources"][function].clone(),
        )
    }

    /// The environment every function gets here: moto's endpoints, the bucket, the secret; `overrides` on top.
    fn function_env(&self, overrides: &[(&str, &str)]) -> Value {
        let mut env = json!({
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ENDPOINT_URL_S3": self.moto.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "DNCFLOW_BUCKET": BUCKET,
            "DNCFLOW_SECRET_ID": SECRET,
            "DNCFLOW_AUDIT_KEY_SECRET_ID": AUDIT_KEY_SECRET,
            "DNCFLOW_SHARDS": "4",
            "DNCFLOW_TENANT_RATE": "45",
            "DNCFLOW_UPLOAD_WORKERS": WORKERS.to_string(),
            "DNCFLOW_UPLOAD_MARGIN_SECS": "1",
            "DNCFLOW_COOLDOWN_SECS": "2",
            "DNCFLOW_CANARY_INTERVAL_SECS": "1",
            "DNCFLOW_COOLDOWN_ATTEMPTS": "30",
            "DNCFLOW_CANARY_SETTLE_SECS": "5",
            "DNCFLOW_RECONCILE_ROUNDS": "3",
            "RUST_LOG": "info",
        });
        for (k, v) in overrides {
            env[*k] = json!(v);
        }
        env
    }

    /// Run `tests/e2e/run-statemachine.mjs` on `config`; its one-line JSON answer.
    fn harness(&self, name: &str, config: &Value) -> Value {
        let config_path = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&config_path, config.to_string()).unwrap();
        let e2e = workspace().join("tests/e2e");
        assert!(
            e2e.join("node_modules/aws-local-stepfunctions").exists(),
            "tests/e2e/node_modules is missing: npm ci --prefix tests/e2e (scripts/test.sh does)"
        );
        let out = Command::new("node")
            .current_dir(&e2e)
            .args(["--import", "./polyfill.mjs", "run-statemachine.mjs"])
            .arg(&config_path)
            .output()
            .expect("node");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().last().unwrap_or_else(|| {
            panic!(
                "the harness printed nothing: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        serde_json::from_str(line).unwrap()
    }

    /// An SQS queue that an EventBridge rule on the default bus feeds with dncflow's status events.
    async fn subscribe_status_events(&self) -> (aws_sdk_sqs::Client, String) {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .endpoint_url(&self.moto.url)
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&conf);
        let events = aws_sdk_eventbridge::Client::new(&conf);
        let url = sqs
            .create_queue()
            .queue_name("status-events")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        events
            .put_rule()
            .name("dncflow-status")
            .event_pattern(
                json!({"source": ["dncflow"], "detail-type": ["DNC List Status"]}).to_string(),
            )
            .send()
            .await
            .unwrap();
        events
            .put_targets()
            .rule("dncflow-status")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        (sqs, url)
    }

    /// The details of the status events delivered to the queue so far.
    async fn status_events(&self, (sqs, url): &(aws_sdk_sqs::Client, String)) -> Vec<Value> {
        let mut details = Vec::new();
        loop {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return details;
            }
            for m in messages {
                let event: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
                details.push(event["detail"].clone());
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    fn function_logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("functions.log")).unwrap_or_default()
    }

    async fn list_numbers(&self, list: &str) -> BTreeSet<String> {
        let api = sim_api(&self.sim, 1000.0).await;
        let api = api.as_ref();
        let l = api.find_list(list).await.unwrap().unwrap();
        fetch_all_entries(api, &l.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.phone_number)
            .collect()
    }

    /// Every number the run's shards hold.
    async fn run_numbers(&self, manifest: &Manifest) -> BTreeSet<String> {
        let mut numbers = BTreeSet::new();
        for shard in &manifest.shards {
            let key = format!("runs/{}/{}", manifest.run_id, shard.key);
            let bytes = self.store().get_bytes(&key).await.unwrap().unwrap();
            for line in String::from_utf8(bytes).unwrap().lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                numbers.insert(v["phoneNumber"].as_str().unwrap().to_string());
            }
        }
        numbers
    }
}

/// `n` distinct DC numbers, some duplicated and some invalid rows, as a CSV an operator would drop.
fn dnc_csv(first: u32, n: u32) -> String {
    let mut s = String::from("phone_number,source\n");
    for i in 0..n {
        s += &format!("(202) 555-{:04},opt-out\n", first + i);
        if i % 50 == 0 {
            s += &format!("+1 202 555 {:04},opt-out\n", first + i); // a duplicate in another format
        }
    }
    s += "not a number,opt-out\n12345,opt-out\n";
    s
}

fn s3_event(key: &str) -> Value {
    json!({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}})
}

fn count(v: &Value, f: &str) -> u64 {
    v.get(f).and_then(Value::as_u64).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_file_ends_verified_a_rerun_adds_nothing_and_a_broken_list_fails_keeping_the_last_good_run(
) {
    let world = World::new(SimConfig {
        propagation_secs: (1, 2),
        entries_rate: 100.0,
        ..SimConfig::default()
    })
    .await;
    let api = sim_client(&world.sim, 100.0);
    let list = ensure_list(&api, "optouts").await.unwrap();
    let queue = world.subscribe_status_events().await;

    // 1. A drop of 2,400 numbers; upload invocations get a 2 s deadline (1 s of budget) at 300 entries/s per
    //    worker, so every shard (~600 entries) must be resumed from its cursor.
    world
        .drop_file("incoming/optouts/2026-11-24.csv", dnc_csv(0, 2400))
        .await;
    let first = world.execute_with(
        "first",
        s3_event("incoming/optouts/2026-11-24.csv"),
        2000,
        &[
            ("DNCFLOW_TENANT_RATE", "9"),
            ("DNCFLOW_UPLOAD_CONCURRENCY", "1"),
        ],
    );
    assert_eq!(
        first.status,
        "SUCCEEDED",
        "{first:?}\n{}",
        world.function_logs()
    );
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    // The same status went out as an EventBridge event (what campaign activation can be gated on).
    let events = world.status_events(&queue).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0], serde_json::to_value(&status).unwrap());
    let report: RunReport = world.get_json(&status.report_key).await;
    let manifest: Manifest = world
        .get_json(&format!("runs/{}/manifest.json", report.run_id))
        .await;
    let n = &report.normalize;
    assert_eq!(
        (n.rows, n.accepted, n.duplicates, n.rejected),
        (2450, 2400, 48, 2)
    );
    assert_eq!(n.rows, n.accepted + n.duplicates + n.rejected);
    assert_eq!(
        (report.expected, report.found, report.missing),
        (2400, 2400, 0)
    );
    assert_eq!(report.upload.created, 2400);
    // The run's timeline as the state machine's steps recorded it: received (the object's LastModified) →
    // normalized → uploaded → propagated → verified, each in the report and on its page.
    let moments = report.timeline();
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = moments
        .iter()
        .map(|(moment, t)| {
            chrono::DateTime::parse_from_rfc3339(t.unwrap_or_else(|| panic!("no {moment}")))
                .unwrap()
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{moments:?}");
    let page = String::from_utf8(
        world
            .store()
            .get_bytes(&format!("runs/{}/report.html", report.run_id))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    for (moment, t) in moments {
        assert!(
            page.contains(&format!(
                "<tr data-moment=\"{moment}\"><th>{moment}</th><td class=\"mono\">{}</td>",
                t.unwrap()
            )),
            "{moment}"
        );
    }
    let expected = world.run_numbers(&manifest).await;
    assert_eq!(expected.len(), 2400);
    assert_eq!(
        world.list_numbers("optouts").await,
        expected,
        "the list holds exactly the run's numbers"
    );
    let uploads = count(&first.invocations, "upload");
    assert!(
        uploads > manifest.shards.len() as u64,
        "{uploads} upload invocations for {} shards: the resume loop never ran",
        manifest.shards.len()
    );
    assert!(count(&first.invocations, "cooldown") >= 2, "{first:?}");
    // The report is human-readable too, and the dead letters are consolidated (none here).
    let md = world
        .store()
        .get_bytes(&format!("runs/{}/report.md", report.run_id))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8(md).unwrap().contains("**SUCCESS**"));

    // 1b. The check function, invoked with Function URL events as its URL delivers them: the verified list answers
    //     from the snapshot the reconcile wrote, the rest is asked of CXone, bad bodies get 400, and a check CXone
    //     cannot complete is never "allowed".
    let url_event = |body: String, base64: bool| {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": body, "isBase64Encoded": base64})
    };
    let check_env = [("DNCFLOW_CHECK_LISTS", "optouts")];
    let answers = world.invoke(
        "check",
        vec![
            url_event(
                // Wednesday noon in Washington: inside calling hours.
                json!({"contacts": [{"phoneNumber": "(202) 555-0007"}, {"phoneNumber": "202-555-9999"},
                    {"phoneNumber": "12345"}, {"phoneNumber": "+1 202 555 0007"}],
                    "at": "2026-12-09T17:00:00Z"})
                .to_string(),
                false,
            ),
            url_event(
                base64::engine::general_purpose::STANDARD
                    // 22:00 in Washington the evening before: allowed, but not callable until 08:00.
                    .encode(json!({"contacts": [{"phoneNumber": "2025559998"}],
                        "at": "2026-12-09T03:00:00Z"}).to_string()),
                true,
            ),
            url_event("{not json".into(), false),
        ],
        &check_env,
    );
    let http = |answer: &Value| -> (u64, Value) {
        assert_eq!(answer["ok"], true, "{answer}");
        let out = &answer["output"];
        let body = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        (out["statusCode"].as_u64().unwrap(), body)
    };
    let verdicts = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(answers.len(), 3, "{answers:?}\n{}", world.function_logs());
    let (code, body) = http(&answers[0]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        verdicts(&body),
        ["suppressed", "allowed", "invalid", "suppressed"]
    );
    // Every number checked, but the batch cannot be dialed in full: two are listed, one is not a number.
    assert_eq!(
        (&body["complete"], &body["safeToDial"], &body["blockedBy"]),
        (
            &json!(true),
            &json!(false),
            &json!(["suppressed", "invalid"])
        ),
        "{body}"
    );
    assert_eq!(body["results"][1]["callableNow"], true, "{body}");
    assert_eq!(
        body["results"][1]["window"],
        json!({"start": "2026-12-09T08:00:00-05:00", "end": "2026-12-09T21:00:00-05:00",
            "timeZone": "America/New_York"})
    );
    assert_eq!(
        body["metrics"]["prefiltered"], 1,
        "the listed number is answered from the snapshot: {body}"
    );
    let (code, body) = http(&answers[1]);
    assert_eq!((code, verdicts(&body)), (200, vec!["allowed".to_string()]));
    assert_eq!(
        (
            &body["results"][0]["callableNow"],
            &body["results"][0]["nextCallableAt"]
        ),
        (&json!(false), &json!("2026-12-09T13:00:00Z")),
        "{body}"
    );
    assert_eq!(
        (
            &body["safeToDial"],
            &body["blockedBy"],
            &body["metrics"]["outsideCallingHours"]
        ),
        (&json!(false), &json!(["outsideCallingHours"]), &json!(1))
    );
    let (code, body) = http(&answers[2]);
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("not a check request"));
    // CXone's check endpoint down: the unlisted number is an error and the batch is not safe to dial; the listed
    // one is still suppressed.
    world.sim.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::Contacts,
        kind: FaultKind::ServerError { status: 503 },
        probability: 1.0,
        after: 0,
        count: None,
    }]);
    let down = world.invoke(
        "check",
        vec![url_event(
            json!({"contacts": [{"phoneNumber": "202-555-9997"}, {"phoneNumber": "202-555-0007"}]})
                .to_string(),
            false,
        )],
        &check_env,
    );
    world.sim.sim.set_faults(Vec::new());
    let (code, body) = http(&down[0]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(verdicts(&body), ["error", "suppressed"]);
    assert_eq!(body["safeToDial"], false);
    // Every answered check left an audit record, naming numbers only by hash.
    let audits = world
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("audit/")
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default();
    assert_eq!(audits.len(), 3, "{audits:?}");
    for object in &audits {
        let text = String::from_utf8(
            world
                .store()
                .get_bytes(object.key().unwrap())
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert!(
            !text.contains("5550007") && !text.contains("555-0007"),
            "{text}"
        );
        // The calling-hours decision is audited with the verdicts.
        let record: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            record["callingHours"].as_array().map(Vec::len),
            record["items"].as_array().map(Vec::len),
            "{text}"
        );
    }
    // 1c. An operator's closure (`dncctl hours closure add`: the document in the bucket) closes Washington from
    //     16:00 UTC on 9 December until 15:00 UTC on the 10th: the noon check is no longer callable, the next call
    //     is at the closure's end, and the response and audit name the closures' version.
    let closures = dncflow::hours::closures::ClosuresFile {
        closures: vec![dncflow::hours::closures::Closure {
            id: "dc-closed".into(),
            jurisdiction: "US-DC".into(),
            start: "2026-12-09T16:00:00Z".parse().unwrap(),
            end: "2026-12-10T15:00:00Z".parse().unwrap(),
            reason: "a day of mourning appointed by the President".into(),
            source: "https://www.whitehouse.gov/presidential-actions/".into(),
            added_at: None,
        }],
    };
    world
        .store()
        .put_bytes(dncflow::run::HOURS_CLOSURES, closures.to_json())
        .await
        .unwrap();
    let closed = world.invoke(
        "check",
        vec![url_event(
            json!({"contacts": [{"phoneNumber": "202-555-9999"}, {"phoneNumber": "+1 416 555 0100"}],
                "at": "2026-12-09T17:00:00Z"})
            .to_string(),
            false,
        )],
        &check_env,
    );
    let (code, body) = http(&closed[0]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            &body["results"][0]["callableNow"],
            &body["results"][0]["nextCallableAt"],
            &body["results"][1]["callableNow"]
        ),
        (&json!(false), &json!("2026-12-10T15:00:00Z"), &json!(true)),
        "{body}"
    );
    assert!(
        body["results"][0]["hoursReason"]
            .as_str()
            .unwrap_or_default()
            .contains("closure dc-closed"),
        "{body}"
    );
    assert!(
        body["hoursClosures"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sha256:"),
        "{body}"
    );
    world
        .store()
        .delete(dncflow::run::HOURS_CLOSURES)
        .await
        .unwrap();

    // 2. The same object again: the same run, nothing new on the list.
    let writes_before = world.sim.sim.state()["entries"].as_u64().unwrap();
    let again = world.execute("again", s3_event("incoming/optouts/2026-11-24.csv"), 60_000);
    assert_eq!(again.status, "SUCCEEDED", "{again:?}");
    assert_eq!(
        world.sim.sim.state()["entries"].as_u64().unwrap(),
        writes_before
    );
    assert_eq!(world.list_numbers("optouts").await, expected);
    let status2: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(
        (status2.status.as_str(), status2.run_id.as_str()),
        ("SUCCESS", report.run_id.as_str())
    );

    // 3. The list's rule is switched off, then a new file arrives: the run must fail (suppression would not
    //    apply), say why, and keep the last known good run.
    let mut rule = api
        .rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.list_ids.contains(&list.id))
        .unwrap();
    rule.is_active = false;
    api.update_rule(&rule.id.clone(), &rule).await.unwrap();
    world
        .drop_file("incoming/optouts/2026-11-25.csv", dnc_csv(5000, 100))
        .await;
    let broken = world.execute(
        "broken",
        s3_event("incoming/optouts/2026-11-25.csv"),
        60_000,
    );
    assert_eq!(broken.status, "FAILED");
    assert_eq!(
        broken.error.as_deref(),
        Some("NotSuppressing"),
        "{broken:?}"
    );
    assert!(
        broken
            .cause
            .as_deref()
            .unwrap_or("")
            .contains("no active BLOCK rule"),
        "the execution says why: {broken:?}"
    );
    let status3: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status3.status, "FAILED");
    let events = world.status_events(&queue).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["SUCCESS", "FAILED"],
        "the re-run's SUCCESS, then the failure"
    );
    let reason = status3.reason.clone().unwrap();
    assert!(
        reason.contains("NotSuppressing") && reason.contains("no active BLOCK rule"),
        "{reason}"
    );
    assert_ne!(status3.run_id, report.run_id);
    assert_eq!(
        status3.last_success.unwrap().run_id,
        report.run_id,
        "the last known good run is kept"
    );
    assert_eq!(
        world.list_numbers("optouts").await,
        expected,
        "nothing was written"
    );

    // 4. A list nobody provisioned: FAILED with a status, never a silent end.
    world
        .drop_file("incoming/unknown-list/a.csv", dnc_csv(0, 10))
        .await;
    let unknown = world.execute("unknown", s3_event("incoming/unknown-list/a.csv"), 60_000);
    assert_eq!(unknown.status, "FAILED");
    let status4: ListStatus = world.get_json("status/unknown-list/latest.json").await;
    assert_eq!(status4.status, "FAILED");
    assert!(status4.reason.unwrap().contains("does not exist"));
    assert!(status4.last_success.is_none());

    // 5. The list's evidence read from the bucket, as the pipeline wrote it, is the evidence read from a copy of the
    //    bucket on disk: the same CSV, index and run pages, the same answer for each number looked up.
    let copy = world.dir.path().join("bucket-copy");
    world.copy_bucket(&copy).await;
    let bucket = format!("s3://{BUCKET}");
    let (s3_out, disk_out) = (
        world.dir.path().join("evidence-s3"),
        world.dir.path().join("evidence-disk"),
    );
    let said_s3 = world.dncctl(&[
        "evidence",
        "--list",
        "optouts",
        "--runs",
        &bucket,
        "--out",
        s3_out.to_str().unwrap(),
    ]);
    let said_disk = world.dncctl(&[
        "evidence",
        "--list",
        "optouts",
        "--runs",
        copy.to_str().unwrap(),
        "--out",
        disk_out.to_str().unwrap(),
    ]);
    // Both runs of the list: the verified one and the one that failed NotSuppressing.
    let summary = |said: &str| said.lines().next().unwrap_or_default().to_string();
    assert!(
        summary(&said_s3).starts_with("list optouts, the first run to today: 2 runs, 1 honoured"),
        "{said_s3}"
    );
    assert_eq!(summary(&said_s3), summary(&said_disk));
    let csv = std::fs::read_to_string(s3_out.join("evidence.csv")).unwrap();
    assert_eq!(
        csv,
        std::fs::read_to_string(disk_out.join("evidence.csv")).unwrap()
    );
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let first_row = rows
        .iter()
        .find(|r| r.starts_with(&format!("{},", report.run_id)))
        .unwrap_or_else(|| panic!("{csv}"));
    // The file's identity as S3 gave it, its receipt (the object's LastModified), verified, honoured.
    assert!(
        first_row.contains(&format!(
            ",s3://{BUCKET}/incoming/optouts/2026-11-24.csv,{},{},",
            manifest.source.version_id.as_deref().unwrap_or(""),
            manifest.source.sha256
        )),
        "{first_row}"
    );
    assert!(
        first_row.contains(",honoured,SUCCESS,,2450,2400,48,2,0,2400,"),
        "{first_row}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains(",FAILED,") && r.contains("NotSuppressing")),
        "{csv}"
    );
    // The index differs only in when it was generated.
    let generated = |dir: &Path| {
        let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
        let at = page.find(" · generated ").expect("the index says when");
        let end = at + page[at..].find(" · rule:").unwrap();
        format!("{}{}", &page[..at], &page[end..])
    };
    assert_eq!(generated(&s3_out), generated(&disk_out));
    for run in [&report.run_id, &status3.run_id] {
        let page = format!("runs/{run}/report.html");
        let from_s3 = std::fs::read(s3_out.join(&page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert_eq!(from_s3, std::fs::read(disk_out.join(&page)).unwrap());
    }
    // A number verified, one received only by the failed run, one never received: the same answers both ways.
    for (number, expect) in [
        ("(202) 555-0007", "verified held by CXone at"),
        ("202-555-5007", "run FAILED at"),
        ("202-555-8888", "never received by any run"),
    ] {
        let lookup = |runs: &str| {
            world
                .dncctl(&[
                    "evidence", "lookup", number, "--list", "optouts", "--runs", runs,
                ])
                .replace(&format!("found under {runs}"), "found under RUNS")
        };
        let answer = lookup(&bucket);
        assert!(answer.contains(expect), "{number}: {answer}");
        assert!(!answer.contains("2025550007"), "masked: {answer}");
        assert_eq!(answer, lookup(copy.to_str().unwrap()), "{number}");
    }

    // Nothing the functions logged carries the client secret or a token.
    let logs = world.function_logs();
    assert!(
        logs.contains("shard uploaded"),
        "function logs were captured"
    );
    let (_, secret) = SimConfig::default().clients[0].clone();
    assert!(
        !logs.contains(&secret),
        "the client secret appeared in the function logs"
    );
    for token in world.sim.sim.issued_tokens() {
        assert!(
            !logs.contains(&token),
            "a token appeared in the function logs"
        );
    }
    assert!(
        !logs.contains("2025550001"),
        "an unmasked phone number appeared in the logs"
    );
}

both_dialects!(a_run_with_injected_faults_still_ends_verified);
async fn a_run_with_injected_faults_still_ends_verified(dialect: cxone_sim::SimDialect) {
    let fault = |endpoint, kind, probability, count| FaultRule {
        endpoint,
        kind,
        probability,
        after: 0,
        count,
    };
    let world = World::new(SimConfig {
        dialect,
        propagation_secs: (1, 2),
        entries_rate: 100.0,
        seed: 7,
        faults: vec![
            fault(
                Endpoint::EntriesPost,
                FaultKind::TooManyRequests {
                    retry_after: Some(1),
                },
                0.1,
                None,
            ),
            fault(
                Endpoint::EntriesPost,
                FaultKind::ServerError { status: 503 },
                0.05,
                Some(4),
            ),
            fault(
                Endpoint::EntriesPost,
                FaultKind::AppliedThen503,
                0.05,
                Some(3),
            ),
            // Some writes are acknowledged but lost: only reconciliation can find them.
            fault(
                Endpoint::EntriesPost,
                FaultKind::LoseWrites { per_entry: 0.02 },
                1.0,
                Some(5),
            ),
            fault(
                Endpoint::EntriesGet,
                FaultKind::ServerError { status: 500 },
                0.1,
                Some(2),
            ),
            fault(
                Endpoint::Token,
                FaultKind::ServerError { status: 503 },
                1.0,
                Some(1),
            ),
        ],
        ..SimConfig::default()
    })
    .await;
    let api = sim_api(&world.sim, 100.0).await;
    ensure_list(api.as_ref(), "registry").await.unwrap();
    world
        .drop_file("incoming/registry/fcc.csv", dnc_csv(1000, 1500))
        .await;
    let out = world.execute("faults", s3_event("incoming/registry/fcc.csv"), 60_000);
    assert_eq!(
        out.status,
        "SUCCEEDED",
        "{out:?}\n{}",
        world.function_logs()
    );
    let status: ListStatus = world.get_json("status/registry/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    let report: RunReport = world.get_json(&status.report_key).await;
    assert!(
        report.reconcile_rounds >= 2,
        "lost writes must be found and re-uploaded: {report:?}"
    );
    assert!(report.upload.reuploaded > 0, "{report:?}");
    let manifest: Manifest = world
        .get_json(&format!("runs/{}/manifest.json", report.run_id))
        .await;
    assert_eq!(
        world.list_numbers("registry").await,
        world.run_numbers(&manifest).await,
        "every number is on the list exactly once"
    );
    assert_eq!(world.sim.sim.state()["entries"].as_u64().unwrap(), 1500);
}

/// The deployed stack against the Admin API's DNC groups (faults: the matrix above): the functions read the dialect
/// from the secret (the password grant, the API endpoint discovered from the token's tenant), the group ends holding
/// exactly the accepted numbers; the check answers from the verified run (no batch check) and never `allowed` once
/// that verification is too old; the next export of the same numbers writes no record; a run that would pass the
/// environment's cap is refused before its first write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_dialect_runs_the_same_state_machine_end_to_end() {
    let world = World::new(SimConfig {
        dialect: cxone_sim::SimDialect::Admin,
        propagation_secs: (1, 2),
        entries_rate: 100.0,
        calling_list_records: 500,
        ..SimConfig::default()
    })
    .await;
    let api = sim_api(&world.sim, 100.0).await;
    let group = ensure_list(api.as_ref(), "optouts").await.unwrap();
    assert!(api.suppression(&group).await.unwrap().suppressing);
    world
        .drop_file("incoming/optouts/admin.csv", dnc_csv(0, 1200))
        .await;
    let out = world.execute("admin", s3_event("incoming/optouts/admin.csv"), 60_000);
    assert_eq!(
        out.status,
        "SUCCEEDED",
        "{out:?}\n{}",
        world.function_logs()
    );
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    let report: RunReport = world.get_json(&status.report_key).await;
    let manifest: Manifest = world
        .get_json(&format!("runs/{}/manifest.json", report.run_id))
        .await;
    assert_eq!(
        world.list_numbers("optouts").await,
        world.run_numbers(&manifest).await,
        "the group holds exactly the accepted numbers"
    );
    assert_eq!(world.sim.sim.state()["duplicates"], 0);

    // The check, without a batch endpoint: a listed number from the snapshot, an unlisted one allowed while the
    // verification is fresh, and `error` (never `allowed`) once it is older than allowed.
    let listed = world
        .run_numbers(&manifest)
        .await
        .into_iter()
        .next()
        .unwrap();
    let ask = json!({"contacts": [{"phoneNumber": listed}, {"phoneNumber": "+13035550199"}]});
    let verdicts = |answer: &Value| -> Vec<String> {
        let body: Value = serde_json::from_str(answer["output"]["body"].as_str().unwrap()).unwrap();
        body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["status"].as_str().unwrap(),
                    r["reason"].as_str().unwrap()
                )
            })
            .collect()
    };
    let fresh = world.invoke(
        "check",
        vec![ask.clone()],
        &[("DNCFLOW_CHECK_LISTS", "optouts")],
    );
    let fresh = verdicts(&fresh[0]);
    assert!(
        fresh[0].starts_with("suppressed local-snapshot"),
        "{fresh:?}"
    );
    assert!(
        fresh[1].starts_with("allowed not on any list as last verified"),
        "{fresh:?}"
    );
    let old = world.invoke(
        "check",
        vec![ask],
        &[
            ("DNCFLOW_CHECK_LISTS", "optouts"),
            ("DNCFLOW_CHECK_MAX_VERIFIED_AGE_SECS", "0"),
        ],
    );
    let old = verdicts(&old[0]);
    assert!(old[0].starts_with("suppressed"), "{old:?}");
    assert!(
        old[1].starts_with("error") && old[1].contains("last verified"),
        "{old:?}"
    );

    // The next export of the same numbers: no record is written (no idempotency keys: the group's verified
    // read-back says it holds them all).
    let writes = |world: &World| {
        world
            .sim
            .sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/records"))
            .count()
    };
    let before = writes(&world);
    world
        .drop_file("incoming/optouts/admin-next.csv", dnc_csv(0, 1200) + "\n")
        .await;
    let next = world.execute(
        "admin-next",
        s3_event("incoming/optouts/admin-next.csv"),
        60_000,
    );
    assert_eq!(
        next.status,
        "SUCCEEDED",
        "{next:?}\n{}",
        world.function_logs()
    );
    assert_eq!(writes(&world), before, "nothing written again");

    // Above the environment's cap (1,200 held in groups + 500 on calling lists + 400 new > 2,000): refused, nothing
    // written to the new group.
    let other = ensure_list(api.as_ref(), "complaints").await.unwrap();
    world
        .drop_file("incoming/complaints/c.csv", dnc_csv(5000, 400))
        .await;
    let refused = world.execute_with(
        "admin-cap",
        s3_event("incoming/complaints/c.csv"),
        60_000,
        &[("DNCFLOW_CXONE_CAPACITY", "2000")],
    );
    assert_eq!(refused.status, "FAILED", "{refused:?}");
    let failed: ListStatus = world.get_json("status/complaints/latest.json").await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.contains("CapacityExceeded") && reason.contains("500 on calling lists"),
        "{reason}"
    );
    assert!(fetch_all_entries(api.as_ref(), &other.id)
        .await
        .unwrap()
        .is_empty());
}

/// The deployed stack's IAM, enforced: moto authorizes every S3, Secrets Manager and EventBridge call against the
/// calling function's own policy, generated from the SAM-transformed template. A run, a failed run's status, and the
/// check function all complete with exactly those permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_holding_only_its_template_policy_completes_a_run_a_failure_and_a_check() {
    let world = World::with_iam(
        SimConfig {
            propagation_secs: (1, 2),
            entries_rate: 100.0,
            ..SimConfig::default()
        },
        &[],
    )
    .await;
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "optouts").await.unwrap();
    world
        .drop_file("incoming/optouts/iam.csv", dnc_csv(0, 300))
        .await;
    let run = world.execute("iam-run", s3_event("incoming/optouts/iam.csv"), 60_000);
    assert_eq!(
        run.status,
        "SUCCEEDED",
        "{run:?}\n{}",
        world.function_logs()
    );
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    assert_eq!(status.verified_entries, 300);
    assert!(
        !world.function_logs().contains("AccessDenied"),
        "a function was refused something: {}",
        world.function_logs()
    );

    // The failure recorder under its own policy: a list nobody provisioned ends FAILED with a status.
    world
        .drop_file("incoming/nowhere/a.csv", dnc_csv(0, 5))
        .await;
    let failed = world.execute("iam-failed", s3_event("incoming/nowhere/a.csv"), 60_000);
    assert_eq!(failed.status, "FAILED");
    let status: ListStatus = world.get_json("status/nowhere/latest.json").await;
    assert_eq!(status.status, "FAILED", "record-failure wrote the status");

    // The check function under its own policy: answers from the snapshot and writes its audit record.
    let answers = world.invoke(
        "check",
        vec![json!({"contacts": [{"phoneNumber": "(202) 555-0007"}, {"phoneNumber": "(202) 555-9999"}]})],
        &[("DNCFLOW_CHECK_LISTS", "optouts,nowhere")],
    );
    assert_eq!(answers[0]["ok"], true, "{answers:?}");
    assert_eq!(answers[0]["output"]["statusCode"], 200, "{answers:?}");
    let body: Value = serde_json::from_str(answers[0]["output"]["body"].as_str().unwrap()).unwrap();
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["suppressed", "allowed"], "{answers:?}");
    // (Listed whole: moto's signature check rejects a SigV4-signed `prefix=audit%2F` query.)
    let audits = world
        .s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default()
        .iter()
        .filter(|o| o.key().is_some_and(|k| k.starts_with("audit/")))
        .count();
    assert_eq!(audits, 1);

    // The registry function under its own policy: a full download imported (keys named: moto's signature check
    // rejects a SigV4 `prefix=` listing, see above), a change list applied from its drop event, and the check
    // function, under its policy, consulting the index.
    let today = chrono::Utc::now().date_naive().to_string();
    world
        .drop_file(
            "incoming-registry/national/full/b1/2026-11-1_202.txt",
            "202,5550300\n202,5550301\n".into(),
        )
        .await;
    let imported = world.invoke(
        "registry",
        vec![
            json!({"action": "import", "registry": "national", "asOf": today, "areaCodes": ["202"],
            "keys": ["incoming-registry/national/full/b1/2026-11-1_202.txt"]}),
        ],
        &[],
    );
    assert_eq!(
        imported[0]["ok"],
        true,
        "{imported:?}\n{}",
        world.function_logs()
    );
    assert_eq!(
        imported[0]["output"]["import"]["accepted"], 2,
        "{imported:?}"
    );
    world
        .drop_file(
            "incoming-registry/national/changes/c1.txt",
            format!("2025550301,{today}T00:00:00,D\n2025550302,{today}T00:00:01,A\n"),
        )
        .await;
    let applied = world.invoke(
        "registry",
        vec![s3_event("incoming-registry/national/changes/c1.txt")],
        &[],
    );
    assert_eq!(
        applied[0]["ok"],
        true,
        "{applied:?}\n{}",
        world.function_logs()
    );
    assert_eq!(applied[0]["output"]["changes"]["deletes"], 1, "{applied:?}");
    let answers = world.invoke(
        "check",
        vec![json!({"contacts": [{"phoneNumber": "202-555-0300"}, {"phoneNumber": "202-555-0301"}, {"phoneNumber": "202-555-0302"}]})],
        &[("DNCFLOW_CHECK_LISTS", "optouts"), ("DNCFLOW_CHECK_REGISTRIES", "national")],
    );
    let body: Value = serde_json::from_str(answers[0]["output"]["body"].as_str().unwrap()).unwrap();
    let reasons: Vec<(&str, &str)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons[0], ("suppressed", "registry:national"), "{body}");
    assert_eq!(
        reasons[1].0, "allowed",
        "deleted by the change list: {body}"
    );
    assert_eq!(reasons[2], ("suppressed", "registry:national"), "{body}");
    assert_eq!(body["registries"][0]["status"], "CURRENT", "{body}");
    // A registry the settings name and the bucket does not hold: the check is incomplete, nothing is allowed.
    let answers = world.invoke(
        "check",
        vec![json!({"contacts": [{"phoneNumber": "202-555-0301"}]})],
        &[
            ("DNCFLOW_CHECK_LISTS", "optouts"),
            ("DNCFLOW_CHECK_REGISTRIES", "national,texas"),
        ],
    );
    let body: Value = serde_json::from_str(answers[0]["output"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["results"][0]["status"], "error", "{body}");
    assert!(
        body["results"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("texas")),
        "{body}"
    );
    assert!(
        !world.function_logs().contains("AccessDenied"),
        "a function was refused something: {}",
        world.function_logs()
    );
}

/// A registry kept current from the bucket alone: a full download's files and then its `_import.json` marker dropped
/// (the import lists the batch), change lists dropped (one dated before the import recorded and superseded, one
/// twice applied once), other drops ignored; then, through the function's event path against S3, two lists dropped
/// at once both land in either order, a gap is reported, a 2099 line is refused leaving the registry as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_dropped_in_the_bucket_is_imported_from_its_marker_and_refreshed_by_change_lists(
) {
    let world = World::new(SimConfig::default()).await;
    let today = chrono::Utc::now().date_naive();
    for (npa, lines) in [
        (202, "202,5550400\n202,5550401\n202,555040\n"),
        (415, "415,5550400\n"),
    ] {
        world
            .drop_file(
                &format!("incoming-registry/tx/full/q4/{npa}.txt"),
                lines.into(),
            )
            .await;
    }
    let area_file = world.invoke(
        "registry",
        vec![s3_event("incoming-registry/tx/full/q4/202.txt")],
        &[],
    );
    assert_eq!(
        area_file[0]["output"]["ignored"], "incoming-registry/tx/full/q4/202.txt",
        "{area_file:?}"
    );
    // A container that cannot be built fails each invocation with its error's kind, the process alive and trying
    // again at the next one: a cold start's transient failure (a secret not read) is `Transient`, which the state
    // machines retry, never a crashed runtime no `Retry` names. A setting that does not parse stays loud: `Fatal`.
    let unbuilt = world.invoke(
        "normalize",
        vec![json!({}), json!({})],
        &[("DNCFLOW_SHARDS", "sixteen")],
    );
    assert_eq!(unbuilt.len(), 2, "{unbuilt:?}");
    for r in &unbuilt {
        assert_eq!(r["error"], "Fatal", "{unbuilt:?}");
        assert!(
            r["cause"]
                .as_str()
                .is_some_and(|c| c.contains("DNCFLOW_SHARDS")),
            "{unbuilt:?}"
        );
    }
    world
        .drop_file(
            "incoming-registry/tx/full/q4/_import.json",
            json!({"asOf": today.to_string(), "maxAgeDays": 30, "areaCodes": ["202", "415"]})
                .to_string(),
        )
        .await;
    // The marker is not the function's: it starts the registry import state machine (a Distributed Map over the
    // batch, run here through the harness's documented equivalent).
    let marker_to_function = world.invoke(
        "registry",
        vec![s3_event("incoming-registry/tx/full/q4/_import.json")],
        &[],
    );
    assert_eq!(
        marker_to_function[0]["output"]["ignored"],
        "incoming-registry/tx/full/q4/_import.json"
    );
    let run = world.execute_registry_import(
        "tx-q4",
        s3_event("incoming-registry/tx/full/q4/_import.json"),
    );
    assert_eq!(
        run.status,
        "SUCCEEDED",
        "{run:?}\n{}",
        world.function_logs()
    );
    // begin + one child per object (the marker's child skips it) + assemble.
    assert_eq!(run.invocations["registry"], 5, "{run:?}");
    let imported = [json!({"output": run.output.clone()})];
    let import = &imported[0]["output"]["import"];
    assert_eq!(
        (
            import["rows"].as_u64(),
            import["accepted"].as_u64(),
            import["rejected"].as_u64()
        ),
        (Some(4), Some(3), Some(1)),
        "{imported:?}"
    );
    assert_eq!(imported[0]["output"]["status"]["maxAgeDays"], 30);
    assert_eq!(
        imported[0]["output"]["status"]["coveredAreaCodes"],
        json!(["202", "415"])
    );
    let rejects_key = imported[0]["output"]["rejectsKey"]
        .as_str()
        .unwrap()
        .to_string();
    let rejects = world
        .store()
        .get_bytes(&rejects_key)
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&rejects).contains("\"line\":3,\"reason\":\"TOO_SHORT\""));
    // A batch whose marker says a date in the future: Begin refuses it, the catch records the failure in the
    // registry's status (shown until an import succeeds), and the execution fails (its alarm's metric).
    let tomorrow = today + chrono::Duration::days(1);
    world
        .drop_file(
            "incoming-registry/tx/full/typo/_import.json",
            json!({"asOf": tomorrow.to_string(), "areaCodes": ["202", "415"]}).to_string(),
        )
        .await;
    let failed = world.execute_registry_import(
        "tx-typo",
        s3_event("incoming-registry/tx/full/typo/_import.json"),
    );
    assert_eq!(failed.status, "FAILED", "{failed:?}");
    let status = dncflow::registry::status(&world.store(), "tx", chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    let failure = status
        .import_failure
        .clone()
        .expect("the failure is recorded");
    assert_eq!(failure.error, "InvalidInput", "{failure:?}");
    assert!(failure.cause.contains("InvalidOption"), "{failure:?}");
    assert_eq!(
        failure.prefix.as_deref(),
        Some("incoming-registry/tx/full/typo/")
    );
    assert!(status.needs_attention());
    let yesterday = today - chrono::Duration::days(1);
    world
        .drop_file(
            "incoming-registry/tx/changes/old.txt",
            format!("2025550402,{yesterday}T10:00:00,A\n"),
        )
        .await;
    world
        .drop_file(
            "incoming-registry/tx/changes/new.txt",
            format!("2025550402,{today}T00:00:00,A\n4155550400,{today}T00:00:01,D\n"),
        )
        .await;
    let results = world.invoke(
        "registry",
        vec![
            s3_event("incoming-registry/tx/changes/old.txt"),
            s3_event("incoming-registry/tx/changes/new.txt"),
            s3_event("incoming-registry/tx/changes/new.txt"),
        ],
        &[],
    );
    // Dated before the import: already in the full download, recorded and counted, not applied.
    assert_eq!(results[0]["ok"], true, "{results:?}");
    assert_eq!(
        results[0]["output"]["changes"]["superseded"], 1,
        "{results:?}"
    );
    assert_eq!(results[1]["output"]["status"]["total"], 3, "{results:?}");
    assert_eq!(
        results[2]["output"]["version"],
        Value::Null,
        "the same drop twice is one change: {results:?}"
    );
    let live = dncflow::registry::load(&world.store(), "tx").await.unwrap();
    assert_eq!(live.manifest.change_lists.len(), 2);
    assert_eq!(
        live.lookup(12_025_550_402),
        dncflow::registry::Lookup::Listed
    );
    assert_eq!(
        live.lookup(14_155_550_400),
        dncflow::registry::Lookup::NotListed
    );
    concurrent_change_lists_through_the_event_path(&world).await;
}

/// Two days' change lists dropped at once (a catch-up after a holiday) reach the registry function together: the
/// apply that loses the swap of `current.json` reads the winner's version and applies again, so both land, and in
/// either order the result is the same. A registry imported three days ago, D1 and D2 applied: continuous through
/// D2; D3 missing and D4 applied: a gap, and freshness stays at D2. A 2099 line refuses its list.
async fn concurrent_change_lists_through_the_event_path(world: &World) {
    use dncflow::steps::registry::handle_event;
    let store = world.store();
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| today - chrono::Duration::days(4 - n);
    for (name, order) in [("race-a", [1, 2]), ("race-b", [2, 1])] {
        world
            .drop_file(
                &format!("incoming-registry/{name}/full/b/202.txt"),
                "202,5550500\n202,5550501\n".into(),
            )
            .await;
        let import = json!({"action": "import", "registry": name, "asOf": day(0).to_string(),
            "areaCodes": ["202"], "keys": [format!("incoming-registry/{name}/full/b/202.txt")]});
        handle_event(&store, BUCKET, import).await.unwrap();
        // D1 deletes 0500 and adds 0502; D2 re-adds 0500 later and deletes 0501.
        let lists = [
            format!(
                "2025550500,{}T09:00:00,D\n2025550502,{}T09:00:01,A\n",
                day(1),
                day(1)
            ),
            format!(
                "2025550500,{}T09:00:00,A\n2025550501,{}T09:00:01,D\n",
                day(2),
                day(2)
            ),
        ];
        for (i, text) in lists.iter().enumerate() {
            world
                .drop_file(
                    &format!("incoming-registry/{name}/changes/d{}.txt", i + 1),
                    text.clone(),
                )
                .await;
        }
        let event = |d: usize| s3_event(&format!("incoming-registry/{name}/changes/d{d}.txt"));
        if name == "race-a" {
            let (a, b) = tokio::join!(
                handle_event(&store, BUCKET, event(order[0])),
                handle_event(&store, BUCKET, event(order[1]))
            );
            a.unwrap();
            b.unwrap();
        } else {
            // D2 first, then D1 (older than the live as-of, never applied): merged, the later change wins.
            handle_event(&store, BUCKET, event(order[0])).await.unwrap();
            handle_event(&store, BUCKET, event(order[1])).await.unwrap();
        }
        let live = dncflow::registry::load(&store, name).await.unwrap();
        assert_eq!(live.manifest.change_lists.len(), 2, "{name}");
        let listed = |n: u64| live.lookup(n) == dncflow::registry::Lookup::Listed;
        assert!(listed(12_025_550_500), "{name}: D2's later add wins");
        assert!(!listed(12_025_550_501), "{name}: D2's delete");
        assert!(listed(12_025_550_502), "{name}: D1's add");
        let status = dncflow::registry::status(&store, name, chrono::Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.continuous_through, Some(day(2)), "{status:?}");
        assert!(
            status.gaps.is_empty() && !status.needs_attention(),
            "{status:?}"
        );
    }
    // D4 without D3: a gap; freshness stays at D2's latest change.
    world
        .drop_file(
            "incoming-registry/race-a/changes/d4.txt",
            format!("2025550503,{}T00:00:01,A\n", day(4)),
        )
        .await;
    handle_event(
        &store,
        BUCKET,
        s3_event("incoming-registry/race-a/changes/d4.txt"),
    )
    .await
    .unwrap();
    let status = dncflow::registry::status(&store, "race-a", chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.gaps, vec![day(3)], "{status:?}");
    assert_eq!(status.as_of.date_naive(), day(2), "{status:?}");
    assert!(status.needs_attention());
    // A typo'd year: the list is refused whole, naming its line, and the registry is as it was.
    world
        .drop_file(
            "incoming-registry/race-a/changes/typo.txt",
            format!(
                "2025550504,{}T00:00:01,A\n2025550505,2099-01-01T00:00:00,A\n",
                day(4)
            ),
        )
        .await;
    let refused = handle_event(
        &store,
        BUCKET,
        s3_event("incoming-registry/race-a/changes/typo.txt"),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), "ChangeListFutureDated", "{refused}");
    assert!(refused.to_string().contains("line 2"), "{refused}");
    let after = dncflow::registry::status(&store, "race-a", chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, status.version);
    // An import older than the live version would drop the lists applied since: refused.
    let regress = json!({"action": "import", "registry": "race-a", "asOf": day(0).to_string(),
        "areaCodes": ["202"], "keys": ["incoming-registry/race-a/full/b/202.txt"]});
    let refused = handle_event(&store, BUCKET, regress).await.unwrap_err();
    assert_eq!(refused.kind(), "RegistryRegresses", "{refused}");
}

/// Proof that enforcement is on: the normalize function without its statement for writing the list's received
/// numbers fails the run, and the execution's error names the action and the key it was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_missing_one_statement_fails_the_run_naming_the_action_and_key() {
    // Statement 3 of the normalize role: s3:PutObject on status/*/received.txt.
    let world = World::with_iam(
        SimConfig {
            propagation_secs: (1, 2),
            ..SimConfig::default()
        },
        &["normalize:3"],
    )
    .await;
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "optouts").await.unwrap();
    world
        .drop_file("incoming/optouts/denied.csv", dnc_csv(0, 50))
        .await;
    let run = world.execute(
        "iam-denied",
        s3_event("incoming/optouts/denied.csv"),
        60_000,
    );
    assert_eq!(run.status, "FAILED", "{run:?}");
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("s3:PutObject") && cause.contains("status/optouts/received.txt"),
        "the error names the action and the key: {run:?}"
    );
    assert_eq!(run.error.as_deref(), Some("Fatal"), "{run:?}");
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "FAILED");
    assert!(status.reason.unwrap().contains("s3:PutObject"));
    assert!(
        world.list_numbers("optouts").await.is_empty(),
        "nothing was written to CXone"
    );
}

/// The stack's dncflow state machine on moto (named as `scripts/iam.py` resolves the template: stack `dncflow`), an
/// execution of it stopped (ABORTED, as an operator's Stop or a crash that ran no Catch) and one left RUNNING:
/// `(machine, aborted, running)`.
async fn executions_on_moto(world: &World) -> (String, String, String) {
    let machine = create_state_machine(&world.sfn, "dncflow-dncflow").await;
    let mut arns = Vec::new();
    for name in ["aborted", "running"] {
        arns.push(
            world
                .sfn
                .start_execution()
                .state_machine_arn(&machine)
                .name(name)
                .input(s3_event("incoming/optouts/earlier.csv").to_string())
                .send()
                .await
                .unwrap()
                .execution_arn,
        );
    }
    world
        .sfn
        .stop_execution()
        .execution_arn(&arns[0])
        .send()
        .await
        .unwrap();
    let running = arns.pop().unwrap();
    (machine, arns.pop().unwrap(), running)
}

/// `status/<list>/lease.json` held by `execution`, unexpired (taken a minute ago, for 12 h 15 min).
async fn hold_lease(world: &World, list: &str, execution: &str) {
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let lease = dncflow::steps::Lease {
        execution: execution.into(),
        run_id: format!("{list}-earlier"),
        acquired_at: now.to_rfc3339(),
        expires_at: (now + chrono::Duration::seconds(dncflow::steps::LEASE_TTL_SECS)).to_rfc3339(),
        took_over: None,
    };
    world
        .store()
        .put_bytes(
            &dncflow::run::lease_key(list),
            serde_json::to_vec(&lease).unwrap(),
        )
        .await
        .unwrap();
}

/// The lease function under its template policy (IAM enforced) asks Step Functions about the execution holding the
/// list: a run whose list is held by an ABORTED execution completes now instead of waiting 12 h 15 min for the
/// lease to expire; a RUNNING holder keeps its list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_its_policy_the_lease_function_takes_over_an_ended_executions_lease_at_once() {
    let world = World::with_iam(
        SimConfig {
            propagation_secs: (1, 2),
            entries_rate: 100.0,
            ..SimConfig::default()
        },
        &[],
    )
    .await;
    let (machine, aborted, running) = executions_on_moto(&world).await;
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "optouts").await.unwrap();
    hold_lease(&world, "optouts", &aborted).await;
    world
        .drop_file("incoming/optouts/after-abort.csv", dnc_csv(0, 40))
        .await;
    let run = world.execute(
        "after-abort",
        s3_event("incoming/optouts/after-abort.csv"),
        60_000,
    );
    let logs = world.function_logs();
    assert_eq!(run.status, "SUCCEEDED", "{run:?}\n{logs}");
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    assert_eq!(status.verified_entries, 40);
    let takeover = logs
        .lines()
        .find(|l| l.contains("lease taken over"))
        .unwrap_or_else(|| panic!("no takeover logged: {logs}"));
    assert!(
        takeover.contains(&aborted)
            && takeover.contains("ABORTED")
            && takeover.contains("holder-ended"),
        "{takeover}"
    );
    assert!(!logs.contains("cannot ask Step Functions"), "{logs}");

    // A RUNNING holder: the lease function, invoked under its policy, answers wait and names it.
    hold_lease(&world, "internal", &running).await;
    let waiter = machine.replace(":stateMachine:", ":execution:") + ":waiter";
    let answers = world.invoke(
        "lease",
        vec![json!({"bucket": BUCKET, "runId": "internal-r1", "list": "internal", "execution": waiter})],
        &[],
    );
    assert_eq!(answers[0]["ok"], true, "{answers:?}");
    assert_eq!(answers[0]["output"]["acquired"], false, "{answers:?}");
    assert_eq!(
        answers[0]["output"]["heldBy"],
        json!(running),
        "{answers:?}"
    );
    assert!(
        !world.function_logs().contains("AccessDenied"),
        "{}",
        world.function_logs()
    );
}

/// Without its `states:DescribeExecution` statement (statement 3 of its role), the lease function cannot ask about
/// the holder and keeps the expiry rule: an ended execution's lease is not taken (never a live run's on an error),
/// and the refusal is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_step_functions_permission_the_lease_function_waits_for_the_expiry() {
    let world = World::with_iam(SimConfig::default(), &["lease:3"]).await;
    let (machine, aborted, _) = executions_on_moto(&world).await;
    hold_lease(&world, "optouts", &aborted).await;
    let waiter = machine.replace(":stateMachine:", ":execution:") + ":waiter";
    let answers = world.invoke(
        "lease",
        vec![json!({"bucket": BUCKET, "runId": "optouts-r1", "list": "optouts", "execution": waiter})],
        &[],
    );
    assert_eq!(answers[0]["ok"], true, "{answers:?}");
    assert_eq!(answers[0]["output"]["acquired"], false, "{answers:?}");
    assert_eq!(
        answers[0]["output"]["heldBy"],
        json!(aborted),
        "{answers:?}"
    );
    let logs = world.function_logs();
    let refused = logs
        .lines()
        .find(|l| l.contains("cannot ask Step Functions"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(refused.contains("states:DescribeExecution"), "{refused}");
}

/// The lease events (`lease acquired` / `lease released`) the functions logged, in the order they happened:
/// `(message, execution)`.
fn lease_events(logs: &str) -> Vec<(String, String)> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..]).ok())
        .filter_map(|v| {
            let f = &v["fields"];
            let m = f["message"].as_str()?;
            (m == "lease acquired" || m == "lease released").then(|| {
                (
                    m.to_string(),
                    f["execution"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect()
}

/// One run per list: two executions for the same list at once (two drops) never interleave: the second waits for
/// the first's lease, both end verified, the list holds both files. Two executions of the same object at once are one
/// run: the second ends without uploading anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executions_for_one_list_take_turns_and_the_same_object_twice_is_one_run() {
    let world = std::sync::Arc::new(
        World::new(SimConfig {
            propagation_secs: (1, 2),
            entries_rate: 100.0,
            ..SimConfig::default()
        })
        .await,
    );
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "optouts").await.unwrap();
    world
        .drop_file("incoming/optouts/a.csv", dnc_csv(0, 300))
        .await;
    world
        .drop_file("incoming/optouts/b.csv", dnc_csv(1000, 300))
        .await;
    let env = [("DNCFLOW_LEASE_WAIT_SECS", "1")];
    let run = |name: &'static str, key: &'static str| {
        let w = world.clone();
        tokio::task::spawn_blocking(move || w.execute_with(name, s3_event(key), 60_000, &env))
    };
    let (a, b) = tokio::join!(
        run("conc-a", "incoming/optouts/a.csv"),
        run("conc-b", "incoming/optouts/b.csv")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status.as_str(), b.status.as_str()),
        ("SUCCEEDED", "SUCCEEDED"),
        "{a:?}\n{b:?}"
    );
    let events = lease_events(&world.function_logs());
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        (
            events[0].0.as_str(),
            events[1].0.as_str(),
            events[2].0.as_str(),
            events[3].0.as_str()
        ),
        (
            "lease acquired",
            "lease released",
            "lease acquired",
            "lease released"
        ),
        "one holder at a time: {events:?}"
    );
    assert_eq!(events[0].1, events[1].1);
    assert_eq!(events[2].1, events[3].1);
    assert_ne!(events[0].1, events[2].1);
    assert!(
        count(&a.invocations, "lease") + count(&b.invocations, "lease") >= 3,
        "the second execution waited: {a:?} {b:?}"
    );
    assert!(world
        .function_logs()
        .contains("list busy: waiting for its lease"));
    let status: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(status.status, "SUCCESS");
    assert!(
        status.running.is_none() && status.open_failures.is_empty(),
        "{status:?}"
    );
    assert_eq!(
        world.list_numbers("optouts").await.len(),
        600,
        "both files are on the list"
    );
    for run_id in [&events[0].1, &events[2].1] {
        assert!(run_id.contains(":execution:"), "{run_id}");
    }
    assert!(
        world
            .store()
            .get_bytes("status/optouts/lease.json")
            .await
            .unwrap()
            .is_none(),
        "released"
    );

    // The same object twice at once: one run; the other execution ends without uploading.
    world
        .drop_file("incoming/optouts/c.csv", dnc_csv(3000, 200))
        .await;
    let entries_before = world.sim.sim.state()["entries"].as_u64().unwrap();
    let (c, d) = tokio::join!(
        run("same-c", "incoming/optouts/c.csv"),
        run("same-d", "incoming/optouts/c.csv")
    );
    let (c, d) = (c.unwrap(), d.unwrap());
    assert_eq!(
        (c.status.as_str(), d.status.as_str()),
        ("SUCCEEDED", "SUCCEEDED"),
        "{c:?}\n{d:?}"
    );
    let uploads = [
        count(&c.invocations, "upload"),
        count(&d.invocations, "upload"),
    ];
    assert!(
        uploads.contains(&0) && uploads.iter().any(|&u| u > 0),
        "one of them uploaded: {uploads:?}"
    );
    assert_eq!(
        world.sim.sim.state()["entries"].as_u64().unwrap(),
        entries_before + 200
    );
}

/// An execution that ends without its Catch (TIMED_OUT, ABORTED) is recorded FAILED through Step Functions' status
/// change event (what the template's rule delivers to record-failure), which also releases the list; and a FAILED is
/// never masked by the SUCCESS of another source: it stays until its own source succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_execution_is_recorded_failed_and_stays_failed_until_its_source_succeeds() {
    let world = World::new(SimConfig {
        propagation_secs: (1, 2),
        entries_rate: 100.0,
        ..SimConfig::default()
    })
    .await;
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "optouts").await.unwrap();
    world
        .drop_file("incoming/optouts/slow.csv", dnc_csv(0, 100))
        .await;
    // A cooldown far longer than the execution may run: it is ended (as Step Functions does at TimeoutSeconds)
    // while it holds the list.
    let slow = world.execute_for(
        "slow",
        s3_event("incoming/optouts/slow.csv"),
        60_000,
        &[("DNCFLOW_COOLDOWN_SECS", "600")],
        12_000,
    );
    assert_eq!(slow.status, "FAILED", "{slow:?}");
    let running: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(running.status, "RUNNING", "{running:?}");
    let run_id = running.running.as_ref().unwrap().run_id.clone();
    let arn = "arn:aws:states:us-east-1:000000000000:execution:dncflow:slow";
    let event = json!({
        "version": "0", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": arn, "status": "TIMED_OUT", "startDate": 1764633600000u64,
            "input": s3_event("incoming/optouts/slow.csv").to_string()},
    });
    let recorded = world.invoke("record-failure", vec![event], &[]);
    assert_eq!(recorded[0]["ok"], true, "{recorded:?}");
    let failed: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(failed.status, "FAILED");
    assert_eq!(failed.run_id, run_id, "the run the lease named");
    assert!(
        failed.reason.as_deref().unwrap().contains("TIMED_OUT"),
        "{failed:?}"
    );
    assert!(failed.running.is_none());
    assert!(
        world
            .store()
            .get_bytes("status/optouts/lease.json")
            .await
            .unwrap()
            .is_none(),
        "the lease is released"
    );

    // Another source succeeds: its run is the last known good, but the list stays FAILED.
    world
        .drop_file("incoming/optouts/other.csv", dnc_csv(500, 50))
        .await;
    let other = world.execute("other", s3_event("incoming/optouts/other.csv"), 60_000);
    assert_eq!(other.status, "SUCCEEDED", "{other:?}");
    let masked: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(
        masked.status, "FAILED",
        "another source's SUCCESS does not mask it: {masked:?}"
    );
    assert!(
        masked
            .reason
            .as_deref()
            .unwrap()
            .contains("incoming/optouts/slow.csv"),
        "{masked:?}"
    );
    assert_eq!(masked.open_failures.len(), 1);
    assert_ne!(masked.last_success.as_ref().unwrap().run_id, run_id);

    // The failed source succeeds: resolved.
    let fixed = world.execute("fixed", s3_event("incoming/optouts/slow.csv"), 60_000);
    assert_eq!(fixed.status, "SUCCEEDED", "{fixed:?}");
    let ok: ListStatus = world.get_json("status/optouts/latest.json").await;
    assert_eq!(ok.status, "SUCCESS", "{ok:?}");
    assert!(ok.open_failures.is_empty());
}

/// The state stays far below Step Functions' 256 KB payload limit whatever the shard count: each shard's result is
/// its last write time only, and the shard keys are held once. 2,000 shards of a few entries each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_shards_keep_every_state_payload_under_the_limit() {
    let world = World::new(SimConfig {
        propagation_secs: (0, 1),
        entries_rate: 1000.0,
        ..SimConfig::default()
    })
    .await;
    let api = sim_client(&world.sim, 100.0);
    ensure_list(&api, "wide").await.unwrap();
    let mut csv = String::from("phone\n");
    for i in 0..12_000u32 {
        csv += &format!("(212) {:03}-{:04}\n", 200 + i / 10_000, i % 10_000);
    }
    world.drop_file("incoming/wide/many.csv", csv).await;
    let out = world.execute_with(
        "wide",
        s3_event("incoming/wide/many.csv"),
        60_000,
        &[("DNCFLOW_SHARDS", "2000"), ("DNCFLOW_TENANT_RATE", "1000")],
    );
    assert_eq!(out.status, "SUCCEEDED", "{out:?}");
    let status: ListStatus = world.get_json("status/wide/latest.json").await;
    let report: RunReport = world.get_json(&status.report_key).await;
    let manifest: Manifest = world
        .get_json(&format!("runs/{}/manifest.json", report.run_id))
        .await;
    assert!(
        manifest.shards.len() >= 1_990,
        "{} shards",
        manifest.shards.len()
    );
    assert_eq!(report.found, 12_000);
    let bytes = out.max_payload["bytes"].as_u64().unwrap();
    println!(
        "{} shards: largest state payload {} bytes ({})",
        manifest.shards.len(),
        bytes,
        out.max_payload["state"]
    );
    assert!(bytes > 50_000, "the measure sees the shard keys: {bytes}");
    assert!(
        bytes < 256 * 1024,
        "over Step Functions' 256 KB limit: {bytes}"
    );
}

/// The configured memory of each function in `template.yaml` (MB), read from the template so the table cannot drift.
fn configured_memory() -> std::collections::BTreeMap<String, u64> {
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    let mut out = std::collections::BTreeMap::new();
    // `Globals` comes first and sets the default; each function's `Binary:` precedes its own `MemorySize:`.
    let (mut default, mut current): (u64, Option<String>) = (0, None);
    for line in template.lines().map(str::trim) {
        if let Some(binary) = line.strip_prefix("Binary: ") {
            current = Some(binary.to_string());
            out.insert(binary.to_string(), default);
        }
        // `!If [HasRegistries, 2048, 1024]`: the memory without registries (this benchmark loads none).
        let value = line.strip_prefix("MemorySize: ").map(|v| {
            v.trim_end_matches(']')
                .rsplit([' ', ','])
                .next()
                .unwrap_or(v)
                .parse::<u64>()
        });
        if let Some(Ok(mb)) = value {
            match &current {
                Some(name) => {
                    out.insert(name.clone(), mb);
                }
                None => default = mb,
            }
        }
    }
    out
}

/// Benchmark, not a timed test (it prints figures): a 1,000,000-entry list, CXone's cap, through every function
/// binary under the local Runtime API with moto S3 and the simulator; per function the peak RSS of its processes and
/// the time its invocations took, beside the memory `template.yaml` gives it. Run with
/// `cargo test -p dncflow-tests --test e2e -- --ignored --nocapture a_million` after `cargo build --workspace --bins`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: several minutes; run with --ignored --nocapture"]
async fn a_million_entry_list_fits_in_half_of_each_functions_memory() {
    const ENTRIES: u32 = 1_000_000;
    let world = World::new(SimConfig {
        propagation_secs: (0, 1),
        entries_rate: 3000.0,
        check_rate: 3000.0,
        seed: 11,
        faults: vec![FaultRule {
            // 1 % of the entries of every write are acknowledged but not kept: reconcile finds them missing.
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::LoseWrites { per_entry: 0.01 },
            probability: 1.0,
            after: 0,
            count: Some(2_000),
        }],
        ..SimConfig::default()
    })
    .await;
    let api = sim_client(&world.sim, 1000.0);
    ensure_list(&api, "million").await.unwrap();
    let mut csv = String::with_capacity(ENTRIES as usize * 16);
    csv += "phone\n";
    for i in 0..ENTRIES {
        // 202-200-0000 … 202-299-9999: a million distinct valid numbers.
        csv += &format!("(202) {}-{:04}\n", 200 + i / 10_000, i % 10_000);
    }
    world.drop_file("incoming/million/list.csv", csv).await;
    let started = std::time::Instant::now();
    // A short upload deadline: every shard takes several invocations, each resuming at its byte offset.
    let out = world.execute_for(
        "million",
        s3_event("incoming/million/list.csv"),
        8_000,
        &[
            ("DNCFLOW_SHARDS", "8"),
            ("DNCFLOW_TENANT_RATE", "2500"),
            ("DNCFLOW_UPLOAD_MARGIN_SECS", "2"),
            ("RUST_LOG", "warn"),
        ],
        3_600_000,
    );
    let wall = started.elapsed();
    assert_eq!(out.status, "SUCCEEDED", "{out:?}");
    let status: ListStatus = world.get_json("status/million/latest.json").await;
    let report: RunReport = world.get_json(&status.report_key).await;
    assert_eq!(report.found, ENTRIES as usize, "{report:?}");
    assert!(
        report.upload.reuploaded > 0,
        "1 % lost, found and written again: {report:?}"
    );

    // The check: loads the list's snapshot, then 100 requests of 1,000 numbers (half on the list).
    let url_event = |body: String| {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": body, "isBase64Encoded": false})
    };
    let requests: Vec<Value> = (0..100u32)
        .map(|r| {
            let contacts: Vec<Value> = (0..1000u32)
                .map(|i| {
                    // Even i: on the list (202-2xx); odd i: 203-555, not on it.
                    let n = r * 1000 + i;
                    if i % 2 == 0 {
                        json!({"phoneNumber": format!("(202) {}-{:04}", 200 + (n * 7 % ENTRIES) / 10_000, n % 10_000)})
                    } else {
                        json!({"phoneNumber": format!("(203) 555-{:04}", n % 10_000)})
                    }
                })
                .collect();
            url_event(json!({"contacts": contacts, "at": "2026-12-09T17:00:00Z"}).to_string())
        })
        .collect();
    let check_started = std::time::Instant::now();
    let (answers, check) = world.invoke_measured(
        "check",
        requests,
        &[("DNCFLOW_CHECK_LISTS", "million"), ("RUST_LOG", "warn")],
    );
    let check_wall = check_started.elapsed();
    assert_eq!(answers.len(), 100);
    for a in &answers {
        assert_eq!(a["output"]["statusCode"], 200, "{a}");
    }
    // record-failure: a run for a list CXone does not have fails and is recorded.
    world
        .drop_file("incoming/nowhere/a.csv", dnc_csv(0, 5))
        .await;
    let failed = world.execute("million-failed", s3_event("incoming/nowhere/a.csv"), 60_000);
    assert_eq!(failed.status, "FAILED");

    let memory = configured_memory();
    let mut resources: Vec<(String, Value)> = out
        .resources
        .as_object()
        .unwrap()
        .iter()
        // record-failure has nothing to do in a run that succeeds: it is measured on the failed run below.
        .filter(|(_, v)| v["environments"].as_u64() > Some(0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    resources.push(("check".into(), check));
    resources.push((
        "record-failure (failed run)".into(),
        failed.resources["record-failure"].clone(),
    ));
    println!(
        "1,000,000 entries: run {:.0} s ({} upload invocations), check 100 x 1,000 numbers {:.1} s; reconcile: {} found, {} re-uploaded",
        wall.as_secs_f64(),
        out.invocations["upload"],
        check_wall.as_secs_f64(),
        report.found,
        report.upload.reuploaded
    );
    println!(
        "| function | configured MB | peak RSS MiB | share | invocations' time (s) | longest (s) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut over = Vec::new();
    for (name, r) in &resources {
        let base = name.split(' ').next().unwrap();
        let configured = memory.get(base).copied().unwrap_or(0);
        let peak_mib = r["peakRssKiB"].as_f64().unwrap_or(0.0) / 1024.0;
        let share = if configured > 0 {
            peak_mib / configured as f64
        } else {
            0.0
        };
        println!(
            "| {name} | {configured} | {peak_mib:.0} | {:.0} % | {:.1} | {:.1} |",
            share * 100.0,
            r["busyMs"].as_f64().unwrap_or(0.0) / 1000.0,
            r["longestMs"].as_f64().unwrap_or(0.0) / 1000.0
        );
        if peak_mib == 0.0 || share >= 0.5 {
            over.push(format!("{name}: {peak_mib:.0} MiB of {configured} MB"));
        }
    }
    assert!(
        over.is_empty(),
        "not within half of the configured memory: {over:?}"
    );
}

/// Benchmark: each Lambda bootstrap's size and its cold start (process start to its first poll for an invocation,
/// as Lambda's Init Duration counts it) through the local Runtime API. Run after
/// `cargo build --release --workspace --bins` with
/// `DNCFLOW_E2E_PROFILE=release cargo test -p dncflow-tests --test e2e -- --ignored --nocapture cold_start`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: needs the release binaries; run with --ignored --nocapture"]
async fn cold_start_and_bootstrap_size_of_each_function() {
    let world = World::new(SimConfig::default()).await;
    println!("| function | bootstrap size (MiB) | cold start, median of 5 (ms) |");
    println!("|---|---|---|");
    for name in [
        "normalize",
        "lease",
        "upload",
        "cooldown",
        "reconcile",
        "record-failure",
        "check",
    ] {
        let size = std::fs::metadata(binary(name)).unwrap().len() as f64 / (1024.0 * 1024.0);
        let mut inits: Vec<f64> = (0..5)
            .map(|_| {
                // Any payload: the init is over before the first invocation is delivered.
                let (_, resources) = world.invoke_measured(name, vec![json!({})], &[]);
                resources["initMs"].as_f64().unwrap()
            })
            .collect();
        inits.sort_by(f64::total_cmp);
        assert!(inits[0] > 0.0, "{name}: no init measured");
        println!("| {name} | {size:.1} | {:.0} |", inits[2]);
    }
}

/// Run `infra/registry-download.asl.json` (the `ftc-download` function for every Task, its Wait state shortened) on
/// `input`.
impl World {
    fn execute_registry_download(&self, name: &str, input: Value, env: &[(&str, &str)]) -> Outcome {
        let config = json!({
            "definition": workspace().join("infra/registry-download.asl.json"),
            "substitutions": {
                "FtcDownloadFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:ftc-download",
            },
            "functions": {"ftc-download": binary("ftc-download")},
            "env": self.function_env(env),
            "functionEnv": self.function_keys,
            "executionName": name,
            "retryIntervalMs": 200,
            "waitMs": 50,
            "maxInstances": 1,
            "input": input,
            "logFile": self.dir.path().join("functions.log"),
            "timeoutMs": 120_000,
        });
        Outcome::of(&self.harness(&format!("registry-download-{name}"), &config))
    }
}

/// The nightly FTC workflow end to end against the stand-in FTC service and moto: a registry imported as of two days
/// ago (the simulator's registry of that day), then the scheduled run: log in → submit → poll ×3 (`RequestPending`,
/// the `Wait` state between) → fetch (the raw SOAP answer saved first) → apply; every number the simulator added is
/// then listed and every number it deleted is not. A second run the same day re-uses the saved answer
/// (`AlreadyDownloadedToday`, one download in all). A full run fetches every area code into a batch whose marker the
/// registry import state machine imports. A refused login fails the execution at once (one `Login`, never retried),
/// recorded in the registry's status.
/// A world for the FTC download workflow: the stand-in FTC service (started three days ago, now at today, change
/// lists `RequestPending` for `pending_polls` polls), its account in Secrets Manager as `dncflow/ftc`, and the
/// national registry imported as of `imported_days_ago` (the simulator's registry at the end of its start day; 2 is
/// the day after the start, which that registry is truly as of).
async fn ftc_world(
    pending_polls: u32,
    imported_days_ago: u64,
) -> (World, ftc_sim::RunningSim, chrono::NaiveDate) {
    use dncflow::registry;
    let world = World::new(SimConfig::default()).await;
    let today = chrono::Utc::now().date_naive();
    let start = today - chrono::Days::new(3);
    let ftc = ftc_sim::spawn(
        ftc_sim::SimConfig {
            start_date: Some(start),
            pending_polls,
            ..ftc_sim::SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    ftc.sim.advance_days(3);
    secrets_client(&world.moto.url)
        .create_secret()
        .name("dncflow/ftc")
        .secret_string(ftc.credentials_document())
        .send()
        .await
        .unwrap();
    let store = world.store();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for npa in [202u16, 415, 818] {
        let path = dir.path().join(format!("{npa}.txt"));
        let text: String = ftc
            .sim
            .registered(npa, start)
            .iter()
            .map(|l| format!("{npa},{l:07}\n"))
            .collect();
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    registry::import(
        &store,
        "national",
        &files,
        &registry::ImportOptions {
            as_of: today - chrono::Days::new(imported_days_ago),
            max_age_days: 31,
            force: false,
            scope: Some(registry::Scope::National(
                [202u16, 415, 818].into_iter().collect(),
            )),
        },
        &mut |_| {},
    )
    .await
    .unwrap();
    (world, ftc, start)
}

const FTC_ENV: [(&str, &str); 1] = [("DNCFLOW_FTC_SECRET_ID", "dncflow/ftc")];

/// The nightly FTC workflow end to end against the stand-in FTC service and moto: a registry imported as of two days
/// ago (the simulator's registry of that day), then the scheduled run: log in → submit → poll ×3 (`RequestPending`,
/// the `Wait` state between) → fetch (the raw SOAP answer saved first) → apply; every number the simulator added is
/// then listed and every number it deleted is not. A second run the same day re-uses the saved answer
/// (`AlreadyDownloadedToday`, one download in all). A full run fetches every area code into a batch whose marker the
/// registry import state machine imports. A refused login fails the execution at once (one `Login`, never retried),
/// recorded in the registry's status and counted in the watch's `FtcLoginRefused`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ftc_download_workflow_keeps_the_registry_fresh_hands_off() {
    use dncflow::registry::{self, Lookup};
    let (world, ftc, start) = ftc_world(3, 2).await;
    let today = chrono::Utc::now().date_naive();
    let env = FTC_ENV;
    let store = world.store();

    let nightly = world.execute_registry_download(
        "nightly",
        json!({"registry": "national", "mode": "changes"}),
        &env,
    );
    assert_eq!(
        nightly.status,
        "SUCCEEDED",
        "{nightly:?}\n{}",
        world.function_logs()
    );
    // begin, submit, four polls, fetch, apply.
    assert_eq!(nightly.invocations["ftc-download"], 8, "{nightly:?}");
    assert_eq!(ftc.sim.count("GetDeltaFileRequestStatus"), 4);
    assert_eq!(ftc.sim.count("Login"), 1, "one session for the whole run");
    let raw = store
        .get_bytes(&format!(
            "registry/national/downloads/{today}/raw/changes.xml"
        ))
        .await
        .unwrap()
        .expect("the raw answer is kept");
    assert!(String::from_utf8_lossy(&raw).contains("GetDNCFileByUrlResponse"));
    let applied = &nightly.output["applied"];
    // The changes of the two days since the start: the day of the import (later than its as-of) and yesterday.
    assert_eq!(applied["changes"]["adds"], 60, "{applied}");
    assert_eq!(applied["changes"]["deletes"], 24, "{applied}");
    let yesterday = today - chrono::Days::new(1);
    assert_eq!(
        applied["continuousThrough"],
        json!(yesterday.to_string()),
        "{applied}"
    );
    let loaded = registry::load(&store, "national").await.unwrap();
    let changes = ftc.sim.changes_between(start, yesterday);
    assert_eq!(changes.len(), 84);
    for c in &changes {
        let now_registered = ftc
            .sim
            .registered((c.number / 10_000_000) as u16, yesterday)
            .contains(&((c.number % 10_000_000) as u32));
        assert_eq!(now_registered, c.add);
        let want = if c.add {
            Lookup::Listed
        } else {
            Lookup::NotListed
        };
        assert_eq!(loaded.lookup(10_000_000_000 + c.number), want);
    }

    // The same day again: AlreadyDownloadedToday, the saved answer applied (already applied), no second download.
    let again = world.execute_registry_download(
        "again",
        json!({"registry": "national", "mode": "changes"}),
        &env,
    );
    assert_eq!(again.status, "SUCCEEDED", "{again:?}");
    assert_eq!(again.output["fetched"]["reused"], true, "{again:?}");
    assert_eq!(again.output["applied"]["alreadyApplied"], 1, "{again:?}");
    assert_eq!(ftc.sim.count("GetDNCFileByUrl"), 1);

    // The full download: each area code into a batch, then its marker; the import state machine imports it.
    let full = world.execute_registry_download(
        "full",
        json!({"registry": "national", "mode": "full"}),
        &env,
    );
    assert_eq!(
        full.status,
        "SUCCEEDED",
        "{full:?}\n{}",
        world.function_logs()
    );
    let marker = full.output["import"]["marker"]
        .as_str()
        .unwrap()
        .to_string();
    let import = world.execute_registry_import("ftc-full", s3_event(&marker));
    assert_eq!(
        import.status,
        "SUCCEEDED",
        "{import:?}\n{}",
        world.function_logs()
    );
    let total: usize = [202u16, 415, 818]
        .iter()
        .map(|npa| ftc.sim.registered(*npa, yesterday).len())
        .sum();
    assert_eq!(
        import.output["import"]["accepted"], total as u64,
        "{import:?}"
    );

    // A refused login: the execution fails at once, the code recorded, the login made once.
    ftc.sim.set_faults(vec![ftc_sim::FaultRule {
        op: "Login".into(),
        kind: ftc_sim::FaultKind::Code {
            code: "LoginFailed".into(),
        },
        count: None,
    }]);
    let logins = ftc.sim.count("Login");
    let refused = world.execute_registry_download(
        "refused",
        json!({"registry": "national", "mode": "changes"}),
        &env,
    );
    assert_eq!(refused.status, "FAILED", "{refused:?}");
    assert_eq!(refused.error.as_deref(), Some("RegistryDownloadFailed"));
    assert_eq!(ftc.sim.count("Login"), logins + 1, "never retried");
    let failure: Value = world
        .get_json("registry/national/download-failure.json")
        .await;
    assert_eq!(failure["error"], "Fatal");
    assert!(
        failure["cause"]
            .as_str()
            .unwrap()
            .starts_with("LoginFailed: "),
        "{failure}"
    );
    // The refusal is counted in the watch the function publishes (FtcLoginRefusedAlarm).
    assert!(
        world.function_logs().contains(r#""FtcLoginRefused":1.0"#),
        "{}",
        world.function_logs()
    );
}

/// Each way the nightly FTC workflow can fail ends in a clear status through the real state machine, and each success
/// clears it: `NoChanges` succeeds and the registry's continuity advances to today (the watch then shows no day
/// behind); a change list pending past its bound (`DNCFLOW_FTC_MAX_POLLS`) fails `StillPending`; a damaged zip (its
/// CRC) fails naming `FileDamaged`, its raw answer kept and the registry unchanged; Secrets Manager unreachable at the
/// function's cold start is `Transient`, retried by the workflow (4 attempts of `begin`), then recorded (recording
/// needs no FTC account); an execution that times out (never reaching its catch) is recorded from Step Functions'
/// status-change event by the registry function. Each failure is in `download-failure.json`, which the registry's
/// status shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ftc_download_workflows_failures_end_in_a_clear_status() {
    let (world, ftc, _) = ftc_world(1, 2).await;
    let today = chrono::Utc::now().date_naive();
    let store = world.store();
    let nightly = json!({"registry": "national", "mode": "changes"});
    async fn national(store: &S3Store) -> dncflow::registry::RegistryStatus {
        dncflow::registry::status(store, "national", chrono::Utc::now())
            .await
            .unwrap()
            .unwrap()
    }
    let status = || national(&store);
    let before = status().await;
    assert_eq!(before.days_not_continuous, Some(1), "{before:?}");

    // NoChanges: a success; continuity advances through today.
    ftc.sim.set_faults(vec![ftc_sim::FaultRule {
        op: "GetDeltaFileRequestStatus".into(),
        kind: ftc_sim::FaultKind::Code {
            code: "NoChanges".into(),
        },
        count: Some(1),
    }]);
    let quiet = world.execute_registry_download("quiet", nightly.clone(), &FTC_ENV);
    assert_eq!(
        quiet.status,
        "SUCCEEDED",
        "{quiet:?}\n{}",
        world.function_logs()
    );
    assert_eq!(
        quiet.output["applied"]["continuousThrough"],
        json!(today.to_string()),
        "{quiet:?}"
    );
    let after_quiet = status().await;
    assert_eq!(after_quiet.continuous_through, Some(today));
    assert_eq!(after_quiet.days_not_continuous, Some(0));
    assert_eq!(
        after_quiet
            .last_change_list
            .as_ref()
            .map(|c| c.outcome.as_str()),
        Some("noChanges")
    );
    assert!(after_quiet.download_failure.is_none());
    // The watch was published as EMF by the function (dimension Registry).
    assert!(
        world
            .function_logs()
            .contains(r#""RegistryDaysNotContinuous":0.0"#),
        "{}",
        world.function_logs()
    );

    // Pending past the bound: StillPending, recorded.
    ftc.sim.set_faults(vec![ftc_sim::FaultRule {
        op: "GetDeltaFileRequestStatus".into(),
        kind: ftc_sim::FaultKind::Code {
            code: "RequestPending".into(),
        },
        count: Some(5),
    }]);
    let pending = world.execute_registry_download(
        "pending",
        nightly.clone(),
        &[FTC_ENV[0], ("DNCFLOW_FTC_MAX_POLLS", "2")],
    );
    assert_eq!(pending.status, "FAILED", "{pending:?}");
    // begin, submit, two polls, the failure recorded.
    assert_eq!(pending.invocations["ftc-download"], 5, "{pending:?}");
    let failure = status().await.download_failure.expect("recorded");
    assert!(failure.cause.starts_with("StillPending: "), "{failure:?}");
    assert_eq!(failure.error, "Fatal");

    // A damaged zip: the run fails naming the reason, the raw answer is kept, the registry is unchanged.
    ftc.sim.set_faults(vec![ftc_sim::FaultRule {
        op: "GetDNCFileByUrl".into(),
        kind: ftc_sim::FaultKind::CorruptCrc,
        count: Some(1),
    }]);
    let damaged = world.execute_registry_download("damaged", nightly.clone(), &FTC_ENV);
    assert_eq!(damaged.status, "FAILED", "{damaged:?}");
    assert_eq!(damaged.error.as_deref(), Some("RegistryDownloadFailed"));
    let raw = store
        .get_bytes(&format!(
            "registry/national/downloads/{today}/raw/changes.xml"
        ))
        .await
        .unwrap()
        .expect("the raw answer is kept");
    assert!(String::from_utf8_lossy(&raw).contains("GetDNCFileByUrlResponse"));
    let after_damage = status().await;
    assert_eq!(
        after_damage.version, after_quiet.version,
        "registry unchanged"
    );
    let failure = after_damage.download_failure.clone().expect("recorded");
    assert_eq!(failure.error, "InvalidInput");
    assert!(failure.cause.starts_with("FileDamaged: "), "{failure:?}");
    assert!(after_damage.needs_attention());

    // Secrets Manager unreachable at the cold start: Transient, retried by the workflow, then recorded.
    let unreachable = world.execute_registry_download(
        "no-secrets-manager",
        nightly.clone(),
        &[
            FTC_ENV[0],
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    assert_eq!(unreachable.status, "FAILED", "{unreachable:?}");
    // begin and its three retries, then the failure recorded (without the FTC account).
    assert_eq!(
        unreachable.invocations["ftc-download"], 5,
        "{unreachable:?}"
    );
    let failure = status().await.download_failure.expect("recorded");
    assert_eq!(failure.error, "Transient", "{failure:?}");
    assert!(
        failure.cause.starts_with("CredentialsUnavailable: "),
        "{failure:?}"
    );

    // An execution that timed out never reaches its catch: Step Functions' status change is recorded instead.
    let arn = "arn:aws:states:us-east-1:000000000000:execution:dncflow-registry-download:timed-out";
    let ended = world.invoke(
        "registry",
        vec![json!({
            "version": "0", "source": "aws.states", "detail-type": "Step Functions Execution Status Change",
            "detail": {"executionArn": arn, "status": "TIMED_OUT",
                "stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:dncflow-registry-download",
                "input": nightly.to_string()},
        })],
        &[],
    );
    assert_eq!(
        ended[0]["output"]["error"], "Execution.TIMED_OUT",
        "{ended:?}"
    );
    let failure = status().await.download_failure.expect("recorded");
    assert_eq!(failure.error, "Execution.TIMED_OUT");
    assert!(failure.cause.contains("timed-out"), "{failure:?}");
}

/// A night lost for good (here: the registry imported as of four days ago, while the service's change lists begin
/// two days ago) leaves a gap no later change list can fill: the nightly execution applies its list, sees the gap
/// (`continuous: false`) and downloads the full list in the same execution; once the batch is imported the registry
/// is continuous through today again, without a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_list_that_leaves_a_gap_is_followed_by_the_full_download_the_same_night() {
    let (world, ftc, _) = ftc_world(0, 4).await;
    let today = chrono::Utc::now().date_naive();
    let run = world.execute_registry_download(
        "gap",
        json!({"registry": "national", "mode": "changes"}),
        &FTC_ENV,
    );
    assert_eq!(
        run.status,
        "SUCCEEDED",
        "{run:?}\n{}",
        world.function_logs()
    );
    assert_eq!(run.output["applied"]["continuous"], false, "{run:?}");
    assert_eq!(
        run.output["applied"]["gaps"],
        json!([(today - chrono::Days::new(3)).to_string()]),
        "{run:?}"
    );
    assert_eq!(ftc.sim.count("GetURLS"), 1, "the full list was asked for");
    let marker = run.output["import"]["marker"].as_str().unwrap().to_string();
    let import = world.execute_registry_import("gap-full", s3_event(&marker));
    assert_eq!(
        import.status,
        "SUCCEEDED",
        "{import:?}\n{}",
        world.function_logs()
    );
    let status = dncflow::registry::status(&world.store(), "national", chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.continuous_through, Some(today), "{status:?}");
    assert!(status.gaps.is_empty(), "{status:?}");
    assert_eq!(status.days_not_continuous, Some(0));
    assert_eq!(status.last_full_download.len(), 3, "{status:?}");
    assert!(!status.needs_attention(), "{status:?}");
}
