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
    /// Area codes whose index file this version wrote anew.
    pub area_codes_written: usize,
    /// Area codes carried from the previous version by reference.
    pub area_codes_carried: usize,
    /// Where rejected lines went.
    pub rejects_key: String,
}

/// Options of [`import`].
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The date the download is current as of (not in the future).
    pub as_of: NaiveDate,
    /// Freshness limit (default 31 days, at most 31).
    pub max_age_days: u32,
    /// Replace the live version even when the new one covers less, lacks declared area codes or is older (see
    /// [`check_replacement`]).
    pub force: bool,
    /// What the import covers (default: the live version's scope, else every US area code: [`us_area_codes`]).
    pub scope: Option<Scope>,
}

/// The scope of an import: the one given, else the live version's, else national over every US area code.
pub fn resolve_scope(given: Option<&Scope>, live: Option<&RegistryManifest>) -> Scope {
    given.cloned().unwrap_or_else(|| {
        live.and_then(|m| m.coverage.as_ref())
            .map_or_else(|| Scope::National(us_area_codes()), Coverage::scope)
    })
}

/// A new full import replaces the live version whole, so it is refused (nothing changed) when:
/// - it holds no number at all (`InputUnreadable`, even forced);
/// - it lacks an area code its scope declares (`RegistryIncomplete`, naming them): a partial download (200 of the
///   FTC's 400 zips) would otherwise go live and answer for area codes it has no data of;
/// - it is older than the live version (`RegistryRegresses`): it would drop the change lists applied since;
/// - it lacks area codes the live version covers, or holds less than 90 % of its numbers (`RegistryShrinks`).
///
/// `force` makes the last three go live anyway; numbers of missing area codes are then answered `error`. The answer
/// is the new version's coverage.
pub fn check_replacement(
    registry: &str,
    previous: Option<&RegistryManifest>,
    areas: &BTreeMap<String, u64>,
    scope: &Scope,
    as_of: NaiveDate,
    force: bool,
) -> Result<Coverage, RegistryError> {
    let total: u64 = areas.values().sum();
    if total == 0 {
        // Nothing valid was read (an empty directory, a file of junk): a registry of no numbers would clear every
        // number it used to suppress, and as a first import it would only hide the mistake.
        return Err(RegistryError::Input {
            path: format!("the import of registry {registry}"),
            reason: "no valid number was read: nothing to import".into(),
        });
    }
    let coverage = Coverage::of_import(
        scope,
        areas
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(npa, _)| npa.parse::<u16>().ok()),
    );
    if force {
        return Ok(coverage);
    }
    if !coverage.missing.is_empty() {
        return Err(RegistryError::Incomplete {
            registry: registry.to_string(),
            missing: coverage.missing,
        });
    }
    let Some(previous) = previous else {
        return Ok(coverage);
    };
    let midnight = as_of.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    if previous.as_of > midnight {
        return Err(RegistryError::Regresses {
            registry: registry.to_string(),
            as_of,
            live_as_of: previous.as_of,
        });
    }
    let missing: Vec<String> = previous
        .area_codes
        .iter()
        .filter(|(npa, e)| e.count > 0 && !areas.contains_key(*npa))
        .map(|(npa, _)| npa.clone())
        .collect();
    if missing.is_empty() && total as f64 >= previous.total as f64 * 0.9 {
        return Ok(coverage);
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
    check_import_dates(options.as_of, options.max_age_days, Utc::now())?;
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
    let scope = resolve_scope(options.scope.as_ref(), live.as_ref());
    let coverage = check_replacement(
        name,
        live.as_ref(),
        &counts,
        &scope,
        options.as_of,
        options.force,
    )?;
    let mut manifest = RegistryManifest {
        format: FORMAT,
        registry: name.to_string(),
        version: version.clone(),
        parent: None,
        as_of,
        imported_as_of: Some(as_of),
        coverage: Some(coverage),
        created_at: now,
        max_age_days: state_rules::max_age_days_for(&scope, options.as_of, options.max_age_days),
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
    clear_import_failure(store, &keys).await?;
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
    /// The as-of date of the change lists (default: each one's latest change); a day they cover. Not in the future.
    pub as_of: Option<NaiveDate>,
}

/// How many times an apply that lost the swap to a concurrent one re-reads the new live version and applies again.
const APPLY_ATTEMPTS: u32 = 8;

/// A change list read once, applied on whatever live version the swap finds.
struct ReadList {
    name: String,
    sha256: String,
    rows: u64,
    rejected: u64,
    rejects: Rejects,
    changes: Vec<Change>,
    /// An FTC `NoChanges` answer at this instant: the list covers that day and the one before, current as of it.
    no_changes_at: Option<DateTime<Utc>>,
}

/// Apply FTC change lists to the live version of `name`: a new version rewriting only the area codes they touch.
///
/// The lists are applied by their content, not by their arrival: a list already applied is skipped (by SHA-256);
/// one dated before lists already applied is merged (a number's change applies unless the registry holds a later
/// change of it, so the last change by timestamp wins whatever the order the lists came in); a change dated before
/// the full download it descends from is already in it. A list holding a line dated in the future is refused whole.
/// An apply that loses the swap of `current.json` to a concurrent one reads the new live version and applies again,
/// so two lists dropped at once both land.
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
    let now = Utc::now();
    if let Some(d) = options.as_of {
        if d > now.date_naive() {
            return Err(RegistryError::BadOption {
                what: format!("asOf {d}"),
                reason: "in the future: a change list is as of a day that has begun".into(),
            });
        }
    }
    let rules = AreaRules::new();
    let mut seq = 0u64;
    let mut read: Vec<ReadList> = Vec::new();
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
        let mut rejects = Rejects::default();
        let mut changes = Vec::new();
        let rejected =
            build::read_changes(&file, &text, &rules, &mut rejects, &mut seq, &mut changes);
        let limit = (now + FUTURE_SKEW).naive_utc();
        if let Some(c) = changes.iter().find(|c| c.at > limit) {
            return Err(RegistryError::FutureDated {
                file,
                line: c.line,
                at: c.at,
            });
        }
        // A quiet day's list holds no change, so every quiet day has the same content: its hash cannot tell the second
        // quiet day from the first (it would be skipped as already applied, and that day would read as a gap). It is
        // known by its name and the day it covers instead; the same file dropped again is still applied once.
        let sha256 = if changes.is_empty() {
            quiet_day_identity(&sha256, &file, options.as_of)
        } else {
            sha256
        };
        read.push(ReadList {
            name: file,
            sha256,
            rows,
            rejected,
            rejects,
            changes,
            no_changes_at: None,
        });
    }
    apply_read(store, name, &read, options).await
}

/// Record that the FTC answered `NoChanges` at `at`: nothing changed in the subscription since the last change list,
/// so the registry is continuous through that day and the one before it (the day the FTC's nightly list would have
/// covered) and current as of `at`. Recorded as a change list of no change, named `evidence` (the saved raw answer),
/// once per day (a second `NoChanges` the same day is `already applied`).
pub async fn apply_no_changes(
    store: &dyn ObjectStore,
    name: &str,
    at: DateTime<Utc>,
    evidence: &str,
) -> Result<VersionReport, RegistryError> {
    check_name(name)?;
    if at > Utc::now() + FUTURE_SKEW {
        return Err(RegistryError::BadOption {
            what: format!("NoChanges at {at}"),
            reason: "in the future".into(),
        });
    }
    let day = at.date_naive();
    let read = [ReadList {
        name: evidence.to_string(),
        sha256: hex::encode(Sha256::digest(format!("ftc-no-changes:{day}"))),
        rows: 0,
        rejected: 0,
        rejects: Rejects::default(),
        changes: Vec::new(),
        no_changes_at: Some(at),
    }];
    apply_read(store, name, &read, &ApplyOptions { as_of: Some(day) }).await
}

/// Apply lists already read, again on the new live version when a concurrent one won the swap.
async fn apply_read(
    store: &dyn ObjectStore,
    name: &str,
    read: &[ReadList],
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    // The same jittered backoff as every other retry (`http::Backoff`).
    let backoff = crate::adapters::http::Backoff::new(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(2),
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_once(store, name, read, options).await {
            Err(RegistryError::Conflict(_)) if attempt < APPLY_ATTEMPTS => {
                // A concurrent apply or import swapped first: read its version and apply on top of it.
                let wait = backoff.delay(attempt);
                tracing::info!(
                    registry = name,
                    attempt,
                    "lost the swap to a concurrent version: applying again on the new live version"
                );
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The identity of a change list without a change (a quiet day): its content hash, its name and the day it covers.
fn quiet_day_identity(content: &str, name: &str, as_of: Option<NaiveDate>) -> String {
    use sha2::{Digest, Sha256};
    let as_of = as_of.map(|d| d.to_string()).unwrap_or_default();
    let mut h = Sha256::new();
    for part in ["quiet-day", content, name, &as_of] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// One attempt of [`apply_from`] on the live version as it is now.
async fn apply_once(
    store: &dyn ObjectStore,
    name: &str,
    read: &[ReadList],
    options: &ApplyOptions,
) -> Result<VersionReport, RegistryError> {
    let keys = RegistryKeys::new(name);
    let Some((current, tag)) = read_current(store, name).await? else {
        return Err(RegistryError::NotFound(name.to_string()));
    };
    let mut manifest = read_manifest(store, &current.manifest_key).await?;
    let mut applied: BTreeSet<String> = manifest
        .change_lists
        .iter()
        .map(|c| c.sha256.clone())
        .collect();
    let mut already_applied = Vec::new();
    let mut lists: Vec<&ReadList> = Vec::new();
    for list in read {
        if applied.insert(list.sha256.clone()) {
            lists.push(list);
        } else {
            already_applied.push(list.name.clone());
        }
    }
    let now = Utc::now();
    if lists.is_empty() {
        return Ok(VersionReport {
            version: None,
            status: RegistryStatus::of(&manifest, now),
            import: ImportCounts::default(),
            changes: ChangeCounts::default(),
            already_applied,
            area_codes_written: 0,
            area_codes_carried: manifest.area_codes.len(),
            rejects_key: manifest.rejects_key,
        });
    }
    // What the registry holds already: the latest change of every number these lists touch, from the change logs
    // of the lists applied before whose changes reach as late as these lists' earliest.
    let earliest = lists
        .iter()
        .flat_map(|l| l.changes.iter().map(|c| c.at))
        .min();
    let touched_numbers: std::collections::HashSet<u64> = lists
        .iter()
        .flat_map(|l| l.changes.iter().map(|c| c.national))
        .collect();
    let mut latest_held: std::collections::HashMap<u64, chrono::NaiveDateTime> =
        std::collections::HashMap::new();
    if let Some(earliest) = earliest {
        for record in &manifest.change_lists {
            let reaches = record.latest.or(record.as_of).map(|t| t.naive_utc());
            if reaches.is_some_and(|t| t < earliest) {
                continue;
            }
            let key = keys.change_log(&record.sha256);
            let bytes = store
                .get_bytes(&key)
                .await?
                .ok_or_else(|| RegistryError::Document {
                    key: key.clone(),
                    reason: format!(
                        "the changes of {} (applied before) are missing: a list dated before it cannot be merged",
                        record.name
                    ),
                })?;
            for (national, at, _) in decode_change_log(&key, &bytes)? {
                if touched_numbers.contains(&national) {
                    let held = latest_held.entry(national).or_insert(at);
                    *held = (*held).max(at);
                }
            }
        }
    }
    let floor = manifest
        .imported_as_of
        .map(|t| t.naive_utc())
        .unwrap_or(chrono::NaiveDateTime::MIN);
    // Every change of these lists, by timestamp (ties in reading order).
    let mut order: Vec<(usize, usize)> = lists
        .iter()
        .enumerate()
        .flat_map(|(i, l)| (0..l.changes.len()).map(move |j| (i, j)))
        .collect();
    order.sort_by_key(|&(i, j)| (lists[i].changes[j].at, lists[i].changes[j].seq));
    let touched: BTreeSet<u16> = touched_numbers
        .iter()
        .map(|n| (n / 10_000_000) as u16)
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
    let mut counts: Vec<ChangeCounts> = lists
        .iter()
        .map(|l| ChangeCounts {
            rows: l.rows,
            rejected: l.rejected,
            ..Default::default()
        })
        .collect();
    for (i, j) in order {
        let c = lists[i].changes[j];
        let npa = (c.national / 10_000_000) as u16;
        let local = (c.national % 10_000_000) as u32;
        let (area, added, deleted) = areas.get_mut(&npa).expect("loaded above");
        let counts = &mut counts[i];
        if c.add {
            counts.adds += 1;
        } else {
            counts.deletes += 1;
        }
        // Already in the full download, or superseded by a later change the registry holds: counted, not applied.
        if c.at < floor
            || latest_held
                .get(&c.national)
                .is_some_and(|held| *held > c.at)
        {
            counts.superseded += 1;
            continue;
        }
        if c.add {
            if area.insert(local) {
                *added += 1;
            } else {
                counts.adds_present += 1;
            }
        } else if area.remove(local) {
            *deleted += 1;
        } else {
            counts.deletes_absent += 1;
        }
    }
    let salt: String = lists.iter().map(|l| l.sha256.as_str()).collect();
    let version = new_version(now, &format!("{}{salt}", manifest.version));
    // The lists' changes, kept for lists that arrive later but are dated earlier.
    futures::stream::iter(lists.iter())
        .map(|l| {
            let key = keys.change_log(&l.sha256);
            async move { store.put_bytes(&key, encode_change_log(&l.changes)).await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
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
    let given = options
        .as_of
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    let mut totals = ChangeCounts::default();
    let mut rejects = Rejects::default();
    for (list, counts) in lists.iter().zip(&counts) {
        totals.add(counts);
        rejects.absorb(&list.rejects);
        let mut latest = list.changes.iter().map(|c| c.at.and_utc()).max();
        let mut days: BTreeSet<NaiveDate> = list.changes.iter().map(|c| c.at.date()).collect();
        days.extend(given.map(|g| g.date_naive()));
        if let Some(at) = list.no_changes_at {
            latest = Some(at);
            days.insert(at.date_naive() - TimeDelta::days(1));
        }
        manifest.change_lists.push(ChangeListRecord {
            name: list.name.clone(),
            sha256: list.sha256.clone(),
            as_of: list.no_changes_at.or(given).or(latest),
            latest,
            days: days.into_iter().collect(),
            applied_in: version.clone(),
            counts: *counts,
        });
    }
    manifest.parent = Some(manifest.version.clone());
    manifest.version = version.clone();
    manifest.created_at = now;
    manifest.as_of = match manifest.imported_as_of {
        Some(imported) => timeline(imported, &manifest.change_lists).as_of,
        // A version written before the import's as-of was recorded: the newest change, as it was then.
        None => manifest
            .change_lists
            .iter()
            .filter_map(|l| l.as_of)
            .fold(manifest.as_of, DateTime::max),
    };
    manifest.total = manifest.area_codes.values().map(|a| a.count).sum();
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

/// A change log: 16 bytes a change, the number (bit 63 set for an add) and the timestamp in seconds, little-endian.
fn encode_change_log(changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::with_capacity(changes.len() * 16);
    for c in changes {
        out.extend_from_slice(&(c.national | (u64::from(c.add) << 63)).to_le_bytes());
        out.extend_from_slice(&c.at.and_utc().timestamp().to_le_bytes());
    }
    out
}

fn decode_change_log(
    key: &str,
    bytes: &[u8],
) -> Result<Vec<(u64, chrono::NaiveDateTime, bool)>, RegistryError> {
    let bad = || RegistryError::Document {
        key: key.to_string(),
        reason: "not a change log (16 bytes a change)".into(),
    };
    if !bytes.len().is_multiple_of(16) {
        return Err(bad());
    }
    bytes
        .chunks_exact(16)
        .map(|c| {
            let n = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
            let at = i64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
            let at = DateTime::from_timestamp(at, 0).ok_or_else(bad)?.naive_utc();
            Ok((n & !(1 << 63), at, n >> 63 == 1))
        })
        .collect()
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
    let mut status = RegistryStatus::of(&manifest, now);
    status.import_failure = import_failure(store, name).await?;
    watch::watch(
        &mut status,
        watch::subscription(store, name).await?,
        watch::download_log(store, name).await?,
        watch::download_failure(store, name).await?,
        now,
    );
    Ok(Some(status))
}

/// An import went live: the failure recorded before it is over.
pub(super) async fn clear_import_failure(
    store: &dyn ObjectStore,
    keys: &RegistryKeys,
) -> Result<(), RegistryError> {
    store.delete(&keys.import_failure()).await?;
    Ok(())
}

/// The last import failure recorded for `name` (by the import state machine's catch).
pub async fn import_failure(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<ImportFailure>, RegistryError> {
    let key = RegistryKeys::new(name).import_failure();
    let Some(bytes) = store.get_bytes(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RegistryError::Document {
            key,
            reason: e.to_string(),
        })
}

/// Record that an import of `name` failed (the import state machine's catch): `registry status` shows it, and exits
/// non-zero, until an import succeeds (which deletes it).
pub async fn record_import_failure(
    store: &dyn ObjectStore,
    name: &str,
    failure: &ImportFailure,
) -> Result<(), RegistryError> {
    check_name(name)?;
    store
        .put_bytes(
            &RegistryKeys::new(name).import_failure(),
            serde_json::to_vec_pretty(failure).expect("a failure serializes"),
        )
        .await?;
    Ok(())
}
