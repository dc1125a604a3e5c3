//! S3 Object Lock on evidence, against moto: with the deployment's lock set, every evidence object dncflow writes
//! (a run's manifest and rejects, its reports and dead letters, a list's status and received numbers, an audit
//! record) is written with a retention, so its version cannot be deleted; shards, canaries and leases are written
//! without one and stay deletable. Overwriting an evidence key adds a version and leaves the locked one.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectLockMode;
use chrono::{TimeDelta, Utc};
use dncflow::adapters::s3_event::parse_source_event;
use dncflow::adapters::store::{EvidenceLock, LockMode, ObjectStore, S3Store};
use dncflow::run::{audit_key, lease_key, status_key, RunKeys};
use dncflow::steps::normalize::NormalizeOptions;
use dncflow::steps::normalize_object;
use dncflow_tests::{s3_client, start_moto};
use serde_json::json;

const BUCKET: &str = "dnc";

/// The retention of `key`'s current version: its mode and date, `None` when it has none.
async fn retention(
    s3: &aws_sdk_s3::Client,
    key: &str,
) -> Option<(ObjectLockMode, chrono::DateTime<Utc>)> {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let mode = head.object_lock_mode()?.clone();
    let until = head.object_lock_retain_until_date()?;
    Some((
        mode,
        chrono::DateTime::from_timestamp(until.secs(), 0).unwrap(),
    ))
}

async fn version_of(s3: &aws_sdk_s3::Client, key: &str) -> String {
    s3.head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .version_id()
        .expect("a versioned bucket")
        .to_string()
}

/// Delete one version of `key` for good: `Err(code)` when S3 refuses.
async fn delete_version(s3: &aws_sdk_s3::Client, key: &str, version: &str) -> Result<(), String> {
    s3.delete_object()
        .bucket(BUCKET)
        .key(key)
        .version_id(version)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_versions_are_locked_and_temporary_objects_stay_deletable() {
    let moto = start_moto();
    let s3 = s3_client(&moto.url);
    // A bucket with Object Lock on (which turns versioning on) and no default retention, as the template makes it.
    s3.create_bucket()
        .bucket(BUCKET)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let body = (0..300)
        .map(|i| format!("202{:07}\n", 2_000_000 + i))
        .collect::<String>()
        + "garbage\n";
    s3.put_object()
        .bucket(BUCKET)
        .key("incoming/demo/optouts.csv")
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .unwrap();
    let lock = EvidenceLock {
        mode: LockMode::Compliance,
        days: 1461,
    };
    let store = S3Store {
        client: s3.clone(),
        bucket: BUCKET.into(),
        evidence_lock: Some(lock),
    };
    let written_at = Utc::now();

    // The normalize stage writes the run (manifest, shards, rejects) and the list's received numbers.
    let event = json!({"source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": "incoming/demo/optouts.csv"}}});
    let source = parse_source_event(&event).unwrap();
    let out = normalize_object(&store, &source, NormalizeOptions::new("x"), 0.5)
        .await
        .unwrap();
    assert_eq!((out.accepted, out.rejected), (300, 1));
    let keys = RunKeys::new(&out.run_id);
    // What a run's ending and a check write: reports, dead letters, status, an audit record (created only).
    for key in [
        keys.report(),
        keys.report_markdown(),
        keys.report_html(),
        keys.dead_letters(),
        status_key("demo"),
    ] {
        store.put_bytes(&key, b"{}".to_vec()).await.unwrap();
    }
    let audit = audit_key(written_at, "req-1");
    assert!(store.put_if_absent(&audit, b"{}".to_vec()).await.unwrap());
    // What is temporary: a canary record, a lease (created only, deleted when released).
    store
        .put_bytes(&keys.canary(0), b"{}".to_vec())
        .await
        .unwrap();
    assert!(store
        .put_if_absent(&lease_key("demo"), b"{}".to_vec())
        .await
        .unwrap());

    let evidence = [
        out.manifest_key.clone(),
        keys.rejects(),
        dncflow::run::received_key("demo"),
        keys.report(),
        keys.report_markdown(),
        keys.report_html(),
        keys.dead_letters(),
        status_key("demo"),
        audit.clone(),
    ];
    for key in &evidence {
        let (mode, until) = retention(&s3, key)
            .await
            .unwrap_or_else(|| panic!("{key} was written without a retention"));
        assert_eq!(mode, ObjectLockMode::Compliance, "{key}");
        let expected = written_at + TimeDelta::days(1461);
        assert!(
            (until - expected).num_seconds().abs() < 120,
            "{key} retained until {until}, expected about {expected}"
        );
        let version = version_of(&s3, key).await;
        assert_eq!(
            delete_version(&s3, key, &version).await,
            Err("AccessDenied".to_string()),
            "{key}: a locked version was deleted"
        );
    }
    let temporary = [
        out.shard_keys[0].clone(),
        keys.canary(0),
        lease_key("demo"),
        "incoming/demo/optouts.csv".to_string(),
    ];
    for key in &temporary {
        assert_eq!(retention(&s3, key).await, None, "{key} is not evidence");
        let version = version_of(&s3, key).await;
        assert_eq!(delete_version(&s3, key, &version).await, Ok(()), "{key}");
        assert!(
            store.get_bytes(key).await.unwrap().is_none(),
            "{key} is gone"
        );
    }

    // Overwriting a report adds a version; the first one is still there, whole and locked.
    let first = version_of(&s3, &keys.report()).await;
    store
        .put_bytes(&keys.report(), b"{\"replaced\":true}".to_vec())
        .await
        .unwrap();
    let versions = s3
        .list_object_versions()
        .bucket(BUCKET)
        .prefix(keys.report())
        .send()
        .await
        .unwrap();
    let report_versions: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| v.key() == Some(keys.report().as_str()))
        .collect();
    assert_eq!(report_versions.len(), 2, "{versions:?}");
    let old = s3
        .get_object()
        .bucket(BUCKET)
        .key(keys.report())
        .version_id(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"{}"
    );
    assert_eq!(
        delete_version(&s3, &keys.report(), &first).await,
        Err("AccessDenied".to_string())
    );

    // Without the setting (the default, and every local run), nothing is locked.
    let unlocked = S3Store::new(s3.clone(), BUCKET);
    let key = RunKeys::new("demo-unlocked").report();
    unlocked.put_bytes(&key, b"{}".to_vec()).await.unwrap();
    assert_eq!(retention(&s3, &key).await, None);
}
