//! Normalize: a DNC file dropped in S3 becomes a run (shards, rejects, manifest) in the bucket. The job itself
//! (`logic.rs`) reads a byte stream and writes a directory; this module streams the object in and publishes the run.

mod logic;

pub use logic::*;

use serde::{Deserialize, Serialize};

use super::{ErrorKind, StepError};
use crate::adapters::s3_event::SourceObject;
use crate::adapters::store::{open_s3_object, publish_run, S3Location, S3Store};

/// What `normalize` hands to the state machine: keys and counts, never entries (state payloads stay small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NormalizeOutput {
    /// Run id (derived from the source content: a re-run of the same object is the same run).
    pub run_id: String,
    /// The DNC list's name.
    pub list: String,
    /// Bucket holding the run.
    pub bucket: String,
    /// The manifest's object key (`runs/<runId>/manifest.json`).
    pub manifest_key: String,
    /// Shard keys, for the Map state.
    pub shard_keys: Vec<String>,
    /// Data rows read: `rows = accepted + duplicates + rejected`.
    pub rows: u64,
    /// Distinct numbers accepted, written to the shards.
    pub accepted: u64,
    /// Rows rejected, each with its reason in `rejects.jsonl`.
    pub rejected: u64,
}

/// Normalize `source` (streamed from S3 with `out`'s client) into `runs/<runId>/` of `out`'s bucket (its evidence
/// written with `out`'s lock), staging on local disk (`/tmp` in Lambda) and uploading with multipart for large shards.
pub async fn normalize_object(
    out: &S3Store,
    source: &SourceObject,
    mut options: NormalizeOptions,
    max_reject_ratio: f64,
) -> Result<NormalizeOutput, StepError> {
    options.list = source.list.clone();
    if options.default_source.is_empty() {
        options.default_source = source.list.clone();
    }
    let location = S3Location {
        bucket: source.bucket.clone(),
        key: source.key.clone(),
        version_id: source.version_id.clone(),
    };
    let (reader, mut identity, _) = open_s3_object(&out.client, &location).await?;
    let staging = tempfile::tempdir()
        .map_err(|e| StepError::new(ErrorKind::Fatal, "no staging directory").with_source(e))?;
    let staging_path = staging.path().to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || {
        normalize_into(reader, &mut identity, &options, &staging_path, &mut |_| {})
    })
    .await
    .map_err(|e| StepError::new(ErrorKind::Fatal, "normalize task failed").with_source(e))?
    .map_err(|e| match e {
        NormalizeError::Input(_) => StepError::caused_by(ErrorKind::InvalidInput, e),
        NormalizeError::Output { .. } => StepError::caused_by(ErrorKind::Transient, e),
        NormalizeError::Unbalanced { .. } => StepError::caused_by(ErrorKind::Fatal, e),
    })?;
    let store = out;
    let (manifest_key, shard_keys) = publish_run(store, staging.path(), &manifest).await?;
    // Published first, so that the manifest and rejects of a refused file can be read. Its numbers are received
    // either way: the check answers them suppressed (`pending-propagation`, or `refused-file:<runId>`) until a
    // verified run shows CXone holding them.
    let gate = quality_gate(&manifest.counts, max_reject_ratio);
    let hold = match gate {
        Ok(()) => crate::run::Hold::PendingPropagation,
        Err(_) => crate::run::Hold::RefusedFile,
    };
    crate::run::receive_run(
        store,
        &manifest,
        Some(staging.path()),
        hold,
        chrono::Utc::now(),
    )
    .await?;
    gate.map_err(|why| {
        StepError::new(
            ErrorKind::InvalidInput,
            format!("run {} of {} refused: {why}", manifest.run_id, source.key),
        )
    })?;
    tracing::info!(run_id = %manifest.run_id, rows = manifest.counts.rows, accepted = manifest.counts.accepted,
        rejected = manifest.counts.rejected, shards = shard_keys.len(), "normalized");
    Ok(NormalizeOutput {
        run_id: manifest.run_id.clone(),
        list: manifest.list.clone(),
        bucket: out.bucket.clone(),
        manifest_key,
        shard_keys,
        rows: manifest.counts.rows,
        accepted: manifest.counts.accepted,
        rejected: manifest.counts.rejected,
    })
}
