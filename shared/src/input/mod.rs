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

mod delimited;
mod fcc;

use delimited::*;
use fcc::*;

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
        /// The I/O error (a missing file, a truncated compressed stream, …).
        source: io::Error,
    },
    /// The content is binary, not text.
    #[error("cannot read {file}: binary content, not a text file of phone numbers")]
    Binary {
        /// The file (and archive member), as named to the reader.
        file: String,
    },
    /// The archive is damaged or empty.
    #[error("cannot read archive {file}: {reason}")]
    Archive {
        /// The archive, as named to the reader.
        file: String,
        /// What the archive reader refused (a damaged header, no member, …).
        reason: String,
    },
    /// No phone column could be found. The message never quotes the first line: it may be data (names, numbers).
    #[error(
        "cannot read {file}: no phone column among the {fields} fields of the first line (none is named like a \
         phone column, e.g. phone, phone_number, telephone, number); name one with --column NAME or --column N"
    )]
    NoPhoneColumn {
        /// The file (and archive member), as named to the reader.
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

/// How a file's rows are laid out, detected from its first lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// A national registry download: `NPA,NNNNNNN` (or ten-digit) lines, no header.
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
    /// The header line (skipped; counted in `header_lines`).
    Header,
    /// A blank line (or a record of empty fields).
    Blank,
    /// A data row: its phone field and, when the file has them, the optional columns.
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
        /// The contact's address state (`state`, `address state`, `province` column), if the file has one: campaign
        /// exports carry it, and calling hours apply its rules and zones.
        state: Option<&'a [u8]>,
        /// The row opened a quote that would have swallowed the next record: its quotes were read literally.
        stray_quote: bool,
        /// The phone column's header, when the file has several phone columns (each non-empty one is a row).
        column: Option<&'a str>,
    },
    /// A data row that cannot be read.
    Problem {
        /// 1-based line where the record starts.
        line: u64,
        /// Why the row cannot be read (recorded as its reject reason).
        problem: RowProblem,
        /// The start of the raw line.
        raw: &'a [u8],
    },
}

/// What the reader found out about the file.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detected {
    /// The layout detected (registry download, delimited with a header, or one column).
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
