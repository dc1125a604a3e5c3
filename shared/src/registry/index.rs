//! The suppression index of one area code: which of its 10,000,000 local numbers (NXX-XXXX) are registered.
//!
//! Two encodings, chosen per area code by size: a bitmap of 10^7 bits (1.25 MB, O(1) to test) once the area code
//! holds more than 312,500 numbers (an average national area code holds ~650 k), and below that a sorted array of
//! `u32` local numbers (4 bytes a number, binary search), which keeps state lists and sparse area codes small. The
//! file is a fixed header and the payload; the header carries a CRC-32C of the payload, checked on load, since a
//! truncated or corrupted index would otherwise answer "not registered" for the numbers it lost.

use thiserror::Error;

/// Local numbers of one area code: NXX-XXXX.
pub const LOCALS: u32 = 10_000_000;
const WORDS: usize = (LOCALS as usize).div_ceil(64);
/// Below this many numbers the sorted array is smaller than the bitmap.
pub(crate) const SPARSE_BELOW: u64 = LOCALS as u64 / 32;
const MAGIC: &[u8; 8] = b"DNCIDX1\n";
const HEADER: usize = 24;

/// A damaged index file.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IndexError {
    /// Not an index file, or cut short.
    #[error("not a dncflow index file (bad magic or shorter than its header)")]
    NotAnIndex,
    /// The file's header names another area code than its key.
    #[error("the index file is for area code {found}, expected {expected}")]
    WrongAreaCode {
        /// The area code the file's key names.
        expected: u16,
        /// The area code the file's header names.
        found: u16,
    },
    /// Payload length, checksum or count do not match the header.
    #[error("the index file of area code {npa} is damaged: {reason}")]
    Damaged {
        /// The file's area code.
        npa: u16,
        /// What did not match.
        reason: String,
    },
}

/// Sorted local numbers with where each exchange (NXX) starts: a lookup searches one exchange's few numbers (a
/// cache line or two) instead of the whole array.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedLocals {
    locals: Vec<u32>,
    starts: Vec<u32>,
}

impl SortedLocals {
    /// From sorted, distinct local numbers.
    pub fn new(locals: Vec<u32>) -> SortedLocals {
        let mut starts = Vec::with_capacity(1001);
        let mut i = 0usize;
        for nxx in 0..=1000u32 {
            while i < locals.len() && locals[i] / 10_000 < nxx {
                i += 1;
            }
            starts.push(i as u32);
        }
        SortedLocals { locals, starts }
    }

    /// The local numbers (the last seven digits), ascending.
    pub fn as_slice(&self) -> &[u32] {
        &self.locals
    }

    #[inline]
    fn contains(&self, local: u32) -> bool {
        let nxx = (local / 10_000) as usize;
        let (from, to) = (self.starts[nxx] as usize, self.starts[nxx + 1] as usize);
        self.locals[from..to].binary_search(&local).is_ok()
    }
}

/// The words of a bitmap: its own allocation, or a slot of an [`Arena`] shared by a loaded registry's bitmaps.
#[derive(Clone)]
pub enum Words {
    /// A bitmap in an allocation of its own (one decoded alone, or built by an import or a change list).
    Owned(Box<[u64]>),
    /// Slot `slot` of an arena.
    Arena {
        /// The arena holding this bitmap, shared by the bitmaps of a loaded registry (freed with the last of them).
        arena: std::sync::Arc<Arena>,
        /// Which bitmap of it.
        slot: usize,
    },
}

impl std::ops::Deref for Words {
    type Target = [u64];
    #[inline]
    fn deref(&self) -> &[u64] {
        match self {
            Words::Owned(b) => b,
            Words::Arena { arena, slot } => arena.slot(*slot),
        }
    }
}

impl PartialEq for Words {
    fn eq(&self, other: &Words) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Words {}

/// One allocation holding many bitmaps, aligned to 2 MiB and advised for transparent huge pages: lookups over a
/// national index are random accesses into ~460 MB, and with 4 KiB pages nearly every one also misses the TLB
/// (1.25 MB bitmaps allocated one by one never fill an aligned 2 MiB page). Written through `slot_mut` while the
/// registry loads, read-only once shared.
pub struct Arena {
    ptr: std::ptr::NonNull<u64>,
    slots: usize,
    layout: std::alloc::Layout,
}

// SAFETY: the arena is plain memory, written only through `&mut self` (before it is shared) and read through `&self`.
unsafe impl Send for Arena {}
// SAFETY: as above: shared references only read.
unsafe impl Sync for Arena {}

const HUGE_PAGE: usize = 2 << 20;

impl Arena {
    /// Room for `slots` bitmaps (uninitialised until written: every slot is filled by the loader).
    pub fn new(slots: usize) -> Arena {
        let bytes = (slots.max(1) * WORDS * 8).next_multiple_of(HUGE_PAGE);
        let layout = std::alloc::Layout::from_size_align(bytes, HUGE_PAGE).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw.cast::<u64>()) else {
            std::alloc::handle_alloc_error(layout);
        };
        // Before any page is touched, so the kernel can back the range with huge pages at first write. A hint: if
        // refused (THP disabled), the arena works as ordinary memory.
        #[cfg(target_os = "linux")]
        // SAFETY: the range is the allocation just made.
        unsafe {
            libc::madvise(raw.cast(), bytes, libc::MADV_HUGEPAGE);
        }
        // Zeroed here, after the advice (uninitialised memory must not be read as `u64`s).
        // SAFETY: `bytes` bytes were allocated at `raw`.
        unsafe { std::ptr::write_bytes(raw, 0, bytes) };
        Arena { ptr, slots, layout }
    }

    /// The words of bitmap `slot` (each of 10^7 bits).
    #[inline]
    pub fn slot(&self, slot: usize) -> &[u64] {
        assert!(slot < self.slots);
        // SAFETY: in bounds (checked), initialised (zeroed at creation), shared access only.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(slot * WORDS), WORDS) }
    }

    /// Bitmap `slot`, to fill.
    pub fn slot_mut(&mut self, slot: usize) -> &mut [u64] {
        assert!(slot < self.slots);
        // SAFETY: in bounds, initialised, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(slot * WORDS), WORDS) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

/// The registered numbers of one area code.
#[derive(Clone, PartialEq, Eq)]
pub enum AreaIndex {
    /// A sorted array of local numbers.
    Sparse(SortedLocals),
    /// One bit per local number.
    Dense {
        /// One bit per local number (10^7 bits), set when the number is registered.
        bits: Words,
        /// Bits set: the numbers registered, kept so `len` needs no count of the bitmap.
        count: u64,
    },
}

impl std::fmt::Debug for AreaIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            AreaIndex::Sparse(_) => "sparse",
            AreaIndex::Dense { .. } => "dense",
        };
        write!(f, "AreaIndex({kind}, {} numbers)", self.len())
    }
}

impl Default for AreaIndex {
    fn default() -> AreaIndex {
        AreaIndex::Sparse(SortedLocals::new(Vec::new()))
    }
}

impl AreaIndex {
    /// Numbers registered in the area code.
    pub fn len(&self) -> u64 {
        match self {
            AreaIndex::Sparse(v) => v.locals.len() as u64,
            AreaIndex::Dense { count, .. } => *count,
        }
    }

    /// Whether it holds no number.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether local number `local` (< 10^7) is registered.
    #[inline]
    pub fn contains(&self, local: u32) -> bool {
        match self {
            AreaIndex::Dense { bits, .. } => {
                bits[(local / 64) as usize] & (1u64 << (local % 64)) != 0
            }
            AreaIndex::Sparse(v) => v.contains(local),
        }
    }

    /// Hint the word holding `local` into cache: lookups over a national index are random accesses into ~500 MB,
    /// and a batch with a few misses in flight at once hides most of their latency.
    #[inline]
    pub fn prefetch(&self, local: u32) {
        if let AreaIndex::Dense { bits, .. } = self {
            #[cfg(target_arch = "x86_64")]
            {
                let ptr = bits[(local / 64) as usize..].as_ptr().cast::<i8>();
                // SAFETY: prefetching is a hint; `ptr` points into a live allocation.
                #[allow(unused_unsafe)]
                unsafe {
                    core::arch::x86_64::_mm_prefetch(ptr, core::arch::x86_64::_MM_HINT_T0)
                };
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = &bits[(local / 64) as usize];
        }
    }

    /// Make it a bitmap (building and applying changes work on bitmaps; `encode` picks the smaller form).
    pub fn into_dense(self) -> DenseArea {
        match self {
            AreaIndex::Dense { bits, count } => DenseArea {
                bits: match bits {
                    Words::Owned(b) => b,
                    shared => shared[..].into(),
                },
                count,
            },
            AreaIndex::Sparse(v) => {
                let mut dense = DenseArea::new();
                for local in v.locals {
                    dense.insert(local);
                }
                dense
            }
        }
    }

    /// The file: header (magic, area code, encoding, count, CRC-32C of the payload) and payload.
    pub fn encode(&self, npa: u16) -> Vec<u8> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            AreaIndex::Sparse(v) => (0, v.locals.iter().flat_map(|l| l.to_le_bytes()).collect()),
            AreaIndex::Dense { bits, .. } => {
                (1, bits.iter().flat_map(|w| w.to_le_bytes()).collect())
            }
        };
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&npa.to_le_bytes());
        out.push(kind);
        out.push(0);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.len().to_le_bytes()[..4]);
        out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        debug_assert_eq!(out.len(), HEADER);
        out.extend_from_slice(&payload);
        out
    }

    /// Read a file written by [`AreaIndex::encode`], checking everything the header claims.
    pub fn decode(npa: u16, bytes: &[u8]) -> Result<AreaIndex, IndexError> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(IndexError::NotAnIndex);
        }
        let found = u16::from_le_bytes([bytes[8], bytes[9]]);
        if found != npa {
            return Err(IndexError::WrongAreaCode {
                expected: npa,
                found,
            });
        }
        let damaged = |reason: String| IndexError::Damaged { npa, reason };
        let kind = bytes[10];
        let count = u64::from(u32::from_le_bytes(bytes[16..20].try_into().unwrap()));
        let crc = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
        let payload = &bytes[HEADER..];
        if kind != 1 && crc32c::crc32c(payload) != crc {
            // (A bitmap's checks, this one included, are `decode_dense_into`'s.)
            return Err(damaged("payload checksum mismatch".into()));
        }
        match kind {
            0 => {
                if payload.len() as u64 != count * 4 {
                    return Err(damaged(format!(
                        "{} payload bytes for {count} numbers",
                        payload.len()
                    )));
                }
                let v: Vec<u32> = payload
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                if v.windows(2).any(|w| w[0] >= w[1]) || v.last().is_some_and(|l| *l >= LOCALS) {
                    return Err(damaged("numbers not sorted or out of range".into()));
                }
                Ok(AreaIndex::Sparse(SortedLocals::new(v)))
            }
            1 => {
                let mut bits = vec![0u64; WORDS].into_boxed_slice();
                let count = decode_dense_into(npa, bytes, &mut bits)?.expect("a dense file");
                Ok(AreaIndex::Dense {
                    bits: Words::Owned(bits),
                    count,
                })
            }
            other => Err(damaged(format!("unknown encoding {other}"))),
        }
    }
}

/// Read a dense file written by [`AreaIndex::encode`] straight into `dest` (an arena slot), checking everything the
/// header claims; `Ok(None)` when the file is not dense (the caller decodes it the ordinary way).
pub fn decode_dense_into(
    npa: u16,
    bytes: &[u8],
    dest: &mut [u64],
) -> Result<Option<u64>, IndexError> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(IndexError::NotAnIndex);
    }
    if bytes[10] != 1 {
        return Ok(None);
    }
    let found = u16::from_le_bytes([bytes[8], bytes[9]]);
    if found != npa {
        return Err(IndexError::WrongAreaCode {
            expected: npa,
            found,
        });
    }
    let damaged = |reason: String| IndexError::Damaged { npa, reason };
    let count = u64::from(u32::from_le_bytes(bytes[16..20].try_into().unwrap()));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    let payload = &bytes[HEADER..];
    if crc32c::crc32c(payload) != crc {
        return Err(damaged("payload checksum mismatch".into()));
    }
    if payload.len() != WORDS * 8 || dest.len() != WORDS {
        return Err(damaged(format!(
            "bitmap of {} bytes, expected {}",
            payload.len(),
            WORDS * 8
        )));
    }
    let mut set = 0u64;
    for (w, c) in dest.iter_mut().zip(payload.chunks_exact(8)) {
        *w = u64::from_le_bytes(c.try_into().unwrap());
        set += u64::from(w.count_ones());
    }
    if set != count {
        return Err(damaged(format!("{set} bits set, the header says {count}")));
    }
    Ok(Some(count))
}

/// An area code's numbers as a bitmap, while they are being built or changed.
pub struct DenseArea {
    bits: Box<[u64]>,
    count: u64,
}

impl Default for DenseArea {
    fn default() -> DenseArea {
        DenseArea::new()
    }
}

impl DenseArea {
    /// An area code with no number registered.
    pub fn new() -> DenseArea {
        DenseArea {
            bits: vec![0u64; WORDS].into_boxed_slice(),
            count: 0,
        }
    }

    /// Add `local`; `true` if it was not there.
    #[inline]
    pub fn insert(&mut self, local: u32) -> bool {
        let (word, bit) = ((local / 64) as usize, 1u64 << (local % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        self.count += u64::from(fresh);
        fresh
    }

    /// Remove `local`; `true` if it was there.
    #[inline]
    pub fn remove(&mut self, local: u32) -> bool {
        let (word, bit) = ((local / 64) as usize, 1u64 << (local % 64));
        let present = self.bits[word] & bit != 0;
        self.bits[word] &= !bit;
        self.count -= u64::from(present);
        present
    }

    /// Numbers registered in the area code.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether it holds no number.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Add every number of `other`; how many of them were already here.
    pub fn union(&mut self, other: &AreaIndex) -> u64 {
        match other {
            AreaIndex::Sparse(v) => {
                v.as_slice().iter().filter(|l| !self.insert(**l)).count() as u64
            }
            AreaIndex::Dense { bits, .. } => {
                let mut present = 0u64;
                for (w, o) in self.bits.iter_mut().zip(bits.iter()) {
                    present += u64::from((*w & *o).count_ones());
                    self.count += u64::from((*o & !*w).count_ones());
                    *w |= *o;
                }
                present
            }
        }
    }

    /// The smaller encoding of the same numbers.
    pub fn finish(self) -> AreaIndex {
        if self.count >= SPARSE_BELOW {
            return AreaIndex::Dense {
                bits: Words::Owned(self.bits),
                count: self.count,
            };
        }
        let mut v = Vec::with_capacity(self.count as usize);
        for (w, &word) in self.bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                v.push(w as u32 * 64 + word.trailing_zeros());
                word &= word - 1;
            }
        }
        AreaIndex::Sparse(SortedLocals::new(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_round_trip_and_answer_alike() {
        for n in [0u32, 10, 400_000] {
            let mut dense = DenseArea::new();
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut locals = Vec::new();
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let l = (x % u64::from(LOCALS)) as u32;
                dense.insert(l);
                locals.push(l);
            }
            let count = dense.len();
            let index = dense.finish();
            assert_eq!(
                matches!(index, AreaIndex::Dense { .. }),
                count >= SPARSE_BELOW
            );
            let bytes = index.encode(202);
            let back = AreaIndex::decode(202, &bytes).unwrap();
            assert_eq!(back, index);
            assert_eq!(back.len(), count);
            for l in locals.iter().take(1000) {
                assert!(back.contains(*l));
            }
            assert!(!back.contains(LOCALS - 1) || locals.contains(&(LOCALS - 1)));
        }
    }

    #[test]
    fn damage_is_detected() {
        let mut dense = DenseArea::new();
        for l in [1u32, 5, 9_999_999] {
            dense.insert(l);
        }
        assert!(dense.remove(5));
        assert!(!dense.remove(5));
        let bytes = dense.finish().encode(415);
        assert_eq!(
            AreaIndex::decode(202, &bytes),
            Err(IndexError::WrongAreaCode {
                expected: 202,
                found: 415
            })
        );
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            AreaIndex::decode(415, &flipped),
            Err(IndexError::Damaged { .. })
        ));
        assert!(matches!(
            AreaIndex::decode(415, &bytes[..bytes.len() - 4]),
            Err(IndexError::Damaged { .. })
        ));
        assert_eq!(
            AreaIndex::decode(415, b"short"),
            Err(IndexError::NotAnIndex)
        );
    }
}
