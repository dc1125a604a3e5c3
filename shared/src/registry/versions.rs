//! Building versions: [`import`] from full downloads, [`apply`] from change lists, each published by swapping
//! `current.json` last and conditionally; [`status`] of the live one.

use super::*;

/// What an import or an apply did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionReport {
    /// The new live version (`None`: nothing to change, the live version stays).
    pub version: Option<String>,
    /// The live version's status afterwards.
    pub status: RegistryStatus,
    /// Full-download lines read (import).
    #[serde(default)]
    pub import: ImportCounts,
    /// Change-list lines read (apply).
    #[serde(default)]
    pub changes: ChangeCounts,
    /// Change lists not applied because the registry already has them.
    #[serde(default)]
    pub already_applied: Vec<String>,
    /// Area codes rewritten.
    pub area_codes_written: usize,
    /// Area codes carried from the previous version by reference.
    pub area_codes_carried: usize,
    /// Where rejected lines went.
    pub rejects_key: String,
}

/// Options of [`import`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The date the download is current as of.
    pub as_of: NaiveDate,
    /// Freshness limit (default 31 days).
    pub max_age_days: u32,
    /// Replace the live version even when the new one covers less (see [`check_replacement`]).
    pub force: bool,
}

/// A new full import replaces the live version whole: one that lacks area codes the live version covers, or holds
/// less than 90 % of its numbers, is refused unless forced (`RegistryShrinks`); one of no number at all is refused
/// always (`InputUnreadable`). A partial download (half of the
/// FTC's 400 zips uploaded) would otherwise go live, and every number of the missing area codes would stop being
/// suppressed by the registry.
pub fn check_replacement(
    previous: Option<&RegistryManifest>,
    areas: &BTreeMap<String, u64>,
    force: bool,
) -> Result<(), RegistryError> {
    let total: u64 = areas.values().sum();
    if total == 0 {
        // Nothing valid was read (an empty directory, a file of junk): a registry of no numbers would clear every
        // number it used to suppress, and as a first import it would only hide the mistake.
        return Err(RegistryError::Input {
            path: previous.map_or_else(
                || "the import".into(),
                |p| format!("registry {}", p.registry),
            ),
            reason: "no valid number was read: nothing to import".into(),
        });
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    if force {
        return Ok(());
    }
    let missing: Vec<String> = previous
        .area_codes
        .iter()
        .filter(|(npa, e)| e.count > 0 && !areas.contains_key(*npa))
        .map(|(npa, _)| npa.clone())
        .collect();
    if missing.is_empty() && total as f64 >= previous.total as f64 * 0.9 {
        return Ok(());
    }
    Err(RegistryError::Shrinks {
        registry: previous.registry.clone(),
        before: previous.total,
        after: total,
        missing,
    })
}

/// Build a new version of registry `name` from full-download files (zip per area code, gzip or plain; directories
/// walked) and make it live. `on_source` is told of each file as it is done.
pub async fn import(
    store: &dyn ObjectStore,
    name: &str,
    inputs: &[PathBuf],
    options: &ImportOptions,
    on_source: &mut (dyn FnMut(&SourceRecord) + Send),
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut files = LocalInputs::new(inputs)?;
    import_from(store, name, &mut files, options, on_source).await
}

/// [`import`] from any [`Inputs`] (objects of a bucket, in the Lambda).
pub async fn import_from(
    store: &dyn ObjectStore,
    name: &str,
    files: &mut dyn Inputs,
    options: &ImportOptions,
    on_source: &mut (dyn FnMut(&SourceRecord) + Send),
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut builder = Builder::new();
    let mut sources = Vec::with_capacity(files.len());
    let mut total = ImportCounts::default();
    while let Some(input) = files.next().await {
        let input = input?;
        let mut counts = ImportCounts::default();
        let (sha256, bytes) = read_source(&input, &mut |entry, chunk, first| {
            let c = builder.add_text_from(entry, chunk, first);
            counts.add(&c);
            c.rows
        })?;
        let record = SourceRecord {
            name: input.name(),
            sha256,
            bytes,
            counts,
        };
        total.add(&counts);
        on_source(&record);
        sources.push(record);
    }
    let keys = RegistryKeys::new(name);
    let previous = read_current(store, name).await?;
    let now = Utc::now();
    let salt: String = sources.iter().map(|s| s.sha256.as_str()).collect();
    let version = new_version(now, &salt);
    let as_of = options
        .as_of
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let touched: Vec<(u16, DenseArea)> = builder
        .areas
        .into_iter()
        .enumerate()
        .filter_map(|(npa, a)| a.map(|a| (npa as u16, a)))
        .collect();
    let live = match &previous {
        Some((current, _)) => Some(read_manifest(store, &current.manifest_key).await?),
        None => None,
    };
    let counts: BTreeMap<String, u64> = touched
        .iter()
        .map(|(npa, a)| (format!("{npa:03}"), a.len()))
        .collect();
    check_replacement(live.as_ref(), &counts, options.force)?;
    let mut manifest = RegistryManifest {
        format: FORMAT,
        registry: name.to_string(),
        version: version.clone(),
        parent: None,
        as_of,
        created_at: now,
        max_age_days: options.max_age_days,
        total: 0,
        area_codes: BTreeMap::new(),
        unknown_area_codes: builder
            .unknown_area_codes
            .iter()
            .map(|n| format!("{n:03}"))
            .collect(),
        sources,
        import_counts: total,
        change_lists: Vec::new(),
        rejects_key: keys.rejects(&version),
        rejects_not_written: builder.rejects.not_written,
    };
    let written = write_areas(store, &keys, &version, touched, &BTreeMap::new()).await?;
    manifest.area_codes = written;
    manifest.total = manifest.area_codes.values().map(|a| a.count).sum();
    let area_codes_written = manifest.area_codes.len();
    publish(store, &keys, &manifest, builder.rejects, previous).await?;
    Ok(VersionReport {
        version: Some(version),
        status: RegistryStatus::of(&manifest, now),
        import: total,
        changes: ChangeCounts::default(),
        already_applied: Vec::new(),
        area_codes_written,
        area_codes_carried: 0,
        rejects_key: manifest.rejects_key,
    })
}

/// Options of [`apply`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Apply a change list older than the registry's as-of.
    pub force: bool,
    /// The as-of of the change lists (default: each one's latest change).
    pub as_of: Option<NaiveDate>,
}

/// Apply FTC change lists to the live version of `name`: a new version rewriting only the area codes they touch.
/// A change list the registry already has is skipped; one older than its as-of is refused unless forced; within
/// the lists, changes apply in timestamp order (the last change of a number wins).
pub async fn apply(
    store: &dyn ObjectStore,
    name: &str,
    inputs: &[PathBuf],
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let mut files = LocalInputs::new(inputs)?;
    apply_from(store, name, &mut files, options).await
}

/// [`apply`] from any [`Inputs`] (objects of a bucket, in the Lambda).
pub async fn apply_from(
    store: &dyn ObjectStore,
    name: &str,
    files: &mut dyn Inputs,
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    let keys = RegistryKeys::new(name);
    let Some((current, tag)) = read_current(store, name).await? else {
        return Err(RegistryError::NotFound(name.to_string()));
    };
    let mut manifest = read_manifest(store, &current.manifest_key).await?;
    let rules = AreaRules::new();
    let mut rejects = Rejects::default();
    let mut changes: Vec<Change> = Vec::new();
    let mut seq = 0u64;
    let mut applied: BTreeSet<String> = manifest
        .change_lists
        .iter()
        .map(|c| c.sha256.clone())
        .collect();
    let mut already_applied = Vec::new();
    let mut lists: Vec<(ChangeListRecord, std::ops::Range<usize>)> = Vec::new();
    let mut totals = ChangeCounts::default();
    while let Some(input) = files.next().await {
        let input = input?;
        let (mut text, mut rows) = (Vec::new(), 0u64);
        let (sha256, _bytes) = read_source(&input, &mut |_, chunk, _| {
            text.extend_from_slice(chunk);
            let n = build::count_lines(chunk);
            rows += n;
            n
        })?;
        let file = input.name();
        if !applied.insert(sha256.clone()) {
            already_applied.push(file);
            continue;
        }
        let start = changes.len();
        let rejected =
            build::read_changes(&file, &text, &rules, &mut rejects, &mut seq, &mut changes);
        let latest = changes[start..].iter().map(|c| c.at).max();
        let as_of = match options.as_of {
            Some(d) => Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()),
            None => latest.map(|t| t.and_utc()),
        };
        if let Some(list_as_of) = as_of {
            if list_as_of < manifest.as_of && !options.force {
                return Err(RegistryError::OutOfOrder {
                    registry: name.to_string(),
                    file,
                    list_as_of,
                    registry_as_of: manifest.as_of,
                });
            }
        }
        let counts = ChangeCounts {
            rows,
            rejected,
            ..Default::default()
        };
        lists.push((
            ChangeListRecord {
                name: file,
                sha256,
                as_of,
                applied_in: String::new(),
                counts,
            },
            start..changes.len(),
        ));
    }
    let now = Utc::now();
    if lists.is_empty() {
        return Ok(VersionReport {
            version: None,
            status: RegistryStatus::of(&manifest, now),
            import: ImportCounts::default(),
            changes: totals,
            already_applied,
            area_codes_written: 0,
            area_codes_carried: manifest.area_codes.len(),
            rejects_key: manifest.rejects_key,
        });
    }
    // Which list each change came from, to count per list.
    let mut owner = vec![0usize; changes.len()];
    for (i, (_, range)) in lists.iter().enumerate() {
        owner[range.clone()].fill(i);
    }
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by_key(|&i| (changes[i].at, changes[i].seq));
    let touched: BTreeSet<u16> = changes
        .iter()
        .map(|c| (c.national / 10_000_000) as u16)
        .collect();
    let mut areas: BTreeMap<u16, (DenseArea, u64, u64)> = BTreeMap::new();
    let loaded: Vec<(u16, AreaIndex)> = futures::stream::iter(touched.iter().copied())
        .map(|npa| {
            let entry = manifest.area_codes.get(&format!("{npa:03}")).cloned();
            async move {
                let index = match entry {
                    Some(e) => read_area(store, npa, &e).await?,
                    None => AreaIndex::default(),
                };
                Ok::<_, RegistryError>((npa, index))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    for (npa, index) in loaded {
        areas.insert(npa, (index.into_dense(), 0, 0));
    }
    for i in order {
        let c = changes[i];
        let npa = (c.national / 10_000_000) as u16;
        let local = (c.national % 10_000_000) as u32;
        let (area, added, deleted) = areas.get_mut(&npa).expect("loaded above");
        let counts = &mut lists[owner[i]].0.counts;
        if c.add {
            counts.adds += 1;
            if area.insert(local) {
                *added += 1;
            } else {
                counts.adds_present += 1;
            }
        } else {
            counts.deletes += 1;
            if area.remove(local) {
                *deleted += 1;
            } else {
                counts.deletes_absent += 1;
            }
        }
    }
    let salt: String = lists.iter().map(|(l, _)| l.sha256.as_str()).collect();
    let version = new_version(now, &format!("{}{salt}", manifest.version));
    let mut per_area: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    let dense: Vec<(u16, DenseArea)> = areas
        .into_iter()
        .map(|(npa, (area, a, d))| {
            per_area.insert(npa, (a, d));
            (npa, area)
        })
        .collect();
    let written = write_areas(store, &keys, &version, dense, &per_area).await?;
    let area_codes_written = written.len();
    for entry in manifest.area_codes.values_mut() {
        entry.added = 0;
        entry.deleted = 0;
    }
    manifest.area_codes.extend(written);
    let area_codes_carried = manifest.area_codes.len() - area_codes_written;
    for (list, _) in &mut lists {
        list.applied_in = version.clone();
        totals.add(&list.counts);
    }
    let newest = lists.iter().filter_map(|(l, _)| l.as_of).max();
    manifest.parent = Some(manifest.version.clone());
    manifest.version = version.clone();
    manifest.created_at = now;
    manifest.as_of = newest.map_or(manifest.as_of, |n| n.max(manifest.as_of));
    manifest.total = manifest.area_codes.values().map(|a| a.count).sum();
    manifest
        .change_lists
        .extend(lists.into_iter().map(|(l, _)| l));
    manifest.rejects_key = keys.rejects(&version);
    manifest.rejects_not_written = rejects.not_written;
    publish(store, &keys, &manifest, rejects, Some((current, tag))).await?;
    Ok(VersionReport {
        version: Some(version),
        status: RegistryStatus::of(&manifest, now),
        import: ImportCounts::default(),
        changes: totals,
        already_applied,
        area_codes_written,
        area_codes_carried,
        rejects_key: manifest.rejects_key,
    })
}

/// Write the index files of `areas` under `version`, in parallel.
pub(super) async fn write_areas(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    version: &str,
    areas: Vec<(u16, DenseArea)>,
    changed: &BTreeMap<u16, (u64, u64)>,
) -> Result<BTreeMap<String, AreaEntry>, RegistryError> {
    futures::stream::iter(areas)
        .map(|(npa, area)| {
            let key = keys.area(version, npa);
            let (added, deleted) = changed.get(&npa).copied().unwrap_or_default();
            async move {
                let index = area.finish();
                let count = index.len();
                let bytes = index.encode(npa);
                let entry = AreaEntry {
                    key: key.clone(),
                    count,
                    bytes: bytes.len() as u64,
                    crc32c: crc32c::crc32c(&bytes),
                    added,
                    deleted,
                };
                store.put_bytes(&key, bytes).await?;
                Ok::<_, RegistryError>((format!("{npa:03}"), entry))
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// Write rejects and manifest, then swap `current.json` (conditionally on what was read before).
pub(super) async fn publish(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
    manifest: &RegistryManifest,
    rejects: Rejects,
    previous: Option<(CurrentVersion, String)>,
) -> Result<(), RegistryError> {
    store
        .put_bytes(&manifest.rejects_key, rejects.jsonl)
        .await?;
    let manifest_key = keys.manifest(&manifest.version);
    store
        .put_bytes(
            &manifest_key,
            serde_json::to_vec_pretty(manifest).expect("a manifest serializes"),
        )
        .await?;
    let current = CurrentVersion {
        registry: manifest.registry.clone(),
        version: manifest.version.clone(),
        manifest_key,
        as_of: manifest.as_of,
    };
    let body = serde_json::to_vec_pretty(&current).expect("current serializes");
    let swapped = match previous {
        None => store.put_if_absent(&keys.current(), body).await?,
        Some((_, tag)) => store.put_if_match(&keys.current(), body, &tag).await?,
    };
    if swapped {
        Ok(())
    } else {
        Err(RegistryError::Conflict(manifest.registry.clone()))
    }
}

pub(super) async fn read_current(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<(CurrentVersion, String)>, RegistryError> {
    let key = RegistryKeys::new(name).current();
    let Some((bytes, tag)) = store.get_tagged(&key).await? else {
        return Ok(None);
    };
    let current = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Document {
        key,
        reason: e.to_string(),
    })?;
    Ok(Some((current, tag)))
}

pub(super) async fn read_manifest(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<RegistryManifest, RegistryError> {
    let bytes = store
        .get_bytes(key)
        .await?
        .ok_or_else(|| RegistryError::Document {
            key: key.to_string(),
            reason: "missing".into(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Document {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// The bytes of an area code's index file, checked against the manifest's CRC-32C.
pub(super) async fn fetch_area(
    store: &dyn ObjectStore,
    npa: u16,
    entry: &AreaEntry,
) -> Result<Vec<u8>, RegistryError> {
    let damaged = |reason: String| RegistryError::Index {
        key: entry.key.clone(),
        source: IndexError::Damaged { npa, reason },
    };
    let bytes = store
        .get_bytes(&entry.key)
        .await?
        .ok_or_else(|| damaged("missing".into()))?;
    if crc32c::crc32c(&bytes) != entry.crc32c {
        return Err(damaged(
            "the file's CRC-32C differs from the manifest's".into(),
        ));
    }
    Ok(bytes)
}

/// An index file's count against its manifest entry.
pub(super) fn check_count(npa: u16, entry: &AreaEntry, found: u64) -> Result<(), RegistryError> {
    if found == entry.count {
        return Ok(());
    }
    Err(RegistryError::Index {
        key: entry.key.clone(),
        source: IndexError::Damaged {
            npa,
            reason: format!("{found} numbers, the manifest says {}", entry.count),
        },
    })
}

pub(super) async fn read_area(
    store: &dyn ObjectStore,
    npa: u16,
    entry: &AreaEntry,
) -> Result<AreaIndex, RegistryError> {
    let bytes = fetch_area(store, npa, entry).await?;
    let index = AreaIndex::decode(npa, &bytes).map_err(|source| RegistryError::Index {
        key: entry.key.clone(),
        source,
    })?;
    check_count(npa, entry, index.len())?;
    Ok(index)
}

/// The live version's status, `None` when nothing was imported.
pub async fn status(
    store: &dyn ObjectStore,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<RegistryStatus>, RegistryError> {
    check_name(name)?;
    let Some((current, _)) = read_current(store, name).await? else {
        return Ok(None);
    };
    let manifest = read_manifest(store, &current.manifest_key).await?;
    Ok(Some(RegistryStatus::of(&manifest, now)))
}
