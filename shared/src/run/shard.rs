//! The shard line: one accepted entry as `normalize` writes it and `upload`, `cooldown` and `check` read it.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use thiserror::Error;

use crate::phone::E164;

/// One line of a shard, as `normalize` wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardEntry {
    /// The number in E.164.
    pub phone_number: String,
    /// Where the opt-out applies (`US-TX`, `GB`, …), as the normalize step tagged it.
    pub jurisdiction: String,
    /// RFC 3339 or `None` (the list's default).
    pub expiration_date: Option<String>,
    /// The source the entry came from (the file's source tag); kept when the entry is sent again.
    pub source: String,
    /// The line of the source file the number was read on (1-based), for the evidence.
    pub line: u64,
    /// What the normalizer noted on the row and accepted it anyway (`EXPIRATION_UNREADABLE`, `JURISDICTION_IGNORED`,
    /// `STRAY_QUOTE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// A shard line that does not parse: which shard and line, and why, never the line itself (it holds a number).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what}: {reason}")]
pub struct ShardLineError {
    /// The shard and the line.
    pub what: String,
    /// What the parser said, with any quoted value removed.
    pub reason: String,
}

/// Read a shard's JSON lines.
pub fn parse_shard(text: &str, what: &str) -> Result<Vec<ShardEntry>, ShardLineError> {
    Ok(parse_shard_with_ends(text, what)?.0)
}

/// The entries of a shard text, each with the byte offset just past its line: where a resumed upload's ranged read
/// of the shard starts after it.
pub fn parse_shard_with_ends(
    text: &str,
    what: &str,
) -> Result<(Vec<ShardEntry>, Vec<u64>), ShardLineError> {
    let mut entries = Vec::new();
    let mut ends = Vec::new();
    let mut at = 0u64;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        at += line.len() as u64;
        let l = line.trim_end_matches(['\n', '\r']);
        if l.trim().is_empty() {
            continue;
        }
        entries.push(serde_json::from_str(l).map_err(|e| ShardLineError {
            what: format!("{what} line {}", i + 1),
            reason: crate::redact::json_error(&e),
        })?);
        ends.push(at);
    }
    Ok((entries, ends))
}

/// What a line carries beyond its number, jurisdiction and line number; registry rows (the bulk) carry nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineExtras<'a> {
    /// The entry's expiration; `None` is the list's default (`null`).
    pub expiration: Option<DateTime<Utc>>,
    /// The row's own source; `None` is the run's default source.
    pub source: Option<&'a str>,
}

/// Writes shard lines exactly as serde writes a [`ShardEntry`], without serde: normalize writes one per accepted
/// number (hundreds of millions for the national registry), so the parts of a line fixed for the whole run are
/// encoded once. The round-trip test below keeps this writer and the [`ShardEntry`] reader one format.
#[derive(Debug, Clone)]
pub struct ShardLineWriter {
    /// The run's default `source`, as a JSON string.
    default_source_json: Vec<u8>,
    /// `","expirationDate":null,"source":<default>,"line":`, what follows the jurisdiction on a line without extras.
    plain_tail: Vec<u8>,
}

impl ShardLineWriter {
    /// A writer for a run whose entries' `source` is `default_source` unless a row says otherwise.
    pub fn new(default_source: &str) -> ShardLineWriter {
        let mut default_source_json = Vec::new();
        json_str(&mut default_source_json, default_source);
        let mut plain_tail = b"\",\"expirationDate\":null,\"source\":".to_vec();
        plain_tail.extend_from_slice(&default_source_json);
        plain_tail.extend_from_slice(b",\"line\":");
        ShardLineWriter {
            default_source_json,
            plain_tail,
        }
    }

    /// Append one line (and its newline) to `buf`. `jurisdiction` is an ISO 3166 code (`US-DC`: nothing to escape).
    pub fn write<'f>(
        &self,
        buf: &mut Vec<u8>,
        e164: &E164,
        jurisdiction: &str,
        extras: Option<LineExtras<'_>>,
        line: u64,
        flags: impl Iterator<Item = &'f str>,
    ) {
        buf.extend_from_slice(b"{\"phoneNumber\":\"");
        e164.write_to(buf);
        buf.extend_from_slice(b"\",\"jurisdiction\":\"");
        buf.extend_from_slice(jurisdiction.as_bytes());
        match extras {
            // Registry rows: everything after the jurisdiction up to the line number is the same on every row.
            None => buf.extend_from_slice(&self.plain_tail),
            Some(x) => {
                buf.extend_from_slice(b"\",\"expirationDate\":");
                match x.expiration {
                    Some(when) => {
                        // Writing to a Vec cannot fail.
                        let _ = write!(buf, "\"{}\"", when.format("%Y-%m-%dT%H:%M:%SZ"));
                    }
                    None => buf.extend_from_slice(b"null"),
                }
                buf.extend_from_slice(b",\"source\":");
                match x.source {
                    Some(s) => json_str(buf, s),
                    None => buf.extend_from_slice(&self.default_source_json),
                }
                buf.extend_from_slice(b",\"line\":");
            }
        }
        let mut digits = [0u8; 20];
        buf.extend_from_slice(fmt_u64(line, &mut digits));
        let mut flags = flags.peekable();
        if flags.peek().is_some() {
            buf.extend_from_slice(b",\"flags\":[");
            for (i, name) in flags.enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                // Flag names are our own upper-case constants: nothing to escape.
                buf.push(b'"');
                buf.extend_from_slice(name.as_bytes());
                buf.push(b'"');
            }
            buf.push(b']');
        }
        buf.extend_from_slice(b"}\n");
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_shard_line_is_named_without_quoting_its_number() {
        let text = concat!(
            r#"{"phoneNumber":"+12025550001","jurisdiction":"US-DC","expirationDate":null,"source":"s","line":1}"#,
            "\n",
            r#"{"phoneNumber":"+12025550002","jurisdiction":"US-DC","expirationDate":null,"source":"s","line":"+12025550002"}"#,
        );
        let err = parse_shard(text, "runs/r/shards/00001.jsonl").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("runs/r/shards/00001.jsonl line 2"),
            "{message}"
        );
        assert!(!message.contains("5550002"), "{message}");
    }

    #[test]
    fn shard_entry_ends_let_a_resumed_upload_read_from_its_cursor() {
        let line = |n: &str| {
            format!(
                "{{\"phoneNumber\":\"{n}\",\"jurisdiction\":\"US-DC\",\"expirationDate\":null,\"source\":\"s\",\"line\":1,\"flags\":[]}}\n"
            )
        };
        let text = format!(
            "{}\n{}{}",
            line("+12025550001"),
            line("+12025550002"),
            line("+12025550003")
        );
        let (entries, ends) = parse_shard_with_ends(&text, "shard").unwrap();
        assert_eq!(entries.len(), 3);
        // Reading from the end of entry 0 gives entries 1 and 2 (the blank line in between is skipped).
        let (rest, _) = parse_shard_with_ends(&text[ends[0] as usize..], "shard").unwrap();
        assert_eq!(
            rest.iter()
                .map(|e| e.phone_number.as_str())
                .collect::<Vec<_>>(),
            ["+12025550002", "+12025550003"]
        );
        assert_eq!(ends[2] as usize, text.len());
    }

    /// The writer and the reader are one format: every shape of line the writer makes is byte for byte what serde
    /// makes of the same [`ShardEntry`], and reads back as it.
    #[test]
    fn the_line_writer_writes_what_serde_writes_and_reads() {
        let writer = ShardLineWriter::new("FCC \"national\" registry");
        let when = DateTime::parse_from_rfc3339("2031-07-04T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        // (digits, jurisdiction, extras, line, flags)
        type Case<'a> = (u64, &'a str, Option<LineExtras<'a>>, u64, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            (12025550143, "US-DC", None, 1, vec![]),
            (442079460000, "GB", None, u64::MAX, vec!["UNVERIFIED_RANGE"]),
            (
                12025550144,
                "US-TX",
                Some(LineExtras {
                    expiration: Some(when),
                    source: Some("opt-out \\ web\nform"),
                }),
                0,
                vec!["STRAY_QUOTE", "JURISDICTION_IGNORED"],
            ),
            (
                18095550100,
                "DO",
                Some(LineExtras {
                    expiration: None,
                    source: None,
                }),
                42,
                vec![],
            ),
        ];
        for (digits, jurisdiction, extras, line, flags) in cases {
            let mut written = Vec::new();
            writer.write(
                &mut written,
                &E164::from_packed(digits).unwrap(),
                jurisdiction,
                extras,
                line,
                flags.iter().copied(),
            );
            let expected = ShardEntry {
                phone_number: format!("+{digits}"),
                jurisdiction: jurisdiction.into(),
                expiration_date: extras
                    .and_then(|x| x.expiration)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                source: extras
                    .and_then(|x| x.source)
                    .unwrap_or("FCC \"national\" registry")
                    .into(),
                line,
                flags: flags.iter().map(|f| f.to_string()).collect(),
            };
            let text = String::from_utf8(written).unwrap();
            assert_eq!(text, serde_json::to_string(&expected).unwrap() + "\n");
            assert_eq!(parse_shard(&text, "shard").unwrap(), vec![expected]);
        }
    }
}
