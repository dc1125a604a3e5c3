//! Criterion benchmark of the calling-hours decision (`hours::Policy::decide`): number → zones, jurisdictions,
//! the window intersected over every candidate zone and the next callable instant. Target: under 1 µs a number.
//! Four mixes: single-zone numbers inside their window (the common case at dialing time), the same outside it (the
//! next window is searched), split area codes (two zones), and numbers with no place (seven zones, every rule).
#![allow(missing_docs)] // criterion_group! and criterion_main! generate undocumented items

use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dncflow::hours::Policy;
use dncflow::phone::E164;

fn numbers(npas: &[u64], n: usize) -> Vec<E164> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let npa = npas[(x % npas.len() as u64) as usize];
            let nxx = 200 + (x >> 8) % 800;
            let line = (x >> 20) % 10_000;
            E164::from_packed(10_000_000_000 + npa * 10_000_000 + nxx * 10_000 + line).unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let policy = Policy::embedded();
    let single = numbers(&[202, 212, 305, 312, 415, 512, 602, 720, 808, 917], 1000);
    let split = numbers(&[208, 270, 364, 541, 605, 701, 850, 930], 1000);
    let unplaced: Vec<E164> = numbers(&[800, 888], 500)
        .into_iter()
        .chain((0..500).map(|i| E164::from_packed(442_079_460_000 + i).unwrap()))
        .collect();
    let noon: DateTime<Utc> = "2026-12-09T19:00:00Z".parse().unwrap();
    let night: DateTime<Utc> = "2026-12-09T09:00:00Z".parse().unwrap();
    let mut group = c.benchmark_group("calling-hours");
    for (name, set, at) in [
        ("single-zone-open", &single, noon),
        ("single-zone-closed", &single, night),
        ("split-area-codes", &split, noon),
        ("no-place", &unplaced, noon),
    ] {
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(BenchmarkId::new("decide", name), |b| {
            b.iter(|| {
                set.iter()
                    .filter(|n| policy.decide(black_box(**n), None, at).callable_now)
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
