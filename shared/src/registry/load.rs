//! The live version in memory, for `check`: [`load`] it, [`LoadedRegistry::lookup`] a number.

use super::*;

/// The live version of a registry, in memory: what `check` consults.
pub struct LoadedRegistry {
    /// The live version's manifest: its as-of, coverage and change lists.
    pub manifest: RegistryManifest,
    areas: Vec<Option<AreaIndex>>,
    /// Per area code, what the registry answers for it (from its [`Coverage`]).
    cover: Vec<Cover>,
}

impl std::fmt::Debug for LoadedRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LoadedRegistry({} {}, {} numbers)",
            self.manifest.registry, self.manifest.version, self.manifest.total
        )
    }
}

/// What a registry says of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The number is on the registry: do not call.
    Listed,
    /// In an area code the registry covers, not registered.
    NotListed,
    /// Outside the registry's scope (another country, another state's area code): no answer.
    NotCovered,
    /// In the registry's scope, and the registry holds no full download of the area code (missing from its
    /// subscription or its import, or new since the numbering table): it cannot clear the number.
    Uncovered,
}

impl LoadedRegistry {
    /// From a manifest and its area indexes (index = area code).
    pub fn new(manifest: RegistryManifest, areas: Vec<Option<AreaIndex>>) -> LoadedRegistry {
        let cover = manifest
            .coverage
            .clone()
            .unwrap_or_else(|| Coverage::legacy(&manifest))
            .table();
        LoadedRegistry {
            manifest,
            areas,
            cover,
        }
    }

    /// The registry's name (`national`, `US-TX`, …).
    pub fn name(&self) -> &str {
        &self.manifest.registry
    }

    /// What the registry says of packed E.164 `e164`. A number it lists is `Listed` wherever it is; otherwise a
    /// registry answers for the area codes of its scope: `NotListed` where a full download covers them, `Uncovered`
    /// where it does not, `NotCovered` outside its scope.
    #[inline]
    pub fn lookup(&self, e164: u64) -> Lookup {
        if !(10_000_000_000..20_000_000_000).contains(&e164) {
            return Lookup::NotCovered;
        }
        let national = e164 - 10_000_000_000;
        let npa = (national / 10_000_000) as usize;
        if let Some(a) = &self.areas[npa] {
            if a.contains((national % 10_000_000) as u32) {
                return Lookup::Listed;
            }
        }
        match self.cover[npa] {
            Cover::Covered => Lookup::NotListed,
            Cover::Uncovered => Lookup::Uncovered,
            Cover::Outside => Lookup::NotCovered,
        }
    }

    /// Look up many numbers, prefetching ahead: random lookups over a national index miss the cache, and keeping a
    /// few misses in flight at once is what makes a batch fast.
    pub fn lookup_many(&self, numbers: &[u64], out: &mut Vec<Lookup>) {
        const AHEAD: usize = 16;
        out.clear();
        out.reserve(numbers.len());
        for (i, &n) in numbers.iter().enumerate() {
            if let Some(&next) = numbers.get(i + AHEAD) {
                if (10_000_000_000..20_000_000_000).contains(&next) {
                    let national = next - 10_000_000_000;
                    if let Some(a) = &self.areas[(national / 10_000_000) as usize] {
                        a.prefetch((national % 10_000_000) as u32);
                    }
                }
            }
            out.push(self.lookup(n));
        }
    }

    /// Days no change list covers between the import and the newest list.
    pub fn gap_days(&self) -> usize {
        self.manifest
            .imported_as_of
            .map_or(0, |i| timeline(i, &self.manifest.change_lists).gaps.len())
    }

    /// CURRENT, EXPIRING (within a week of the limit) or STALE (past it) at `now`.
    pub fn freshness(&self, now: DateTime<Utc>) -> Freshness {
        freshness(self.manifest.as_of, self.manifest.max_age_days, now)
    }
}

/// Area codes holding at least this many numbers are held as bitmaps in memory (1.25 MB each).
pub(super) const IN_MEMORY_BITMAP_FROM: u64 = 8_192;

/// Load the live version of `name` (every area code read in parallel and checked against the manifest). The
/// bitmaps go into one [`index::Arena`] on huge pages; sparse area codes keep their sorted arrays.
pub async fn load(store: &dyn ObjectStore, name: &str) -> Result<LoadedRegistry, RegistryError> {
    check_name(name)?;
    let Some((current, _)) = read_current(store, name).await? else {
        return Err(RegistryError::NotFound(name.to_string()));
    };
    let manifest = read_manifest(store, &current.manifest_key).await?;
    let manifest_key = &current.manifest_key;
    let mut entries: Vec<(u16, &AreaEntry)> = Vec::with_capacity(manifest.area_codes.len());
    for (npa, entry) in &manifest.area_codes {
        let code: u16 =
            npa.parse()
                .ok()
                .filter(|n| *n < 1000)
                .ok_or_else(|| RegistryError::Document {
                    key: manifest_key.clone(),
                    reason: format!("area code {npa:?}"),
                })?;
        entries.push((code, entry));
    }
    // A bitmap in memory for every area code of more than a few thousand numbers, whatever its file's encoding: a
    // lookup in a bitmap is one memory access, a binary search over a large sorted array a chain of dependent cache
    // misses (that was 76 % of the time of random lookups over a national index whose thinner area codes are stored
    // sorted). Small area codes (a state list's) stay sorted arrays: they are small enough to stay in cache.
    let dense: BTreeMap<u16, usize> = entries
        .iter()
        .filter(|(_, e)| e.count >= IN_MEMORY_BITMAP_FROM)
        .enumerate()
        .map(|(slot, (npa, _))| (*npa, slot))
        .collect();
    let mut arena = index::Arena::new(dense.len());
    let mut areas: Vec<Option<AreaIndex>> = (0..1000).map(|_| None).collect();
    let mut in_arena: Vec<(u16, usize, u64)> = Vec::new();
    let mut fetched = futures::stream::iter(entries.iter().copied())
        .map(|(npa, entry)| async move {
            Ok::<_, RegistryError>((npa, entry, fetch_area(store, npa, entry).await?))
        })
        .buffer_unordered(32);
    while let Some(next) = fetched.next().await {
        let (npa, entry, bytes) = next?;
        let index_err = |source| RegistryError::Index {
            key: entry.key.clone(),
            source,
        };
        if let Some(&slot) = dense.get(&npa) {
            if let Some(count) =
                index::decode_dense_into(npa, &bytes, arena.slot_mut(slot)).map_err(index_err)?
            {
                check_count(npa, entry, count)?;
                in_arena.push((npa, slot, count));
                continue;
            }
        }
        let index = AreaIndex::decode(npa, &bytes).map_err(index_err)?;
        check_count(npa, entry, index.len())?;
        match (dense.get(&npa), &index) {
            (Some(&slot), AreaIndex::Sparse(locals)) => {
                let bits = arena.slot_mut(slot);
                for l in locals.as_slice() {
                    bits[(*l / 64) as usize] |= 1u64 << (l % 64);
                }
                in_arena.push((npa, slot, index.len()));
            }
            _ => areas[usize::from(npa)] = Some(index),
        }
    }
    drop(fetched);
    let arena = std::sync::Arc::new(arena);
    for (npa, slot, count) in in_arena {
        areas[usize::from(npa)] = Some(AreaIndex::Dense {
            bits: index::Words::Arena {
                arena: arena.clone(),
                slot,
            },
            count,
        });
    }
    Ok(LoadedRegistry::new(manifest, areas))
}

/// The version `current.json` names (cheap: one small read), to reload when it changes.
pub async fn live_version(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<String>, RegistryError> {
    Ok(read_current(store, name).await?.map(|(c, _)| c.version))
}
