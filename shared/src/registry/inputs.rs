//! Where an import's or an apply's files come from (local paths or objects of the bucket) and how each is read:
//! decompressed, hashed and counted as it streams.

use super::*;
use crate::input::decode::{HashingReader, StreamDigest};

pub(super) fn input_err(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |e| RegistryError::Input {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The files of `inputs`: files as given, directories walked (sorted, hidden files skipped).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, RegistryError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RegistryError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(input_err(dir))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(input_err(dir))?;
        entries.sort();
        for p in entries {
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// One input file: a local path, or the bytes of an object read from the bucket.
pub enum Input {
    /// A local file, read from disk when its turn comes.
    Path(PathBuf),
    /// An object's bytes, named by its key.
    Bytes {
        /// The object's name in errors and records (`s3://bucket/key`).
        name: String,
        /// The object's bytes, read whole.
        bytes: Vec<u8>,
    },
}

impl Input {
    /// How the input is named in manifests and rejects.
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Where an import's or an apply's files come from, one at a time: an object is read only when its turn comes, so an
/// import of 400 area-code zips holds one of them at a time.
#[async_trait::async_trait]
pub trait Inputs: Send {
    /// Files in all, known before any is read.
    fn len(&self) -> usize;
    /// Whether there is none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The next file (None after the last); an object is fetched only now, so one is held at a time.
    async fn next(&mut self) -> Option<Result<Input, RegistryError>>;
}

/// Local files (directories walked).
pub struct LocalInputs(std::collections::VecDeque<PathBuf>);

impl LocalInputs {
    /// The files of `inputs` (see [`expand_inputs`]).
    pub fn new(inputs: &[PathBuf]) -> Result<LocalInputs, RegistryError> {
        Ok(LocalInputs(expand_inputs(inputs)?.into()))
    }
}

#[async_trait::async_trait]
impl Inputs for LocalInputs {
    fn len(&self) -> usize {
        self.0.len()
    }
    async fn next(&mut self) -> Option<Result<Input, RegistryError>> {
        self.0.pop_front().map(|p| Ok(Input::Path(p)))
    }
}

/// Objects of a bucket, by key.
pub struct ObjectInputs<'a> {
    store: &'a dyn ObjectStore,
    bucket: String,
    keys: std::collections::VecDeque<String>,
}

impl<'a> ObjectInputs<'a> {
    /// The objects `keys` of `store` (named `s3://<bucket>/<key>`).
    pub fn new(store: &'a dyn ObjectStore, bucket: &str, keys: Vec<String>) -> ObjectInputs<'a> {
        ObjectInputs {
            store,
            bucket: bucket.to_string(),
            keys: keys.into(),
        }
    }
}

#[async_trait::async_trait]
impl Inputs for ObjectInputs<'_> {
    fn len(&self) -> usize {
        self.keys.len()
    }
    async fn next(&mut self) -> Option<Result<Input, RegistryError>> {
        let key = self.keys.pop_front()?;
        let name = format!("s3://{}/{key}", self.bucket);
        Some(match self.store.get_bytes(&key).await {
            Ok(Some(bytes)) => Ok(Input::Bytes { name, bytes }),
            Ok(None) => Err(RegistryError::Input {
                path: name,
                reason: "no such object".into(),
            }),
            Err(e) => Err(e.into()),
        })
    }
}

/// Read an input's lines in chunks that end on a line boundary: plain, gzip, or a zip (each entry in turn). `f` gets
/// the entry's name, the chunk, and the number of the chunk's first line. Returns the input's SHA-256 and size.
pub(super) fn read_source(
    input: &Input,
    f: &mut dyn FnMut(&str, &[u8], u64) -> u64,
) -> Result<(String, u64), RegistryError> {
    const CHUNK: usize = 1 << 20;
    let name = input.name();
    let err = |e: std::io::Error| RegistryError::Input {
        path: name.clone(),
        reason: e.to_string(),
    };
    // Streams `r` to `f` in chunks cut after the last newline, counting lines across chunks.
    let mut buf = vec![0u8; CHUNK];
    let mut stream = |entry: &str, r: &mut dyn Read| -> std::io::Result<()> {
        let (mut filled, mut line) = (0usize, 1u64);
        loop {
            let n = r.read(&mut buf[filled..])?;
            filled += n;
            if n == 0 || filled == buf.len() {
                let cut = if n == 0 {
                    filled
                } else {
                    match memchr::memrchr(b'\n', &buf[..filled]) {
                        Some(i) => i + 1,
                        // A line longer than the buffer: grow it (rare; only junk has such lines).
                        None => {
                            buf.resize(buf.len() * 2, 0);
                            continue;
                        }
                    }
                };
                if cut > 0 {
                    line += f(entry, &buf[..cut], line);
                }
                buf.copy_within(cut..filled, 0);
                filled -= cut;
                if n == 0 {
                    return Ok(());
                }
            }
        }
    };
    let mut magic = [0u8; 4];
    let got = match input {
        Input::Path(path) => std::fs::File::open(path)
            .and_then(|mut file| file.read(&mut magic))
            .map_err(&err)?,
        Input::Bytes { bytes, .. } => {
            let n = bytes.len().min(4);
            magic[..n].copy_from_slice(&bytes[..n]);
            n
        }
    };
    let zip_bytes;
    let bytes: &[u8] = match input {
        // A zip is read whole (the central directory is at its end); area-code zips are a few MB.
        Input::Path(path) if got >= 4 && magic == *b"PK\x03\x04" => {
            zip_bytes = std::fs::read(path).map_err(&err)?;
            &zip_bytes
        }
        Input::Path(path) => {
            let digest = StreamDigest::default();
            let mut hashing =
                HashingReader::new(std::fs::File::open(path).map_err(&err)?, digest.clone());
            if got >= 2 && magic[..2] == [0x1f, 0x8b] {
                stream(&name, &mut flate2::read::MultiGzDecoder::new(&mut hashing))
                    .map_err(&err)?;
            } else {
                stream(&name, &mut hashing).map_err(&err)?;
            }
            return Ok(digest.finish());
        }
        Input::Bytes { bytes, .. } => bytes,
    };
    let sha = hex::encode(Sha256::digest(bytes));
    if got >= 4 && magic == *b"PK\x03\x04" {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
            RegistryError::Input {
                path: name.clone(),
                reason: format!("not a readable zip: {e}"),
            }
        })?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| RegistryError::Input {
                path: name.clone(),
                reason: format!("zip entry {i}: {e}"),
            })?;
            if entry.is_dir() {
                continue;
            }
            let entry_name = format!("{name}!{}", entry.name());
            // The zip reader checks each entry's CRC at its end: a truncated entry fails here instead of importing
            // part of an area code silently.
            stream(&entry_name, &mut entry).map_err(&err)?;
        }
    } else if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        stream(&name, &mut flate2::read::MultiGzDecoder::new(bytes)).map_err(&err)?;
    } else {
        stream(&name, &mut &bytes[..]).map_err(&err)?;
    }
    Ok((sha, bytes.len() as u64))
}
