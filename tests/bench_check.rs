//! Check benchmark: 1,000-number requests against the simulator (around the numbers on its list), printing p50/p99
//! latency and numbers/s, and the local pre-filter's lookups/s.
//!
//! With `REGISTRY_OUT=DIR` (the output root of `dncctl registry import`, e.g. `shared/../target/registry-bench/out`
//! after `ROWS=258500000 cargo bench -p dncflow --bench registry`), the same requests are checked against the
//! registry `national` there as well as the simulator, and the load time is printed.
//!
//! Run: `cargo bench -p dncflow-tests --bench check` (`REQUESTS=` to change the count).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use cxone_sim::SimConfig;
use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
use dncflow::adapters::cxone::v2::{ClientConfig, V2Client};
use dncflow::adapters::cxone::{idempotency_key, DncApi, EntryInput};
use dncflow::local::ensure_list;
use dncflow::steps::check::{check, CheckRequest, ContactIn, SuppressionSnapshot, Verdict};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--exact") {
        return;
    }
    let requests: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let sim = cxone_sim::spawn(
        SimConfig {
            entries_rate: 1000.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let (id, secret) = SimConfig::default().clients[0].clone();
    let creds = Credentials::v2(&sim.base_url, &id, &secret);
    let api = V2Client::new(
        Box::new(StaticCredentials(creds)),
        ClientConfig {
            rate_per_sec: 100.0,
            ..ClientConfig::default()
        },
    )
    .unwrap();
    let list = ensure_list(&api, "bench").await.unwrap();
    let on_list: Vec<String> = (0..10_000)
        .map(|i| format!("+1202{:07}", 2_000_000 + i * 2))
        .collect();
    let entries: Vec<EntryInput> = on_list
        .iter()
        .map(|p| EntryInput {
            phone_number: p.clone(),
            jurisdiction: "US-DC".into(),
            expiration_date: None,
            source: "bench".into(),
            idempotency_key: idempotency_key(&list.id, p, "bench"),
        })
        .collect();
    for chunk in entries.chunks(100) {
        api.upload_batch(&list.id, chunk).await.unwrap();
    }
    sim.sim.advance(200.0);
    let mut latencies = Vec::with_capacity(requests);
    let start = Instant::now();
    for r in 0..requests {
        let contacts = (0..1000)
            .map(|i| ContactIn {
                phone_number: format!("(202) {:03}-{:04}", 200 + (r % 3), 2000 + i),
                region_code: None,
                state: None,
            })
            .collect();
        let t = Instant::now();
        let resp = check(
            &api,
            &CheckRequest {
                contacts,
                list_ids: None,
                // A Wednesday noon, Eastern: inside every US zone's calling hours.
                at: Some("2026-12-09T17:00:00Z".parse().unwrap()),
                call_type: None,
            },
            &SuppressionSnapshot::default(),
            &HashSet::new(),
            4,
        )
        .await;
        latencies.push(t.elapsed());
        // Every number checked (calling hours and what the list holds aside: `safeToDial` also needs both).
        assert!(resp.complete, "{:?}", resp.metrics);
        assert!(resp.results.iter().all(|x| x.status != Verdict::Error));
    }
    let total = start.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "check: {requests} requests of 1,000 numbers: p50 {:.1} ms, p99 {:.1} ms, {:.0} numbers/s (client limit 100 requests/s)",
        ms(pct(0.50)),
        ms(pct(0.99)),
        (requests * 1000) as f64 / total.as_secs_f64()
    );
    if let Some(dir) = std::env::var_os("REGISTRY_OUT") {
        let store = dncflow::adapters::store::LocalStore { root: dir.into() };
        let t = Instant::now();
        let registry =
            std::sync::Arc::new(dncflow::registry::load(&store, "national").await.unwrap());
        println!(
            "registry: {} numbers loaded in {:.2} s",
            registry.manifest.total,
            t.elapsed().as_secs_f64()
        );
        let registries = [registry];
        let (snapshot, propagating) = (SuppressionSnapshot::default(), HashSet::new());
        let mut latencies = Vec::with_capacity(requests);
        let mut by_registry = 0;
        for r in 0..requests {
            let contacts = (0..1000)
                .map(|i| ContactIn {
                    phone_number: format!("(202) {:03}-{:04}", 200 + (r % 3), 2000 + i),
                    region_code: None,
                    state: None,
                })
                .collect();
            let local = dncflow::steps::check::LocalAnswers {
                snapshot: &snapshot,
                propagating: &propagating,
                dead_letters: None,
                received: &[],
                incomplete: None,
                gap: None,
                hours: None,
                closures: None,
                registries: &registries,
            };
            let request = CheckRequest {
                contacts,
                list_ids: None,
                at: Some("2026-12-09T17:00:00Z".parse().unwrap()),
                call_type: None,
            };
            let t = Instant::now();
            let resp = dncflow::steps::check::check_with(Some(&api), &request, local, 4).await;
            latencies.push(t.elapsed());
            assert!(resp.results.iter().all(|x| x.status != Verdict::Error));
            by_registry += resp.metrics.registry_suppressed;
        }
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "check with the registry: {requests} requests of 1,000 numbers: p50 {:.1} ms, p99 {:.1} ms ({by_registry} numbers suppressed by the registry, the rest asked of the simulator)",
            ms(pct(0.50)),
            ms(pct(0.99)),
        );
    }
    let snapshot = SuppressionSnapshot::from_numbers(on_list.iter().map(String::as_str));
    let probes: Vec<String> = (0..1_000_000)
        .map(|i| format!("+1202{:07}", 2_000_000 + i))
        .collect();
    let t = Instant::now();
    let hits = probes.iter().filter(|p| snapshot.contains(p)).count();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pre-filter: {} lookups in {secs:.2} s = {:.2} M lookups/s ({hits} hits, {} hashes held)",
        probes.len(),
        probes.len() as f64 / secs / 1e6,
        snapshot.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
