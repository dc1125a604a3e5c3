//! Phone number normalization to E.164 with a jurisdiction tag.
//!
//! One function, [`Normalizer::normalize`], serves ingestion and the outbound check alike, so both sides of a
//! suppression lookup always agree on the form of a number.
//!
//! Strategy:
//! - A North American fast path handles the bulk of registry data (digits with the usual separators, 10 or 11
//!   digits, `+1`), validated against the area-code table generated from libphonenumber's current metadata.
//! - Everything else goes to the `phonenumber` crate (a port of libphonenumber): `+`, `011` and `00` inputs are parsed
//!   without a default region (with one, the crate corrupts some international numbers), and North American results
//!   are re-validated with our own table because the crate's metadata is older.
//! - Compliance rule: never drop a number that can be dialed. A structurally valid North American number in an area
//!   code the metadata does not know yet is accepted and flagged; an international number the crate's older metadata
//!   calls invalid but whose length is possible for its country (current metadata) is accepted and flagged.
//! - Pre-cleaning recovers what spreadsheets do to numbers: `2025550198.0`, `="2025550198"`, a leading apostrophe,
//!   trailing words (`202-555-0198 mobile`), extensions in any spelling. Excel scientific notation that lost digits
//!   (`2.02555E+09`) is rejected as [`RejectReason::PrecisionLost`].

pub mod tables;

mod clean;
mod e164;

use clean::*;
pub use e164::{mask, E164};

use std::fmt;
use std::sync::Once;

pub use tables::{NpaInfo, NpaKind};

/// Why a phone field was rejected. Codes are stable: they are written to `rejects.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The field is empty or whitespace.
    Empty,
    /// No phone number can be read from the field.
    NotANumber,
    /// Too few digits for any valid number.
    TooShort,
    /// Too many digits for any valid number.
    TooLong,
    /// North American area code that cannot exist (leading 0/1, N11, X9X).
    InvalidAreaCode,
    /// North American exchange starting with 0 or 1.
    InvalidExchange,
    /// Parsed, but not a valid number for its country.
    InvalidForRegion,
    /// Unknown country calling code.
    InvalidCountryCode,
    /// Spreadsheet scientific notation that lost digits (`2.02555E+09`).
    PrecisionLost,
}

impl RejectReason {
    /// Every reason, in the order the rejects summary lists them.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::Empty,
        RejectReason::NotANumber,
        RejectReason::TooShort,
        RejectReason::TooLong,
        RejectReason::InvalidAreaCode,
        RejectReason::InvalidExchange,
        RejectReason::InvalidForRegion,
        RejectReason::InvalidCountryCode,
        RejectReason::PrecisionLost,
    ];

    /// The reason's stable code (`INVALID_EXCHANGE`, …): what `rejects.jsonl`, the manifest and check answers carry.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Empty => "EMPTY",
            RejectReason::NotANumber => "NOT_A_NUMBER",
            RejectReason::TooShort => "TOO_SHORT",
            RejectReason::TooLong => "TOO_LONG",
            RejectReason::InvalidAreaCode => "INVALID_AREA_CODE",
            RejectReason::InvalidExchange => "INVALID_EXCHANGE",
            RejectReason::InvalidForRegion => "INVALID_FOR_REGION",
            RejectReason::InvalidCountryCode => "INVALID_COUNTRY_CODE",
            RejectReason::PrecisionLost => "PRECISION_LOST",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Flags on an accepted number: it is kept, but something about it deserves a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(u8);

impl Flags {
    /// A structurally valid North American number in an area code libphonenumber's metadata does not know (yet).
    pub const UNKNOWN_AREA_CODE: Flags = Flags(1);
    /// Pre-cleaning changed the field before it could be read (spreadsheet artefacts, trailing words).
    pub const RECOVERED: Flags = Flags(2);
    /// An international number the crate's older metadata calls invalid, kept because its length is possible.
    pub const UNVERIFIED_RANGE: Flags = Flags(4);
    const NAMES: [(Flags, &'static str); 3] = [
        (Flags::UNKNOWN_AREA_CODE, "UNKNOWN_AREA_CODE"),
        (Flags::RECOVERED, "RECOVERED"),
        (Flags::UNVERIFIED_RANGE, "UNVERIFIED_RANGE"),
    ];

    /// Whether no flag is set: nothing about the number deserves a look.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the set flags.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// An accepted number: its E.164 form, where the opt-out applies, and what deserves a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalized {
    /// The number in E.164.
    pub e164: E164,
    /// ISO 3166-2 subdivision (`US-DC`) or ISO 3166-1 country (`GB`).
    pub jurisdiction: &'static str,
    /// What deserves a look.
    pub flags: Flags,
}

/// The default region for numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRegion {
    id: phonenumber::country::Id,
    code: u16,
    name: &'static str,
}

impl DefaultRegion {
    /// The United States (the default).
    pub const US: DefaultRegion = DefaultRegion {
        id: phonenumber::country::Id::US,
        code: 1,
        name: "US",
    };

    /// Look a region up by its ISO 3166-1 alpha-2 code (`US`, `CA`, `GB`).
    pub fn from_code(code: &str) -> Option<DefaultRegion> {
        let upper = code.trim().to_ascii_uppercase();
        let id: phonenumber::country::Id = upper.parse().ok()?;
        let cc = phonenumber::metadata::DATABASE
            .by_id(upper.as_str())?
            .country_code();
        let name = tables::intern_region(cc, &upper)?;
        Some(DefaultRegion { id, code: cc, name })
    }

    /// Whether the region is in the North American Numbering Plan.
    pub fn is_nanp(&self) -> bool {
        self.code == 1
    }

    /// The region's ISO 3166-1 alpha-2 code (`US`, `GB`).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Default for DefaultRegion {
    fn default() -> Self {
        DefaultRegion::US
    }
}

/// Normalizes phone fields. Cheap to construct and to copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Normalizer {
    region: DefaultRegion,
}

static GROW_REGEX_CACHE: Once = Once::new();

/// The `phonenumber` crate compiles metadata regexes lazily into an LRU cache of 100 entries, far fewer than the
/// metadata holds, so international input recompiles regexes on almost every call (about 500 numbers/s). Replacing
/// the cache behind the shared handle with a large one makes every regex compile once.
fn grow_regex_cache() {
    GROW_REGEX_CACHE.call_once(|| {
        let cache = phonenumber::metadata::DATABASE.cache();
        let mut guard = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = regex_cache::RegexCache::new(1 << 16);
    });
}

impl Normalizer {
    /// A normalizer with the given default region.
    pub fn new(region: DefaultRegion) -> Normalizer {
        Normalizer { region }
    }

    /// The region numbers without a country code are read in.
    pub fn region(&self) -> DefaultRegion {
        self.region
    }

    fn nanp_country(&self) -> &'static str {
        if self.region.name == "CA" {
            "CA"
        } else {
            "US"
        }
    }

    /// Normalize one raw field.
    pub fn normalize(&self, raw: &str) -> Result<Normalized, RejectReason> {
        // Registry downloads are ten bare digits a row: read them without the general scan. Only an acceptance is
        // final here; a rejection takes the general path, which may still read the field (`0116834002` is Niue).
        if self.region.is_nanp() {
            if let Some(Ok(n)) =
                ten_digits(raw.as_bytes()).map(|d| self.nanp_national(d, Flags::default()))
            {
                return Ok(n);
            }
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(RejectReason::Empty);
        }
        if self.region.is_nanp() {
            match self.fast_nanp(trimmed.as_bytes()) {
                Some(Ok(n)) => return Ok(n),
                // A rejection by the fast path may still be recoverable (`2025550198.0` reads as 11 digits); the
                // fast path's reason is the more precise one when it is not.
                Some(Err(reason)) => return self.slow(trimmed).map_err(|_| reason),
                None => {}
            }
        }
        self.slow(trimmed)
    }

    /// Normalize one raw field given as bytes (invalid UTF-8 is read lossily).
    pub fn normalize_bytes(&self, raw: &[u8]) -> Result<Normalized, RejectReason> {
        if let Some(n) = self.registry_row(raw) {
            return Ok(n);
        }
        match std::str::from_utf8(raw) {
            Ok(text) => self.normalize(text),
            Err(_) => self.normalize(&String::from_utf8_lossy(raw)),
        }
    }

    /// Registry downloads are ten bare digits a row: read them without the general scan. Only an acceptance is final
    /// here; a rejection takes the general path, which may still read the field (`0116834002` is Niue).
    #[inline]
    fn registry_row(&self, raw: &[u8]) -> Option<Normalized> {
        if !self.region.is_nanp() {
            return None;
        }
        self.nanp_national(ten_digits(raw)?, Flags::default()).ok()
    }

    /// The fast path: digits with ordinary separators only. `None` hands the field to the slow path.
    fn fast_nanp(&self, s: &[u8]) -> Option<Result<Normalized, RejectReason>> {
        let mut digits: u64 = 0;
        let mut count = 0u32;
        let mut plus = false;
        let mut first = [0u8; 3];
        for (i, &b) in s.iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    if (count as usize) < first.len() {
                        first[count as usize] = b;
                    }
                    count += 1;
                    if count <= 19 {
                        digits = digits * 10 + u64::from(b - b'0');
                    }
                }
                b' ' | b'-' | b'.' | b'(' | b')' | b'/' | b'\t' => {}
                b'+' if i == 0 => plus = true,
                _ => return None,
            }
        }
        if plus {
            return (count == 11 && first[0] == b'1')
                .then(|| self.nanp_national(digits - 10_000_000_000, Flags::default()));
        }
        if first[0] == b'0' && count > 10 {
            return None; // 011 / 00 international prefixes: the slow path knows them.
        }
        Some(match count {
            0 => Err(RejectReason::NotANumber),
            1..=9 => Err(RejectReason::TooShort),
            10 => self.nanp_national(digits, Flags::default()),
            11 if first[0] == b'1' => self.nanp_national(digits - 10_000_000_000, Flags::default()),
            _ => Err(RejectReason::TooLong),
        })
    }

    /// Validate a 10-digit North American national number.
    fn nanp_national(&self, national: u64, mut flags: Flags) -> Result<Normalized, RejectReason> {
        debug_assert!(national < 10_000_000_000);
        let npa = (national / 10_000_000) as u16;
        let nxx = ((national / 10_000) % 1000) as u16;
        if npa < 200 {
            return Err(RejectReason::InvalidAreaCode);
        }
        let info = tables::npa(npa);
        if nxx < 200 && !info.is_some_and(|i| i.low_exchange) {
            return Err(RejectReason::InvalidExchange);
        }
        // A shared non-geographic code (toll-free 800, 833 …) is marked as using low exchanges because some NANP
        // country's metadata admits one somewhere; a 0XX/1XX number of it is kept only where libphonenumber calls
        // that very number valid (`+1 800 051 3406` is not: no such number can be dialled).
        if nxx < 200
            && info.is_some_and(|i| i.kind == NpaKind::NonGeographic)
            && !nanp_range_valid(national)
        {
            return Err(RejectReason::InvalidExchange);
        }
        let jurisdiction = match info {
            Some(info) => {
                // Outside the US and Canada (the Caribbean, the Pacific territories) libphonenumber knows which
                // exchanges are in service: a number outside them is kept (never drop a dialable number) but flagged,
                // as international numbers outside the crate's ranges are. Rare in US lists: the slow check is cheap.
                if !matches!(info.country, "US" | "CA" | "NANP") && !nanp_range_valid(national) {
                    flags |= Flags::UNVERIFIED_RANGE;
                }
                info.jurisdiction(self.nanp_country())
            }
            None => {
                // N11 codes are service codes and X9X codes are reserved for expansion: never assigned.
                if npa % 100 == 11 || (npa / 10) % 10 == 9 {
                    return Err(RejectReason::InvalidAreaCode);
                }
                flags |= Flags::UNKNOWN_AREA_CODE;
                self.nanp_country()
            }
        };
        Ok(Normalized {
            e164: E164(10_000_000_000 + national),
            jurisdiction,
            flags,
        })
    }

    /// The slow path: pre-cleaning, then the `phonenumber` crate.
    fn slow(&self, trimmed: &str) -> Result<Normalized, RejectReason> {
        let cleaned = preclean(trimmed)?;
        let flags = if cleaned.changed {
            Flags::RECOVERED
        } else {
            Flags::default()
        };
        if cleaned.text.is_empty() {
            return Err(RejectReason::Empty);
        }
        if cleaned.changed && self.region.is_nanp() {
            if let Some(result) = self.fast_nanp(cleaned.text.as_bytes()) {
                return result.map(|mut n| {
                    n.flags |= flags;
                    n
                });
            }
        }
        match self.with_crate(&cleaned.text, flags) {
            Ok(n) => Ok(n),
            Err(reason) => {
                // Vanity numbers: libphonenumber reads letters as keypad digits when there are at least three.
                if let Some(digits) = vanity_to_digits(&cleaned.text) {
                    if let Ok(n) = self.with_crate(&digits, flags) {
                        return Ok(n);
                    }
                }
                // Trailing words: "202-555-0198 home", "2025550198 (cell)". Only when the crate could not read the
                // field, so vanity numbers (1-800-FLOWERS) keep libphonenumber's reading.
                match strip_trailing_words(&cleaned.text) {
                    Some(head) => {
                        let recovered = Flags::RECOVERED;
                        if self.region.is_nanp() {
                            if let Some(Ok(n)) = self.fast_nanp(head.as_bytes()) {
                                return Ok(Normalized {
                                    flags: n.flags | recovered,
                                    ..n
                                });
                            }
                        }
                        self.with_crate(head, recovered).map_err(|_| reason)
                    }
                    None => Err(reason),
                }
            }
        }
    }

    fn with_crate(&self, text: &str, flags: Flags) -> Result<Normalized, RejectReason> {
        grow_regex_cache();
        let digits_only: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        // International prefixes: parse without a default region (with one, the crate corrupts some numbers).
        let (region, input): (Option<phonenumber::country::Id>, std::borrow::Cow<'_, str>) =
            if text.starts_with('+') || text.starts_with("tel:+") {
                (None, text.into())
            } else if self.region.is_nanp()
                && digits_only.starts_with("011")
                && text.trim_start().starts_with("011")
            {
                (None, format!("+{}", &text.trim_start()[3..]).into())
            } else if digits_only.starts_with("00") && text.trim_start().starts_with("00") {
                (None, format!("+{}", &text.trim_start()[2..]).into())
            } else {
                (Some(self.region.id), text.into())
            };
        let parsed = match phonenumber::parse(region, input.as_ref()) {
            Ok(p) => p,
            Err(_) => {
                return Err(if digits_only.is_empty() {
                    RejectReason::NotANumber
                } else if region.is_none() && digits_only.len() > 17 {
                    RejectReason::TooLong
                } else if digits_only.len() < 4 {
                    RejectReason::TooShort
                } else {
                    RejectReason::NotANumber
                })
            }
        };
        let code = parsed.code().value();
        let mut national = parsed.national().to_string(); // keeps Italian-style leading zeros
        let mut valid = parsed.is_valid();
        if region.is_none() {
            // The crate strips a national prefix after an explicit country code even where libphonenumber keeps it
            // (`+7 800 123-45-67` loses its 8): libphonenumber keeps the digits as written when they match the
            // country's general pattern and the stripped ones do not.
            let idd = if text.starts_with('+') || text.starts_with("tel:") {
                0
            } else if digits_only.starts_with("011") {
                3
            } else {
                2
            };
            if let Some(raw) = digits_only
                .get(idd..)
                .and_then(|d| d.strip_prefix(code.to_string().as_str()))
            {
                if raw != national && raw.ends_with(national.as_str()) {
                    if let Some(keep) = keep_unstripped(code, raw, &national) {
                        national = raw.to_string();
                        valid = keep;
                    }
                }
            }
        }
        let nsn_len = national.len() as u8;
        if code == 1 {
            // North America: our own table is newer than the crate's metadata.
            return match nsn_len {
                // Canada's 310-XXXX numbers, dialable only as such.
                7 if region.is_none() && national.starts_with("310") => Ok(Normalized {
                    e164: E164(
                        format!("1{national}")
                            .parse()
                            .map_err(|_| RejectReason::TooLong)?,
                    ),
                    jurisdiction: "CA",
                    flags,
                }),
                0..=9 => Err(RejectReason::TooShort),
                10 => self.nanp_national(
                    national.parse().map_err(|_| RejectReason::NotANumber)?,
                    flags,
                ),
                // A trunk 1 after +1 (`+1 1 645 612 3454`) is a national prefix.
                11 if national.starts_with('1') => self.nanp_national(
                    national[1..]
                        .parse()
                        .map_err(|_| RejectReason::NotANumber)?,
                    flags,
                ),
                _ => Err(RejectReason::TooLong),
            };
        }
        let Some(cc) = tables::country_code(code) else {
            return Err(RejectReason::InvalidCountryCode);
        };
        let e164 = E164(
            format!("{}{}", code, national)
                .parse()
                .map_err(|_| RejectReason::TooLong)?,
        );
        if valid {
            let jurisdiction = parsed
                .country()
                .id()
                .and_then(|id| tables::intern_region(code, id.as_ref()))
                .unwrap_or(cc.main_region);
            return Ok(Normalized {
                e164,
                jurisdiction,
                flags,
            });
        }
        if cc.lengths.contains(&nsn_len) {
            // Possible for the country under current metadata, invalid under the crate's older one: keep it.
            return Ok(Normalized {
                e164,
                jurisdiction: cc.main_region,
                flags: flags | Flags::UNVERIFIED_RANGE,
            });
        }
        let min = cc.lengths.iter().copied().min().unwrap_or(0);
        let max = cc.lengths.iter().copied().max().unwrap_or(u8::MAX);
        Err(if nsn_len < min {
            RejectReason::TooShort
        } else if nsn_len > max {
            RejectReason::TooLong
        } else {
            RejectReason::InvalidForRegion
        })
    }
}

/// Whether libphonenumber would keep `raw` rather than the crate's `stripped` national number, and if so whether
/// `raw` is a valid number: `Some(valid)` to keep, `None` to accept the stripping.
/// Whether libphonenumber's metadata (the `phonenumber` crate's) has `national` (ten digits, +1) in service.
fn nanp_range_valid(national: u64) -> bool {
    grow_regex_cache();
    phonenumber::parse(None, format!("+1{national:010}")).is_ok_and(|n| n.is_valid())
}

/// The value of `b` when it is exactly ten ASCII digits.
#[inline]
fn ten_digits(b: &[u8]) -> Option<u64> {
    let b: &[u8; 10] = b.try_into().ok()?;
    let mut value = 0u64;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u64::from(d);
    }
    Some(value)
}

fn keep_unstripped(code: u16, raw: &str, stripped: &str) -> Option<bool> {
    let metas = phonenumber::metadata::DATABASE.by_code(&code)?;
    let general_raw = metas
        .iter()
        .any(|m| m.descriptors().general().is_match(raw));
    let general_stripped = metas
        .iter()
        .any(|m| m.descriptors().general().is_match(stripped));
    if !general_raw || general_stripped {
        return None;
    }
    use phonenumber::Type;
    let types = [
        Type::FixedLine,
        Type::Mobile,
        Type::TollFree,
        Type::PremiumRate,
        Type::SharedCost,
        Type::PersonalNumber,
        Type::Voip,
        Type::Pager,
        Type::Uan,
        Type::Voicemail,
    ];
    Some(metas.iter().any(|m| {
        types
            .iter()
            .any(|t| m.descriptors().get(*t).is_some_and(|d| d.is_match(raw)))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> (String, &'static str, Flags) {
        let n = Normalizer::default()
            .normalize(raw)
            .unwrap_or_else(|e| panic!("{raw:?} rejected: {e}"));
        (n.e164.to_string(), n.jurisdiction, n.flags)
    }

    fn err(raw: &str) -> RejectReason {
        Normalizer::default().normalize(raw).expect_err(raw)
    }

    #[test]
    fn north_american_formats() {
        for raw in [
            "2025550198",
            "202-555-0198",
            "(202) 555-0198",
            "+1 202 555 0198",
            "1-202-555-0198",
            "202.555.0198",
            "+12025550198",
        ] {
            assert_eq!(
                ok(raw),
                ("+12025550198".into(), "US-DC", Flags::default()),
                "{raw}"
            );
        }
        assert_eq!(ok("4165550123").1, "CA-ON");
        assert_eq!(ok("8005550123").1, "US");
        assert_eq!(ok("787-555-0123").1, "US-PR");
        assert_eq!(ok("9025550123").1, "CA");
        assert_eq!(ok("Call 1-800-FLOWERS").0, "+18003569377");
        assert_eq!(ok("call 202 555 0198").0, "+12025550198");
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(err(""), RejectReason::Empty);
        assert_eq!(err("   "), RejectReason::Empty);
        assert_eq!(err("555-0198"), RejectReason::TooShort);
        assert_eq!(err("202555019812"), RejectReason::TooLong);
        assert_eq!(err("1025550198"), RejectReason::InvalidAreaCode);
        assert_eq!(err("2115550198"), RejectReason::InvalidAreaCode);
        assert_eq!(err("2021550198"), RejectReason::InvalidExchange);
        // Toll-free with a central-office code of 0 or 1: invalid to libphonenumber, never dialled.
        assert_eq!(err("+1 800 051 3406"), RejectReason::InvalidExchange);
        assert_eq!(err("1.800.004.0927"), RejectReason::InvalidExchange);
        assert_eq!(ok("1-800-555-0199").0, "+18005550199");
        assert_eq!(err("hello"), RejectReason::NotANumber);
        assert_eq!(err("not a number"), RejectReason::NotANumber);
        assert_eq!(err("8-FLOWERSXX"), RejectReason::TooShort);
        assert_eq!(err("2.02555E+09"), RejectReason::PrecisionLost);
    }

    #[test]
    fn unknown_area_code_is_kept_and_flagged() {
        let (e164, j, flags) = ok("3745550198");
        assert_eq!(e164, "+13745550198");
        assert_eq!(j, "US");
        assert!(flags.contains(Flags::UNKNOWN_AREA_CODE));
    }

    #[test]
    fn spreadsheet_artefacts_are_recovered() {
        for raw in [
            "2025550198.0",
            "=\"2025550198\"",
            "'2025550198",
            "202-555-0198 mobile",
            "2.025550198E+09",
        ] {
            let (e164, _, flags) = ok(raw);
            assert_eq!(e164, "+12025550198", "{raw}");
            assert!(flags.contains(Flags::RECOVERED), "{raw}");
        }
        for raw in [
            "202-555-0198 ext. 12",
            "202-555-0198 x12",
            "202-555-0198;ext=12",
            "tel:+1-202-555-0198;ext=12",
        ] {
            assert_eq!(ok(raw).0, "+12025550198", "{raw}");
        }
    }

    #[test]
    fn international_numbers_keep_their_digits() {
        assert_eq!(ok("+49 151 23459191").0, "+4915123459191");
        assert_eq!(ok("+55 11 91234-6430").0, "+5511912346430");
        assert_eq!(
            ok("011 44 20 7946 0018"),
            ("+442079460018".into(), "GB", Flags::default())
        );
        assert_eq!(ok("+44 (0)20 7946 0018").0, "+442079460018");
    }

    #[test]
    fn e164_packing_round_trips() {
        let e = E164::parse("+442079460018").unwrap();
        let mut out = Vec::new();
        e.write_to(&mut out);
        assert_eq!(out, b"+442079460018");
        // The fixed-size North American write, at its edges and with zeros inside.
        for n in [
            10_000_000_000u64,
            12_025_550_198,
            12_000_000_001,
            19_999_999_999,
            18_005_000_600,
        ] {
            let mut out = Vec::new();
            E164(n).write_to(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("+{n}"));
        }
        assert_eq!(e.masked(), "+********0018");
        assert!(E164::parse("+0123").is_none());
        assert!(E164::parse("12345").is_none());
    }
}
