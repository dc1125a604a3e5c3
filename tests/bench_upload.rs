//! Upload benchmark: 100,000 entries to the simulator under a 50 requests/s tenant limit with 5 % injected 429s,
//! printing achieved entries/s as a fraction of the ceiling (100 entries × 50 requests/s = 5,000 entries/s), and
//! checking zero duplicates and zero loss.
//!
//! Run: `cargo bench -p dncflow-tests --bench upload` (`ENTRIES=` to change the count).

use std::time::{Duration, Instant};

use cxone_sim::{Endpoint, FaultKind, FaultRule, SimConfig};
use dncflow::cxone::auth::{Credentials, StaticCredentials};
use dncflow::cxone::v2::{ClientConfig, V2Client};
use dncflow::cxone::{idempotency_key, DncApi, DncRule, EntryInput, EntryOutcome, NewList};
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
    let rate = 50.0;
    let sim = cxone_sim::spawn(
        SimConfig {
            clients: vec![("bench".into(), "bench-secret".into())],
            entries_rate: rate,
            faults: vec![FaultRule {
                endpoint: Endpoint::EntriesPost,
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
    let client = V2Client::new(
        Box::new(StaticCredentials(Credentials::v2(
            &sim.base_url,
            "bench",
            "bench-secret",
        ))),
        ClientConfig {
            rate_per_sec: rate,
            base_backoff: Duration::from_millis(20),
            ..ClientConfig::default()
        },
    )
    .unwrap();
    let list = client
        .create_list(&NewList {
            name: "bench".into(),
            description: String::new(),
            kind: "MANUAL".into(),
            default_expiration_date: "2099-12-31T23:59:59Z".into(),
            is_active: true,
        })
        .await
        .unwrap();
    client
        .create_rule(&DncRule {
            id: String::new(),
            name: "bench".into(),
            description: String::new(),
            scope: "BOTH".into(),
            priority: 1,
            list_ids: vec![list.id.clone()],
            action: "BLOCK".into(),
            is_active: true,
        })
        .await
        .unwrap();
    let entries: Vec<EntryInput> = (0..n)
        .map(|i| {
            let phone = format!(
                "+1{}{:07}",
                202 + (i / 9_000_000),
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
        "uploaded {n} entries in {secs:.1} s: {achieved:.0} entries/s = {:.3} of the ceiling ({ceiling:.0}/s); \
         429s {throttled}; created {created}; sim entries {}; duplicates {}",
        achieved / ceiling,
        state["entries"],
        state["duplicates"]
    );
    assert_eq!(created, n, "every entry created");
    assert_eq!(state["entries"], n, "zero loss");
    assert_eq!(state["duplicates"], 0, "zero duplicates");
}
