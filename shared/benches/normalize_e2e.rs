//! End-to-end normalize benchmark: generates an FCC-style file (default 10,000,000 rows, `ROWS=` to change), runs the
//! whole normalize path (read, normalize, de-duplicate, shard, write, hash) on one core, and prints rows/s and peak
//! memory, side by side with the `phonenumber` crate's `parse` + `is_valid` on a sample of the same rows.
//!
//! Peak memory is measured in a child process per size (1M and the full size), so the figures show what grows with
//! the file: only the de-duplication set.
//!
//! Run: `cargo bench -p dncflow --bench normalize_e2e`

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dncflow::normalize::{normalize_into, NormalizeOptions};
use dncflow::run::SourceIdentity;

fn generate(path: &Path, rows: u64) {
    let npas = [
        201u64, 202, 212, 213, 305, 312, 404, 415, 512, 602, 617, 702, 713, 808, 917, 972,
    ];
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let npa = npas[(x % 16) as usize];
        let nxx = 200 + (x >> 8) % 800;
        let line = (x >> 20) % 10_000;
        if i % 20 == 0 {
            writeln!(out, "{npa},{nxx}{line:04}").unwrap();
        } else {
            writeln!(out, "{npa}{nxx}{line:04}").unwrap();
        }
    }
    out.flush().unwrap();
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn child(input: &Path, rows: u64) {
    if std::env::var_os("READ_ONLY").is_some() {
        // Phase timing for profiling: hashing and reading rows, and normalizing, without the job.
        use dncflow::input::{decode, read_rows, ReadOptions, RowEvent};
        let t = Instant::now();
        let digest = decode::StreamDigest::default();
        let raw = decode::HashingReader::new(File::open(input).unwrap(), digest.clone());
        let mut n = 0u64;
        let normalizer = dncflow::phone::Normalizer::default();
        let normalize = std::env::var_os("NORMALIZE").is_some();
        decode::for_each_part("x", Box::new(raw), |p| {
            read_rows("x", p.reader, &ReadOptions::default(), |e| {
                if let RowEvent::Row { phone, .. } = e {
                    if !normalize
                        || normalizer
                            .normalize(std::str::from_utf8(phone).unwrap())
                            .is_ok()
                    {
                        n += 1;
                    }
                }
            })?;
            Ok(())
        })
        .unwrap();
        println!("read {} rows in {:.2} s", n, t.elapsed().as_secs_f64());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("run");
    std::fs::create_dir_all(&staging).unwrap();
    let options = NormalizeOptions::new("bench");
    let mut source = SourceIdentity {
        path: Some(input.display().to_string()),
        ..Default::default()
    };
    let start = Instant::now();
    let manifest = normalize_into(
        Box::new(File::open(input).unwrap()),
        &mut source,
        &options,
        &staging,
        &mut |_| {},
    )
    .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let c = &manifest.counts;
    assert_eq!(c.rows, rows);
    println!(
        "dncflow normalize     rows {:>10}  {:>7.2} s  {:>6.2} M rows/s  peak RSS {:>7.1} MiB  (accepted {}, duplicates {}, rejected {})",
        rows,
        secs,
        rows as f64 / secs / 1e6,
        peak_rss_mib(),
        c.accepted,
        c.duplicates,
        c.rejected
    );
    if std::env::var_os("SKIP_CRATE").is_some() {
        return; // for profiling the normalize path alone
    }
    // The crate on a sample of the same rows (it would take minutes on all of them).
    let sample: Vec<String> = BufReader::new(File::open(input).unwrap())
        .lines()
        .take(200_000)
        .map(|l| l.unwrap().replace(',', ""))
        .collect();
    let start = Instant::now();
    let valid = sample
        .iter()
        .filter(|s| {
            phonenumber::parse(Some(phonenumber::country::Id::US), s).is_ok_and(|n| n.is_valid())
        })
        .count();
    let crate_secs = start.elapsed().as_secs_f64();
    let crate_rate = sample.len() as f64 / crate_secs;
    println!(
        "phonenumber crate     rows {:>10}  {:>7.2} s  {:>6.3} M rows/s  (parse+is_valid only, {} valid)  => dncflow end to end is {:.0}x the crate",
        sample.len(),
        crate_secs,
        crate_rate / 1e6,
        valid,
        (rows as f64 / secs) / crate_rate
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        child(Path::new(&args[pos + 1]), args[pos + 2].parse().unwrap());
        return;
    }
    if args.iter().any(|a| a == "--list" || a == "--exact") {
        return; // `cargo test --benches` probing: nothing to list
    }
    if std::env::var_os("SHA_ONLY").is_some() {
        use sha2::Digest;
        let data = vec![7u8; 100 << 20];
        let t = Instant::now();
        let mut h = sha2::Sha256::new();
        for c in data.chunks(256 << 10) {
            h.update(c);
        }
        let _ = h.finalize();
        println!("sha2 {:.0} MB/s", 100.0 / t.elapsed().as_secs_f64());
        return;
    }
    let rows: u64 = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000_000);
    let exe = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for size in [rows / 10, rows] {
        let input = dir.path().join(format!("fcc-{size}.txt"));
        generate(&input, size);
        let status = Command::new(&exe)
            .args([
                "--bench",
                "--child",
                &input.display().to_string(),
                &size.to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(&input).unwrap();
    }
}
