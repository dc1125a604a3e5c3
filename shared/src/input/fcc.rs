//! FCC National DNC Registry downloads: one number a line, cut straight out of the buffer.

use super::*;

pub(super) fn is_fcc_line(l: &[u8]) -> bool {
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
pub(super) fn read_fcc(
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
            state: None,
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

pub(super) fn read_some(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
