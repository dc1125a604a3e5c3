//! Delimited files: the delimiter sniffed, fields split with quotes, the phone and other columns found by header,
//! records that span lines joined (bounded, so an unterminated quote cannot swallow the file).

use super::*;

pub(super) const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// The delimiter whose count per line is most consistent (and non-zero); comma when no candidate appears.
pub(super) fn sniff_delimiter(lines: &[&[u8]]) -> u8 {
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

pub(super) fn count_unquoted(line: &[u8], d: u8) -> usize {
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
pub(super) fn split_fields(
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

pub(super) fn header_key(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Headers that name a phone column for sure. Besides these, any header ending in `phone`, `phonenumber`, `mobile`,
/// `cell` or `cellphone` (`home_phone`, `Work Phone`, `cell_phone`), or `phone` followed by digits (`phone2`).
pub(super) const PHONE_NAMES: [&str; 10] = [
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
pub(super) const MAYBE_PHONE_NAMES: [&str; 2] = ["number", "num"];

pub(super) fn names_a_phone(key: &str) -> bool {
    PHONE_NAMES.contains(&key)
        || ["phone", "phonenumber", "mobile", "cell", "cellphone"]
            .iter()
            .any(|suffix| key.len() > suffix.len() && key.ends_with(suffix))
        || key
            .strip_prefix("phone")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}
pub(super) const EXPIRATION_NAMES: [&str; 5] = [
    "expiration",
    "expires",
    "expirationdate",
    "expiry",
    "expiresat",
];

pub(super) struct Columns {
    /// The (first) phone column.
    phone: usize,
    /// Every phone column with its header, when the file has several (opt-out exports often carry home, work and
    /// cell numbers): each non-empty one is a row of its own. Empty for a single phone column.
    phones: Vec<(usize, String)>,
    expiration: Option<usize>,
    source: Option<usize>,
    jurisdiction: Option<usize>,
    state: Option<usize>,
}

impl Columns {
    fn single(phone: usize) -> Columns {
        Columns {
            phone,
            phones: Vec::new(),
            expiration: None,
            source: None,
            jurisdiction: None,
            state: None,
        }
    }
}

/// Headers that name the contact's address state (header keys: lower case, letters and digits only).
const STATE_NAMES: [&str; 5] = [
    "state",
    "addressstate",
    "stateprovince",
    "province",
    "contactstate",
];

pub(super) fn find_columns(fields: &[String], options: &ReadOptions) -> Option<Columns> {
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
        state: position(&STATE_NAMES),
    })
}

/// Whether every quoted field of `record` is closed, each closing quote followed by the delimiter or the end (spaces
/// allowed): what a well-formed multi-line field looks like once its lines are joined.
pub(super) fn closes_cleanly(record: &[u8], delim: u8) -> bool {
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
pub(super) fn reads_as_record(line: &[u8], delim: u8, phone: usize) -> bool {
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

pub(super) fn read_delimited(
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
        // Several phone columns: every one holding something other than a placeholder is a row (a record with all
        // of them empty is one row, rejected like any row without a number). `N/A`, `none`, `null`, `-` in a phone
        // column of such a file say "no second number", as an empty field does: not a row, so not a reject.
        let mut emitted = false;
        for (i, name) in &cols.phones {
            if is_placeholder(trim(field(*i))) {
                continue;
            }
            emitted = true;
            on_event(RowEvent::Row {
                line,
                phone: field(*i),
                expiration: opt(cols.expiration),
                source: opt(cols.source),
                jurisdiction: opt(cols.jurisdiction),
                state: opt(cols.state),
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
            state: opt(cols.state),
            stray_quote,
            column: None,
        });
    }
    detected.lines = lines.line_no;
    Ok(detected)
}

/// Whether a phone field of a file with several phone columns says "no number": empty, or a placeholder spreadsheets
/// and exports write (`N/A`, `n/a`, `none`, `null`, `-`, any case).
fn is_placeholder(field: &[u8]) -> bool {
    const PLACEHOLDERS: [&[u8]; 5] = [b"n/a", b"na", b"none", b"null", b"-"];
    field.is_empty() || PLACEHOLDERS.iter().any(|p| field.eq_ignore_ascii_case(p))
}
