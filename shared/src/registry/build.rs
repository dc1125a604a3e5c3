//! Reading registry files into area-code bitmaps: the FTC full download (`NPA,NNNNNNN` a line, one file per area
//! code), state lists (ten digits a line), and FTC change lists (`NNNNNNNNNN,YYYY-MM-DDThh:mm:ss,A|D`).
//!
//! Every line is accounted for: `rows = accepted + duplicates + rejected` for a download, `rows = adds + deletes +
//! rejected` for a change list, and each rejected line is recorded with its source, line number and reason. The
//! validity rules are the normalizer's ([`crate::phone::Normalizer`]): a line of the usual shape is judged from a
//! per-area-code table computed with the normalizer itself (acceptance of a North American number depends only on
//! its area code and on whether its exchange starts with 0/1), anything else goes through the normalizer.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::index::{DenseArea, LOCALS};
use crate::phone::{Flags, Normalizer, RejectReason};

/// Rejected lines written in full; past this each further reject is counted only (a file of junk must not grow the
/// rejects object without bound).
pub const MAX_REJECTS_KEPT: u64 = 100_000;

/// A rejected line, as `rejects.jsonl` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedLine {
    /// The source file (`zip!entry` inside an archive).
    pub source: String,
    /// 1-based line number in it.
    pub line: u64,
    /// Stable reason code (the normalizer's, or `NOT_NANP`, `BAD_TIMESTAMP`, `BAD_CHANGE_TYPE`, `BAD_LINE`).
    pub reason: String,
    /// The line as read (lossy UTF-8, at most 80 characters).
    pub raw: String,
}

/// Counts of a full download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportCounts {
    /// Lines read (the rows of `rows = accepted + duplicates + rejected`).
    pub rows: u64,
    /// Numbers not seen before in this import.
    pub accepted: u64,
    /// Numbers already seen in this import (a file repeated, or a number listed twice).
    pub duplicates: u64,
    /// Lines that hold no valid North American number.
    pub rejected: u64,
}

impl ImportCounts {
    /// Adds another file's counts to these (the total of a batch).
    pub fn add(&mut self, o: &ImportCounts) {
        self.rows += o.rows;
        self.accepted += o.accepted;
        self.duplicates += o.duplicates;
        self.rejected += o.rejected;
    }
}

/// Counts of a change list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeCounts {
    /// Lines read: `rows = adds + deletes + rejected` (superseded lines are among the adds and deletes).
    pub rows: u64,
    /// `A` lines (including those whose number was already registered).
    pub adds: u64,
    /// `A` lines whose number was already registered.
    pub adds_present: u64,
    /// `D` lines (including those whose number was not registered).
    pub deletes: u64,
    /// `D` lines whose number was not registered: counted, not an error.
    pub deletes_absent: u64,
    /// `A` and `D` lines not applied: dated before the full download (already in it), or before a later change of
    /// the same number the registry holds (from a list applied earlier but dated later).
    #[serde(default)]
    pub superseded: u64,
    /// Lines that could not be read.
    pub rejected: u64,
}

impl ChangeCounts {
    /// Adds another file's counts to these (the total of a batch).
    pub fn add(&mut self, o: &ChangeCounts) {
        self.rows += o.rows;
        self.adds += o.adds;
        self.adds_present += o.adds_present;
        self.deletes += o.deletes;
        self.deletes_absent += o.deletes_absent;
        self.superseded += o.superseded;
        self.rejected += o.rejected;
    }
}

const ACCEPT_HIGH: u8 = 1;
const ACCEPT_LOW: u8 = 2;
const UNKNOWN: u8 = 4;

/// What the normalizer says of each area code: accepted with an exchange ≥ 200, accepted with an exchange < 200,
/// unknown to the metadata (accepted and flagged).
pub struct AreaRules {
    rules: Vec<u8>,
    normalizer: Normalizer,
}

impl Default for AreaRules {
    fn default() -> AreaRules {
        AreaRules::new()
    }
}

impl AreaRules {
    /// Computed with the US normalizer.
    pub fn new() -> AreaRules {
        let normalizer = Normalizer::new(Default::default());
        let rules = (0..1000u32)
            .map(|npa| {
                let mut rule = 0;
                for (nxx, bit) in [(555u32, ACCEPT_HIGH), (100, ACCEPT_LOW)] {
                    if let Ok(n) = normalizer.normalize(&format!("{npa:03}{nxx:03}0100")) {
                        rule |= bit;
                        if n.flags.contains(Flags::UNKNOWN_AREA_CODE) {
                            rule |= UNKNOWN;
                        }
                    }
                }
                rule
            })
            .collect();
        AreaRules { rules, normalizer }
    }

    /// The 10-digit national number of `line`, or why it holds none.
    #[inline]
    pub fn read(&self, line: &[u8]) -> Result<u64, &'static str> {
        if let Some(national) = fast_digits(line) {
            let npa = (national / 10_000_000) as usize;
            let low = (national / 10_000) % 1000 < 200;
            let rule = self.rules[npa];
            if rule & if low { ACCEPT_LOW } else { ACCEPT_HIGH } != 0 {
                return Ok(national);
            }
        }
        self.slow(line)
    }

    /// Whether the metadata does not know area code `npa` (its numbers are kept, and the area code flagged).
    pub fn unknown(&self, npa: u16) -> bool {
        self.rules[usize::from(npa)] & UNKNOWN != 0
    }

    #[cold]
    fn slow(&self, line: &[u8]) -> Result<u64, &'static str> {
        let unquote = |f: &[u8]| -> Vec<u8> {
            let f = f.trim_ascii();
            let f = f
                .strip_prefix(b"\"")
                .and_then(|f| f.strip_suffix(b"\""))
                .unwrap_or(f);
            f.trim_ascii().to_vec()
        };
        let line = line.trim_ascii();
        // Delimited lines: the FTC's `NPA,NNNNNNN` (spaces or quotes around it), or a state list with more columns
        // than the number (Massachusetts ships the number and a last name): the number is the first field. A line
        // of one field is read whole.
        let fields: Vec<Vec<u8>> = match line.iter().position(|b| b",\t|;".contains(b)) {
            Some(at) => {
                let delimiter = line[at];
                line.split(|b| *b == delimiter).map(unquote).collect()
            }
            None => vec![unquote(line)],
        };
        let is_digits = |f: &[u8], n: usize| f.len() == n && f.iter().all(u8::is_ascii_digit);
        let field = match fields.as_slice() {
            [npa, local, ..] if is_digits(npa, 3) && is_digits(local, 7) => {
                [&npa[..], &local[..]].concat()
            }
            [first, rest @ ..] => {
                // A second number on the line would be lost by reading the first: the line is refused whole, and
                // recorded, instead.
                if rest
                    .iter()
                    .any(|f| self.normalizer.normalize_bytes(f).is_ok())
                {
                    return Err("SEVERAL_NUMBERS");
                }
                first.clone()
            }
            [] => Vec::new(),
        };
        let n = self
            .normalizer
            .normalize_bytes(&field)
            .map_err(reason_code)?;
        if let Some(national) = n.e164.nanp_national() {
            Ok(national)
        } else {
            Err(reason_code(RejectReason::InvalidCountryCode))
        }
    }
}

/// An FTC line, `NPA,NNNNNNN\n`, as its 10-digit number; `None` for any other 12 bytes. The seven local digits are
/// read eight bytes at a time (SWAR: the comma before them stands in for a leading zero), which is most of what
/// reading a row costs.
#[inline]
fn ftc_line(l: &[u8; 12]) -> Option<u64> {
    if l[11] != b'\n' || l[3] != b',' {
        return None;
    }
    let (a, b, c) = (
        l[0].wrapping_sub(b'0'),
        l[1].wrapping_sub(b'0'),
        l[2].wrapping_sub(b'0'),
    );
    if a > 9 || b > 9 || c > 9 {
        return None;
    }
    let npa = u64::from(a) * 100 + u64::from(b) * 10 + u64::from(c);
    let mut chunk = u64::from_le_bytes(l[3..11].try_into().expect("8 bytes"));
    chunk = (chunk & !0xff) | u64::from(b'0');
    // Every byte an ASCII digit: high nibble 3, and adding 6 keeps it 3.
    if chunk & 0xf0f0_f0f0_f0f0_f0f0 != 0x3030_3030_3030_3030
        || (chunk.wrapping_add(0x0606_0606_0606_0606)) & 0xf0f0_f0f0_f0f0_f0f0
            != 0x3030_3030_3030_3030
    {
        return None;
    }
    let mut v = chunk - 0x3030_3030_3030_3030;
    v = (v * 10) + (v >> 8);
    v = (((v & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32)))
        + (((v >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32))))
        >> 32;
    Some(npa * 10_000_000 + v)
}

/// `NPA,NNNNNNN` or ten digits, as a number.
#[inline]
fn fast_digits(line: &[u8]) -> Option<u64> {
    let (a, b): (&[u8], &[u8]) = match line.len() {
        11 if line[3] == b',' => (&line[..3], &line[4..]),
        10 => (&line[..3], &line[3..]),
        _ => return None,
    };
    let mut v = 0u64;
    for &d in a.iter().chain(b) {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// The reason code of a rejected number; a number outside North America is `NOT_NANP`: the index covers the NANP.
fn reason_code(r: RejectReason) -> &'static str {
    match r {
        RejectReason::InvalidCountryCode => "NOT_NANP",
        other => other.code(),
    }
}

/// Rejected lines of one import or apply, capped at [`MAX_REJECTS_KEPT`].
#[derive(Default)]
pub struct Rejects {
    /// The rejected lines as written to `rejects.jsonl`, one JSON object a line (at most the cap).
    pub jsonl: Vec<u8>,
    /// Rejected lines, all of them (written or not).
    pub count: u64,
    /// Of them, not written (past the cap).
    pub not_written: u64,
}

impl Rejects {
    /// Add the rejected lines of `other` (another file's), within the cap.
    pub fn absorb(&mut self, other: &Rejects) {
        self.not_written += other.not_written;
        for line in other.jsonl.split_inclusive(|b| *b == b'\n') {
            self.count += 1;
            if self.count > MAX_REJECTS_KEPT {
                self.not_written += 1;
            } else {
                self.jsonl.extend_from_slice(line);
            }
        }
    }

    fn record(&mut self, source: &str, line: u64, reason: &str, raw: &[u8]) {
        self.count += 1;
        if self.count > MAX_REJECTS_KEPT {
            self.not_written += 1;
            return;
        }
        let raw: String = String::from_utf8_lossy(raw).chars().take(80).collect();
        let rec = RejectedLine {
            source: source.to_string(),
            line,
            reason: reason.to_string(),
            raw,
        };
        serde_json::to_writer(&mut self.jsonl, &rec).expect("writing to a Vec cannot fail");
        self.jsonl.push(b'\n');
    }
}

/// Lines of `text` with their 1-based numbers, `\r` stripped; a final line without a newline counts, the empty
/// "line" after a final newline does not.
fn lines(text: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut start = 0usize;
    let mut n = 0u64;
    let done = text.is_empty();
    std::iter::from_fn(move || {
        if done || start > body.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i);
        let line = &body[start..end];
        start = end + 1;
        n += 1;
        Some((n, line.strip_suffix(b"\r").unwrap_or(line)))
    })
}

/// Numbers of a registry being built from full downloads.
pub struct Builder {
    rules: AreaRules,
    /// Per area code (index = NPA).
    pub areas: Vec<Option<DenseArea>>,
    /// The lines rejected so far, with their reasons.
    pub rejects: Rejects,
    /// Area codes seen that the metadata does not know.
    pub unknown_area_codes: std::collections::BTreeSet<u16>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// A builder with no area code and no number yet.
    pub fn new() -> Builder {
        Builder {
            rules: AreaRules::new(),
            areas: (0..1000).map(|_| None).collect(),
            rejects: Rejects::default(),
            unknown_area_codes: Default::default(),
        }
    }

    /// Add the lines of `text` (one source file, already inflated).
    pub fn add_text(&mut self, source: &str, text: &[u8]) -> ImportCounts {
        self.add_text_from(source, text, 1)
    }

    /// Add the lines of `text`, a part of a source file whose first line is line `first` of the file.
    pub fn add_text_from(&mut self, source: &str, text: &[u8], first: u64) -> ImportCounts {
        let mut c = ImportCounts::default();
        let mut last_npa = usize::MAX;
        // The FTC's lines are all `NPA,NNNNNNN\n`, 12 bytes: read runs of them without searching for the newline.
        // A line of any other shape ends the run and the rest goes through the general loop below.
        let mut pos = 0usize;
        while let Some(l) = text.get(pos..pos + 12) {
            let Some(national) = ftc_line(l.try_into().expect("12 bytes")) else {
                break;
            };
            let npa = (national / 10_000_000) as usize;
            let low = (national / 10_000) % 1000 < 200;
            let rule = self.rules.rules[npa];
            if rule & if low { ACCEPT_LOW } else { ACCEPT_HIGH } == 0 {
                break;
            }
            if npa != last_npa {
                last_npa = npa;
                if rule & UNKNOWN != 0 {
                    self.unknown_area_codes.insert(npa as u16);
                }
            }
            let area = self.areas[npa].get_or_insert_with(DenseArea::new);
            if area.insert((national % u64::from(LOCALS)) as u32) {
                c.accepted += 1;
            } else {
                c.duplicates += 1;
            }
            c.rows += 1;
            pos += 12;
        }
        let first = first + c.rows;
        for (n, line) in lines(&text[pos..]) {
            let n = n + first - 1;
            c.rows += 1;
            match self.rules.read(line) {
                Ok(national) => {
                    let npa = (national / 10_000_000) as usize;
                    if npa != last_npa {
                        last_npa = npa;
                        if self.rules.unknown(npa as u16) {
                            self.unknown_area_codes.insert(npa as u16);
                        }
                    }
                    let area = self.areas[npa].get_or_insert_with(DenseArea::new);
                    if area.insert((national % u64::from(LOCALS)) as u32) {
                        c.accepted += 1;
                    } else {
                        c.duplicates += 1;
                    }
                }
                Err(reason) => {
                    c.rejected += 1;
                    self.rejects.record(source, n, reason, line);
                }
            }
        }
        c
    }
}

/// One change of a change list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// When the FTC recorded it.
    pub at: NaiveDateTime,
    /// Position among the changes read (ties keep file order).
    pub seq: u64,
    /// Its line in the file (1-based).
    pub line: u64,
    /// The 10-digit national number.
    pub national: u64,
    /// Added (`A`) or deleted (`D`).
    pub add: bool,
}

/// Read a change list: its changes, and the rows it rejected (recorded in `rejects`).
pub fn read_changes(
    source: &str,
    text: &[u8],
    rules: &AreaRules,
    rejects: &mut Rejects,
    seq: &mut u64,
    out: &mut Vec<Change>,
) -> u64 {
    let mut rejected = 0;
    for (n, line) in lines(text) {
        let mut reject = |reason: &str| {
            rejected += 1;
            rejects.record(source, n, reason, line);
        };
        let mut fields = line.split(|b| *b == b',');
        let (Some(number), Some(at), Some(kind), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            reject("BAD_LINE");
            continue;
        };
        let national = match rules.read(number) {
            Ok(n) => n,
            Err(r) => {
                reject(r);
                continue;
            }
        };
        let Some(at) = std::str::from_utf8(at)
            .ok()
            .and_then(|s| NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S").ok())
        else {
            reject("BAD_TIMESTAMP");
            continue;
        };
        let add = match kind.trim_ascii() {
            b"A" | b"a" => true,
            b"D" | b"d" => false,
            _ => {
                reject("BAD_CHANGE_TYPE");
                continue;
            }
        };
        *seq += 1;
        out.push(Change {
            at,
            line: n,
            seq: *seq,
            national,
            add,
        });
    }
    rejected
}

/// Rows of a change list, for accounting (the same line splitting as [`read_changes`]).
pub fn count_lines(text: &[u8]) -> u64 {
    lines(text).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_accounted_for() {
        let mut b = Builder::new();
        let text = b"202,4561234\n202,4561234\r\n2024561235\n(415) 555-0100\n020,4561234\n202,1561234\n\n+442079460018\n999,5551234\n202,45612";
        let c = b.add_text("f.txt", text);
        assert_eq!(c.rows, 10);
        assert_eq!(c.rows, c.accepted + c.duplicates + c.rejected);
        assert_eq!((c.accepted, c.duplicates), (3, 1), "{c:?}");
        let rejects = String::from_utf8(b.rejects.jsonl.clone()).unwrap();
        for (line, reason) in [
            (5, "INVALID_AREA_CODE"),
            (6, "INVALID_EXCHANGE"),
            (7, "EMPTY"),
            (8, "NOT_NANP"),
            (9, "INVALID_AREA_CODE"),
            (10, "TOO_SHORT"),
        ] {
            assert!(
                rejects.contains(&format!("\"line\":{line},\"reason\":\"{reason}\"")),
                "line {line}: {rejects}"
            );
        }
        assert!(b.areas[202].as_ref().unwrap().len() == 2);
    }

    #[test]
    fn the_ftc_line_reader_agrees_with_the_plain_one() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = x % 10_000_000_000;
            let line = format!("{:03},{:07}\n", n / 10_000_000, n % 10_000_000);
            let l: [u8; 12] = line.as_bytes().try_into().unwrap();
            assert_eq!(ftc_line(&l), Some(n), "{line}");
            assert_eq!(fast_digits(&l[..11]), Some(n));
            // Any byte made a non-digit is refused, as the plain reader refuses it.
            let mut bad = l;
            let at = (x >> 40) as usize % 11;
            bad[at] = [b'/', b':', b' ', b'a', 0xb0][(x >> 50) as usize % 5];
            assert_eq!(
                ftc_line(&bad),
                fast_digits(&bad[..11]).filter(|_| bad[3] == b','),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn state_lists_with_more_columns_quotes_and_spaces_are_read() {
        let mut b = Builder::new();
        let text = b"phone,last_name\n2145550100,SMITH\n\"214-555-0101\",\"O'NEIL\"\n 214 , 5550102 \n(214) 555-0103\t\n2145550104|X\n,SMITH\n2145550105,2145550106\n";
        let c = b.add_text("ma.csv", text);
        assert_eq!((c.rows, c.accepted, c.rejected), (8, 5, 3), "{c:?}");
        assert!(
            String::from_utf8_lossy(&b.rejects.jsonl)
                .contains("\"line\":8,\"reason\":\"SEVERAL_NUMBERS\""),
            "two numbers on a line are refused whole, not half-read"
        );
        let rejects = String::from_utf8(b.rejects.jsonl.clone()).unwrap();
        assert!(rejects.contains("\"line\":1,"), "the header: {rejects}");
        assert!(
            rejects.contains("\"line\":7,\"reason\":\"EMPTY\""),
            "{rejects}"
        );
        let area = b.areas[214].take().unwrap().finish();
        for local in 5_550_100..=5_550_104 {
            assert!(area.contains(local), "{local}");
        }
    }

    #[test]
    fn unknown_area_codes_are_kept_and_flagged() {
        let rules = AreaRules::new();
        // An N9X-free, non-N11 area code not assigned today: kept, flagged.
        let unassigned = (200..1000u16)
            .find(|npa| rules.unknown(*npa))
            .expect("some area code is unassigned");
        let mut b = Builder::new();
        let c = b.add_text("f", format!("{unassigned},5550100\n").as_bytes());
        assert_eq!(c.accepted, 1);
        assert!(b.unknown_area_codes.contains(&unassigned));
    }

    #[test]
    fn change_lines_are_read_or_rejected_by_line() {
        let rules = AreaRules::new();
        let mut rejects = Rejects::default();
        let (mut seq, mut out) = (0, Vec::new());
        let text = b"2024561234,2026-11-02T10:00:00,A\n2024561234,2026-11-02T11:00:00,d\n2024561235,2026-11-02,A\n2024561236,2026-11-02T10:00:00,X\n2024561237\n0204561234,2026-11-02T10:00:00,A\n";
        let rejected = read_changes("c", text, &rules, &mut rejects, &mut seq, &mut out);
        assert_eq!((out.len(), rejected), (2, 4));
        assert!(out[0].add && !out[1].add);
        let r = String::from_utf8(rejects.jsonl).unwrap();
        for reason in [
            "BAD_TIMESTAMP",
            "BAD_CHANGE_TYPE",
            "BAD_LINE",
            "INVALID_AREA_CODE",
        ] {
            assert!(r.contains(reason), "{reason}: {r}");
        }
    }
}
