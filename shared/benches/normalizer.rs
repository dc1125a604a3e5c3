//! Criterion benchmarks of the phone normalizer: the North American fast path, messy input, international input,
//! and the `phonenumber` crate's `parse` + `is_valid` on the same North American rows for comparison.
#![allow(missing_docs)] // criterion_group! and criterion_main! generate undocumented items

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dncflow::phone::Normalizer;

fn nanp_inputs(n: usize) -> Vec<String> {
    let npas = [
        202u64, 212, 305, 415, 416, 512, 604, 713, 787, 800, 902, 917,
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let npa = npas[(x % npas.len() as u64) as usize];
            let nxx = 200 + (x >> 8) % 800;
            let line = (x >> 20) % 10_000;
            match i % 4 {
                0 => format!("{npa}{nxx}{line:04}"),
                1 => format!("({npa}) {nxx}-{line:04}"),
                2 => format!("+1 {npa}-{nxx}-{line:04}"),
                _ => format!("1.{npa}.{nxx}.{line:04}"),
            }
        })
        .collect()
}

fn international_inputs() -> Vec<&'static str> {
    vec![
        "+44 20 7946 0018",
        "+49 151 23459191",
        "+33 1 42 68 53 00",
        "+61 2 9374 4000",
        "+81 3-3224-5000",
        "+55 11 91234-6430",
        "+91 98765 43210",
        "+34 912 34 56 78",
        "+39 06 6988 4857",
        "+52 55 1234 5678",
        "011 44 20 7946 0018",
        "+7 800 123-45-67",
        "+353 1 234 5678",
        "+27 21 123 4567",
        "+86 10 1234 5678",
    ]
}

fn bench(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    let nanp = nanp_inputs(10_000);
    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(nanp.len() as u64));
    group.bench_function(BenchmarkId::new("dncflow", "north-american"), |b| {
        b.iter(|| {
            nanp.iter()
                .filter(|s| normalizer.normalize(black_box(s)).is_ok())
                .count()
        })
    });
    group.bench_function(
        BenchmarkId::new("phonenumber-crate", "north-american"),
        |b| {
            b.iter(|| {
                nanp.iter()
                    .filter(|s| {
                        phonenumber::parse(Some(phonenumber::country::Id::US), black_box(s))
                            .is_ok_and(|n| n.is_valid())
                    })
                    .count()
            })
        },
    );
    let messy: Vec<String> = nanp
        .iter()
        .take(1000)
        .map(|s| format!("{s} ext. 12"))
        .collect();
    group.throughput(Throughput::Elements(messy.len() as u64));
    group.bench_function(BenchmarkId::new("dncflow", "messy-with-extension"), |b| {
        b.iter(|| {
            messy
                .iter()
                .filter(|s| normalizer.normalize(black_box(s)).is_ok())
                .count()
        })
    });
    let intl = international_inputs();
    group.throughput(Throughput::Elements(intl.len() as u64));
    group.bench_function(BenchmarkId::new("dncflow", "international"), |b| {
        b.iter(|| {
            intl.iter()
                .filter(|s| normalizer.normalize(black_box(s)).is_ok())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
