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
    /// The object could not be written.
    #[error("cannot write s3://{bucket}/{key}: {reason}")]
    Put {
        /// Bucket (or local root).
        bucket: String,
        /// The object key within the bucket.
        key: String,
        /// What went wrong, as the service or the parser said it.
        reason: String,
    },
    /// The object could not be fetched.
    #[error("cannot read s3://{bucket}/{key}: {reason}")]
    Get {
        /// The bucket that holds the object.
        bucket: String,
        /// The object key within the bucket.
        key: String,
        /// What went wrong, as the service or the parser said it.
        reason: String,
    },
    /// The caller's IAM policy does not allow the action on the key: a deployment error, retrying cannot help.
    #[error("access denied: {action} on s3://{bucket}/{key} is not allowed by this function's IAM policy ({reason})")]
    Denied {
        /// The IAM action refused (`s3:GetObject`, `s3:PutObject`).
        action: &'static str,
        /// The bucket that holds the object.
        bucket: String,
        /// The object key within the bucket.
        key: String,
        /// S3's error code and message, or the kind of SDK failure (timed out, connection failed, …).
        reason: String,
    },
}

/// The error of an S3 call on `bucket`/`key`: [`StoreError::Denied`] when S3 refused the action, else what `other`
/// makes of the summary.
fn s3_error<E, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    action: &'static str,
    bucket: &str,
    key: &str,
    other: impl FnOnce(String) -> StoreError,
) -> StoreError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let reason = sdk_error_summary(e);
    if e.code() == Some("AccessDenied") {
        StoreError::Denied {
            action,
            bucket: bucket.to_string(),
            key: key.to_string(),
            reason,
        }
    } else {
        other(reason)
    }
}

/// An S3 object address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket that holds the object.
    pub bucket: String,
    /// The object key within the bucket.
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
    let out = request.send().await.map_err(|e| {
        s3_error(
            &e,
            "s3:GetObject",
            &location.bucket,
            &location.key,
            |reason| StoreError::Get {
                bucket: location.bucket.clone(),
                key: location.key.clone(),
                reason,
            },
        )
    })?;
    let identity = SourceIdentity {
        bucket: Some(location.bucket.clone()),
        key: Some(location.key.clone()),
        version_id: out
            .version_id()
            .map(str::to_string)
            .or_else(|| location.version_id.clone()),
        etag: out.e_tag().map(|e| e.trim_matches('"').to_string()),
        // When the object (this version) was written: the request's receipt, whenever the run reads it (a console
        // re-run days later does not restart the clock).
        received_at: out
            .last_modified()
            .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .map(|t| t.to_rfc3339()),
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

/// Where run files are written: a local directory standing in for the bucket, or an S3 bucket.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Store a local file under `key` (multipart for large files on S3).
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError>;
    /// Store bytes under `key`.
    async fn put_bytes(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError>;
    /// Read `key`, `None` when it does not exist.
    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Read `key` from byte `from` to its end (S3 `Range: bytes=from-`), `None` when it does not exist.
    async fn get_range(&self, key: &str, from: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Store `body` under `key` only if no object is there (S3 `If-None-Match: *`); `false` when one is.
    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError>;
    /// Read `key` with its version tag (S3: the ETag), `None` when it does not exist.
    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError>;
    /// Replace `key` only while its version tag is still `tag` (S3 `If-Match`); `false` when it changed or is gone.
    async fn put_if_match(&self, key: &str, body: Vec<u8>, tag: &str) -> Result<bool, StoreError>;
    /// The version tag of `key` without reading it (S3: HeadObject's ETag), `None` when it does not exist: how a
    /// reader learns cheaply that a document changed.
    async fn head_tag(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Delete `key`; an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// The version tag of a local object: a hash of its content (what an S3 ETag is for a single-part object).
fn content_tag(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..16])
}

fn put_err(bucket: &str, key: &str, reason: String) -> StoreError {
    StoreError::Put {
        bucket: bucket.to_string(),
        key: key.to_string(),
        reason,
    }
}

/// Where an object is written before it is renamed into place: an S3 PUT is atomic (a reader sees the old object or
/// the new one, never half of one), and so is a rename within a directory. Found by concurrent uploads reading
/// `capacity.json` while another wrote it ("truncated JSON").
fn staging_path(dest: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    dest.with_file_name(name)
}

/// A local directory standing in for a bucket.
pub struct LocalStore {
    /// The directory the object keys are relative to (`out` for a local run).
    pub root: std::path::PathBuf,
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError> {
        let dest = self.destination(key).await?;
        let staged = staging_path(&dest);
        let written = async {
            tokio::fs::copy(path, &staged).await?;
            tokio::fs::rename(&staged, &dest).await
        };
        written.await.map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            put_err(&self.root.display().to_string(), key, e.to_string())
        })
    }

    async fn put_bytes(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        let dest = self.destination(key).await?;
        let staged = staging_path(&dest);
        let written = async {
            tokio::fs::write(&staged, body).await?;
            tokio::fs::rename(&staged, &dest).await
        };
        written.await.map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            put_err(&self.root.display().to_string(), key, e.to_string())
        })
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match tokio::fs::read(self.root.join(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Get {
                bucket: self.root.display().to_string(),
                key: key.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    async fn get_range(&self, key: &str, from: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_bytes(key).await?.map(|b| {
            let from = usize::try_from(from).unwrap_or(usize::MAX).min(b.len());
            b[from..].to_vec()
        }))
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let _guard = Self::conditional_lock().lock().await;
        if self.get_bytes(key).await?.is_some() {
            return Ok(false);
        }
        self.put_bytes(key, body).await?;
        Ok(true)
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        Ok(self.get_bytes(key).await?.map(|b| {
            let tag = content_tag(&b);
            (b, tag)
        }))
    }

    async fn head_tag(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.get_tagged(key).await?.map(|(_, tag)| tag))
    }

    async fn put_if_match(&self, key: &str, body: Vec<u8>, tag: &str) -> Result<bool, StoreError> {
        let _guard = Self::conditional_lock().lock().await;
        match self.get_tagged(key).await? {
            Some((_, current)) if current == tag => {
                self.put_bytes(key, body).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.root.join(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(put_err(
                &self.root.display().to_string(),
                key,
                e.to_string(),
            )),
            _ => Ok(()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Walk the directory the prefix falls in (keys are paths under the root).
        let dir = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut out = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(mut entries) = tokio::fs::read_dir(&d).await else {
                continue;
            };
            while let Ok(Some(e)) = entries.next_entry().await {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    // An object being written (staged, not yet renamed into place) does not exist yet.
                    if key.starts_with(prefix) && !key.ends_with(".tmp") {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl LocalStore {
    /// Conditional writes of a local directory are serialized by this lock: one process (`dncctl run`) uses it,
    /// so an in-process lock is what makes read-compare-write atomic here (S3 does it server-side).
    fn conditional_lock() -> &'static tokio::sync::Mutex<()> {
        static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
        LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
    }

    /// The path of `key`, its directory created.
    async fn destination(&self, key: &str) -> Result<std::path::PathBuf, StoreError> {
        let dest = self.root.join(key);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| put_err(&self.root.display().to_string(), key, e.to_string()))?;
        }
        Ok(dest)
    }
}

/// An S3 bucket, with Object Lock on the evidence objects when configured.
pub struct S3Store {
    /// The S3 client (its endpoint may be an emulator's).
    pub client: aws_sdk_s3::Client,
    /// The bucket's name.
    pub bucket: String,
    /// The S3 Object Lock retention put on every evidence object written ([`crate::run::is_evidence`]); `None`: no
    /// retention set (a bucket without Object Lock, or locally).
    pub evidence_lock: Option<EvidenceLock>,
}

/// How S3 Object Lock holds an evidence object: its mode and how long. A locked version cannot be deleted or have
/// its retention shortened until the date passes (`COMPLIANCE`: by anyone; `GOVERNANCE`: except by a principal
/// allowed `s3:BypassGovernanceRetention`, which the template's bucket policy denies to everyone). Overwriting the
/// key adds a version; the locked one stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceLock {
    /// The Object Lock mode (`GOVERNANCE` or `COMPLIANCE`).
    pub mode: LockMode,
    /// Days each version is retained from its write (1461: the four years TCPA claims can be brought in, a leap
    /// day included).
    pub days: u32,
}

/// S3 Object Lock's retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Removable early only by a principal allowed `s3:BypassGovernanceRetention`.
    Governance,
    /// Removable by nobody, the account's root user included, until the date passes.
    Compliance,
}

/// The setting turning evidence locks on: `GOVERNANCE`, `COMPLIANCE`, or `OFF` (the default: no retention set).
pub const EVIDENCE_LOCK_MODE_SETTING: &str = "DNCFLOW_EVIDENCE_LOCK_MODE";
/// The setting of how many days a locked evidence version is retained (default 1461).
pub const EVIDENCE_LOCK_DAYS_SETTING: &str = "DNCFLOW_EVIDENCE_LOCK_DAYS";
/// Four years, a leap day included: how long TCPA claims can be brought.
pub const EVIDENCE_RETENTION_DAYS: u32 = 1461;

impl EvidenceLock {
    /// The lock the settings describe: `mode` `GOVERNANCE`, `COMPLIANCE`, or `OFF`/empty (`None`); `days` a whole
    /// number from 1 (empty: [`EVIDENCE_RETENTION_DAYS`]). An unknown mode or a bad number is an error naming it.
    pub fn parse(mode: &str, days: &str) -> Result<Option<EvidenceLock>, String> {
        let mode = match mode.trim().to_ascii_uppercase().as_str() {
            "" | "OFF" => return Ok(None),
            "GOVERNANCE" => LockMode::Governance,
            "COMPLIANCE" => LockMode::Compliance,
            other => {
                return Err(format!(
                    "{EVIDENCE_LOCK_MODE_SETTING} is GOVERNANCE, COMPLIANCE or OFF, not {other:?}"
                ))
            }
        };
        let days = match days.trim() {
            "" => EVIDENCE_RETENTION_DAYS,
            d => d.parse::<u32>().ok().filter(|d| *d >= 1).ok_or_else(|| {
                format!("{EVIDENCE_LOCK_DAYS_SETTING} is a number of days from 1, not {d:?}")
            })?,
        };
        Ok(Some(EvidenceLock { mode, days }))
    }

    /// The lock the environment sets ([`EVIDENCE_LOCK_MODE_SETTING`], [`EVIDENCE_LOCK_DAYS_SETTING`]).
    pub fn from_env() -> Result<Option<EvidenceLock>, String> {
        let var = |name| std::env::var(name).unwrap_or_default();
        EvidenceLock::parse(
            &var(EVIDENCE_LOCK_MODE_SETTING),
            &var(EVIDENCE_LOCK_DAYS_SETTING),
        )
    }

    /// The date a version written at `now` is retained until, in whole seconds (S3's header format).
    pub fn retain_until(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        use chrono::{SubsecRound, TimeDelta};
        (now + TimeDelta::days(i64::from(self.days))).trunc_subsecs(0)
    }

    fn s3_mode(&self) -> aws_sdk_s3::types::ObjectLockMode {
        match self.mode {
            LockMode::Governance => aws_sdk_s3::types::ObjectLockMode::Governance,
            LockMode::Compliance => aws_sdk_s3::types::ObjectLockMode::Compliance,
        }
    }
}

impl S3Store {
    /// A store of `bucket` that sets no retention.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
            evidence_lock: None,
        }
    }

    /// The retention `key` is written with: the store's lock when `key` is evidence, else none.
    fn lock_for(
        &self,
        key: &str,
    ) -> Option<(
        aws_sdk_s3::types::ObjectLockMode,
        aws_sdk_s3::primitives::DateTime,
    )> {
        let lock = self
            .evidence_lock
            .filter(|_| crate::run::is_evidence(key))?;
        let until = lock.retain_until(chrono::Utc::now());
        Some((
            lock.s3_mode(),
            aws_sdk_s3::primitives::DateTime::from_secs(until.timestamp()),
        ))
    }

    /// A PutObject of `key`, with the evidence lock when `key` is evidence. S3 requires an integrity checksum on a
    /// write that sets a retention (Content-MD5 or an `x-amz-checksum-*`): SHA-256, which S3 keeps with the version.
    fn put_request(
        &self,
        key: &str,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let request = self.client.put_object().bucket(&self.bucket).key(key);
        match self.lock_for(key) {
            Some((mode, until)) => request
                .object_lock_mode(mode)
                .object_lock_retain_until_date(until)
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            None => request,
        }
    }
}

/// Parts of a multipart upload (S3's minimum part size is 5 MiB).
const PART: usize = 8 << 20;

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    async fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError> {
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        use tokio::io::AsyncReadExt;
        let err = |reason: String| put_err(&self.bucket, key, reason);
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| err(e.to_string()))?
            .len();
        if size as usize <= PART {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| err(e.to_string()))?;
            self.put_request(key)
                .body(body)
                .send()
                .await
                .map_err(|e| s3_error(&e, "s3:PutObject", &self.bucket, key, err))?;
            return Ok(());
        }
        let (mode, until) = self.lock_for(key).unzip();
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_object_lock_mode(mode)
            .set_object_lock_retain_until_date(until)
            .send()
            .await
            .map_err(|e| s3_error(&e, "s3:PutObject", &self.bucket, key, err))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let result: Result<Vec<CompletedPart>, StoreError> = async {
            let mut file = tokio::fs::File::open(path)
                .await
                .map_err(|e| err(e.to_string()))?;
            let mut parts = Vec::new();
            let mut number = 1;
            loop {
                let mut buf = Vec::with_capacity(PART);
                (&mut file)
                    .take(PART as u64)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|e| err(e.to_string()))?;
                if buf.is_empty() {
                    break;
                }
                let part = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(buf))
                    .send()
                    .await
                    .map_err(|e| s3_error(&e, "s3:PutObject", &self.bucket, key, err))?;
                // The SDK checksums each part (CRC32 by default); completing must repeat those checksums.
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_string))
                        .set_checksum_crc32(part.checksum_crc32().map(str::to_string))
                        .set_checksum_crc32_c(part.checksum_crc32_c().map(str::to_string))
                        .set_checksum_crc64_nvme(part.checksum_crc64_nvme().map(str::to_string))
                        .build(),
                );
                number += 1;
            }
            Ok(parts)
        }
        .await;
        match result {
            Ok(parts) => {
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                if let Err(e) = completed {
                    // CompleteMultipartUpload can fail after the object was assembled (a timeout, an answer the SDK
                    // cannot parse): the object itself, with the expected size, is the proof.
                    let head = self
                        .client
                        .head_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                        .await;
                    if head.ok().and_then(|h| h.content_length()) != Some(size as i64) {
                        return Err(s3_error(&e, "s3:PutObject", &self.bucket, key, err));
                    }
                    tracing::warn!(bucket = %self.bucket, key, "multipart completion answer unreadable; object verified by size");
                }
                Ok(())
            }
            Err(e) => {
                // Leave no half upload behind (it would be billed).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn put_bytes(&self, key: &str, body: Vec<u8>) -> Result<(), StoreError> {
        self.put_request(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                s3_error(&e, "s3:PutObject", &self.bucket, key, |r| {
                    put_err(&self.bucket, key, r)
                })
            })?;
        Ok(())
    }

    async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_tagged(key).await?.map(|(bytes, _)| bytes))
    }

    async fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<bool, StoreError> {
        let sent = self
            .put_request(key)
            .if_none_match("*")
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await;
        self.conditional_outcome(sent, key)
    }

    async fn get_tagged(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.fetch(key, None).await
    }

    async fn get_range(&self, key: &str, from: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.fetch(key, Some(from)).await?.map(|(bytes, _)| bytes))
    }

    async fn head_tag(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(head.e_tag().unwrap_or_default().to_string())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(s3_error(&e, "s3:GetObject", &self.bucket, key, |reason| {
                StoreError::Get {
                    bucket: self.bucket.clone(),
                    key: key.to_string(),
                    reason,
                }
            })),
        }
    }

    async fn put_if_match(&self, key: &str, body: Vec<u8>, tag: &str) -> Result<bool, StoreError> {
        let sent = self
            .put_request(key)
            .if_match(tag)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await;
        self.conditional_outcome(sent, key)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                s3_error(&e, "s3:DeleteObject", &self.bucket, key, |r| {
                    put_err(&self.bucket, key, r)
                })
            })?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                s3_error(&e, "s3:ListBucket", &self.bucket, prefix, |r| {
                    StoreError::Get {
                        bucket: self.bucket.clone(),
                        key: prefix.to_string(),
                        reason: r,
                    }
                })
            })?;
            out.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        out.sort();
        Ok(out)
    }
}

impl S3Store {
    /// GET `key` (from byte `from` on, when given) with its ETag; `None` when it does not exist.
    async fn fetch(
        &self,
        key: &str,
        from: Option<u64>,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(from.map(|f| format!("bytes={f}-")))
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(s3_error(&e, "s3:GetObject", &self.bucket, key, |reason| {
                    StoreError::Get {
                        bucket: self.bucket.clone(),
                        key: key.to_string(),
                        reason,
                    }
                }))
            }
        };
        let tag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out.body.collect().await.map_err(|e| StoreError::Get {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Some((bytes.into_bytes().to_vec(), tag)))
    }

    /// A conditional PUT's answer: written, or lost the race (412 PreconditionFailed; 409 ConditionalRequestConflict
    /// when another conditional write to the key was in flight; 404 when an `If-Match` object is gone).
    fn conditional_outcome<T>(
        &self,
        sent: Result<
            T,
            aws_smithy_runtime_api::client::result::SdkError<
                aws_sdk_s3::operation::put_object::PutObjectError,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
        key: &str,
    ) -> Result<bool, StoreError> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        match sent {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.code(),
                    Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
                ) || e
                    .raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) =>
            {
                Ok(false)
            }
            Err(e) => Err(s3_error(&e, "s3:PutObject", &self.bucket, key, |r| {
                put_err(&self.bucket, key, r)
            })),
        }
    }
}

/// Publish a staged run directory (shards, rejects, then the manifest last: its presence marks a complete run) under
/// `runs/<runId>/` of `store`. Returns the manifest key and the shard keys.
pub async fn publish_run(
    store: &dyn ObjectStore,
    staging: &std::path::Path,
    manifest: &crate::run::Manifest,
) -> Result<(String, Vec<String>), StoreError> {
    let keys = crate::run::RunKeys::new(&manifest.run_id);
    let mut shard_keys = Vec::new();
    for shard in &manifest.shards {
        let key = keys.shard(&shard.key);
        store.put_file(&key, &staging.join(&shard.key)).await?;
        shard_keys.push(key);
    }
    store
        .put_file(
            &keys.shard(&manifest.rejects_key),
            &staging.join(&manifest.rejects_key),
        )
        .await?;
    let manifest_key = keys.manifest();
    store
        .put_file(&manifest_key, &staging.join("manifest.json"))
        .await?;
    Ok((manifest_key, shard_keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evidence_lock_is_off_unless_set_and_refuses_what_it_cannot_read() {
        assert_eq!(EvidenceLock::parse("", ""), Ok(None));
        assert_eq!(EvidenceLock::parse("off", "30"), Ok(None));
        assert_eq!(
            EvidenceLock::parse("GOVERNANCE", ""),
            Ok(Some(EvidenceLock {
                mode: LockMode::Governance,
                days: 1461
            }))
        );
        assert_eq!(
            EvidenceLock::parse(" compliance ", "2000"),
            Ok(Some(EvidenceLock {
                mode: LockMode::Compliance,
                days: 2000
            }))
        );
        for (mode, days) in [
            ("LEGAL_HOLD", ""),
            ("GOVERNANCE", "0"),
            ("GOVERNANCE", "4 years"),
        ] {
            let e = EvidenceLock::parse(mode, days).unwrap_err();
            assert!(e.contains("DNCFLOW_EVIDENCE_LOCK_"), "{e}");
        }
        let lock = EvidenceLock::parse("COMPLIANCE", "").unwrap().unwrap();
        let now: chrono::DateTime<chrono::Utc> = "2026-12-06T12:00:00.750Z".parse().unwrap();
        // Four years on, the leap day of 2028 included, in whole seconds.
        assert_eq!(
            lock.retain_until(now),
            "2030-12-06T12:00:00Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        );
    }

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
