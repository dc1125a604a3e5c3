//! Streaming readers for DNC source files.
//!
//! - FCC National DNC Registry downloads: one 10-digit number a line, or `areacode,number` pairs.
//! - Delimited files (comma, tab, semicolon, pipe) with a header naming the phone column, or a single column with or
//!   without a header. Quoted fields may hold delimiters and newlines; an unterminated quote is read literally after
//!   a bounded look-ahead, so it can never swallow the rest of the file.
//!
//! Rows arrive through a callback as [`RowEvent`]s carrying their source line number. Nothing here loads a whole
//! file: memory is bounded by the longest line kept (1 MiB; longer lines are reported and skipped).

pub mod decode;

use std::io::{self, BufRead};

use memchr::memchr2;
use thiserror::Error;

/// A file that cannot be read at all. Bad rows never produce this: they are rejected one by one.
#[derive(Debug, Error)]
pub enum InputError {
    /// Reading failed (missing file, truncated compressed stream, …).
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file (and archive member).
        file: String,
        /// The cause.
        source: io::Error,
    },
    /// The content is binary, not text.
    #[error("cannot read {file}: binary content, not a text file of phone numbers")]
    Binary {
        /// The file.
        file: String,
    },
    /// The archive is damaged or empty.
    #[error("cannot read archive {file}: {reason}")]
    Archive {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// No phone column could be found. The message never quotes the first line: it may be data (names, numbers).
    #[error(
        "cannot read {file}: no phone column among the {fields} fields of the first line (none is named like a \
         phone column, e.g. phone, phone_number, telephone, number); name one with --column NAME or --column N"
    )]
    NoPhoneColumn {
        /// The file.
        file: String,
        /// How many fields the first line has.
        fields: usize,
    },
}

impl InputError {
    pub(crate) fn io(file: &str, source: io::Error) -> InputError {
        InputError::Io {
            file: file.to_string(),
            source,
        }
    }
}

/// The layout detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// FCC registry download.
    Fcc,
    /// Delimited with a header.
    Delimited,
    /// One column, no header.
    SingleColumn,
}

/// Options of the row readers.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The phone column's header name, or its 1-based position; overrides detection.
    pub column: Option<String>,
}

/// A row-level problem found before normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowProblem {
    /// The row has fewer fields than the phone column's position.
    MissingField,
    /// The line exceeds the 1 MiB limit; its start is kept for the record.
    LineTooLong,
}

impl RowProblem {
    /// Stable code for `rejects.jsonl`.
    pub fn code(self) -> &'static str {
        match self {
            RowProblem::MissingField => "MISSING_FIELD",
            RowProblem::LineTooLong => "LINE_TOO_LONG",
        }
    }
}

/// One thing read from the file.
#[derive(Debug)]
pub enum RowEvent<'a> {
    /// The header line.
    Header,
    /// A blank line (or a record of empty fields).
    Blank,
    /// A data row.
    Row {
        /// 1-based line where the record starts.
        line: u64,
        /// The phone field, as written.
        phone: &'a [u8],
        /// The expiration field, if the file has one.
        expiration: Option<&'a [u8]>,
        /// The source field, if the file has one.
        source: Option<&'a [u8]>,
        /// The jurisdiction field, if the file has one.
        jurisdiction: Option<&'a [u8]>,
        /// The row opened a quote that would have swallowed the next record: its quotes were read literally.
        stray_quote: bool,
        /// The phone column's header, when the file has several phone columns (each non-empty one is a row).
        column: Option<&'a str>,
    },
    /// A data row that cannot be read.
    Problem {
        /// 1-based line.
        line: u64,
        /// What is wrong.
        problem: RowProblem,
        /// The start of the raw line.
        raw: &'a [u8],
    },
}

/// What the reader found out about the file.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detected {
    /// The layout.
    pub layout: Layout,
    /// The delimiter, for delimited files.
    pub delimiter: Option<String>,
    /// The phone column's header, if any.
    pub phone_column: Option<String>,
    /// Physical lines read (LF, CRLF and lone CR each end one).
    pub lines: u64,
    /// Data records (a record with several phone columns is one record and several rows).
    pub records: u64,
    /// Lines joined to the line before them by a multi-line quoted field.
    pub continuation_lines: u64,
}

/// Longest line kept whole.
pub const MAX_LINE: usize = 1 << 20;
/// How many physical lines a quoted field may span before its quote is taken literally.
const MAX_RECORD_LINES: usize = 64;
const RAW_KEEP: usize = 256;

/// Reads physical lines with a bounded length, ended by LF, CRLF or a lone CR.
struct LineReader<R> {
    inner: R,
    line_no: u64,
}

enum Line {
    Ok,
    TooLong,
}

impl<R: BufRead> LineReader<R> {
    /// Read the next line (without terminator) into `buf`. `None` at the end. LF, CRLF and a lone CR each end a
    /// line, whatever the file mostly uses: files concatenated from several exports mix them, and a lone CR read as
    /// part of a line would hide the record after it.
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<Line>> {
        buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let found = memchr2(b'\n', b'\r', chunk);
            let take = found.unwrap_or(chunk.len());
            if !too_long {
                let room = MAX_LINE.saturating_sub(buf.len());
                if take > room {
                    buf.extend_from_slice(&chunk[..room]);
                    too_long = true;
                } else {
                    buf.extend_from_slice(&chunk[..take]);
                }
            }
            match found {
                None => self.inner.consume(take),
                Some(i) => {
                    let cr = chunk[i] == b'\r';
                    let lf_follows = chunk.get(i + 1) == Some(&b'\n');
                    let at_chunk_end = i + 1 == chunk.len();
                    self.inner
                        .consume(if cr && lf_follows { take + 2 } else { take + 1 });
                    if cr && at_chunk_end {
                        // CRLF split across reads: the LF belongs to this line's end.
                        if self.inner.fill_buf()?.first() == Some(&b'\n') {
                            self.inner.consume(1);
                        }
                    }
                    break;
                }
            }
        }
        self.line_no += 1;
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(if too_long { Line::TooLong } else { Line::Ok }))
    }
}

/// Read every row of one text part, calling `on_event` for each.
pub fn read_rows(
    file: &str,
    mut reader: Box<dyn BufRead + '_>,
    options: &ReadOptions,
    mut on_event: impl FnMut(RowEvent<'_>),
) -> Result<Detected, InputError> {
    let sample = reader
        .fill_buf()
        .map_err(|e| InputError::io(file, e))?
        .to_vec();
    let sample_lines: Vec<&[u8]> = sample
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .take(50)
        .collect();
    // The last sampled line may be cut by the sample boundary: judge on complete lines when there are several.
    let judged = if sample_lines.len() > 1 && sample.len() >= 4096 {
        &sample_lines[..sample_lines.len() - 1]
    } else {
        &sample_lines[..]
    };
    let mut lines = LineReader {
        inner: reader,
        line_no: 0,
    };
    if options.column.is_none() && !judged.is_empty() && judged.iter().all(|l| is_fcc_line(l)) {
        let (lines, blank) = read_fcc(file, &mut lines, &mut on_event)?;
        return Ok(Detected {
            layout: Layout::Fcc,
            delimiter: None,
            phone_column: None,
            lines,
            records: lines - blank,
            continuation_lines: 0,
        });
    }
    let delimiter = sniff_delimiter(judged);
    read_delimited(file, &mut lines, delimiter, options, &mut on_event)
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn is_fcc_line(l: &[u8]) -> bool {
    let l = trim(l);
    (l.len() == 10 && l.iter().all(u8::is_ascii_digit))
        || (l.len() >= 11 && {
            match l.iter().position(|&b| b == b',') {
                Some(3) => {
                    l[..3].iter().all(u8::is_ascii_digit)
                        && trim(&l[4..]).len() == 7
                        && trim(&l[4..]).iter().all(u8::is_ascii_digit)
                }
                _ => false,
            }
        })
}

/// FCC files are the bulk of the data: lines are cut straight out of a 1 MiB buffer, without copying. Returns the
/// physical lines read and how many of them were blank.
fn read_fcc(
    file: &str,
    lines: &mut LineReader<Box<dyn BufRead + '_>>,
    on_event: &mut impl FnMut(RowEvent<'_>),
) -> Result<(u64, u64), InputError> {
    let blank = std::cell::Cell::new(0u64);
    let mut buf = vec![0u8; MAX_LINE];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line = lines.line_no;
    // Head of a line longer than the buffer, while the rest of it is skipped.
    let mut too_long: Option<Vec<u8>> = None;
    let mut joined = [0u8; 10];
    let mut emit = |l: &[u8], line: u64, too_long: &mut Option<Vec<u8>>| {
        if let Some(head) = too_long.take() {
            on_event(RowEvent::Problem {
                line,
                problem: RowProblem::LineTooLong,
                raw: &head,
            });
            return;
        }
        let l = trim(l);
        if l.is_empty() {
            blank.set(blank.get() + 1);
            on_event(RowEvent::Blank);
            return;
        }
        // `areacode,number`: join the two parts; anything else goes to the normalizer as written.
        let phone: &[u8] = match l.iter().position(|&b| b == b',') {
            Some(3) if trim(&l[4..]).len() == 7 => {
                joined[..3].copy_from_slice(&l[..3]);
                joined[3..].copy_from_slice(trim(&l[4..]));
                &joined
            }
            _ => l,
        };
        on_event(RowEvent::Row {
            line,
            phone,
            expiration: None,
            source: None,
            jurisdiction: None,
            stray_quote: false,
            column: None,
        });
    };
    loop {
        // LF, CRLF and a lone CR each end a line (see `LineReader::next`); a CR at the end of the buffer waits for
        // the next read, which says whether an LF follows.
        while let Some(i) = memchr2(b'\n', b'\r', &buf[start..end]) {
            let at = start + i;
            let mut next = at + 1;
            if buf[at] == b'\r' {
                if next == end {
                    break;
                }
                if buf[next] == b'\n' {
                    next += 1;
                }
            }
            line += 1;
            emit(&buf[start..at], line, &mut too_long);
            start = next;
        }
        buf.copy_within(start..end, 0);
        end -= start;
        start = 0;
        if end == buf.len() {
            // A line longer than the buffer: keep its head for the record, skip the rest.
            too_long.get_or_insert_with(|| buf[..RAW_KEEP].to_vec());
            end = 0;
        }
        let n =
            read_some(&mut lines.inner, &mut buf[end..]).map_err(|e| InputError::io(file, e))?;
        if n == 0 {
            if end > 0 || too_long.is_some() {
                line += 1;
                emit(&buf[..end], line, &mut too_long);
            }
            return Ok((line, blank.get()));
        }
        end += n;
    }
}

fn read_some(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// The delimiter whose count per line is most consistent (and non-zero); comma when no candidate appears.
fn sniff_delimiter(lines: &[&[u8]]) -> u8 {
    let mut best = (b',', 0usize);
    for d in DELIMITERS {
        let counts: Vec<usize> = lines.iter().map(|l| count_unquoted(l, d)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        if first == 0 {
            continue;
        }
        let agreeing = counts.iter().filter(|&&c| c == first).count();
        let score = agreeing * 1000 + first;
        if score > best.1 {
            best = (d, score);
        }
    }
    best.0
}

fn count_unquoted(line: &[u8], d: u8) -> usize {
    let mut quoted = false;
    line.iter()
        .filter(|&&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            b == d && !quoted
        })
        .count()
}

/// Split one record into fields. `quotes`: honour RFC 4180 quoting. Returns `false` when a quote is still open.
fn split_fields(
    record: &[u8],
    delim: u8,
    quotes: bool,
    out: &mut Vec<u8>,
    ranges: &mut Vec<(usize, usize)>,
) -> bool {
    out.clear();
    ranges.clear();
    let mut i = 0;
    let n = record.len();
    loop {
        let start = out.len();
        // Leading spaces before an opening quote are allowed (`a, "b"`).
        let mut j = i;
        while j < n && record[j] == b' ' {
            j += 1;
        }
        if quotes && j < n && record[j] == b'"' {
            i = j + 1;
            let mut closed = false;
            while i < n {
                if record[i] == b'"' {
                    if i + 1 < n && record[i + 1] == b'"' {
                        out.push(b'"');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    i += 1;
                    break;
                }
                out.push(record[i]);
                i += 1;
            }
            if !closed {
                return false;
            }
            // Anything after the closing quote up to the delimiter is kept, leniently.
            while i < n && record[i] != delim {
                out.push(record[i]);
                i += 1;
            }
        } else {
            while i < n && record[i] != delim {
                out.push(record[i]);
                i += 1;
            }
        }
        ranges.push((start, out.len()));
        if i >= n {
            return true;
        }
        i += 1; // the delimiter
        if i == n {
            ranges.push((out.len(), out.len()));
            return true;
        }
    }
}

fn header_key(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Headers that name a phone column for sure. Besides these, any header ending in `phone`, `phonenumber`, `mobile`,
/// `cell` or `cellphone` (`home_phone`, `Work Phone`, `cell_phone`), or `phone` followed by digits (`phone2`).
const PHONE_NAMES: [&str; 10] = [
    "phone",
    "phonenumber",
    "telephone",
    "telephonenumber",
    "tel",
    "phoneno",
    "mobile",
    "msisdn",
    "cell",
    "mobilenumber",
];

/// Headers that may name a phone column or something else (a row id): used only when no header names a phone
/// column for sure, and only when exactly one of them is there.
const MAYBE_PHONE_NAMES: [&str; 2] = ["number", "num"];

fn names_a_phone(key: &str) -> bool {
    PHONE_NAMES.contains(&key)
        || ["phone", "phonenumber", "mobile", "cell", "cellphone"]
            .iter()
            .any(|suffix| key.len() > suffix.len() && key.ends_with(suffix))
        || key
            .strip_prefix("phone")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}
const EXPIRATION_NAMES: [&str; 5] = [
    "expiration",
    "expires",
    "expirationdate",
    "expiry",
    "expiresat",
];

struct Columns {
    /// The (first) phone column.
    phone: usize,
    /// Every phone column with its header, when the file has several (opt-out exports often carry home, work and
    /// cell numbers): each non-empty one is a row of its own. Empty for a single phone column.
    phones: Vec<(usize, String)>,
    expiration: Option<usize>,
    source: Option<usize>,
    jurisdiction: Option<usize>,
}

impl Columns {
    fn single(phone: usize) -> Columns {
        Columns {
            phone,
            phones: Vec::new(),
            expiration: None,
            source: None,
            jurisdiction: None,
        }
    }
}

fn find_columns(fields: &[String], options: &ReadOptions) -> Option<Columns> {
    let keys: Vec<String> = fields.iter().map(|f| header_key(f.as_bytes())).collect();
    let position = |names: &[&str]| keys.iter().position(|k| names.contains(&k.as_str()));
    let phones: Vec<usize> = match &options.column {
        Some(c) => {
            let wanted = header_key(c.as_bytes());
            vec![keys.iter().position(|k| *k == wanted)?]
        }
        None => {
            let sure: Vec<usize> = (0..keys.len())
                .filter(|&i| names_a_phone(&keys[i]))
                .collect();
            let maybe: Vec<usize> = (0..keys.len())
                .filter(|&i| MAYBE_PHONE_NAMES.contains(&keys[i].as_str()))
                .collect();
            // `Number,Phone`: the phone column wins, the row id is never read as one. Two `Number` columns and
            // nothing else: ambiguous, never guessed.
            match (sure.is_empty(), maybe.len()) {
                (false, _) => sure,
                (true, 1) => maybe,
                _ => return None,
            }
        }
    };
    Some(Columns {
        phone: phones[0],
        phones: if phones.len() > 1 {
            phones
                .iter()
                .map(|&i| (i, fields[i].trim().to_string()))
                .collect()
        } else {
            Vec::new()
        },
        expiration: position(&EXPIRATION_NAMES),
        source: position(&["source"]),
        jurisdiction: position(&["jurisdiction"]),
    })
}

/// Whether every quoted field of `record` is closed, each closing quote followed by the delimiter or the end (spaces
/// allowed): what a well-formed multi-line field looks like once its lines are joined.
fn closes_cleanly(record: &[u8], delim: u8) -> bool {
    let n = record.len();
    let mut i = 0;
    loop {
        let mut j = i;
        while j < n && record[j] == b' ' {
            j += 1;
        }
        if j < n && record[j] == b'"' {
            i = j + 1;
            loop {
                if i >= n {
                    return false;
                }
                if record[i] == b'"' {
                    if record.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            while i < n && record[i] == b' ' {
                i += 1;
            }
            if i < n && record[i] != delim {
                return false;
            }
        } else {
            while i < n && record[i] != delim {
                i += 1;
            }
        }
        if i >= n {
            return true;
        }
        i += 1;
    }
}

/// Whether `line`, on its own, is a complete record whose phone column holds a dialable number (read with quotes,
/// or literally when its own quotes do not balance).
fn reads_as_record(line: &[u8], delim: u8, phone: usize) -> bool {
    let (mut out, mut ranges) = (Vec::new(), Vec::new());
    if !split_fields(line, delim, true, &mut out, &mut ranges) {
        split_fields(line, delim, false, &mut out, &mut ranges);
    }
    ranges.get(phone).is_some_and(|&(s, e)| {
        let field = trim(&out[s..e]);
        field.iter().filter(|b| b.is_ascii_digit()).count() >= 7
            && crate::phone::Normalizer::new(crate::phone::DefaultRegion::US)
                .normalize_bytes(field)
                .is_ok()
    })
}

fn read_delimited(
    file: &str,
    lines: &mut LineReader<Box<dyn BufRead + '_>>,
    delim: u8,
    options: &ReadOptions,
    on_event: &mut impl FnMut(RowEvent<'_>),
) -> Result<Detected, InputError> {
    let io_err = |e| InputError::io(file, e);
    // Physical lines read ahead for a quoted field and handed back when its quote turns out to be unterminated.
    let mut pending: std::collections::VecDeque<(u64, Vec<u8>, bool)> = Default::default();
    let next_line = |lines: &mut LineReader<Box<dyn BufRead + '_>>,
                     pending: &mut std::collections::VecDeque<(u64, Vec<u8>, bool)>|
     -> io::Result<Option<(u64, Vec<u8>, bool)>> {
        if let Some(p) = pending.pop_front() {
            return Ok(Some(p));
        }
        let mut buf = Vec::new();
        Ok(lines
            .next(&mut buf)?
            .map(|state| (lines.line_no, buf, matches!(state, Line::TooLong))))
    };
    let mut columns: Option<Columns> = None;
    let mut detected = Detected {
        layout: Layout::Delimited,
        delimiter: Some((delim as char).to_string()),
        phone_column: None,
        lines: 0,
        records: 0,
        continuation_lines: 0,
    };
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    let mut first = true;
    while let Some((line, mut record, too_long)) = next_line(lines, &mut pending).map_err(io_err)? {
        if too_long {
            detected.records += 1;
            on_event(RowEvent::Problem {
                line,
                problem: RowProblem::LineTooLong,
                raw: &record[..record.len().min(RAW_KEEP)],
            });
            continue;
        }
        if record.iter().all(u8::is_ascii_whitespace) {
            on_event(RowEvent::Blank);
            continue;
        }
        let mut stray_quote = false;
        if !split_fields(&record, delim, true, &mut out, &mut ranges) {
            // An open quote: join following lines until it closes, within bounds; but a line that reads as a
            // complete record with a dialable number is a record, not the rest of a field: the quote was stray.
            let mut taken = Vec::new();
            let mut closed = false;
            while taken.len() < MAX_RECORD_LINES && record.len() < MAX_LINE {
                let Some(next) = next_line(lines, &mut pending).map_err(io_err)? else {
                    break;
                };
                let joined_from = record.len();
                record.push(b'\n');
                record.extend_from_slice(&next.1);
                // A real multi-line field closes its quote cleanly (a delimiter or the end after it). If joining
                // this line does not, and the line is a record of its own, the quote was stray.
                if let Some(cols) = &columns {
                    if !next.2
                        && !closes_cleanly(&record, delim)
                        && reads_as_record(&next.1, delim, cols.phone)
                    {
                        record.truncate(joined_from);
                        pending.push_front(next);
                        break;
                    }
                }
                taken.push(next);
                if split_fields(&record, delim, true, &mut out, &mut ranges) {
                    closed = true;
                    detected.continuation_lines += taken.len() as u64;
                    break;
                }
            }
            if !closed {
                // Unterminated quote: read this line with quotes as literal characters (and flag it), re-read the
                // others.
                stray_quote = true;
                let first_len = record.len() - taken.iter().map(|t| t.1.len() + 1).sum::<usize>();
                record.truncate(first_len);
                for t in taken.into_iter().rev() {
                    pending.push_front(t);
                }
                split_fields(&record, delim, false, &mut out, &mut ranges);
            }
        }
        let field = |i: usize| -> &[u8] { ranges.get(i).map(|&(s, e)| &out[s..e]).unwrap_or(&[]) };
        if first {
            first = false;
            let names: Vec<String> = (0..ranges.len())
                .map(|i| String::from_utf8_lossy(trim(field(i))).into_owned())
                .collect();
            if let Some(found) = find_columns(&names, options) {
                detected.phone_column = Some(if found.phones.is_empty() {
                    names[found.phone].clone()
                } else {
                    found
                        .phones
                        .iter()
                        .map(|(_, n)| n.as_str())
                        .collect::<Vec<_>>()
                        .join("+")
                });
                columns = Some(found);
                on_event(RowEvent::Header);
                continue;
            }
            if let Some(c) = options
                .column
                .as_deref()
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|&c| c >= 1)
            {
                // A position: no header line unless the first row has no digit in that column.
                columns = Some(Columns::single(c - 1));
                detected.phone_column = Some(format!("#{c}"));
                if !field(c - 1).iter().any(u8::is_ascii_digit) {
                    on_event(RowEvent::Header);
                    continue;
                }
            } else if ranges.len() == 1 || ranges.iter().skip(1).all(|&(s, e)| s == e) {
                detected.layout = Layout::SingleColumn;
                detected.delimiter = None;
                columns = Some(Columns::single(0));
                if !field(0).iter().any(u8::is_ascii_digit) {
                    // A header we do not know ("DNC numbers"): a title, not data.
                    on_event(RowEvent::Header);
                    continue;
                }
            } else {
                return Err(InputError::NoPhoneColumn {
                    file: file.to_string(),
                    fields: names.len(),
                });
            }
        }
        let cols = columns.as_ref().expect("columns set on the first record");
        if (0..ranges.len()).all(|i| trim(field(i)).is_empty()) {
            on_event(RowEvent::Blank);
            continue;
        }
        detected.records += 1;
        if cols.phone >= ranges.len() {
            on_event(RowEvent::Problem {
                line,
                problem: RowProblem::MissingField,
                raw: &record[..record.len().min(RAW_KEEP)],
            });
            continue;
        }
        let opt = |c: Option<usize>| c.map(field).map(trim).filter(|f| !f.is_empty());
        // Several phone columns: every non-empty one is a row (a record with all of them empty is one row, rejected
        // like any row without a number).
        let mut emitted = false;
        for (i, name) in &cols.phones {
            if trim(field(*i)).is_empty() {
                continue;
            }
            emitted = true;
            on_event(RowEvent::Row {
                line,
                phone: field(*i),
                expiration: opt(cols.expiration),
                source: opt(cols.source),
                jurisdiction: opt(cols.jurisdiction),
                stray_quote,
                column: Some(name),
            });
        }
        if emitted {
            continue;
        }
        on_event(RowEvent::Row {
            line,
            phone: field(cols.phone),
            expiration: opt(cols.expiration),
            source: opt(cols.source),
            jurisdiction: opt(cols.jurisdiction),
            stray_quote,
            column: None,
        });
    }
    detected.lines = lines.line_no;
    Ok(detected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Header,
        Blank,
        Row(u64, String, Option<String>),
        Problem(u64, &'static str),
    }

    fn events(text: &str, options: ReadOptions) -> (Vec<Ev>, Detected) {
        let mut evs = Vec::new();
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let det = read_rows(
            "t",
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            &options,
            |e| {
                evs.push(match e {
                    RowEvent::Header => Ev::Header,
                    RowEvent::Blank => Ev::Blank,
                    RowEvent::Row {
                        line,
                        phone,
                        expiration,
                        ..
                    } => Ev::Row(line, s(phone), expiration.map(s)),
                    RowEvent::Problem { line, problem, .. } => Ev::Problem(line, problem.code()),
                })
            },
        )
        .unwrap();
        (evs, det)
    }

    #[test]
    fn fcc_both_shapes_and_crlf() {
        let (evs, det) = events(
            "2025550198\r\n202,5550199\r\n\r\n4155550100\r\n",
            ReadOptions::default(),
        );
        assert_eq!(det.layout, Layout::Fcc);
        assert_eq!(
            evs,
            vec![
                Ev::Row(1, "2025550198".into(), None),
                Ev::Row(2, "2025550199".into(), None),
                Ev::Blank,
                Ev::Row(4, "4155550100".into(), None)
            ]
        );
    }

    #[test]
    fn csv_with_quotes_newlines_ragged_and_cr_only() {
        let text = "Name;Phone Number;Expires\r\"Doe; Jane\";\"(202) 555-0198\";2030-01-01\r\"multi\rline\";2025550199\rshort\r";
        let (evs, det) = events(text, ReadOptions::default());
        assert_eq!(det.delimiter.as_deref(), Some(";"));
        assert_eq!(det.phone_column.as_deref(), Some("Phone Number"));
        assert_eq!(
            evs,
            vec![
                Ev::Header,
                Ev::Row(2, "(202) 555-0198".into(), Some("2030-01-01".into())),
                Ev::Row(3, "2025550199".into(), None),
                Ev::Problem(5, "MISSING_FIELD"),
            ]
        );
    }

    #[test]
    fn unterminated_quote_does_not_swallow_the_file() {
        let mut text = String::from("phone,note\n2025550198,\"oops\n");
        for i in 0..100 {
            text.push_str(&format!("20255501{:02},ok\n", i % 100));
        }
        let (evs, _) = events(&text, ReadOptions::default());
        let rows = evs.iter().filter(|e| matches!(e, Ev::Row(..))).count();
        assert_eq!(rows, 101, "every line after the stray quote is still read");
        assert_eq!(evs[1], Ev::Row(2, "2025550198".into(), None));
        assert_eq!(evs[2], Ev::Row(3, "2025550100".into(), None));
    }

    #[test]
    fn single_column_with_and_without_header() {
        let (evs, det) = events("DNC numbers\n202-555-0198\n", ReadOptions::default());
        assert_eq!(det.layout, Layout::SingleColumn);
        assert_eq!(
            evs,
            vec![Ev::Header, Ev::Row(2, "202-555-0198".into(), None)]
        );
        let (evs, _) = events("(202) 555-0198\n415.555.0100\n", ReadOptions::default());
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn column_override_and_missing_phone_column() {
        let (evs, det) = events(
            "a,b\nx,2025550198\n",
            ReadOptions {
                column: Some("b".into()),
            },
        );
        assert_eq!(det.phone_column.as_deref(), Some("b"));
        assert_eq!(evs[1], Ev::Row(2, "2025550198".into(), None));
        let err = read_rows(
            "f.csv",
            Box::new(io::Cursor::new(b"Jane Roe,Boston\nx,y\n".to_vec())),
            &ReadOptions::default(),
            |_| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("no phone column"), "{err}");
        assert!(err.to_string().contains("2 fields"), "{err}");
        assert!(
            !err.to_string().contains("Jane") && !err.to_string().contains("Boston"),
            "the error never quotes a row: {err}"
        );
    }

    #[test]
    fn huge_line_is_reported_and_skipped() {
        let mut text = String::from("phone\n");
        text.push_str(&"9".repeat(MAX_LINE + 10));
        text.push_str("\n2025550198\n");
        let (evs, _) = events(&text, ReadOptions::default());
        assert_eq!(
            evs,
            vec![
                Ev::Header,
                Ev::Problem(2, "LINE_TOO_LONG"),
                Ev::Row(3, "2025550198".into(), None)
            ]
        );
    }
}
