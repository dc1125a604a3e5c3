//! The check as its Lambda runs it, against moto's S3 and the simulator: the snapshot a successful reconcile wrote and
//! the list's received numbers (normalize adds a run's, a verified read-back removes what CXone holds) are loaded
//! from the bucket and answer without a CXone call; the rest is asked; the audit record lands in S3 and is exported
//! to a webhook that fails once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use cxone_sim::SimConfig;
use dncflow::adapters::eventbridge::NoNotifier;
use dncflow::adapters::s3_event::parse_source_event;
use dncflow::adapters::store::{ObjectStore, S3Store};
use dncflow::steps::check::{CheckRequest, ContactIn, Verdict};
use dncflow::steps::normalize::NormalizeOptions;
use dncflow::steps::{
    check_stage, load_local_knowledge, normalize_object, reconcile_stage, upload_stage,
    NormalizeOutput, RunRef, ShardTask, UploadSettings, Webhook,
};
use dncflow_tests::{s3_client, sim_client, start_moto};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BUCKET: &str = "dnc";

async fn drop_and_upload(
    s3: &aws_sdk_s3::Client,
    store: &S3Store,
    api: &dyn dncflow::adapters::cxone::DncApi,
    key: &str,
    body: String,
) -> NormalizeOutput {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .unwrap();
    let event = json!({"bucket": BUCKET, "key": key});
    let source = parse_source_event(&event).unwrap();
    let out = normalize_object(
        &S3Store::new(s3.clone(), BUCKET),
        &source,
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap();
    let settings = UploadSettings {
        budget: Duration::from_secs(60),
        concurrency: 2,
        capacity: dncflow::steps::CXONE_CAPACITY,
    };
    for shard_key in &out.shard_keys {
        let task = ShardTask {
            run: RunRef {
                bucket: BUCKET.into(),
                run_id: out.run_id.clone(),
                list: out.list.clone(),
            },
            shard_key: shard_key.clone(),
            round: 0,
            cursor: 0,
            offset: 0,
        };
        let up = upload_stage(api, store, &task, &settings, chrono::Utc::now)
            .await
            .unwrap();
        assert!(up.done);
    }
    out
}

/// moto's S3 with the bucket, the simulator with list `optouts` provisioned, and clients for both.
async fn world(
    config: SimConfig,
) -> (
    dncflow_tests::Moto,
    cxone_sim::RunningSim,
    aws_sdk_s3::Client,
    S3Store,
    dncflow::adapters::cxone::v2::V2Client,
) {
    let moto = start_moto();
    let sim = cxone_sim::spawn(config, 0).await.unwrap();
    let s3 = s3_client(&moto.url);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let store = S3Store::new(s3.clone(), BUCKET);
    let api = sim_client(&sim, 200.0);
    dncflow::local::ensure_list(&api, "optouts").await.unwrap();
    (moto, sim, s3, store, api)
}

/// A webhook that refuses its first delivery (500) and accepts the rest; returns its URL, the delivery count and
/// the bodies it accepted.
async fn flaky_webhook() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/audit", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, b) = (hits.clone(), bodies.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (h, b) = (h.clone(), b.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            let n = h.fetch_add(1, Ordering::SeqCst);
                            let status = if n == 0 {
                                "500 Internal Server Error"
                            } else {
                                b.lock().unwrap().push(text[end + 4..].to_string());
                                "200 OK"
                            };
                            let _ = socket
                                .write_all(
                                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                        .as_bytes(),
                                )
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, hits, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_and_propagating_numbers_answer_locally_and_every_check_is_audited() {
    let (_moto, sim, s3, store, api) = world(SimConfig {
        propagation_secs: (3600, 3600),
        ..SimConfig::default()
    })
    .await;

    // Run 1: uploaded and reconciled: SUCCESS, its snapshot written.
    let csv = |from: u32| -> String {
        (from..from + 300)
            .map(|i| format!("202555{i:04}\n"))
            .collect()
    };
    let first = drop_and_upload(&s3, &store, &api, "incoming/optouts/a.txt", csv(0)).await;
    let task = dncflow::steps::ReconcileTask {
        run: RunRef {
            bucket: BUCKET.into(),
            run_id: first.run_id.clone(),
            list: "optouts".into(),
        },
        round: 0,
        started_at: None,
        execution: None,
        clock_scale: None,
    };
    let rec = reconcile_stage(&api, &store, &NoNotifier, &task, 3, chrono::Utc::now)
        .await
        .unwrap();
    assert_eq!(rec.status, "SUCCESS");
    // Run 2: uploaded, not yet reconciled: its numbers are still propagating.
    let second = drop_and_upload(&s3, &store, &api, "incoming/optouts/b.txt", csv(5000)).await;

    let knowledge = load_local_knowledge(&store, &["optouts".to_string()])
        .await
        .unwrap();
    assert_eq!(knowledge.snapshot.len(), 300);
    assert_eq!(knowledge.snapshot_runs, vec![first.run_id.clone()]);
    assert_eq!(knowledge.received[0].counts().pending_propagation, 300);
    assert_eq!(knowledge.incomplete, None);

    // Verified, propagating and invalid numbers: answered without a single CXone call.
    let contacts = |numbers: &[&str]| CheckRequest {
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
    };
    let before = sim.sim.requests().len();
    let (hook_url, hits, bodies) = flaky_webhook().await;
    let hook = Webhook {
        url: hook_url,
        attempts: 3,
        backoff: Duration::from_millis(10),
        budget: Duration::from_secs(5),
    };
    let http = reqwest::Client::new();
    let key = dncflow::steps::check::AuditKey::new("v7", b"check-stage test audit key").unwrap();
    let (local, audit_key) = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &contacts(&["(202) 555-0007", "+1 202 555 5007", "12345"]),
        4,
        Some((&http, &hook)),
        "req-1",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let verdicts: Vec<(Verdict, &str)> = local
        .results
        .iter()
        .map(|r| (r.status, r.reason.as_str()))
        .collect();
    assert_eq!(verdicts[0].0, Verdict::Suppressed);
    assert_eq!(verdicts[1], (Verdict::Suppressed, "pending-propagation"));
    assert_eq!(verdicts[2].0, Verdict::Invalid);
    let contact_calls = sim.sim.requests()[before..]
        .iter()
        .filter(|r| r.path.contains("contacts"))
        .count();
    assert_eq!(contact_calls, 0, "the local answers made no CXone call");

    // The audit record is in S3, names no number, and reached the webhook on its second attempt.
    let audit = String::from_utf8(store.get_bytes(&audit_key).await.unwrap().unwrap()).unwrap();
    assert!(audit_key.starts_with("audit/") && audit_key.ends_with("-req-1.json"));
    assert!(!audit.contains("2025550007") && !audit.contains("2025555007"));
    // Keyed: the HMAC under the audit key is there, the plain SHA-256 (brute-forceable) is not, and the key is named.
    assert!(audit.contains(&key.hash("+12025550007")));
    assert!(!audit.contains(&dncflow::steps::check::number_hash("+12025550007")));
    assert!(audit.contains("\"keyVersion\":\"v7\""), "{audit}");
    assert_eq!(hits.load(Ordering::SeqCst), 2, "one refusal, one retry");
    assert_eq!(bodies.lock().unwrap()[0], audit);

    // A number nobody uploaded goes to CXone: allowed (the rule blocks only listed numbers).
    let (asked, _) = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &contacts(&["(202) 555-9999"]),
        4,
        None,
        "req-2",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(asked.results[0].status, Verdict::Allowed);
    assert!(asked.safe_to_dial);
    assert_eq!(asked.metrics.cxone_calls, 1);

    // Once run 2 is reconciled SUCCESS, its numbers are verified, not propagating.
    let task2 = dncflow::steps::ReconcileTask {
        run: RunRef {
            bucket: BUCKET.into(),
            run_id: second.run_id.clone(),
            list: "optouts".into(),
        },
        round: 0,
        started_at: None,
        execution: None,
        clock_scale: None,
    };
    assert_eq!(
        reconcile_stage(&api, &store, &NoNotifier, &task2, 3, chrono::Utc::now)
            .await
            .unwrap()
            .status,
        "SUCCESS"
    );
    let refreshed = load_local_knowledge(&store, &["optouts".to_string()])
        .await
        .unwrap();
    assert!(
        refreshed.received[0].is_empty(),
        "CXone holds them all: known held"
    );
    assert_eq!(refreshed.snapshot.len(), 600);
    assert_ne!(
        refreshed.markers, knowledge.markers,
        "the received document changed: the check reloads"
    );
}

/// From the moment a run is normalized, every number of its shards is answered `pending-propagation`, before any
/// upload or ledger segment exists. A number CXone refused (a dead letter of a verified run) is answered
/// `suppressed` (`dead-letter`) and counted in the status; and when the local knowledge could not be loaded, nothing
/// is `allowed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_runs_dead_letters_and_unloadable_knowledge_never_answer_allowed() {
    use cxone_sim::{Endpoint, FaultKind, FaultRule};
    let (_moto, sim, s3, store, api) = world(SimConfig {
        propagation_secs: (0, 0),
        faults: vec![FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::RejectEntries {
                code: "INVALID_JURISDICTION".into(),
                per_entry: 0.1,
            },
            probability: 1.0,
            after: 0,
            count: None,
        }],
        ..SimConfig::default()
    })
    .await;
    let key = dncflow::steps::check::AuditKey::new("v1", b"check-stage test audit key").unwrap();
    let ask = |numbers: &[String]| CheckRequest {
        contacts: numbers
            .iter()
            .map(|n| ContactIn {
                phone_number: n.clone(),
                region_code: None,
                state: None,
            })
            .collect(),
        list_ids: None,
        // A Wednesday noon, Eastern: inside every US zone's calling hours.
        at: Some("2026-12-09T17:00:00Z".parse().unwrap()),
        call_type: None,
    };

    // A verified run with dead letters.
    let csv: String = (0..200).map(|i| format!("202555{i:04}\n")).collect();
    let first = drop_and_upload(&s3, &store, &api, "incoming/optouts/a.txt", csv).await;
    let rec = reconcile_stage(
        &api,
        &store,
        &NoNotifier,
        &dncflow::steps::ReconcileTask {
            run: RunRef {
                bucket: BUCKET.into(),
                run_id: first.run_id.clone(),
                list: "optouts".into(),
            },
            round: 0,
            started_at: None,
            execution: None,
            clock_scale: None,
        },
        3,
        chrono::Utc::now,
    )
    .await
    .unwrap();
    assert_eq!(rec.status, "SUCCESS");
    let status: dncflow::run::ListStatus = serde_json::from_slice(
        &store
            .get_bytes("status/optouts/latest.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(
        status.dead_letters > 0,
        "the status counts dead letters: {status:?}"
    );
    let knowledge = load_local_knowledge(&store, &["optouts".to_string()])
        .await
        .unwrap();
    let dead: Vec<String> =
        knowledge.received[0].numbers_of(Some(&first.run_id), Some(dncflow::run::Hold::DeadLetter));
    assert_eq!(dead.len() as u64, status.dead_letters);
    assert_eq!(status.received_not_held.dead_letters, status.dead_letters);
    let (answer, _) = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &ask(&dead),
        2,
        None,
        "dl",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.status == Verdict::Suppressed && r.reason == "dead-letter"),
        "{answer:?}"
    );
    // Without a CXone client (its secret unreadable): the dead letters are still answered locally, a number only
    // CXone could clear is `error`, never `allowed`.
    let mut asked = dead.clone();
    asked.push("+13035550142".into());
    let (answer, _) = check_stage(
        Err("secret unreadable"),
        &store,
        &knowledge,
        &ask(&asked),
        2,
        None,
        "no-client",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let (last, known) = answer.results.split_last().unwrap();
    assert!(
        known.iter().all(|r| r.status == Verdict::Suppressed),
        "{answer:?}"
    );
    assert_eq!(last.status, Verdict::Error, "{answer:?}");
    assert!(
        last.reason
            .contains("CXone client unavailable: secret unreadable"),
        "{last:?}"
    );

    // A second run normalized, nothing uploaded yet: every number of its shards is pending.
    sim.sim.set_faults(Vec::new());
    s3.put_object()
        .bucket(BUCKET)
        .key("incoming/optouts/b.txt")
        .body(ByteStream::from(
            (5000..5150)
                .map(|i| format!("202555{i:04}\n"))
                .collect::<String>()
                .into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let source =
        parse_source_event(&json!({"bucket": BUCKET, "key": "incoming/optouts/b.txt"})).unwrap();
    let before = knowledge.markers.clone();
    let second = normalize_object(
        &S3Store::new(s3.clone(), BUCKET),
        &source,
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap();
    let knowledge = load_local_knowledge(&store, &["optouts".to_string()])
        .await
        .unwrap();
    assert_eq!(
        knowledge.received[0]
            .numbers_of(
                Some(&second.run_id),
                Some(dncflow::run::Hold::PendingPropagation)
            )
            .len(),
        150,
        "every number of its shards"
    );
    assert_ne!(
        knowledge.markers, before,
        "the received document's tag changed (a change triggers a reload)"
    );
    let pending: Vec<String> = vec!["+12025555149".into()];
    let (answer, _) = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &ask(&pending),
        2,
        None,
        "p",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        (answer.results[0].status, answer.results[0].reason.as_str()),
        (Verdict::Suppressed, "pending-propagation")
    );

    // Knowledge that could not be (re)loaded: a number CXone would allow is an error.
    let mut degraded = knowledge;
    degraded.incomplete = Some("S3 unreachable".into());
    let (answer, _) = check_stage(
        Ok(&api),
        &store,
        &degraded,
        &ask(&["+13035550100".to_string()]),
        2,
        None,
        "d",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(answer.results[0].status, Verdict::Error, "{answer:?}");
    assert!(!answer.safe_to_dial);
}

/// The check answers in time whatever its audit export does: a webhook that takes the connection and never answers
/// delays the answer by its budget at most (the S3 audit record is written first and stands). A request of 20,000
/// contacts, above the limit, is refused naming the limit, before anything is checked or audited: no CXone call, no
/// audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_webhook_never_delays_the_answer_and_too_many_contacts_are_refused_first() {
    let (_moto, sim, s3, store, api) = world(SimConfig::default()).await;
    let key = dncflow::steps::check::AuditKey::new("v1", b"check-stage test audit key").unwrap();
    let knowledge = dncflow::steps::LocalKnowledge::default();
    let ask = |n: usize| CheckRequest {
        contacts: (0..n)
            .map(|i| ContactIn {
                phone_number: format!("+1202{:07}", 6_000_000 + i),
                region_code: None,
                state: None,
            })
            .collect(),
        list_ids: None,
        at: Some("2026-12-09T17:00:00Z".parse().unwrap()),
        call_type: None,
    };
    // Accepts connections, reads nothing, answers nothing, never closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/audit", listener.local_addr().unwrap());
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.lock().unwrap().push(socket);
        }
    });
    let budget = Duration::from_millis(500);
    let hook = Webhook {
        url,
        attempts: 3,
        backoff: Duration::from_millis(10),
        budget,
    };
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let (answer, audit_key) = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &ask(3),
        4,
        Some((&http, &hook)),
        "req-silent",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    assert!(took < budget + Duration::from_secs(1), "{took:?}");
    assert!(!held.lock().unwrap().is_empty(), "the webhook was called");
    assert!(answer.results.iter().all(|r| r.status == Verdict::Allowed));
    assert!(store.get_bytes(&audit_key).await.unwrap().is_some());

    let audits = || async {
        s3.list_objects_v2()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter(|o| o.key().unwrap_or_default().starts_with("audit/"))
            .count()
    };
    let (records, requests) = (audits().await, sim.sim.requests().len());
    let refused = check_stage(
        Ok(&api),
        &store,
        &knowledge,
        &ask(20_000),
        4,
        Some((&http, &hook)),
        "req-huge",
        &key,
        chrono::Utc::now(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), dncflow::steps::ErrorKind::InvalidInput);
    assert!(
        refused.to_string().contains("20000 contacts")
            && refused.to_string().contains("limit is 2500"),
        "{refused}"
    );
    assert_eq!(audits().await, records, "nothing audited");
    assert_eq!(sim.sim.requests().len(), requests, "nothing asked of CXone");
}
