//! End-to-end normalize benchmark: generates an FCC-style file (default 10,000,000 rows, `ROWS=` to change), runs the
//! whole normalize path (read, normalize, de-duplicate, shard, write, hash) on one core, and prints rows/s and peak
//! memory, side by side with the `phonenumber` crate's `parse` + `is_valid` and dncflow's normalizer alone on a
//! sample of the same rows. The full-size run is repeated (`REPEAT=`, default 5) and its median reported.
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

use dncflow::run::SourceIdentity;
use dncflow::steps::normalize::{normalize_into, NormalizeOptions};

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
}

/// The crate's `parse` + `is_valid` and dncflow's normalizer alone, on the same sample of the file's rows.
fn compare_with_crate(input: &Path, end_to_end_rate: f64) {
    // A sample: the crate would take minutes on all of the rows.
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
    let crate_rate = sample.len() as f64 / start.elapsed().as_secs_f64();
    let normalizer = dncflow::phone::Normalizer::default();
    let mut ours = 0usize;
    let start = Instant::now();
    for _ in 0..20 {
        ours += sample
            .iter()
            .filter(|s| normalizer.normalize(std::hint::black_box(s)).is_ok())
            .count();
    }
    let normalizer_rate = (20 * sample.len()) as f64 / start.elapsed().as_secs_f64();
    assert_eq!(
        ours,
        20 * valid,
        "dncflow and the crate disagree on the sample"
    );
    println!(
        "phonenumber crate     rows {:>10}  {:>6.3} M rows/s  (parse + is_valid only, {} valid)",
        sample.len(),
        crate_rate / 1e6,
        valid
    );
    println!(
        "dncflow normalizer    rows {:>10}  {:>6.2} M rows/s  (same rows, normalize only) = {:.0}x the crate",
        sample.len(),
        normalizer_rate / 1e6,
        normalizer_rate / crate_rate
    );
    println!(
        "dncflow end to end (median run) {:.2} M rows/s = {:.0}x the crate's parse + is_valid alone",
        end_to_end_rate / 1e6,
        end_to_end_rate / crate_rate
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
    // The full-size run is repeated and the median reported: on a VM, writing a gigabyte of shards into the page
    // cache varies from run to run.
    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let exe = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for size in [rows / 10, rows] {
        let input = dir.path().join(format!("fcc-{size}.txt"));
        generate(&input, size);
        let runs = if size == rows { repeat.max(1) } else { 1 };
        let mut rates = Vec::new();
        for _ in 0..runs {
            let out = Command::new(&exe)
                .args([
                    "--bench",
                    "--child",
                    &input.display().to_string(),
                    &size.to_string(),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            print!("{text}");
            // "… <secs> s  <rate> M rows/s …"
            let rate: f64 = text
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .find(|w| w[1] == "M" && w[2] == "rows/s")
                .and_then(|w| w[0].parse().ok())
                .unwrap_or(f64::NAN);
            rates.push(rate * 1e6);
        }
        if size == rows {
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            println!(
                "dncflow normalize     rows {size:>10}  median of {runs}: {:.2} M rows/s (min {:.2}, max {:.2})",
                median / 1e6,
                rates[0] / 1e6,
                rates[rates.len() - 1] / 1e6
            );
            compare_with_crate(&input, median);
        }
        std::fs::remove_file(&input).unwrap();
    }
}
