//! Byte-level input handling: hashing the raw stream, decompression (gzip, zip), and text decoding (UTF-8 with or
//! without BOM, UTF-16 LE/BE with or without BOM), all streaming.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::InputError;

/// Identity of the raw bytes read so far: SHA-256 and size. Shared with the reader that feeds it.
#[derive(Clone, Default)]
pub struct StreamDigest(Arc<Mutex<(Sha256, u64)>>);

impl StreamDigest {
    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.lock().1
    }

    /// Hex SHA-256 of everything read so far, and its size.
    pub fn finish(&self) -> (String, u64) {
        let g = self.lock();
        (hex::encode(g.0.clone().finalize()), g.1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Sha256, u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    digest: StreamDigest,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`; `digest` observes every byte read.
    pub fn new(inner: R, digest: StreamDigest) -> Self {
        HashingReader { inner, digest }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut g = self.digest.lock();
        g.0.update(&buf[..n]);
        g.1 += n as u64;
        Ok(n)
    }
}

/// Bounds on what a compressed input may expand to: a small archive of junk must not fill a Lambda's `/tmp` or its
/// time. Each limit, when hit, fails the file with an error naming it and the setting that raises it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeLimits {
    /// Most bytes all parts together may inflate to (`DNCFLOW_MAX_INFLATED_BYTES`).
    pub max_inflated_bytes: u64,
    /// Largest inflated/compressed ratio, judged once more than 64 MiB are inflated (`DNCFLOW_MAX_INFLATION_RATIO`):
    /// real exports compress 3–20×, a decompression bomb by thousands.
    pub max_ratio: f64,
    /// Most members a zip archive may hold (`DNCFLOW_MAX_ZIP_MEMBERS`).
    pub max_members: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_inflated_bytes: 8 << 30,
            max_ratio: 200.0,
            max_members: 10_000,
        }
    }
}

/// Below this much inflated data the ratio is not judged (a tiny file of repeated lines compresses very well).
const RATIO_FLOOR: u64 = 64 << 20;

/// Counts the compressed bytes a decompressor reads.
struct Counting<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressed stream held to [`DecodeLimits`]: an error naming the limit once it is passed.
struct Inflated<R> {
    inner: R,
    inflated: Arc<std::sync::atomic::AtomicU64>,
    compressed: Arc<std::sync::atomic::AtomicU64>,
    limits: DecodeLimits,
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.inner.read(buf)?;
        let total = self.inflated.fetch_add(n as u64, Relaxed) + n as u64;
        if total > self.limits.max_inflated_bytes {
            return Err(io::Error::other(format!(
                "inflates past {} bytes, the limit (DNCFLOW_MAX_INFLATED_BYTES)",
                self.limits.max_inflated_bytes
            )));
        }
        let compressed = self.compressed.load(Relaxed).max(1);
        if total > RATIO_FLOOR && total as f64 > self.limits.max_ratio * compressed as f64 {
            return Err(io::Error::other(format!(
                "inflates more than {}× its compressed size ({total} bytes from {compressed}), the limit \
                 (DNCFLOW_MAX_INFLATION_RATIO): a decompression bomb?",
                self.limits.max_ratio
            )));
        }
        Ok(n)
    }
}

/// How the raw stream was compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed: the bytes are the text.
    None,
    /// gzip (one or more members).
    Gzip,
    /// A zip archive: each member is a text part of its own (macOS metadata members are skipped and noted).
    Zip,
}

/// The text encoding found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    /// UTF-8 (or ASCII), no byte-order mark.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a byte-order mark.
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
    /// UTF-16 little endian.
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16 big endian.
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

/// One text stream to read rows from: the file itself, or one member of an archive.
pub struct Part<'a> {
    /// Member name inside an archive, `None` for the file itself.
    pub member: Option<String>,
    /// The member's text, decoded to UTF-8 whatever its encoding.
    pub reader: Box<dyn BufRead + 'a>,
    /// The encoding it was decoded from.
    pub encoding: Encoding,
}

const BUF: usize = 256 * 1024;

/// Open `raw` (already hashing), undo compression and decode text, and call `each` for every text part, in order.
/// Zip archives are spooled to a temporary file (the central directory is at the end), never to memory.
pub fn for_each_part(
    name: &str,
    raw: Box<dyn Read + Send>,
    each: impl FnMut(Part<'_>) -> Result<(), InputError>,
) -> Result<Compression, InputError> {
    for_each_part_noting(name, raw, each, &mut Vec::new(), DecodeLimits::default())
}

/// The same, noting in `skipped` every archive member that is not read (macOS metadata: `__MACOSX/`, `._*`), so
/// that the manifest can account for it, and holding decompression to `limits`.
pub fn for_each_part_noting(
    name: &str,
    raw: Box<dyn Read + Send>,
    mut each: impl FnMut(Part<'_>) -> Result<(), InputError>,
    skipped: &mut Vec<String>,
    limits: DecodeLimits,
) -> Result<Compression, InputError> {
    let inflated = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let compressed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut buffered = BufReader::with_capacity(BUF, raw);
    let head = buffered
        .fill_buf()
        .map_err(|e| InputError::io(name, e))?
        .to_vec();
    if head.is_empty() {
        each(decode_text(name, None, Box::new(buffered))?)?;
        return Ok(Compression::None);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::new(Counting {
            inner: buffered,
            count: compressed.clone(),
        }));
        let reader = NamedErrors {
            inner: Inflated {
                inner: gz,
                inflated,
                compressed,
                limits,
            },
            name: name.to_string(),
            what: "gzip stream",
        };
        each(decode_text(
            name,
            None,
            Box::new(BufReader::with_capacity(BUF, reader)),
        )?)?;
        return Ok(Compression::Gzip);
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        let mut spool = tempfile::tempfile().map_err(|e| InputError::io(name, e))?;
        io::copy(&mut buffered, &mut spool).map_err(|e| InputError::io(name, e))?;
        let size = spool
            .seek(SeekFrom::End(0))
            .map_err(|e| InputError::io(name, e))?;
        compressed.store(size, std::sync::atomic::Ordering::Relaxed);
        spool
            .seek(SeekFrom::Start(0))
            .map_err(|e| InputError::io(name, e))?;
        let held = Inflated {
            inner: io::empty(),
            inflated,
            compressed,
            limits,
        };
        read_zip(name, spool, &mut each, skipped, &held)?;
        return Ok(Compression::Zip);
    }
    each(decode_text(name, None, Box::new(buffered))?)?;
    Ok(Compression::None)
}

fn read_zip(
    name: &str,
    spool: File,
    each: &mut impl FnMut(Part<'_>) -> Result<(), InputError>,
    skipped: &mut Vec<String>,
    held: &Inflated<io::Empty>,
) -> Result<(), InputError> {
    let archive_err = |reason: String| InputError::Archive {
        file: name.to_string(),
        reason,
    };
    let mut archive = zip::ZipArchive::new(spool)
        .map_err(|e| archive_err(format!("not a readable zip archive: {e}")))?;
    if archive.len() > held.limits.max_members {
        return Err(archive_err(format!(
            "{} members, more than the limit of {} (DNCFLOW_MAX_ZIP_MEMBERS)",
            archive.len(),
            held.limits.max_members
        )));
    }
    let mut members = 0;
    for i in 0..archive.len() {
        let member = archive
            .by_index(i)
            .map_err(|e| archive_err(format!("member {i}: {e}")))?;
        if member.is_dir() {
            continue;
        }
        let member_name = member.name().to_string();
        // Hidden files of macOS archivers are metadata, not data.
        if member_name.starts_with("__MACOSX/")
            || member_name
                .rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with("._"))
        {
            skipped.push(member_name);
            continue;
        }
        members += 1;
        let label = format!("{name}!{member_name}");
        let reader = NamedErrors {
            inner: Inflated {
                inner: member,
                inflated: held.inflated.clone(),
                compressed: held.compressed.clone(),
                limits: held.limits,
            },
            name: label.clone(),
            what: "zip member",
        };
        each(decode_text(
            &label,
            Some(member_name),
            Box::new(BufReader::with_capacity(BUF, reader)),
        )?)?;
    }
    if members == 0 {
        return Err(archive_err("the archive holds no file".into()));
    }
    Ok(())
}

/// Turns decompression failures into errors that name the file and what was being read (a truncated gzip or zip
/// member reads as a bare I/O error otherwise).
struct NamedErrors<R> {
    inner: R,
    name: String,
    what: &'static str,
}

impl<R: Read> Read for NamedErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{}: {} is corrupt or truncated: {e}", self.name, self.what),
            )
        })
    }
}

/// Detect the encoding from the BOM or the NUL pattern, refuse binary content, and return UTF-8 text.
fn decode_text<'a>(
    name: &str,
    member: Option<String>,
    mut reader: Box<dyn BufRead + 'a>,
) -> Result<Part<'a>, InputError> {
    let head = reader.fill_buf().map_err(|e| InputError::io(name, e))?;
    let sample = &head[..head.len().min(8192)];
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
        return Ok(Part {
            member,
            reader,
            encoding: Encoding::Utf8Bom,
        });
    }
    let utf16 = if sample.starts_with(&[0xFF, 0xFE]) {
        Some((encoding_rs::UTF_16LE, Encoding::Utf16Le))
    } else if sample.starts_with(&[0xFE, 0xFF]) {
        Some((encoding_rs::UTF_16BE, Encoding::Utf16Be))
    } else {
        // UTF-16 without BOM: text in ASCII range leaves every other byte NUL.
        let pairs = sample.len() / 2;
        let odd_nul = sample
            .chunks_exact(2)
            .filter(|c| c[1] == 0 && c[0] != 0)
            .count();
        let even_nul = sample
            .chunks_exact(2)
            .filter(|c| c[0] == 0 && c[1] != 0)
            .count();
        if pairs >= 2 && odd_nul * 10 >= pairs * 9 {
            Some((encoding_rs::UTF_16LE, Encoding::Utf16Le))
        } else if pairs >= 2 && even_nul * 10 >= pairs * 9 {
            Some((encoding_rs::UTF_16BE, Encoding::Utf16Be))
        } else {
            None
        }
    };
    if let Some((enc, label)) = utf16 {
        let decoder = enc.new_decoder(); // strips a BOM of its own encoding
        let reader = Utf16Reader {
            inner: reader,
            decoder,
            out: Vec::new(),
            pos: 0,
            eof: false,
        };
        return Ok(Part {
            member,
            reader: Box::new(BufReader::with_capacity(BUF, reader)),
            encoding: label,
        });
    }
    if is_binary(sample) {
        return Err(InputError::Binary {
            file: name.to_string(),
        });
    }
    Ok(Part {
        member,
        reader,
        encoding: Encoding::Utf8,
    })
}

/// Binary content: many control characters (NUL included) other than tab, CR, LF, FF. A few NULs in a text file (a
/// stray byte in a name, an export glitch) do not make it binary: the rows around them are read, and a row whose
/// phone field holds one is judged by the normalizer like any other.
fn is_binary(sample: &[u8]) -> bool {
    let controls = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    controls * 20 > sample.len()
}

/// Streams UTF-16 into UTF-8.
struct Utf16Reader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: BufRead> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.out.len() {
            if self.eof {
                return Ok(0);
            }
            let input = self.inner.fill_buf()?;
            let last = input.is_empty();
            self.out.clear();
            self.pos = 0;
            self.out.reserve(input.len() * 3 / 2 + 16);
            let cap = self.out.capacity();
            self.out.resize(cap, 0);
            let (_, read, written, _) = self.decoder.decode_to_utf8(input, &mut self.out, last);
            self.out.truncate(written);
            self.inner.consume(read);
            if last {
                self.eof = true;
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(bytes: Vec<u8>) -> (String, Encoding) {
        let mut out = String::new();
        let mut enc = Encoding::Utf8;
        for_each_part("t", Box::new(io::Cursor::new(bytes)), |mut p| {
            p.reader.read_to_string(&mut out).unwrap();
            enc = p.encoding;
            Ok(())
        })
        .unwrap();
        (out, enc)
    }

    #[test]
    fn decodes_utf16_with_and_without_bom() {
        let s = "phone\r\n2025550198\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(s.encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(text_of(le), (s.to_string(), Encoding::Utf16Le));
        let be: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        assert_eq!(text_of(be), (s.to_string(), Encoding::Utf16Be));
        let bom8: Vec<u8> = [0xEF, 0xBB, 0xBF].into_iter().chain(s.bytes()).collect();
        assert_eq!(text_of(bom8), (s.to_string(), Encoding::Utf8Bom));
    }

    #[test]
    fn refuses_binary() {
        let err = for_each_part(
            "x.bin",
            Box::new(io::Cursor::new(vec![0u8, 1, 2, 3, 0, 0, 7, 8, 9])),
            |_| Ok(()),
        )
        .err()
        .unwrap();
        assert!(matches!(err, InputError::Binary { .. }), "{err}");
    }

    #[test]
    fn digest_covers_every_byte() {
        let d = StreamDigest::default();
        let mut r = HashingReader::new(io::Cursor::new(b"abc".to_vec()), d.clone());
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (sha, n) = d.finish();
        assert_eq!(n, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
