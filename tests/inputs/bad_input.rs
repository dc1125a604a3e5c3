//! Bad-input test set: encodings, delimiters, quoting, archives, binary files and huge lines. Every readable file must
//! balance (rows = accepted + duplicates + rejected, with the shard and reject files agreeing with the counts); every
//! unreadable one must fail with an error naming the file and the reason.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use dncflow::run::SourceIdentity;
use dncflow::steps::normalize::{normalize_to_dir, NormalizeError, NormalizeOptions, RunOutput};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn normalize(path: &Path) -> Result<RunOutput, NormalizeError> {
    normalize_with(path, |_| {})
}

fn normalize_with(
    path: &Path,
    adjust: impl FnOnce(&mut NormalizeOptions),
) -> Result<RunOutput, NormalizeError> {
    let out = path.parent().unwrap().join("out");
    let source = SourceIdentity {
        path: Some(path.display().to_string()),
        ..Default::default()
    };
    let mut options = NormalizeOptions::new("bad-input");
    options.now = "2026-01-01T00:00:00Z".parse().unwrap();
    adjust(&mut options);
    normalize_to_dir(
        Box::new(fs::File::open(path).unwrap()),
        source,
        &options,
        &out,
        &mut |_| {},
    )
}

/// Check the invariant against the files themselves, and return the accepted numbers.
fn balanced(run: &RunOutput) -> Vec<String> {
    let c = &run.manifest.counts;
    assert_eq!(c.rows, c.accepted + c.duplicates + c.rejected, "{c:?}");
    assert_eq!(
        c.lines,
        c.header_lines + c.blank_lines + c.records + c.continuation_lines,
        "every physical line accounted for: {c:?}"
    );
    let rejects = fs::read_to_string(run.dir.join("rejects.jsonl")).unwrap();
    assert_eq!(
        rejects.lines().count() as u64 + c.rejects_not_written,
        c.rejected,
        "rejects file vs counts"
    );
    let mut numbers = Vec::new();
    for shard in &run.manifest.shards {
        for line in fs::read_to_string(run.dir.join(&shard.key))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            numbers.push(v["phoneNumber"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(numbers.len() as u64, c.accepted, "shard lines vs counts");
    numbers.sort();
    numbers
}

const CSV: &str = "Name,Phone\n\"Doe, Jane\",(202) 555-0198\nJohn,415-555-0100\nBad,12345\n";

fn expect_two_good_one_bad(run: &RunOutput) {
    assert_eq!(balanced(run), vec!["+12025550198", "+14155550100"]);
    assert_eq!(run.manifest.counts.rejected, 1);
    assert_eq!(run.manifest.counts.header_lines, 1);
}

#[test]
fn encodings() {
    let dir = tempfile::tempdir().unwrap();
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(CSV.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be_nobom: Vec<u8> = CSV.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let bom8: Vec<u8> = [0xEF, 0xBB, 0xBF].into_iter().chain(CSV.bytes()).collect();
    // Windows-1252 / Latin-1 names: not UTF-8, the phone column still reads.
    let latin1: Vec<u8> = CSV
        .replace("Jane", "Ren\u{0}e")
        .bytes()
        .map(|b| if b == 0 { 0xE9 } else { b })
        .collect();
    for (name, bytes) in [
        ("le.csv", utf16le),
        ("be.csv", utf16be_nobom),
        ("bom.csv", bom8),
        ("latin.csv", latin1),
    ] {
        let run =
            normalize(&write(dir.path(), name, &bytes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        expect_two_good_one_bad(&run);
    }
    // Invalid UTF-8 in another column never loses the row.
    let mut invalid = b"Name,Phone\n".to_vec();
    invalid.extend_from_slice(b"Ren\xe9e,(202) 555-0198\nJohn,415-555-0100\nBad,12345\n");
    expect_two_good_one_bad(&normalize(&write(dir.path(), "invalid-utf8.csv", &invalid)).unwrap());
}

#[test]
fn line_endings_and_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("crlf.csv", CSV.replace('\n', "\r\n")),
        ("cr.csv", CSV.replace('\n', "\r")),
        ("semi.csv", CSV.replace(',', ";")),
        ("tab.tsv", CSV.replace(',', "\t")),
        ("pipe.txt", CSV.replace(',', "|")),
        ("no-final-newline.csv", CSV.trim_end().to_string()),
        ("blank-lines.csv", CSV.replace('\n', "\n\n")),
    ] {
        let run = normalize(&write(dir.path(), name, text.as_bytes()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        expect_two_good_one_bad(&run);
    }
}

#[test]
fn quoting_ragged_rows_and_huge_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id,note,phone\n\
                1,\"multi\nline, with comma\",(202) 555-0198\n\
                2,ragged\n\
                3,\"unterminated,415-555-0100\n\
                4,fine,212-555-0111\n";
    let run = normalize(&write(dir.path(), "quotes.csv", text.as_bytes())).unwrap();
    let numbers = balanced(&run);
    // The stray quote is read literally after a bounded look-ahead, so its own row keeps its number too.
    assert_eq!(
        numbers,
        vec!["+12025550198", "+12125550111", "+14155550100"]
    );
    let c = &run.manifest.counts;
    assert_eq!(
        c.reject_reasons.get("MISSING_FIELD"),
        Some(&1),
        "the ragged row: {c:?}"
    );

    let mut huge = b"phone\n2025550198\n".to_vec();
    huge.extend(std::iter::repeat_n(b'7', 3 << 20));
    huge.extend_from_slice(b"\n4155550100\n");
    let run = normalize(&write(dir.path(), "huge.csv", &huge)).unwrap();
    assert_eq!(balanced(&run), vec!["+12025550198", "+14155550100"]);
    assert_eq!(
        run.manifest.counts.reject_reasons.get("LINE_TOO_LONG"),
        Some(&1)
    );
    let rejects = fs::read_to_string(run.dir.join("rejects.jsonl")).unwrap();
    assert!(
        rejects.len() < 1024,
        "a reject record keeps only the start of a huge line"
    );
}

#[test]
fn archives() {
    let dir = tempfile::tempdir().unwrap();
    let fcc = "2025550198\n2025550198\n415,5550100\n0005550100\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(fcc.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let run = normalize(&write(dir.path(), "fcc.txt.gz", &gz)).unwrap();
    assert_eq!(balanced(&run), vec!["+12025550198", "+14155550100"]);
    assert_eq!(
        (run.manifest.counts.duplicates, run.manifest.counts.rejected),
        (1, 1)
    );
    assert_eq!(run.manifest.format.compression, "gzip");

    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut zipped);
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("202.txt", opts).unwrap();
        z.write_all(b"2025550198\n2025550199\n").unwrap();
        z.start_file("415.txt", opts).unwrap();
        z.write_all(b"4155550100\nnot a number\n").unwrap();
        // macOS archivers' metadata: skipped, but each skip recorded in the manifest.
        z.start_file("__MACOSX/._202.txt", opts).unwrap();
        z.write_all(b"\0\x05\x16\x07\0\x02\0\0Mac OS X").unwrap();
        z.start_file("._415.txt", opts).unwrap();
        z.write_all(b"\0\x05\x16\x07").unwrap();
        z.finish().unwrap();
    }
    let zip_bytes = zipped.into_inner();
    let run = normalize(&write(dir.path(), "registry.zip", &zip_bytes)).unwrap();
    assert_eq!(
        balanced(&run),
        vec!["+12025550198", "+12025550199", "+14155550100"]
    );
    let rejects = fs::read_to_string(run.dir.join("rejects.jsonl")).unwrap();
    assert!(
        rejects.contains("\"member\":\"415.txt\""),
        "rejects name the archive member: {rejects}"
    );
    assert_eq!(
        run.manifest.format.skipped_members,
        vec!["__MACOSX/._202.txt", "._415.txt"]
    );

    // Truncated archives fail the run, naming the file and the reason; nothing is published.
    let err = normalize(&write(dir.path(), "cut.txt.gz", &gz[..gz.len() / 2]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.txt.gz") && err.contains("truncated"),
        "{err}"
    );
    let err = normalize(&write(
        dir.path(),
        "cut.zip",
        &zip_bytes[..zip_bytes.len() - 30],
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("cut.zip") && err.contains("zip"), "{err}");
    let runs = fs::read_dir(dir.path().join("out/runs")).unwrap().count();
    assert_eq!(runs, 2, "only the two good runs exist");
}

#[test]
fn binary_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0";
    let err = normalize(&write(dir.path(), "image.png", png))
        .unwrap_err()
        .to_string();
    assert!(err.contains("image.png") && err.contains("binary"), "{err}");
    let run = normalize(&write(dir.path(), "empty.csv", b"")).unwrap();
    assert_eq!(run.manifest.counts.rows, 0);
    assert!(run.manifest.shards.is_empty());
    let run = normalize(&write(dir.path(), "header-only.csv", b"phone\n")).unwrap();
    assert_eq!(
        (run.manifest.counts.rows, run.manifest.counts.header_lines),
        (0, 1)
    );
}

#[test]
fn no_phone_column_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = normalize(&write(
        dir.path(),
        "people.csv",
        b"name,city\nJane,Austin\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("people.csv") && err.contains("no phone column"),
        "{err}"
    );
}

/// Every number of `run` that the counts say was accepted, flagged `flag` in its shard line.
fn flagged(run: &RunOutput, flag: &str) -> usize {
    run.manifest
        .shards
        .iter()
        .flat_map(|s| {
            fs::read_to_string(run.dir.join(&s.key))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.contains(flag))
        .count()
}

/// A quote opened in a name and never closed must not swallow the next record: each such row is read literally and
/// flagged, and every number is there. A real multi-line field still joins its lines.
#[test]
fn a_stray_opening_quote_never_swallows_the_next_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("phone,name\n");
    for i in 0..2_000 {
        text += &format!("(202) 443-{i:04},\"Brien {i}\n");
    }
    let run = normalize(&write(dir.path(), "stray.csv", text.as_bytes())).unwrap();
    let numbers = balanced(&run);
    assert_eq!(run.manifest.counts.rows, 2_000, "{:?}", run.manifest.counts);
    assert_eq!(
        (
            run.manifest.counts.lines,
            run.manifest.counts.continuation_lines
        ),
        (2_001, 0)
    );
    assert_eq!(numbers.len(), 2_000);
    assert_eq!(flagged(&run, "STRAY_QUOTE"), 2_000);
    assert_eq!(run.manifest.counts.flagged.get("STRAY_QUOTE"), Some(&2_000));

    let multi =
        "phone,notes\n2025550198,\"line one\nline two, still the note\"\n2025550199,plain\n";
    let run = normalize(&write(dir.path(), "multi.csv", multi.as_bytes())).unwrap();
    assert_eq!(balanced(&run), vec!["+12025550198", "+12025550199"]);
    assert_eq!(run.manifest.counts.rows, 2);
    assert_eq!(
        (
            run.manifest.counts.lines,
            run.manifest.counts.continuation_lines
        ),
        (4, 1),
        "the note's second line is a continuation line"
    );
    assert_eq!(flagged(&run, "STRAY_QUOTE"), 0);
}

/// Files concatenated from several exports mix LF, CRLF and lone CR: every one of them ends a record.
#[test]
fn mixed_line_endings_lose_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let endings = ["\n", "\r\n", "\r"];
    let mut text = String::from("phone,source\r\n");
    for i in 0..40 {
        text += &format!(
            "(202) 555-{:04},export-{}{}",
            1000 + i,
            i % 3,
            endings[(i * 7 / 3) % 3]
        );
    }
    let run = normalize(&write(dir.path(), "mixed.csv", text.as_bytes())).unwrap();
    assert_eq!(balanced(&run).len(), 40, "{:?}", run.manifest.counts);
    assert_eq!(run.manifest.counts.rows, 40);
    assert_eq!(
        run.manifest.counts.lines, 41,
        "one line per record and the header"
    );
    // The same without a header (the FCC-shaped reader).
    let mut bare = String::new();
    for i in 0..40 {
        bare += &format!("202555{:04}{}", 2000 + i, endings[i % 3]);
    }
    let run = normalize(&write(dir.path(), "mixed.txt", bare.as_bytes())).unwrap();
    assert_eq!(balanced(&run).len(), 40, "{:?}", run.manifest.counts);
}

/// A few NUL bytes in a text file do not make it binary: the rows around them are read; a NUL in a name changes
/// nothing; a row with a NUL in its phone field is judged (accepted or rejected with a reason), never lost.
#[test]
fn a_few_nul_bytes_refuse_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"phone,name\n".to_vec();
    for i in 0..28u32 {
        let phone = format!("(202) 555-{:04}", 3000 + i);
        let name = format!("Name {i}");
        let (phone, name) = match i {
            0..=2 => (phone, name.replace(' ', "\0")),
            3..=7 => (phone.replace('5', "5\0"), name),
            _ => (phone, name),
        };
        bytes.extend_from_slice(format!("{phone},{name}\n").as_bytes());
    }
    let run = normalize(&write(dir.path(), "nul.csv", &bytes)).unwrap();
    let numbers = balanced(&run);
    let c = &run.manifest.counts;
    assert_eq!(c.rows, 28, "{c:?}");
    assert!(
        numbers.len() >= 23,
        "every row without a NUL in its phone is accepted: {c:?}"
    );
    for i in 0..3 {
        assert!(numbers.contains(&format!("+1202555{:04}", 3000 + i)));
    }
}

/// Every phone column is read: opt-out exports carry home, work and cell numbers, and a number in the second
/// column is as much an opt-out as one in the first. Rejects name their column; a row-id `Number` column is never
/// read as the phone column when a `Phone` column exists.
#[test]
fn every_phone_column_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = "id,home_phone,cell_phone,work_phone,name\n\
                1,(202) 555-0101,(202) 555-0102,,Ann\n\
                2,,415-555-0100,12345,Bob\n\
                3,,,,Cy\n";
    let run = normalize(&write(dir.path(), "exports.csv", text.as_bytes())).unwrap();
    assert_eq!(
        balanced(&run),
        vec!["+12025550101", "+12025550102", "+14155550100"]
    );
    let c = &run.manifest.counts;
    // 3 numbers, "12345" rejected in work_phone, and the record with no number at all rejected once.
    assert_eq!((c.rows, c.accepted, c.rejected), (5, 3, 2), "{c:?}");
    let rejects = fs::read_to_string(run.dir.join("rejects.jsonl")).unwrap();
    assert!(rejects.contains("\"column\":\"work_phone\""), "{rejects}");
    let layout = &run.manifest.format.layouts[0];
    assert_eq!(
        layout["phoneColumn"], "home_phone+cell_phone+work_phone",
        "{layout}"
    );

    let text = "Number,Phone\n1,(202) 555-0199\n2,(415) 555-0199\n";
    let run = normalize(&write(dir.path(), "ids.csv", text.as_bytes())).unwrap();
    assert_eq!(balanced(&run), vec!["+12025550199", "+14155550199"]);
    assert_eq!(
        run.manifest.counts.rejected, 0,
        "the row id is not a phone column"
    );

    let text = "phone,mobile\n2025550111,2025550112\n";
    let run = normalize(&write(dir.path(), "two.csv", text.as_bytes())).unwrap();
    assert_eq!(balanced(&run), vec!["+12025550111", "+12025550112"]);

    // A placeholder in a phone column says "no number", as an empty field does: not a row, not a reject (the junk
    // gate would otherwise count a file of single-number contacts as half junk).
    let text = "phone,mobile,work_phone\n\
                2025550121,N/A,none\n\
                2025550122,n/a,-\n\
                2025550123,NULL,\n\
                2025550124,2025550125,n/a\n";
    let run = normalize(&write(dir.path(), "placeholders.csv", text.as_bytes())).unwrap();
    assert_eq!(
        balanced(&run),
        vec![
            "+12025550121",
            "+12025550122",
            "+12025550123",
            "+12025550124",
            "+12025550125"
        ]
    );
    let c = &run.manifest.counts;
    assert_eq!((c.rows, c.accepted, c.rejected), (5, 5, 0), "{c:?}");
}

/// Decompression and junk are bounded: a gzip that inflates past the byte limit or by an absurd ratio, or a zip of
/// too many members, fails with an error naming the limit and its setting; past the rejects cap, each reason keeps
/// its first samples and the rest are counted, never written.
#[test]
fn decompression_and_rejects_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = |data: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    };
    let numbers: String = (0..200_000).map(|i| format!("202{:07}\n", i)).collect();
    let err = normalize_with(
        &write(dir.path(), "big.txt.gz", &gzip(numbers.as_bytes())),
        |o| o.limits.max_inflated_bytes = 1 << 20,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("big.txt.gz") && err.contains("DNCFLOW_MAX_INFLATED_BYTES"),
        "{err}"
    );
    // 80 MiB of blank lines from ~80 KiB: a decompression bomb (made as bombs are, at the best compression: the
    // fastest level of some deflate implementations, zlib-rs's among them, leaves runs ten times larger).
    let bomb = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'\n'; 80 << 20]).unwrap();
        gz.finish().unwrap()
    };
    assert!(bomb.len() < 200 << 10, "{} bytes", bomb.len());
    let err = normalize(&write(dir.path(), "bomb.txt.gz", &bomb))
        .unwrap_err()
        .to_string();
    assert!(err.contains("DNCFLOW_MAX_INFLATION_RATIO"), "{err}");

    let mut zipped = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut zipped);
        for i in 0..20 {
            z.start_file(format!("{i}.txt"), zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"2025550198\n").unwrap();
        }
        z.finish().unwrap();
    }
    let err = normalize_with(&write(dir.path(), "many.zip", &zipped.into_inner()), |o| {
        o.limits.max_members = 10
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("20 members") && err.contains("DNCFLOW_MAX_ZIP_MEMBERS"),
        "{err}"
    );

    let mut junk = String::from("phone\n2025550198\n");
    for i in 0..1_000 {
        junk += &format!("junk {i}\n");
    }
    let run = normalize_with(&write(dir.path(), "junk.csv", junk.as_bytes()), |o| {
        o.max_rejects_kept = 10
    })
    .unwrap();
    balanced(&run);
    let c = &run.manifest.counts;
    assert_eq!(c.rejected, 1_000);
    assert_eq!(
        c.rejects_not_written,
        1_000 - dncflow::steps::normalize::REJECT_SAMPLES,
        "{c:?}"
    );
}

mod properties {
    //! Property tests of the readers and the normalizer on generated hostile input: no panic, the accounting always
    //! balances, and no junk line changes what happens to the other rows. Bounded case counts, so they run in CI.
    use super::*;
    use proptest::prelude::*;

    /// Bytes a hostile CSV is made of: quotes, delimiters, line ends, NULs, digits, letters, non-ASCII.
    fn hostile_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        let alphabet: Vec<u8> = b"\"',;|\t\r\n\0 0123456789+-().abcXYZ\xc3\xa9\xff".to_vec();
        proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
    }

    /// Normalize `bytes`; the accepted numbers of a balanced run (checked against its files before they go).
    fn run_bytes(bytes: &[u8]) -> Result<Vec<String>, NormalizeError> {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "prop.csv", bytes);
        normalize(&path).map(|run| balanced(&run))
    }

    proptest! {
        // 128 cases each in CI (well under a second); PROPTEST_CASES=20000 for a longer hunt.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
            ..ProptestConfig::default()
        })]

        /// Any bytes: a balanced run or a clear input error, never a panic, never an unbalanced count.
        #[test]
        fn any_input_balances_or_is_refused_clearly(bytes in hostile_bytes(2048)) {
            match run_bytes(&bytes) {
                Ok(_) => {}
                Err(NormalizeError::Input(e)) => prop_assert!(!e.to_string().is_empty()),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }

        /// A junk line between good records changes nothing for them: every good number is accepted.
        #[test]
        fn a_junk_line_never_costs_another_row(
            junk in hostile_bytes(200),
            at in 0usize..30,
            first in 1000u32..8000,
        ) {
            let numbers: Vec<String> = (0..30).map(|i| format!("+1202555{:04}", first + i)).collect();
            let mut bytes = b"phone,name\n".to_vec();
            for (i, n) in numbers.iter().enumerate() {
                if i == at {
                    bytes.extend_from_slice(&junk);
                    bytes.push(b'\n');
                }
                bytes.extend_from_slice(
                    format!("(202) 555-{},Name {i}\n", &n[8..]).as_bytes(),
                );
            }
            let accepted = run_bytes(&bytes).unwrap();
            for n in &numbers {
                prop_assert!(accepted.contains(n), "{n} lost after junk {:?}", String::from_utf8_lossy(&junk));
            }
        }
    }
}
