//! Upload benchmark, per dialect: 100,000 entries to the simulator under a 50 requests/s tenant limit with 5 %
//! injected 429s without `Retry-After`, printing achieved entries/s as a fraction of the ceiling (100 entries × 50
//! requests/s = 5,000 entries/s), and checking zero duplicates and zero loss.
//!
//! Run: `cargo bench -p dncflow-tests --bench upload` (`ENTRIES=` to change the count, `DIALECTS=v2,admin`).

use std::time::Instant;

use cxone_sim::{Endpoint, FaultKind, FaultRule, SimConfig, SimDialect};
use dncflow::adapters::cxone::{idempotency_key, EntryInput, EntryOutcome};
use dncflow::local::ensure_list;
use futures::StreamExt;

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--exact") {
        return;
    }
    let n: usize = std::env::var("ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dialects = std::env::var("DIALECTS").unwrap_or_else(|_| "v2,admin".into());
    for dialect in dialects.split(',') {
        let dialect = match dialect.trim() {
            "v2" => SimDialect::V2,
            "admin" => SimDialect::Admin,
            other => panic!("DIALECTS: v2 or admin, not {other}"),
        };
        bench(dialect, n).await;
    }
}

/// Upload `n` entries through the dialect's client (one request policy for both) and print the efficiency.
async fn bench(dialect: SimDialect, n: usize) {
    let rate = 50.0;
    let sim = cxone_sim::spawn(
        SimConfig {
            dialect,
            entries_rate: rate,
            faults: vec![FaultRule {
                endpoint: Endpoint::EntriesPost,
                // Without Retry-After: the Admin API's usual 429, and v2's worst case.
                kind: FaultKind::TooManyRequests { retry_after: None },
                probability: 0.05,
                after: 0,
                count: None,
            }],
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let client = dncflow_tests::sim_api(&sim, rate).await;
    let list = ensure_list(client.as_ref(), "bench").await.unwrap();
    let entries: Vec<EntryInput> = (0..n)
        .map(|i| {
            let phone = format!(
                "+1{}{:07}",
                202 + (i / 8_000_000),
                2_000_000 + i % 8_000_000
            );
            EntryInput {
                idempotency_key: idempotency_key(&list.id, &phone, "bench"),
                phone_number: phone,
                jurisdiction: "US-DC".into(),
                expiration_date: None,
                source: "bench".into(),
            }
        })
        .collect();
    let start = Instant::now();
    let outcomes: Vec<EntryOutcome> = futures::stream::iter(entries.chunks(100))
        .map(|chunk| client.upload_batch(&list.id, chunk))
        .buffered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|r| r.expect("batch failed"))
        .collect();
    let secs = start.elapsed().as_secs_f64();
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, EntryOutcome::Created { .. }))
        .count();
    let state = sim.sim.state();
    let throttled = sim
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    let achieved = n as f64 / secs;
    let ceiling = 100.0 * rate;
    println!(
        "{dialect:?}: uploaded {n} entries in {secs:.1} s: {achieved:.0} entries/s = {:.3} of the ceiling \
         ({ceiling:.0}/s); 429s {throttled}; created {created}; sim entries {}; duplicates {}",
        achieved / ceiling,
        state["entries"],
        state["duplicates"]
    );
    assert_eq!(created, n, "every entry created");
    assert_eq!(state["entries"], n, "zero loss");
    assert_eq!(state["duplicates"], 0, "zero duplicates");
}
