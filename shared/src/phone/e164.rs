//! The E.164 number, packed, and masking for logs.

use std::fmt;

/// An E.164 number packed into a `u64`: the digits after `+` read as an integer (at most 15 digits, never a leading
/// zero, so the packing is lossless). Small enough for a de-duplication set of tens of millions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(pub(super) u64);

impl E164 {
    /// The number whose digits after `+` are `packed` (as [`E164::packed`] gives them): 2 to 15 digits.
    pub fn from_packed(packed: u64) -> Option<E164> {
        (10..1_000_000_000_000_000)
            .contains(&packed)
            .then_some(E164(packed))
    }

    /// The digits after `+` read as an integer: the key of the de-duplication set and of the shard assignment.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// The ten national digits of a North American (`+1`) number; `None` for any other country.
    pub fn nanp_national(self) -> Option<u64> {
        (10_000_000_000..20_000_000_000)
            .contains(&self.0)
            .then(|| self.0 - 10_000_000_000)
    }

    /// Parse `+` followed by 2 to 15 digits.
    pub fn parse(s: &str) -> Option<E164> {
        let digits = s.strip_prefix('+')?;
        if digits.len() < 2
            || digits.len() > 15
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        digits.parse().ok().map(E164)
    }

    /// Write `+digits` into `out` without allocating (two digits a step: this is on the hot path of every run).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
        if (10_000_000_000..20_000_000_000).contains(&self.0) {
            // North American numbers (nearly every entry) are `+1` and ten digits: a fixed-size write.
            let mut fixed = *b"+1__________";
            let mut v = self.0 - 10_000_000_000;
            for i in (0..5).rev() {
                let pair = (v % 100) as usize * 2;
                v /= 100;
                fixed[2 + 2 * i..4 + 2 * i].copy_from_slice(&PAIRS[pair..pair + 2]);
            }
            out.extend_from_slice(&fixed);
            return;
        }
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut v = self.0;
        while v >= 100 {
            let pair = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if v >= 10 {
            i -= 2;
            buf[i..i + 2].copy_from_slice(&PAIRS[v as usize * 2..v as usize * 2 + 2]);
        } else {
            i -= 1;
            buf[i] = b'0' + v as u8;
        }
        out.push(b'+');
        out.extend_from_slice(&buf[i..]);
    }

    /// The number with all but its last four digits masked, for logs (`+1*******0198`).
    pub fn masked(&self) -> String {
        mask(&self.to_string())
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

/// Mask a raw phone-like string for logs: keep at most the last four characters.
pub fn mask(raw: &str) -> String {
    let n = raw.chars().count();
    raw.chars()
        .enumerate()
        .map(|(i, c)| {
            if i + 4 >= n || !c.is_ascii_digit() {
                c
            } else {
                '*'
            }
        })
        .collect()
}
