//! Registry benchmark: the national registry at full scale, FTC-shaped.
//!
//! Generates one zip per area code (`NPA,NNNNNNN` + LF lines, sorted, as the FTC ships them) over ~400 real area
//! codes with uneven densities (`ROWS=` total, default 25,850,000 = a tenth of the registry; `ROWS=258500000` is
//! full size), cached under `target/registry-bench/<rows>/` between runs. Then, each in a child process so peak RSS is
//! its own:
//! - import (what `dncctl registry import DIR --registry national --as-of …` runs) on one core: wall time, rows/s,
//!   peak RSS, index size, and the `phonenumber` crate's `parse` + `is_valid` on a sample of the same rows beside it;
//! - apply of a 1,000,000-line change list;
//! - load of the live version (container init) and lookups (single and batched with prefetch), and a registry-only
//!   check of 1,000 numbers (p50/p99);
//! - `dncctl check` of a campaign file (`CHECK_ROWS=` numbers, default 1,000,000; half of them on the registry, a
//!   third each as `+1…`, `NPA-NXX-XXXX` and `(NPA) NXX-XXXX`) against the national index with calling hours, on one
//!   core: numbers/s end to end and peak RSS beside the index's own load, then the parts in process (lookups alone,
//!   calling hours decided per number and per place) so each part's share is visible. Needs the release binary
//!   (`cargo build --release -p dncctl`); skipped without it.
//!
//! Run: `cargo bench -p dncflow --bench registry` (ROWS=, AREA_CODES= to change the shape).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dncflow::adapters::store::LocalStore;
use dncflow::registry::build::AreaRules;
use dncflow::registry::{self, ApplyOptions, ImportOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Area codes the numbering metadata knows (US and Canada first), `n` of them.
fn area_codes(n: usize) -> Vec<u16> {
    let rules = AreaRules::new();
    (200..1000u16)
        .filter(|npa| {
            rules.read(format!("{npa}5550123").as_bytes()).is_ok() && !rules.unknown(*npa)
        })
        .take(n)
        .collect()
}

/// The FTC's shape: one zip per area code, sorted lines, densities uneven (1x to 9x of the thinnest).
fn generate(dir: &Path, rows: u64, npas: &[u16]) {
    let weights: Vec<f64> = (0..npas.len())
        .map(|i| {
            let u = Rng(0x9e37_79b9_7f4a_7c15 ^ ((i as u64 + 1) * 0x2545_f491_4f6c_dd1d)).next();
            let u = (u % 10_000) as f64 / 10_000.0;
            1.0 + 8.0 * u * u
        })
        .collect();
    let sum: f64 = weights.iter().sum();
    std::fs::create_dir_all(dir).unwrap();
    let jobs: Vec<(u16, f64)> = npas
        .iter()
        .zip(&weights)
        .map(|(npa, w)| (*npa, (rows as f64 * w / sum / 8e6).min(0.95)))
        .collect();
    std::thread::scope(|s| {
        for part in jobs.chunks(jobs.len().div_ceil(2)) {
            s.spawn(move || {
                for &(npa, density) in part {
                    let path = dir.join(format!("2026-11-1_{npa}_bench.txt.zip"));
                    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
                    zip.start_file(
                        format!("2026-11-1_{npa}_bench.txt"),
                        zip::write::SimpleFileOptions::default().compression_level(Some(1)),
                    )
                    .unwrap();
                    let threshold = (density * u32::MAX as f64) as u64;
                    let mut rng = Rng(0x1234_5678 ^ (u64::from(npa) << 20));
                    let mut buf = Vec::with_capacity(1 << 20);
                    for local in 2_000_000u32..10_000_000 {
                        if rng.next() & 0xffff_ffff < threshold {
                            writeln!(buf, "{npa},{local}").unwrap();
                            if buf.len() > 1 << 20 {
                                zip.write_all(&buf).unwrap();
                                buf.clear();
                            }
                        }
                    }
                    zip.write_all(&buf).unwrap();
                    zip.finish().unwrap();
                }
            });
        }
    });
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() {
            dir_bytes(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn child_import(input: &Path, out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let started = Instant::now();
    let report = runtime()
        .block_on(registry::import(
            &store,
            "national",
            &[input.to_path_buf()],
            &ImportOptions {
                // Yesterday: the change list below is dated yesterday (a line dated later than now is refused).
                as_of: chrono::Utc::now().date_naive() - chrono::Duration::days(1),
                max_age_days: 31,
                // The synthetic download holds the area codes it generates, not the whole US: forced.
                force: true,
                scope: None,
            },
            &mut |_| {},
        ))
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let i = report.import;
    assert_eq!(i.rows, i.accepted + i.duplicates + i.rejected);
    println!(
        "import     {} rows = {} accepted + {} duplicates + {} rejected in {secs:.2} s: {:.2} M rows/s, peak RSS {:.0} MiB, index {:.0} MB in {} area codes",
        i.rows,
        i.accepted,
        i.duplicates,
        i.rejected,
        i.rows as f64 / secs / 1e6,
        peak_rss_mib(),
        report.status.index_bytes as f64 / 1e6,
        report.status.area_codes
    );
}

fn child_apply(out: &Path, changes: &Path) {
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let started = Instant::now();
    let report = runtime()
        .block_on(registry::apply(
            &store,
            "national",
            &[changes.to_path_buf()],
            &ApplyOptions { as_of: None },
        ))
        .unwrap();
    let c = report.changes;
    println!(
        "apply      {} change lines ({} adds, {} deletes, {} rejected) in {:.2} s, {} area codes rewritten, {} carried, peak RSS {:.0} MiB",
        c.rows,
        c.adds,
        c.deletes,
        c.rejected,
        started.elapsed().as_secs_f64(),
        report.area_codes_written,
        report.area_codes_carried,
        peak_rss_mib()
    );
}

fn child_lookups(out: &Path, npas: &[u16]) {
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let rt = runtime();
    let started = Instant::now();
    let reg = rt.block_on(registry::load(&store, "national")).unwrap();
    let huge = std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("AnonHugePages:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    println!(
        "load       {} numbers in {:.2} s (container init: every area code read and checked), peak RSS {:.0} MiB, {:.0} MiB on huge pages",
        reg.manifest.total,
        started.elapsed().as_secs_f64(),
        peak_rss_mib(),
        huge / 1024.0
    );
    let mut rng = Rng(42);
    let numbers: Vec<u64> = (0..20_000_000)
        .map(|_| {
            let npa = u64::from(npas[(rng.next() % npas.len() as u64) as usize]);
            10_000_000_000 + npa * 10_000_000 + 2_000_000 + rng.next() % 8_000_000
        })
        .collect();
    let t = Instant::now();
    let listed = numbers
        .iter()
        .filter(|n| reg.lookup(**n) == registry::Lookup::Listed)
        .count();
    let single = numbers.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
    let mut out = Vec::new();
    let t = Instant::now();
    reg.lookup_many(&numbers, &mut out);
    let batched = numbers.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
    assert_eq!(
        out.iter()
            .filter(|l| **l == registry::Lookup::Listed)
            .count(),
        listed
    );
    println!(
        "lookups    {single:.1} M/s one at a time, {batched:.1} M/s batched with prefetch (random numbers, {:.1} % listed)",
        listed as f64 * 100.0 / numbers.len() as f64
    );
    // A registry-only check of 1,000 numbers (normalize, calling hours, lookup), 200 times.
    use dncflow::steps::check::{
        check_with, CheckRequest, ContactIn, LocalAnswers, SuppressionSnapshot,
    };
    let regs = vec![std::sync::Arc::new(reg)];
    let snapshot = SuppressionSnapshot::default();
    let propagating = Default::default();
    let mut times = Vec::new();
    for round in 0..200 {
        let request = CheckRequest {
            contacts: numbers[round * 1000..(round + 1) * 1000]
                .iter()
                .map(|n| ContactIn {
                    phone_number: format!("+{n}"),
                    region_code: None,
                    state: None,
                })
                .collect(),
            list_ids: None,
            at: None,
            call_type: None,
        };
        let local = LocalAnswers {
            snapshot: &snapshot,
            propagating: &propagating,
            dead_letters: None,
            received: &[],
            incomplete: None,
            gap: None,
            hours: None,
            closures: None,
            registries: &regs,
        };
        let t = Instant::now();
        let r = rt.block_on(check_with(None, &request, local, 1));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.results.len(), 1000);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "check      1,000 numbers against the registry alone: p50 {:.2} ms, p99 {:.2} ms",
        times[100], times[198]
    );
}

/// `dncctl check` of a campaign file against the national index, end to end, and its parts in process.
fn check_file(root: &Path, out: &Path, npas: &[u16]) {
    let dncctl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/dncctl");
    if !dncctl.exists() {
        println!(
            "check file skipped: build the release binary first (cargo build --release -p dncctl)"
        );
        return;
    }
    let rows = env_u64("CHECK_ROWS", 1_000_000) as usize;
    let store = LocalStore {
        root: out.to_path_buf(),
    };
    let rss_mib = || {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    let before = rss_mib();
    let reg = runtime()
        .block_on(registry::load(&store, "national"))
        .unwrap();
    let index_mib = rss_mib() - before;
    // Half the numbers on the registry (drawn until one is listed), half random in its area codes.
    let mut rng = Rng(2026);
    let mut draw = |listed: bool| loop {
        let npa = u64::from(npas[(rng.next() % npas.len() as u64) as usize]);
        let n = 10_000_000_000 + npa * 10_000_000 + 2_000_000 + rng.next() % 8_000_000;
        if !listed || reg.lookup(n) == registry::Lookup::Listed {
            return n;
        }
    };
    let numbers: Vec<u64> = (0..rows).map(|i| draw(i % 2 == 0)).collect();
    let file = root.join(format!("campaign-{rows}.csv"));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(w, "phone").unwrap();
        for (i, n) in numbers.iter().enumerate() {
            let d = n % 10_000_000_000;
            let (npa, nxx, line) = (d / 10_000_000, d / 10_000 % 1000, d % 10_000);
            match i % 3 {
                0 => writeln!(w, "+1{d}"),
                1 => writeln!(w, "{npa}-{nxx:03}-{line:04}"),
                _ => writeln!(w, "({npa}) {nxx:03}-{line:04}"),
            }
            .unwrap();
        }
    }
    let results = root.join(format!("campaign-{rows}.checked.csv"));
    let t = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&dncctl)
        .arg("check")
        .arg(&file)
        .args(["--registry", "national", "--at", "2026-12-07T17:00:00Z"])
        .arg("--out-dir")
        .arg(out)
        .arg("--out")
        .arg(&results)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Peak RSS of the child: its high-water mark, read until it exits.
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            if let Some(kib) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let secs = t.elapsed().as_secs_f64();
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut summary).unwrap();
    assert!(status.success(), "dncctl check failed: {summary}");
    let suppressed = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .filter(|l| l.contains(",suppressed,"))
        .count();
    let expected = numbers
        .iter()
        .filter(|n| reg.lookup(**n) == registry::Lookup::Listed)
        .count();
    assert_eq!(
        suppressed, expected,
        "the check's suppressed numbers are the registry's"
    );
    println!(
        "check file {rows} numbers ({suppressed} suppressed, as the index says) with calling hours: {secs:.2} s, {:.2} M numbers/s end to end (index load included), peak RSS {:.0} MiB, {:.0} MiB over the loaded index's {index_mib:.0} MiB",
        rows as f64 / secs / 1e6,
        peak_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0 - index_mib,
    );
    // The parts, in this process: lookups alone, and calling hours per number and per place.
    let t = Instant::now();
    let listed = numbers
        .iter()
        .filter(|n| reg.lookup(**n) == registry::Lookup::Listed)
        .count();
    let lookups = rows as f64 / t.elapsed().as_secs_f64() / 1e6;
    let policy = dncflow::hours::Policy::embedded();
    let at: chrono::DateTime<chrono::Utc> = "2026-12-07T17:00:00Z".parse().unwrap();
    let parsed: Vec<dncflow::phone::E164> = numbers
        .iter()
        .filter_map(|n| dncflow::phone::E164::from_packed(*n))
        .collect();
    let sample = &parsed[..parsed.len().min(200_000)];
    let t = Instant::now();
    let callable = sample
        .iter()
        .filter(|n| policy.decide_with(**n, None, at, None, &[]).callable_now)
        .count();
    let per_number = sample.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = Instant::now();
    let mut places = std::collections::HashMap::new();
    let callable_by_place = parsed
        .iter()
        .filter(|n| {
            *places
                .entry(dncflow::hours::Policy::place_key(**n))
                .or_insert_with(|| policy.decide_with(**n, None, at, None, &[]).callable_now)
        })
        .count();
    let per_place = parsed.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
    assert!(listed > 0 && callable <= sample.len() && callable_by_place <= parsed.len());
    println!(
        "  parts    lookups alone {lookups:.1} M/s; calling hours decided per number {per_number:.2} M/s, once per place ({} places) {per_place:.1} M/s",
        places.len()
    );
}

fn crate_baseline(input: &Path) -> f64 {
    // The same rows through the `phonenumber` crate: parse + is_valid, on a sample (it is slow).
    let first = std::fs::read_dir(input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .min()
        .unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(first).unwrap()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut zip.by_index(0).unwrap(), &mut text).unwrap();
    let lines: Vec<String> = text
        .lines()
        .take(100_000)
        .map(|l| l.replace(',', ""))
        .collect();
    let t = Instant::now();
    let mut valid = 0;
    for l in &lines {
        if let Ok(n) = phonenumber::parse(Some(phonenumber::country::Id::US), l) {
            valid += usize::from(phonenumber::is_valid(&n));
        }
    }
    let rate = lines.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "crate      phonenumber parse + is_valid: {:.0} k rows/s on {} rows of the same files ({valid} valid)",
        rate / 1e3,
        lines.len()
    );
    rate
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 4 && args[1] == "--child" {
        let (what, a, b) = (
            &args[2],
            PathBuf::from(&args[3]),
            args.get(4).map(PathBuf::from),
        );
        match what.as_str() {
            "import" => child_import(&a, &b.unwrap()),
            "apply" => child_apply(&a, &b.unwrap()),
            _ => child_lookups(&a, &area_codes(env_u64("AREA_CODES", 400) as usize)),
        }
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rows = env_u64("ROWS", 25_850_000);
    let npas = area_codes(env_u64("AREA_CODES", 400) as usize);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/registry-bench");
    let input = root.join(format!("{rows}-{}", npas.len()));
    if !input.join(".done").exists() {
        let t = Instant::now();
        generate(&input, rows, &npas);
        std::fs::write(input.join(".done"), b"").unwrap();
        println!(
            "generated  {} zips, {:.0} MB, in {:.1} s",
            npas.len(),
            dir_bytes(&input) as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    let out = root.join("out");
    let me = std::env::current_exe().unwrap();
    let child = |args: &[&Path], what: &str| {
        let mut c = Command::new(&me);
        c.arg("--child").arg(what);
        for a in args {
            c.arg(a);
        }
        // One core, as the target says.
        let status = Command::new("taskset")
            .arg("-c")
            .arg("0")
            .arg(c.get_program())
            .args(c.get_args())
            .status()
            .unwrap_or_else(|_| c.status().unwrap());
        assert!(status.success(), "{what} failed");
    };
    child(&[&input, &out], "import");
    let crate_rate = crate_baseline(&input);
    // A 1,000,000-line change list over every area code: 85 % adds, 15 % deletes.
    let changes = root.join("changes-1m.txt");
    if !changes.exists() {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&changes).unwrap());
        let mut rng = Rng(7);
        let day = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
        for i in 0..1_000_000u64 {
            let npa = npas[(rng.next() % npas.len() as u64) as usize];
            let local = 2_000_000 + rng.next() % 8_000_000;
            let kind = if rng.next() % 100 < 85 { 'A' } else { 'D' };
            writeln!(
                w,
                "{npa}{local},{day}T{:02}:{:02}:{:02},{kind}",
                i / 3600 % 24,
                i / 60 % 60,
                i % 60
            )
            .unwrap();
        }
    }
    child(&[&out, &changes], "apply");
    child(&[&out], "lookups");
    check_file(&root, &out, &npas);
    println!(
        "(the import's rows/s over the crate's {:.0} k rows/s is the speed-up; input {:.0} MB of zips)",
        crate_rate / 1e3,
        dir_bytes(&input) as f64 / 1e6
    );
}
