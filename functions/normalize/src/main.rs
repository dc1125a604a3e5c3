//! Lambda `normalize`: an S3 drop (EventBridge "Object Created", an S3 notification, or a plain
//! `{bucket, key, versionId?, list?}` re-run input) in; `runs/<runId>/` (manifest, shards, rejects) out.
//!
//! Environment: `DNCFLOW_BUCKET` (where runs are written; default: the source bucket), `DNCFLOW_DEFAULT_REGION`
//! (default `US`), `DNCFLOW_SHARDS` (default 16), `DNCFLOW_MAX_REJECT_RATIO` (0.5: a file rejecting more of its rows,
//! or accepting none, fails `InvalidInput` before anything is uploaded), `DNCFLOW_MAX_INFLATED_BYTES` (8 GiB),
//! `DNCFLOW_MAX_INFLATION_RATIO` (200), `DNCFLOW_MAX_ZIP_MEMBERS` (10,000), `DNCFLOW_MAX_REJECTS_KEPT` (100,000
//! rejects written in full; past it each reason keeps 100 samples and the rest are counted).

use dncflow::events::parse_source_event;
use dncflow::lambda::{answer, diagnostic, env_or, init_logging};
use dncflow::normalize::NormalizeOptions;
use dncflow::phone::DefaultRegion;
use dncflow::stages::{normalize_object, StageError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let s3 = dncflow::store::s3_client(None).await;
    let out_bucket = std::env::var("DNCFLOW_BUCKET").ok();
    let region = std::env::var("DNCFLOW_DEFAULT_REGION")
        .ok()
        .and_then(|r| DefaultRegion::from_code(&r))
        .unwrap_or_default();
    let shards: u32 = env_or("DNCFLOW_SHARDS", 16);
    let defaults = dncflow::input::decode::DecodeLimits::default();
    let limits = dncflow::input::decode::DecodeLimits {
        max_inflated_bytes: env_or("DNCFLOW_MAX_INFLATED_BYTES", defaults.max_inflated_bytes),
        max_ratio: env_or("DNCFLOW_MAX_INFLATION_RATIO", defaults.max_ratio),
        max_members: env_or("DNCFLOW_MAX_ZIP_MEMBERS", defaults.max_members),
    };
    let max_rejects_kept: u64 = env_or("DNCFLOW_MAX_REJECTS_KEPT", 100_000);
    let max_reject_ratio: f64 = env_or(
        "DNCFLOW_MAX_REJECT_RATIO",
        dncflow::normalize::DEFAULT_MAX_REJECT_RATIO,
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (s3, out_bucket) = (s3.clone(), out_bucket.clone());
        async move {
            let source = parse_source_event(&event.payload)
                .map_err(|e| diagnostic("normalize", StageError::InvalidInput(e.to_string())))?;
            let mut options = NormalizeOptions::new(&source.list);
            options.region = region;
            options.shard_count = shards;
            options.limits = limits;
            options.max_rejects_kept = max_rejects_kept;
            let bucket = out_bucket.unwrap_or_else(|| source.bucket.clone());
            let output = normalize_object(&s3, &bucket, &source, options, max_reject_ratio)
                .await
                .map_err(|e| diagnostic("normalize", e))?;
            answer("normalize", &output)
        }
    }))
    .await
}
