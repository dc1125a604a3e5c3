//! Normalizing a source object streamed from S3 (moto_server on loopback stands in for AWS).

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use dncflow::normalize::{normalize_to_dir, NormalizeOptions};
use dncflow::store::{open_s3_object, S3Location};
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
