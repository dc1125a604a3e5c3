//! Object storage edges: reading source files from S3 as a stream, and the S3 client configuration (an endpoint URL
//! for emulators, with path-style addressing).

use std::io::Read;

use thiserror::Error;

use crate::run::SourceIdentity;

/// Failures at the object-store edge.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Not an `s3://bucket/key` URL.
    #[error("not an S3 URL (s3://bucket/key): {0}")]
    BadUrl(String),
    /// The object could not be fetched.
    #[error("cannot read s3://{bucket}/{key}: {reason}")]
    Get {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// An S3 object address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Version id, when pinned.
    pub version_id: Option<String>,
}

impl S3Location {
    /// Parse `s3://bucket/key` (an optional `?versionId=…` pins a version).
    pub fn parse(url: &str) -> Result<S3Location, StoreError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::BadUrl(url.to_string()))?;
        let (path, version_id) = match rest.split_once("?versionId=") {
            Some((p, v)) => (p, Some(v.to_string())),
            None => (rest, None),
        };
        match path.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(S3Location {
                bucket: bucket.to_string(),
                key: key.to_string(),
                version_id,
            }),
            _ => Err(StoreError::BadUrl(url.to_string())),
        }
    }
}

/// An S3 client from the default AWS configuration (which honours `AWS_ENDPOINT_URL_S3`); with an endpoint (an
/// emulator), path-style addressing is forced, which the Rust SDK cannot take from the environment.
pub async fn s3_client(endpoint_url: Option<&str>) -> aws_sdk_s3::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let endpoint = endpoint_url
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok());
    let mut builder = aws_sdk_s3::config::Builder::from(&config);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Open an S3 object as a blocking byte stream (for the normalize job, which runs on a blocking thread), with its
/// identity (bucket, key, version, ETag) and size. Never loads the object in memory.
///
/// Call from a Tokio runtime; read the returned stream from a blocking thread (`spawn_blocking`).
pub async fn open_s3_object(
    client: &aws_sdk_s3::Client,
    location: &S3Location,
) -> Result<(Box<dyn Read + Send>, SourceIdentity, Option<u64>), StoreError> {
    let mut request = client
        .get_object()
        .bucket(&location.bucket)
        .key(&location.key);
    if let Some(v) = &location.version_id {
        request = request.version_id(v);
    }
    let out = request.send().await.map_err(|e| StoreError::Get {
        bucket: location.bucket.clone(),
        key: location.key.clone(),
        reason: sdk_error_summary(&e),
    })?;
    let identity = SourceIdentity {
        bucket: Some(location.bucket.clone()),
        key: Some(location.key.clone()),
        version_id: out
            .version_id()
            .map(str::to_string)
            .or_else(|| location.version_id.clone()),
        etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
        ..Default::default()
    };
    let size = out.content_length().and_then(|n| u64::try_from(n).ok());
    let reader = tokio_util::io::SyncIoBridge::new(out.body.into_async_read());
    Ok((Box::new(reader), identity, size))
}

/// A one-line description of an AWS SDK error: the service's code and message, or the kind of transport failure.
pub fn sdk_error_summary<E, R>(e: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_smithy_runtime_api::client::result::SdkError;
    match e {
        SdkError::ServiceError(_) => {
            format!(
                "{}: {}",
                e.code().unwrap_or("service error"),
                e.message().unwrap_or("no message")
            )
        }
        SdkError::TimeoutError(_) => "timed out".to_string(),
        SdkError::DispatchFailure(_) => "connection failed".to_string(),
        SdkError::ResponseError(_) => "unreadable response".to_string(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_string(),
        _ => "unknown SDK error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        let l = S3Location::parse("s3://bucket/incoming/list/a.csv").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.key.as_str(), l.version_id),
            ("bucket", "incoming/list/a.csv", None)
        );
        let l = S3Location::parse("s3://b/k?versionId=v1").unwrap();
        assert_eq!(l.version_id.as_deref(), Some("v1"));
        assert!(S3Location::parse("s3://bucket").is_err());
        assert!(S3Location::parse("/tmp/x").is_err());
    }
}
