//! Normalizing a source object streamed from S3 (moto_server on loopback stands in for AWS).

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use dncflow::adapters::store::{open_s3_object, S3Location};
use dncflow::steps::normalize::{normalize_to_dir, NormalizeOptions};
use dncflow_tests::{s3_client, start_moto};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalizes_a_gzipped_object_streamed_from_s3() {
    let moto = start_moto();
    let s3 = s3_client(&moto.url);
    s3.create_bucket().bucket("drops").send().await.unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..5000 {
        writeln!(gz, "202{:07}", 2_000_000 + i % 4000).unwrap();
    }
    writeln!(gz, "12345").unwrap();
    let body = gz.finish().unwrap();
    s3.put_object()
        .bucket("drops")
        .key("incoming/fcc/dnc.txt.gz")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();

    let location = S3Location::parse("s3://drops/incoming/fcc/dnc.txt.gz").unwrap();
    let (reader, identity, size) = open_s3_object(&s3, &location).await.unwrap();
    assert_eq!(size, Some(body.len() as u64));
    assert!(identity.etag.is_some());
    let out = tempfile::tempdir().unwrap();
    let out_path = out.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        normalize_to_dir(
            reader,
            identity,
            &NormalizeOptions::new("fcc"),
            &out_path,
            &mut |_| {},
        )
    })
    .await
    .unwrap()
    .unwrap();
    let c = &run.manifest.counts;
    assert_eq!(
        (c.rows, c.accepted, c.duplicates, c.rejected),
        (5001, 4000, 1000, 1)
    );
    assert_eq!(run.manifest.source.bucket.as_deref(), Some("drops"));
    assert_eq!(
        run.manifest.source.bytes,
        body.len() as u64,
        "the whole object was hashed"
    );
    use sha2::Digest;
    assert_eq!(
        run.manifest.source.sha256,
        hex::encode(sha2::Sha256::digest(&body))
    );

    let missing = S3Location::parse("s3://drops/nope.csv").unwrap();
    let err = open_s3_object(&s3, &missing)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("s3://drops/nope.csv"), "{err}");
}

/// `dncctl registry import s3://…` as an operator runs it: area-code zips under a prefix in S3 read one object at a
/// time, the index written to S3 (`--out s3://bucket`), then a change list applied from S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dncctl_imports_a_registry_from_an_s3_prefix_into_s3() {
    let moto = start_moto();
    let s3 = s3_client(&moto.url);
    s3.create_bucket().bucket("dnc").send().await.unwrap();
    for (npa, lines) in [
        ("202", "202,5550100\n202,5550101\n"),
        ("415", "415,5550100\n415,55501\n"),
    ] {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            format!("{npa}.txt"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(lines.as_bytes()).unwrap();
        let body = zip.finish().unwrap().into_inner();
        s3.put_object()
            .bucket("dnc")
            .key(format!("downloads/2026-11/{npa}.txt.zip"))
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    let today = chrono::Utc::now().date_naive().to_string();
    s3.put_object()
        .bucket("dnc")
        .key("downloads/changes/c1.txt")
        .body(ByteStream::from(
            format!("2025550100,{today}T00:00:00,D\n").into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let dncctl = dncflow_tests::workspace_binary("dncctl");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&dncctl)
            .args(args)
            .args([
                "--out",
                "s3://dnc",
                "--s3-endpoint",
                &moto.url,
                "--registry",
                "national",
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("dncctl is built (scripts/test.sh builds the binaries)");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    let text = run(&[
        "registry",
        "import",
        "s3://dnc/downloads/2026-11/",
        "--as-of",
        &today,
        "--area-codes",
        "202,415",
    ]);
    assert!(
        text.contains("rows       4 = 3 accepted + 0 duplicates + 1 rejected"),
        "{text}"
    );
    let text = run(&["registry", "apply", "s3://dnc/downloads/changes/c1.txt"]);
    assert!(text.contains("1 deletes (0 not registered)"), "{text}");
    let store = dncflow::adapters::store::S3Store::new(s3.clone(), "dnc");
    let live = dncflow::registry::load(&store, "national").await.unwrap();
    assert_eq!(live.manifest.total, 2);
    assert_eq!(
        live.manifest.sources[0].name,
        "s3://dnc/downloads/2026-11/202.txt.zip"
    );
}
