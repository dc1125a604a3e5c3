//! The de-duplication set of a run: which E.164 numbers were already accepted.
//!
//! North American numbers (the bulk of registry data) are kept per area code: a small hash set of the 7-digit
//! subscriber numbers while the area code is sparse, switched to a 10-million-bit bitmap (1.25 MiB) once denser than
//! that. A full registry download (hundreds of millions of numbers) then costs about one bit a number, and lookups
//! stay within a cache-friendly region per area code. Other numbers go to a hash set of packed `u64`s.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use crate::run::mix64;

/// Hasher for packed numbers: one multiply-xorshift mix, no SipHash.
#[derive(Default)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

type FastSet<T> = HashSet<T, BuildHasherDefault<MixHasher>>;

const SUBSCRIBERS: usize = 10_000_000;
/// Above this many entries a hash set of `u32` costs more than the 1.25 MiB bitmap.
const DENSE_AT: usize = 65_536;

enum AreaCode {
    Sparse(FastSet<u32>),
    Dense(Box<[u64]>),
}

/// Set of E.164 numbers seen in a run.
#[derive(Default)]
pub struct SeenNumbers {
    nanp: Vec<Option<AreaCode>>,
    other: FastSet<u64>,
    len: u64,
}

impl SeenNumbers {
    /// A set holding no number yet.
    pub fn new() -> SeenNumbers {
        SeenNumbers {
            nanp: (0..1000).map(|_| None).collect(),
            other: FastSet::default(),
            len: 0,
        }
    }

    /// Insert a packed E.164 number; `true` if it was not there yet.
    pub fn insert(&mut self, e164: u64) -> bool {
        let fresh = if (10_000_000_000..20_000_000_000).contains(&e164) {
            let national = e164 - 10_000_000_000;
            let npa = (national / SUBSCRIBERS as u64) as usize;
            let sub = (national % SUBSCRIBERS as u64) as u32;
            let slot = self.nanp[npa].get_or_insert_with(|| AreaCode::Sparse(FastSet::default()));
            match slot {
                AreaCode::Sparse(set) => {
                    let fresh = set.insert(sub);
                    if set.len() > DENSE_AT {
                        let mut bits = vec![0u64; SUBSCRIBERS.div_ceil(64)].into_boxed_slice();
                        for s in set.iter() {
                            bits[*s as usize / 64] |= 1 << (s % 64);
                        }
                        *slot = AreaCode::Dense(bits);
                    }
                    fresh
                }
                AreaCode::Dense(bits) => {
                    let (word, bit) = (sub as usize / 64, 1u64 << (sub % 64));
                    let fresh = bits[word] & bit == 0;
                    bits[word] |= bit;
                    fresh
                }
            }
        } else {
            self.other.insert(e164)
        };
        self.len += u64::from(fresh);
        fresh
    }

    /// Hint the memory of `e164`'s slot into cache ahead of [`SeenNumbers::insert`]: bitmap lookups are random
    /// accesses, and a few in flight at once hide most of their latency.
    #[inline]
    pub fn prefetch(&self, e164: u64) {
        if !(10_000_000_000..20_000_000_000).contains(&e164) {
            return;
        }
        let national = e164 - 10_000_000_000;
        let npa = (national / SUBSCRIBERS as u64) as usize;
        if let Some(AreaCode::Dense(bits)) = &self.nanp[npa] {
            let word = (national % SUBSCRIBERS as u64) as usize / 64;
            #[cfg(target_arch = "x86_64")]
            {
                let ptr = bits[word..].as_ptr().cast::<i8>();
                // SAFETY: prefetching is a hint; `ptr` points into a live allocation.
                #[allow(unused_unsafe)]
                unsafe {
                    core::arch::x86_64::_mm_prefetch(ptr, core::arch::x86_64::_MM_HINT_T0)
                };
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = &bits[word];
        }
    }

    /// Distinct numbers inserted so far (a number inserted twice counts once).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_plain_set_across_the_dense_switch() {
        let mut seen = SeenNumbers::new();
        let mut plain = HashSet::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Two dense area codes, and international numbers.
            let n = match x % 3 {
                0 => 12_020_000_000 + x % 200_000,
                1 => 14_150_000_000 + (x >> 5) % 9_999_999,
                _ => 442_079_460_000 + x % 50_000,
            };
            assert_eq!(seen.insert(n), plain.insert(n), "{n}");
        }
        assert_eq!(seen.len(), plain.len() as u64);
        assert!(matches!(seen.nanp[202], Some(AreaCode::Dense(_))));
    }
}
