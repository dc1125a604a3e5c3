//! The normalize stage against S3 (moto_server on loopback): trigger events in, `runs/<runId>/` out.

use aws_sdk_s3::primitives::ByteStream;
use dncflow::adapters::s3_event::parse_source_event;
use dncflow::adapters::store::{ObjectStore, S3Store};
use dncflow::run::Manifest;
use dncflow::steps::normalize::NormalizeOptions;
use dncflow::steps::normalize_object;
use dncflow_tests::{s3_client as s3, start_moto};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_drop_becomes_a_published_run() {
    let moto = start_moto();
    let client = s3(&moto.url);
    client.create_bucket().bucket("dnc").send().await.unwrap();
    let body: String = (0..3000)
        .map(|i| format!("202{:07}\n", 2_000_000 + i))
        .collect::<String>()
        + "garbage\n";
    client
        .put_object()
        .bucket("dnc")
        .key("incoming/national/fcc.txt")
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .unwrap();

    let event = json!({"source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": "dnc"}, "object": {"key": "incoming/national/fcc.txt"}}});
    let source = parse_source_event(&event).unwrap();
    let out = normalize_object(
        &S3Store::new(client.clone(), "dnc"),
        &source,
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap();
    assert_eq!(
        (out.list.as_str(), out.rows, out.accepted, out.rejected),
        ("national", 3001, 3000, 1)
    );
    assert_eq!(out.shard_keys.len(), 16);
    assert!(
        serde_json::to_vec(&out).unwrap().len() < 4096,
        "a small state payload"
    );

    let store = S3Store::new(client.clone(), "dnc");
    let manifest: Manifest =
        serde_json::from_slice(&store.get_bytes(&out.manifest_key).await.unwrap().unwrap())
            .unwrap();
    assert_eq!(manifest.run_id, out.run_id);
    assert_eq!(manifest.source.bucket.as_deref(), Some("dnc"));
    let mut entries = 0;
    for key in &out.shard_keys {
        entries += String::from_utf8(store.get_bytes(key).await.unwrap().unwrap())
            .unwrap()
            .lines()
            .count();
    }
    assert_eq!(entries, 3000);
    let rejects = store
        .get_bytes(&format!("runs/{}/rejects.jsonl", out.run_id))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8(rejects).unwrap().contains("NOT_A_NUMBER"));

    // A re-run of the same object (plain input from the console) is the same run.
    let again = normalize_object(
        &S3Store::new(client.clone(), "dnc"),
        &parse_source_event(&json!({"bucket": "dnc", "key": "incoming/national/fcc.txt"})).unwrap(),
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap();
    assert_eq!(again.run_id, out.run_id);

    // A binary object is invalid input, not a transient failure.
    client
        .put_object()
        .bucket("dnc")
        .key("incoming/national/photo.png")
        .body(ByteStream::from(vec![0u8, 159, 146, 150, 0, 0]))
        .send()
        .await
        .unwrap();
    let bad = parse_source_event(&json!({"bucket": "dnc", "key": "incoming/national/photo.png"}))
        .unwrap();
    let err = normalize_object(
        &S3Store::new(client.clone(), "dnc"),
        &bad,
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "InvalidInput", "{err}");
    // A file of junk (most rows rejected) is refused before anything is uploaded, with the counts; its manifest and
    // rejects are published for whoever looks into it.
    let mut junk = String::from("phone\n2025550198\n");
    for i in 0..9 {
        junk += &format!("call me maybe {i}\n");
    }
    client
        .put_object()
        .bucket("dnc")
        .key("incoming/national/junk.csv")
        .body(ByteStream::from(junk.into_bytes()))
        .send()
        .await
        .unwrap();
    let junk =
        parse_source_event(&json!({"bucket": "dnc", "key": "incoming/national/junk.csv"})).unwrap();
    let err = normalize_object(
        &S3Store::new(client.clone(), "dnc"),
        &junk,
        NormalizeOptions::new("x"),
        0.5,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_name(), "InvalidInput", "{err}");
    assert!(err.to_string().contains("9 of 10 rows rejected"), "{err}");
    // A missing object is transient (it may be a read-after-write delay).
    let gone =
        parse_source_event(&json!({"bucket": "dnc", "key": "incoming/national/nope.txt"})).unwrap();
    assert_eq!(
        normalize_object(
            &S3Store::new(client.clone(), "dnc"),
            &gone,
            NormalizeOptions::new("x"),
            0.5
        )
        .await
        .unwrap_err()
        .error_name(),
        "Transient"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_up_in_parts() {
    let moto = start_moto();
    let client = s3(&moto.url);
    client.create_bucket().bucket("runs").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let data: Vec<u8> = (0..(9u32 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let store = S3Store::new(client, "runs");
    store
        .put_file("runs/r/shards/00000.jsonl", &path)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_bytes("runs/r/shards/00000.jsonl")
            .await
            .unwrap()
            .unwrap(),
        data
    );
    assert_eq!(store.get_bytes("runs/r/none").await.unwrap(), None);
}
