//! The import of a full download fanned out, as the registry import state machine runs it
//! (`infra/registry-import.asl.json`): [`plan`] names the version, [`import_part`] imports one file of the batch
//! (a Distributed Map child each, in parallel), [`assemble`] merges the parts into the version and makes it live.
//!
//! A part writes its area codes under `registry/<name>/<version>/parts/<id>/` and its record to
//! `parts/<id>.json`. An area code found in one part only is carried by reference (the FTC ships one file per area
//! code, so that is every area code of a national import); one found in several is merged and rewritten, and the
//! numbers the parts share move from `accepted` to `duplicates`, so the version's totals still balance
//! (`rows = accepted + duplicates + rejected`). A part run twice (a retried child) overwrites its own objects.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::build::{Builder, Rejects, MAX_REJECTS_KEPT};
use super::{
    check_import_dates, check_name, check_replacement, new_version, publish, read_area,
    read_current, read_manifest, read_source, resolve_scope, write_areas, AreaEntry, ChangeCounts,
    DenseArea, ImportCounts, Inputs, ObjectInputs, RegistryError, RegistryManifest, RegistryStatus,
    Scope, SourceRecord, VersionReport, FORMAT, IMPORT_MARKER,
};
use crate::adapters::store::ObjectStore;
use crate::run::RegistryKeys;

/// What the import's first step decided; every later step gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPlan {
    /// Bucket of the batch and of the index.
    pub bucket: String,
    /// The registry's name (its objects live under `registry/<name>/`).
    pub registry: String,
    /// The version the parts write under.
    pub version: String,
    /// The batch's prefix (`incoming-registry/<name>/full/<batch>/`).
    pub prefix: String,
    /// The date the full download is current as of (the new version's as-of starts there).
    pub as_of: NaiveDate,
    /// Days after `as_of` the registry may be used (default 31); past them `check` answers `error` for what it covers.
    pub max_age_days: u32,
    /// Replace the live version even when the import covers less, lacks declared area codes, or is older.
    #[serde(default)]
    pub force: bool,
    /// `national` or a state (`US-TX`); default: the live version's, else national.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A national subscription's area codes (default: every US area code of the numbering table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_codes: Option<Vec<String>>,
}

impl ImportPlan {
    fn scope(&self) -> Result<Option<Scope>, RegistryError> {
        Scope::from_request(self.scope.as_deref(), self.area_codes.as_deref())
    }
}

/// One file's part of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPart {
    /// The file and its counts.
    pub source: SourceRecord,
    /// Its area codes' index files.
    pub areas: BTreeMap<String, AreaEntry>,
    /// Area codes the metadata does not know.
    pub unknown_area_codes: Vec<String>,
    /// The object key of its rejected lines (`rejects.jsonl` of the part).
    pub rejects_key: String,
    /// Rejected lines not written (past the cap).
    pub rejects_not_written: u64,
}

/// What a part answers the state machine: small (a Distributed Map child's output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartSummary {
    /// The object key of the part's file.
    pub key: String,
    /// Lines read (0 when skipped).
    pub rows: u64,
    /// Not a file of the batch (the marker).
    pub skipped: bool,
}

/// What an import is asked for: the batch, its dates, its scope.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The batch's prefix (`incoming-registry/<name>/full/<batch>/`).
    pub prefix: String,
    /// The date the full download is current as of (the new version's as-of starts there).
    pub as_of: NaiveDate,
    /// Days after `as_of` the registry may be used (default 31); past them `check` answers `error` for what it covers.
    pub max_age_days: u32,
    /// Replace the live version even when the import covers less, lacks declared area codes, or is older.
    pub force: bool,
    /// `national` or a state.
    pub scope: Option<String>,
    /// A national subscription's area codes.
    pub area_codes: Option<Vec<String>>,
}

/// The plan of an import of the batch `request` names: its dates and scope are checked here, before any file is
/// read, so a typo fails the import at its first step.
pub fn plan(
    bucket: &str,
    registry: &str,
    request: PlanRequest,
) -> Result<ImportPlan, RegistryError> {
    check_name(registry)?;
    check_import_dates(request.as_of, request.max_age_days, Utc::now())?;
    let plan = ImportPlan {
        bucket: bucket.to_string(),
        registry: registry.to_string(),
        version: new_version(Utc::now(), &format!("{registry}/{}", request.prefix)),
        prefix: request.prefix,
        as_of: request.as_of,
        max_age_days: request.max_age_days,
        force: request.force,
        scope: request.scope,
        area_codes: request.area_codes,
    };
    plan.scope()?;
    Ok(plan)
}

fn part_id(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn parts_prefix(keys: &RegistryKeys, version: &str) -> String {
    // `registry/<name>/<version>/parts/`, built from the manifest key so the layout stays in one place.
    let manifest = keys.manifest(version);
    format!(
        "{}parts/",
        &manifest[..manifest.len() - "manifest.json".len()]
    )
}

/// Import the object `key` as one part of `plan`'s version.
pub async fn import_part(
    store: &dyn ObjectStore,
    plan: &ImportPlan,
    key: &str,
) -> Result<PartSummary, RegistryError> {
    if key.ends_with(IMPORT_MARKER) || key.ends_with('/') {
        return Ok(PartSummary {
            key: key.to_string(),
            rows: 0,
            skipped: true,
        });
    }
    let keys = RegistryKeys::new(&plan.registry);
    let id = part_id(key);
    let mut inputs = ObjectInputs::new(store, &plan.bucket, vec![key.to_string()]);
    let input = inputs.next().await.expect("one key was given")?;
    let mut builder = Builder::new();
    let mut counts = ImportCounts::default();
    let (sha256, bytes) = read_source(&input, &mut |entry, chunk, first| {
        let c = builder.add_text_from(entry, chunk, first);
        counts.add(&c);
        c.rows
    })?;
    let touched: Vec<(u16, DenseArea)> = std::mem::take(&mut builder.areas)
        .into_iter()
        .enumerate()
        .filter_map(|(npa, a)| a.map(|a| (npa as u16, a)))
        .collect();
    let part_version = format!("{}/parts/{id}", plan.version);
    let areas = write_areas(store, &keys, &part_version, touched, &BTreeMap::new()).await?;
    let prefix = parts_prefix(&keys, &plan.version);
    let rejects_key = format!("{prefix}{id}.rejects.jsonl");
    store
        .put_bytes(&rejects_key, std::mem::take(&mut builder.rejects.jsonl))
        .await?;
    let part = ImportPart {
        source: SourceRecord {
            name: input.name(),
            sha256,
            bytes,
            counts,
        },
        areas,
        unknown_area_codes: builder
            .unknown_area_codes
            .iter()
            .map(|n| format!("{n:03}"))
            .collect(),
        rejects_key,
        rejects_not_written: builder.rejects.not_written,
    };
    store
        .put_bytes(
            &format!("{prefix}{id}.json"),
            serde_json::to_vec(&part).expect("a part serializes"),
        )
        .await?;
    Ok(PartSummary {
        key: key.to_string(),
        rows: counts.rows,
        skipped: false,
    })
}

/// Merge the parts of `plan`'s version into its manifest and make it live.
pub async fn assemble(
    store: &dyn ObjectStore,
    plan: &ImportPlan,
) -> Result<VersionReport, RegistryError> {
    let keys = RegistryKeys::new(&plan.registry);
    let prefix = parts_prefix(&keys, &plan.version);
    let mut parts: Vec<ImportPart> = Vec::new();
    for key in store.list(&prefix).await? {
        let rest = &key[prefix.len()..];
        if !rest.ends_with(".json") || rest.contains('/') {
            continue;
        }
        let bytes = store.get_bytes(&key).await?.unwrap_or_default();
        parts.push(
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Document {
                key: key.clone(),
                reason: e.to_string(),
            })?,
        );
    }
    if parts.is_empty() {
        return Err(RegistryError::Input {
            path: format!("s3://{}/{}", plan.bucket, plan.prefix),
            reason: "no file of the batch was imported".into(),
        });
    }
    parts.sort_by(|a, b| a.source.name.cmp(&b.source.name));
    let mut by_area: BTreeMap<String, Vec<AreaEntry>> = BTreeMap::new();
    for part in &parts {
        for (npa, entry) in &part.areas {
            by_area.entry(npa.clone()).or_default().push(entry.clone());
        }
    }
    let mut total = ImportCounts::default();
    for part in &parts {
        total.add(&part.source.counts);
    }
    let mut area_codes = BTreeMap::new();
    let mut merged = Vec::new();
    for (npa, entries) in by_area {
        if entries.len() == 1 {
            area_codes.insert(npa, entries.into_iter().next().expect("one"));
            continue;
        }
        let code: u16 = npa.parse().map_err(|_| RegistryError::Document {
            key: prefix.clone(),
            reason: format!("area code {npa:?}"),
        })?;
        let mut area = DenseArea::new();
        for entry in &entries {
            let shared = area.union(&read_area(store, code, entry).await?);
            total.accepted -= shared;
            total.duplicates += shared;
        }
        merged.push((code, area));
    }
    let previous = read_current(store, &plan.registry).await?;
    let live = match &previous {
        Some((current, _)) => Some(read_manifest(store, &current.manifest_key).await?),
        None => None,
    };
    let mut counts: BTreeMap<String, u64> = area_codes
        .iter()
        .map(|(npa, e): (&String, &AreaEntry)| (npa.clone(), e.count))
        .collect();
    for (npa, area) in &merged {
        counts.insert(format!("{npa:03}"), area.len());
    }
    let scope = resolve_scope(plan.scope()?.as_ref(), live.as_ref());
    let coverage = check_replacement(
        &plan.registry,
        live.as_ref(),
        &counts,
        &scope,
        plan.as_of,
        plan.force,
    )?;
    area_codes.extend(write_areas(store, &keys, &plan.version, merged, &BTreeMap::new()).await?);
    let mut rejects = Rejects::default();
    for part in &parts {
        rejects.not_written += part.rejects_not_written;
        let text = store
            .get_bytes(&part.rejects_key)
            .await?
            .unwrap_or_default();
        for line in text.split_inclusive(|b| *b == b'\n') {
            rejects.count += 1;
            if rejects.count > MAX_REJECTS_KEPT {
                rejects.not_written += 1;
            } else {
                rejects.jsonl.extend_from_slice(line);
            }
        }
    }
    let now = Utc::now();
    let mut unknown: Vec<String> = parts
        .iter()
        .flat_map(|p| p.unknown_area_codes.iter().cloned())
        .collect();
    unknown.sort();
    unknown.dedup();
    let manifest = RegistryManifest {
        format: FORMAT,
        registry: plan.registry.clone(),
        version: plan.version.clone(),
        parent: None,
        as_of: plan.as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        imported_as_of: Some(plan.as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
        coverage: Some(coverage),
        created_at: now,
        max_age_days: super::state_rules::max_age_days_for(&scope, plan.as_of, plan.max_age_days),
        total: area_codes.values().map(|a: &AreaEntry| a.count).sum(),
        area_codes,
        unknown_area_codes: unknown,
        sources: parts.into_iter().map(|p| p.source).collect(),
        import_counts: total,
        change_lists: Vec::new(),
        rejects_key: keys.rejects(&plan.version),
        rejects_not_written: rejects.not_written,
    };
    publish(store, &keys, &manifest, rejects, previous).await?;
    super::versions::clear_import_failure(store, &keys).await?;
    Ok(VersionReport {
        version: Some(plan.version.clone()),
        status: RegistryStatus::of(&manifest, now),
        import: total,
        changes: ChangeCounts::default(),
        already_applied: Vec::new(),
        area_codes_written: manifest.area_codes.len(),
        area_codes_carried: 0,
        rejects_key: manifest.rejects_key,
    })
}
