//! The CXone client against the running simulator (a real HTTP server on loopback), fault by fault.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cxone_sim::{Endpoint, FaultKind, FaultRule, RunningSim, SimConfig};
use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
use dncflow::adapters::cxone::v2::{ClientConfig, V2Client};
use dncflow::adapters::cxone::{
    idempotency_key, CxoneError, DncApi, DncRule, EntryInput, EntryOutcome, NewList, RuleAction,
    RuleScope,
};

const SECRET: &str = "sim-secret-7f3a9c";

async fn sim(config: SimConfig) -> RunningSim {
    let config = SimConfig {
        clients: vec![("test-client".into(), SECRET.into())],
        ..config
    };
    cxone_sim::spawn(config, 0).await.unwrap()
}

fn fast() -> SimConfig {
    SimConfig {
        entries_rate: 2000.0,
        check_rate: 2000.0,
        token_requests_per_minute: 1000,
        ..SimConfig::default()
    }
}

fn client(sim: &RunningSim, config: ClientConfig) -> V2Client {
    let creds = Credentials::v2(&sim.base_url, "test-client", SECRET);
    V2Client::new(Box::new(StaticCredentials(creds)), config).unwrap()
}

fn quick() -> ClientConfig {
    ClientConfig {
        rate_per_sec: 1000.0,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        request_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

async fn make_list(c: &V2Client, name: &str) -> String {
    let list = c
        .create_list(&NewList {
            name: name.into(),
            description: "test".into(),
            kind: "MANUAL".into(),
            default_expiration_date: "2099-12-31T23:59:59Z".into(),
            is_active: true,
        })
        .await
        .unwrap();
    c.create_rule(&DncRule {
        id: String::new(),
        name: format!("{name}-rule"),
        description: String::new(),
        scope: RuleScope::Both,
        priority: 5,
        list_ids: vec![list.id.clone()],
        action: RuleAction::Block,
        is_active: true,
    })
    .await
    .unwrap();
    list.id
}

fn entries(list_id: &str, n: usize, version: &str) -> Vec<EntryInput> {
    (0..n)
        .map(|i| {
            let phone = format!("+1202{:07}", 2_000_000 + i);
            EntryInput {
                idempotency_key: idempotency_key(list_id, &phone, version),
                phone_number: phone,
                jurisdiction: "US-DC".into(),
                expiration_date: Some("2099-01-01T00:00:00Z".into()),
                source: "test".into(),
            }
        })
        .collect()
}

async fn upload_all(
    c: &V2Client,
    list_id: &str,
    all: &[EntryInput],
    concurrency: usize,
) -> Vec<EntryOutcome> {
    use futures::StreamExt;
    let results: Vec<Result<Vec<EntryOutcome>, CxoneError>> =
        futures::stream::iter(all.chunks(100))
            .map(|chunk| c.upload_batch(list_id, chunk))
            .buffered(concurrency)
            .collect()
            .await;
    results.into_iter().flat_map(|r| r.unwrap()).collect()
}

fn state(s: &RunningSim) -> serde_json::Value {
    s.sim.state()
}

fn created(outcomes: &[EntryOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, EntryOutcome::Created { .. }))
        .count()
}

#[tokio::test]
async fn concurrent_tasks_make_one_token_request() {
    let s = sim(fast()).await;
    let c = Arc::new(client(&s, quick()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.lists().await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(c.token_requests(), 1);
    assert_eq!(state(&s)["tokensIssued"], 1);
}

#[tokio::test]
async fn token_expiring_mid_upload_of_10000_entries_loses_nothing() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "expiry").await;
    // Every issued token dies at random moments of the upload, five times over.
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind: FaultKind::ExpireTokens,
        probability: 0.08,
        after: 10,
        count: Some(5),
    }]);
    let all = entries(&list, 10_000, "v1");
    let outcomes = upload_all(&c, &list, &all, 4).await;
    assert_eq!(created(&outcomes), 10_000);
    let st = state(&s);
    assert_eq!(st["entries"], 10_000);
    assert_eq!(st["duplicates"], 0);
    assert!(
        c.token_requests() >= 2,
        "tokens were refreshed: {}",
        c.token_requests()
    );
    let refused = s.sim.requests().iter().filter(|r| r.status == 401).count();
    assert!(refused >= 1, "the sim refused expired tokens");
}

#[tokio::test]
async fn a_429_storm_converges() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "storm").await;
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind: FaultKind::TooManyRequests { retry_after: None },
        probability: 0.4,
        after: 0,
        count: Some(60),
    }]);
    let all = entries(&list, 3_000, "v1");
    let outcomes = upload_all(&c, &list, &all, 4).await;
    assert_eq!(created(&outcomes), 3_000);
    let throttled = s.sim.requests().iter().filter(|r| r.status == 429).count();
    assert!(throttled >= 10, "the storm happened: {throttled}");
    assert_eq!(state(&s)["entries"], 3_000);
}

#[tokio::test]
async fn retry_after_pauses_the_whole_client() {
    let s = sim(fast()).await;
    let c = Arc::new(client(&s, quick()));
    c.lists().await.unwrap();
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::Lists,
        kind: FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        probability: 1.0,
        after: 0,
        count: Some(1),
    }]);
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.lists().await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "every task waited for Retry-After"
    );
    let lists_requests = s
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v2/dnc/lists")
        .count();
    assert!(
        lists_requests <= 6,
        "no hammering during the pause: {lists_requests}"
    );
}

/// A `Retry-After` of an hour neither freezes the client nor blocks the other tasks: it is clamped to the client's
/// maximum, and a pause that would end past the request's deadline fails that request at once, pausing nobody.
#[tokio::test]
async fn an_absurd_retry_after_is_clamped_and_never_freezes_the_client() {
    let s = sim(fast()).await;
    let throttle_once = || {
        vec![FaultRule {
            endpoint: Endpoint::Lists,
            kind: FaultKind::TooManyRequests {
                retry_after: Some(3600),
            },
            probability: 1.0,
            after: 0,
            count: Some(1),
        }]
    };
    // Clamped to 1 s: the request succeeds after about a second, not an hour.
    let c = client(
        &s,
        ClientConfig {
            max_retry_after: Duration::from_secs(1),
            ..quick()
        },
    );
    c.lists().await.unwrap();
    s.sim.set_faults(throttle_once());
    let start = std::time::Instant::now();
    c.lists().await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Clamped to 60 s, past a 2 s deadline: the request gives up at once and the client is not paused.
    let c = client(
        &s,
        ClientConfig {
            deadline: Duration::from_secs(2),
            ..quick()
        },
    );
    c.lists().await.unwrap();
    s.sim.set_faults(throttle_once());
    let start = std::time::Instant::now();
    let err = c.lists().await.unwrap_err();
    assert!(matches!(err, CxoneError::Exhausted { .. }), "{err}");
    c.lists().await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "nobody waited for the refused pause: {:?}",
        start.elapsed()
    );
}

fn always(endpoint: Endpoint, kind: FaultKind) -> Vec<FaultRule> {
    vec![FaultRule {
        endpoint,
        kind,
        probability: 1.0,
        after: 0,
        count: None,
    }]
}

/// The breaker counts requests that failed after their retries, not attempts: five such requests in a row open it;
/// while it is open nothing is sent; after the cool-off one trial decides. A trial that fails with a reset (no
/// status: the path the old breaker never released) opens it again for another cool-off; the next trial succeeds
/// and closes it.
#[tokio::test]
async fn five_failed_requests_open_the_breaker_and_a_trial_failed_by_a_reset_is_released() {
    let s = sim(fast()).await;
    let cool_off = Duration::from_millis(1500);
    let c = client(
        &s,
        ClientConfig {
            max_attempts: 3,
            breaker_threshold: 5,
            breaker_cool_off: cool_off,
            // Shorter than the cool-off: a request meeting the open breaker fails at once instead of waiting.
            deadline: Duration::from_secs(1),
            ..quick()
        },
    );
    c.lists().await.unwrap();
    s.sim.set_faults(always(
        Endpoint::Lists,
        FaultKind::ServerError { status: 503 },
    ));
    let before = s.sim.requests().len();
    for i in 0..4 {
        let err = c.lists().await.unwrap_err();
        assert!(
            matches!(err, CxoneError::Exhausted { attempts: 3, .. }),
            "request {i}: {err}"
        );
        assert!(
            !c.breaker_open(),
            "not open after {} failed requests",
            i + 1
        );
    }
    // The fifth opens it; its cool-off would outlast the deadline: it ends `CircuitOpen`, without waiting.
    let err = c.lists().await.unwrap_err();
    assert!(
        matches!(err, CxoneError::CircuitOpen { failures: 5, .. }),
        "{err}"
    );
    assert!(c.breaker_open());
    assert_eq!(s.sim.requests().len() - before, 15, "three attempts each");
    // Open: fails fast, without a request.
    let before = s.sim.requests().len();
    let err = c.lists().await.unwrap_err();
    assert!(
        matches!(err, CxoneError::CircuitOpen { failures: 5, .. }),
        "{err}"
    );
    assert!(err.is_transient());
    assert_eq!(s.sim.requests().len(), before);

    // The half-open trial meets a reset: the breaker opens again and the trial is released.
    s.sim.set_faults(always(Endpoint::Lists, FaultKind::Reset));
    tokio::time::sleep(cool_off + Duration::from_millis(100)).await;
    let err = c.lists().await.unwrap_err();
    assert!(matches!(err, CxoneError::CircuitOpen { .. }), "{err}");
    assert_eq!(
        s.sim.requests().len() - before,
        1,
        "one trial, then nothing while open"
    );
    assert!(c.breaker_open());

    // The next trial, after another cool-off, succeeds: closed, every request goes through again.
    s.sim.set_faults(vec![]);
    tokio::time::sleep(cool_off + Duration::from_millis(100)).await;
    c.lists().await.expect("the trial closes the breaker");
    assert!(!c.breaker_open());
    c.lists().await.unwrap();
    c.lists().await.unwrap();
}

/// A request that meets an open breaker with time left in its deadline waits out the cool-off and goes out as the
/// trial, instead of failing the caller.
#[tokio::test]
async fn a_request_waits_out_the_cool_off_within_its_deadline() {
    let s = sim(fast()).await;
    let cool_off = Duration::from_millis(400);
    let c = client(
        &s,
        ClientConfig {
            max_attempts: 2,
            breaker_threshold: 2,
            breaker_cool_off: cool_off,
            deadline: Duration::from_secs(2),
            ..quick()
        },
    );
    c.lists().await.unwrap();
    s.sim.set_faults(always(
        Endpoint::Lists,
        FaultKind::ServerError { status: 500 },
    ));
    assert!(matches!(
        c.lists().await.unwrap_err(),
        CxoneError::Exhausted { .. }
    ));
    // The second failed request opens it, waits out each cool-off for the trial (which fails: the service is
    // still down) and ends `CircuitOpen` at its deadline.
    let started = std::time::Instant::now();
    assert!(matches!(
        c.lists().await.unwrap_err(),
        CxoneError::CircuitOpen { failures: 2, .. }
    ));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(c.breaker_open());
    s.sim.set_faults(vec![]);
    let started = std::time::Instant::now();
    c.lists()
        .await
        .expect("waited for the cool-off, then the trial succeeded");
    assert!(
        started.elapsed() >= cool_off - Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(!c.breaker_open());
}

/// A token endpoint that hangs (40 s) cannot hold a request past its deadline: the request gives up in time.
#[tokio::test]
async fn a_hanging_token_endpoint_is_bounded_by_the_deadline() {
    let s = sim(fast()).await;
    s.sim
        .set_faults(always(Endpoint::Token, FaultKind::Slow { ms: 40_000 }));
    let c = client(
        &s,
        ClientConfig {
            deadline: Duration::from_secs(2),
            ..quick()
        },
    );
    let started = std::time::Instant::now();
    let err = c.lists().await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, CxoneError::Exhausted { .. }), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_101_entry_batch_is_split_and_413_halves() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "split").await;
    let all = entries(&list, 101, "v1");
    let outcomes = c.upload_batch(&list, &all).await.unwrap();
    assert_eq!(created(&outcomes), 101);
    let sizes: Vec<usize> = s
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v2/dnc/entries")
        .filter_map(|r| r.items)
        .collect();
    assert_eq!(sizes, vec![100, 1], "never more than 100 a request");

    // A gateway that takes fewer than 100: the client splits on 413 until the halves fit.
    let s = sim(SimConfig {
        max_entries_per_request: 30,
        ..fast()
    })
    .await;
    let c = client(&s, quick());
    let list = make_list(&c, "split413").await;
    let all = entries(&list, 100, "v1");
    let outcomes = c.upload_batch(&list, &all).await.unwrap();
    assert_eq!(created(&outcomes), 100);
    let log = s.sim.requests();
    let writes: Vec<(u16, usize)> = log
        .iter()
        .filter(|r| r.path == "/api/v2/dnc/entries")
        .map(|r| (r.status, r.items.unwrap()))
        .collect();
    assert!(
        writes.contains(&(413, 100)) && writes.contains(&(413, 50)) && writes.contains(&(201, 25)),
        "{writes:?}"
    );
    assert_eq!(state(&s)["entries"], 100);
}

#[tokio::test]
async fn applied_but_503_replays_without_duplicates() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "applied503").await;
    s.sim.set_faults(vec![FaultRule {
        endpoint: Endpoint::EntriesPost,
        kind: FaultKind::AppliedThen503,
        probability: 1.0,
        after: 1,
        count: Some(2),
    }]);
    let all = entries(&list, 500, "v1");
    let outcomes = upload_all(&c, &list, &all, 1).await;
    // Replayed keys answer with the original result: created, and no second record.
    assert_eq!(created(&outcomes), 500);
    let st = state(&s);
    assert_eq!(st["entries"], 500);
    assert_eq!(st["duplicates"], 0);
    assert_eq!(
        s.sim.requests().iter().filter(|r| r.status == 503).count(),
        2
    );
}

#[tokio::test]
async fn resets_and_slow_responses_are_retried() {
    let s = sim(fast()).await;
    let c = client(
        &s,
        ClientConfig {
            request_timeout: Duration::from_millis(300),
            ..quick()
        },
    );
    let list = make_list(&c, "flaky").await;
    s.sim.set_faults(vec![
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::Reset,
            probability: 1.0,
            after: 1,
            count: Some(2),
        },
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::Slow { ms: 1000 },
            probability: 1.0,
            after: 4,
            count: Some(1),
        },
    ]);
    let all = entries(&list, 800, "v1");
    let outcomes = upload_all(&c, &list, &all, 1).await;
    assert_eq!(created(&outcomes), 800);
    assert_eq!(state(&s)["entries"], 800);
    assert_eq!(state(&s)["duplicates"], 0);
}

#[tokio::test]
async fn rerun_sends_same_keys_and_creates_nothing() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "rerun").await;
    let all = entries(&list, 250, "drop-sha-1");
    assert_eq!(created(&upload_all(&c, &list, &all, 2).await), 250);
    let again = upload_all(&c, &list, &entries(&list, 250, "drop-sha-1"), 2).await;
    assert_eq!(again.len(), 250);
    assert_eq!(state(&s)["entries"], 250, "a re-run adds nothing");
    // A new drop (new keys) of the same numbers: they exist already.
    let newer = upload_all(&c, &list, &entries(&list, 250, "drop-sha-2"), 2).await;
    assert!(
        newer
            .iter()
            .all(|o| matches!(o, EntryOutcome::Exists { .. })),
        "{:?}",
        &newer[..2]
    );
    assert_eq!(state(&s)["entries"], 250);
}

#[tokio::test]
async fn partial_rejections_map_back_to_the_input_index() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "partial").await;
    let mut batch = entries(&list, 5, "v1");
    batch[1].phone_number = "2025550198".into();
    batch[3].jurisdiction = "Washington".into();
    batch[4].expiration_date = Some("2001-01-01T00:00:00Z".into());
    let outcomes = c.upload_batch(&list, &batch).await.unwrap();
    let code = |o: &EntryOutcome| match o {
        EntryOutcome::Rejected { code, .. } => code.clone(),
        other => format!("{other:?}"),
    };
    assert!(matches!(outcomes[0], EntryOutcome::Created { .. }));
    assert_eq!(code(&outcomes[1]), "INVALID_PHONE_NUMBER");
    assert!(matches!(outcomes[2], EntryOutcome::Created { .. }));
    assert_eq!(code(&outcomes[3]), "INVALID_JURISDICTION");
    assert_eq!(code(&outcomes[4]), "INVALID_EXPIRATION");
    // Unknown list: every entry rejected, answer 200 with empty data.
    let outcomes = c
        .upload_batch("no-such-list", &entries("no-such-list", 3, "v1"))
        .await
        .unwrap();
    assert!(outcomes.iter().all(|o| code(o) == "UNKNOWN_LIST"));
    // A key reused with another payload (IDEMPOTENCY_CONFLICT) is not a refusal of the number: its outcome is
    // unknown, for reconciliation to settle by reading the list, never a dead letter.
    let mut conflicting = entries(&list, 1, "v1");
    conflicting[0].source = "another payload".into();
    let outcomes = c.upload_batch(&list, &conflicting).await.unwrap();
    assert_eq!(outcomes, vec![EntryOutcome::Unconfirmed], "{outcomes:?}");
}

#[tokio::test]
async fn paging_and_contacts_check_with_propagation() {
    let s = sim(SimConfig {
        propagation_secs: (60, 120),
        ..fast()
    })
    .await;
    let c = client(&s, quick());
    let list = make_list(&c, "paging").await;
    let all = entries(&list, 2_345, "v1");
    upload_all(&c, &list, &all, 4).await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = c.list_entries(&list, offset, 1000).await.unwrap();
        assert_eq!(page.total, 2_345);
        if page.entries.is_empty() {
            break;
        }
        offset += page.entries.len() as u64;
        seen.extend(page.entries.into_iter().map(|e| e.phone_number));
    }
    // Batches ran concurrently, so creation order is batch arrival order: compare as sets, and check no repeats.
    let mut expected: Vec<String> = all.iter().map(|e| e.phone_number.clone()).collect();
    let pages_len = seen.len();
    seen.sort();
    seen.dedup();
    expected.sort();
    assert_eq!(pages_len, 2_345, "no entry twice across pages");
    assert!(seen == expected, "paging returned every entry exactly once");

    let query = |p: &str| dncflow::adapters::cxone::ContactQuery {
        phone_number: p.into(),
        region_code: "US".into(),
        list_ids: vec![],
        match_type: "exact".into(),
    };
    let qs = vec![query(&all[0].phone_number), query("+14155550100")];
    let before = c.check_contacts(&qs).await.unwrap();
    assert_eq!(
        before[0].status,
        dncflow::adapters::cxone::CheckStatus::Allowed,
        "not propagated yet"
    );
    s.sim.advance(121.0);
    let after = c.check_contacts(&qs).await.unwrap();
    assert_eq!(
        after[0].status,
        dncflow::adapters::cxone::CheckStatus::Suppressed
    );
    assert_eq!(after[0].list_matches, vec![list.clone()]);
    assert_eq!(
        after[1].status,
        dncflow::adapters::cxone::CheckStatus::Allowed
    );
}

/// A `tracing` writer that keeps everything written, to search it afterwards.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_logs_or_errors() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "secrets").await;
    s.sim.set_faults(vec![
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::ExpireTokens,
            probability: 1.0,
            after: 1,
            count: Some(1),
        },
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::ServerError { status: 500 },
            probability: 1.0,
            after: 2,
            count: Some(1),
        },
    ]);
    upload_all(&c, &list, &entries(&list, 400, "v1"), 1).await;
    // A client with a wrong secret: the error must not quote it.
    let bad = V2Client::new(
        Box::new(StaticCredentials(Credentials::v2(
            &s.base_url,
            "test-client",
            "wrong-secret-1234",
        ))),
        quick(),
    )
    .unwrap();
    let err = bad.lists().await.unwrap_err();
    let err_text = format!("{err} {err:?}");
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token"), "the capture works: {logs}");
    let tokens = s.sim.issued_tokens();
    assert!(tokens.len() >= 2, "a refresh happened: {}", tokens.len());
    for text in [&logs, &err_text] {
        assert!(
            !text.contains(SECRET) && !text.contains("wrong-secret-1234"),
            "secret leaked: {text}"
        );
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "token leaked: {text}");
        }
    }
    assert!(matches!(err, CxoneError::Unauthorized { .. }), "{err}");
}

#[tokio::test]
async fn faults_and_inspection_over_http() {
    let s = sim(fast()).await;
    let http = reqwest::Client::new();
    let faults = serde_json::json!([
        {"endpoint": "lists", "type": "server-error", "status": 502, "count": 1},
        {"endpoint": "lists", "type": "too-many-requests", "retryAfter": null, "after": 1, "count": 1}
    ]);
    let r = http
        .post(format!("{}/_sim/faults", s.base_url))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let c = client(&s, quick());
    c.lists().await.expect("one 502 and one 429 are retried");
    let log: Vec<serde_json::Value> = http
        .get(format!("{}/_sim/requests", s.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log
        .iter()
        .filter(|r| r["path"] == "/api/v2/dnc/lists")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![502, 429, 200]);
    let bad = http
        .post(format!("{}/_sim/faults", s.base_url))
        .body("[{\"endpoint\":\"nowhere\"}]")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let st: serde_json::Value = http
        .get(format!("{}/_sim/state", s.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["tokensIssued"], 1);
    assert_eq!(
        http.post(format!("{}/_sim/reset", s.base_url))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let st: serde_json::Value = http
        .get(format!("{}/_sim/state", s.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Only the reset itself is in the new log (a request is logged once answered).
    assert_eq!(
        (st["tokensIssued"].as_u64(), st["requests"].as_u64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn a_lost_write_burst_is_used_up_only_by_requests_it_took_effect_on() {
    let s = sim(fast()).await;
    let c = client(&s, quick());
    let list = make_list(&c, "lossy").await;
    // The first batch meets both faults: the 503 answers it, so the lost-write burst of one is still to come and
    // takes the retried batch.
    s.sim.set_faults(vec![
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::LoseWrites { per_entry: 1.0 },
            probability: 1.0,
            after: 0,
            count: Some(1),
        },
        FaultRule {
            endpoint: Endpoint::EntriesPost,
            kind: FaultKind::ServerError { status: 503 },
            probability: 1.0,
            after: 0,
            count: Some(1),
        },
    ]);
    let batch = entries(&list, 50, "v1");
    let first = c.upload_batch(&list, &batch).await.unwrap();
    assert_eq!(created(&first), 50, "acknowledged as created");
    assert_eq!(state(&s)["entries"], 0, "and stored nowhere");
    // The burst is spent: the next batch is stored.
    let second = c
        .upload_batch(&list, &entries(&list, 60, "v1")[50..])
        .await
        .unwrap();
    assert_eq!(created(&second), 10);
    assert_eq!(state(&s)["entries"], 10);
}

/// The Admin API dialect, read independently of our client: the simulator spoken to with plain HTTP exactly as
/// `docs/cxone-api.md` documents it, and the client against a separate hand-written server that answers the way a
/// real tenant may (results out of order, numbers echoed in another form, a record left out, 429 without
/// `Retry-After`, 413 for a batch too large).
mod admin {
    use super::*;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    #[tokio::test]
    async fn the_simulator_serves_the_documented_admin_api() {
        use base64::Engine;
        let s = cxone_sim::spawn(
            SimConfig {
                dialect: cxone_sim::SimDialect::Admin,
                // A burst of 30: the documented calls fit, the loop at the end meets the limit.
                entries_rate: 30.0,
                ..fast()
            },
            0,
        )
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let defaults = SimConfig::default();
        let (app, app_secret) = defaults.clients[0].clone();
        let (key, key_secret) = defaults.access_keys[0].clone();
        // Password grant, application in HTTP Basic.
        let token: Value = http
            .post(format!("{}/auth/token", s.base_url))
            .basic_auth(&app, Some(&app_secret))
            .form(&[
                ("grant_type", "password"),
                ("username", &key),
                ("password", &key_secret),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = token["access_token"].as_str().unwrap().to_string();
        assert!(token["expires_in"].as_u64().unwrap() > 0);
        // The client credentials alone (v2's grant) are refused.
        let refused = http
            .post(format!("{}/auth/token", s.base_url))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &app),
                ("client_secret", &app_secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
        // Discovery from the id token's tenant.
        let id_token = token["id_token"].as_str().unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id_token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let discovered: Value = http
            .get(format!("{}/.well-known/cxone-configuration", s.base_url))
            .query(&[("tenantId", claims["tenantId"].as_str().unwrap())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let api = format!(
            "{}/inContactAPI/services/v33.0",
            discovered["api_endpoint"].as_str().unwrap()
        );
        let call = |method: reqwest::Method, path: &str| {
            http.request(method, format!("{api}{path}"))
                .bearer_auth(&access)
                .header("Accept", "application/json")
        };
        assert_eq!(
            http.get(format!("{api}/dnc-groups"))
                .bearer_auth("not-a-token")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let created: Value = call(reqwest::Method::POST, "/dnc-groups")
            .json(&json!({"dncGroupName": "raw", "dncGroupDescription": "read by hand"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["dncGroups"][0]["dncGroupId"].as_u64().unwrap();
        // Records: per-record results inside a 2xx, a bad number among good ones.
        let written: Value = call(reqwest::Method::POST, &format!("/dnc-groups/{id}/records"))
            .json(&json!({"dncGroupRecords": [
                {"phoneNumber": "2025550101"}, {"phoneNumber": "12025550102", "expiredDate": "2031-01-01T00:00:00Z"},
                {"phoneNumber": "1025550103"}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let results = written["resultSet"]["recordResults"].as_array().unwrap();
        assert_eq!(written["resultSet"]["errorCount"], 1, "{written}");
        assert_eq!(
            results
                .iter()
                .map(|r| r["success"].as_bool().unwrap())
                .collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(results[1]["formattedPhone"], "(202) 555-0102");
        // Paging with skip/top, totals.
        let page: Value = call(reqwest::Method::GET, &format!("/dnc-groups/{id}/records"))
            .query(&[("skip", "1"), ("top", "1")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["resultSet"]["totalRecords"], 2);
        assert_eq!(
            page["resultSet"]["dncRecords"][0]["phoneNumber"],
            "2025550102"
        );
        assert_eq!(
            page["resultSet"]["dncRecords"][0]["expiredDate"],
            "2031-01-01T00:00:00.000Z"
        );
        // Search finds the group only once the record has propagated.
        let search = |n: &'static str| {
            call(reqwest::Method::POST, "/dnc-groups/search")
                .query(&[("phoneNumber", n)])
                .send()
        };
        let before: Value = search("2025550101").await.unwrap().json().await.unwrap();
        assert_eq!(
            before["searchResults"].as_array().unwrap().len(),
            0,
            "{before}"
        );
        s.sim.advance(200.0);
        let after: Value = search("2025550101").await.unwrap().json().await.unwrap();
        assert_eq!(after["searchResults"][0]["dncGroupId"], id, "{after}");
        // DELETE expires the record: search no longer finds it.
        let deleted = call(
            reqwest::Method::DELETE,
            &format!("/dnc-groups/{id}/records"),
        )
        .json(&json!({"dncGroupRecords": [{"phoneNumber": "2025550101"}]}))
        .send()
        .await
        .unwrap();
        assert!(deleted.status().is_success());
        let gone: Value = search("2025550101").await.unwrap().json().await.unwrap();
        assert_eq!(gone["searchResults"].as_array().unwrap().len(), 0);
        // Skills and the scrubbed-skill link.
        let skills: Value = call(reqwest::Method::GET, "/skills")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let outbound = skills["skills"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["isOutbound"] == true && k["isActive"] == true)
            .unwrap()["skillId"]
            .as_u64()
            .unwrap();
        let linked = call(
            reqwest::Method::POST,
            &format!("/dnc-groups/{id}/scrubbed-skills/{outbound}"),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(linked.status(), 204);
        let scrubbed: Value = call(
            reqwest::Method::GET,
            &format!("/dnc-groups/{id}/scrubbed-skills"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(scrubbed["scrubbedSkills"][0]["skillId"], outbound);
        // Rate limit answered 429 without Retry-After.
        let mut saw_429 = false;
        for _ in 0..100 {
            let r = call(reqwest::Method::GET, "/dnc-groups")
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                assert!(r.headers().get("retry-after").is_none());
                saw_429 = true;
                break;
            }
        }
        assert!(saw_429, "the tenant's rate limit answers 429");
    }

    #[derive(Default)]
    struct Seen {
        posts: Vec<usize>,
    }

    /// A tenant that answers differently from the simulator: records POST results reversed, `formattedPhone` echoed
    /// as a JSON number with the country code, `2025550104` left out of the answer, `2025550105` rejected; the first
    /// POST answered 429 without `Retry-After`; more than four records answered 413.
    async fn tenant(
        State(seen): State<Arc<Mutex<Seen>>>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> axum::response::Response {
        assert!(headers.get("authorization").is_some());
        let records = body["dncGroupRecords"].as_array().unwrap().clone();
        let first = {
            let mut s = seen.lock().unwrap();
            s.posts.push(records.len());
            s.posts.len() == 1
        };
        if first {
            return (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
        }
        if records.len() > 4 {
            return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
        }
        // `phoneNumber` as a number or a string: its digits.
        let ten = |r: &Value| match &r["phoneNumber"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut results: Vec<Value> = records
            .iter()
            .filter(|r| ten(r) != "2025550104")
            .map(|r| {
                let ten = ten(r);
                let n: u64 = format!("1{ten}").parse().unwrap();
                if ten == "2025550105" {
                    json!({"success": false, "error": "Phone number is on a protected list", "formattedPhone": n})
                } else {
                    json!({"success": true, "error": "", "formattedPhone": n})
                }
            })
            .collect();
        results.reverse();
        Json(json!({"resultSet": {"errorCount": 1, "recordResults": results}})).into_response()
    }

    async fn token() -> Json<Value> {
        Json(
            json!({"access_token": "opaque-admin-token", "token_type": "bearer", "expires_in": 3600}),
        )
    }

    #[tokio::test]
    async fn the_admin_client_pairs_answers_by_number_and_accounts_for_every_entry() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/auth/token", post(token))
            .route(
                "/inContactAPI/services/v33.0/dnc-groups/{id}/records",
                post(tenant),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        // The API endpoint given (no discovery): the token here is opaque.
        let creds = Credentials::admin(
            &format!("{base}/auth/token"),
            &base,
            ("app", "app-secret"),
            ("key", "key-secret"),
        );
        let api = dncflow::adapters::cxone::connect(Box::new(StaticCredentials(creds)), quick())
            .await
            .unwrap();
        assert!(!api.capabilities().batch_check && !api.capabilities().idempotency_keys);
        let entries: Vec<EntryInput> = [
            "+12025550101",
            "+12025550102",
            "+12025550103",
            "+12025550104",
            "+12025550105",
            "+442079460018",
        ]
        .iter()
        .map(|n| EntryInput {
            phone_number: n.to_string(),
            jurisdiction: "US".into(),
            expiration_date: None,
            source: "t".into(),
            idempotency_key: String::new(),
        })
        .collect();
        let outcomes = api.upload_batch("7", &entries).await.unwrap();
        assert_eq!(outcomes.len(), entries.len(), "one outcome per entry");
        for (i, o) in outcomes.iter().enumerate().take(3) {
            assert!(matches!(o, EntryOutcome::Created { .. }), "{i}: {o:?}");
        }
        assert_eq!(
            outcomes[3],
            EntryOutcome::Unconfirmed,
            "left out of the answer: unknown, not dropped"
        );
        assert!(
            matches!(&outcomes[4], EntryOutcome::Rejected { code, message } if code == "RECORD_REJECTED" && message.contains("protected")),
            "{:?}",
            outcomes[4]
        );
        assert!(
            matches!(&outcomes[5], EntryOutcome::Rejected { code, .. } if code == "NOT_NANP"),
            "a number the dialect cannot hold is a dead letter: {:?}",
            outcomes[5]
        );
        // The 429 was retried on our own schedule, the 413 halved the five North American records.
        let posts = seen.lock().unwrap().posts.clone();
        assert_eq!(posts, [5, 5, 2, 3], "{posts:?}");
    }
}
