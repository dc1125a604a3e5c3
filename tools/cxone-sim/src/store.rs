//! The simulated tenant: lists (groups), rules, entries (records), tokens, rate buckets, the request log; one
//! store behind both dialects.

use super::*;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DncList {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) default_expiration_date: String,
    pub(crate) is_active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DncRule {
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    pub(crate) scope: String,
    pub(crate) priority: i64,
    pub(crate) list_ids: Vec<String>,
    pub(crate) action: String,
    #[serde(default = "yes")]
    pub(crate) is_active: bool,
}

pub(crate) fn yes() -> bool {
    true
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) phone: String,
    pub(crate) list_id: String,
    pub(crate) jurisdiction: String,
    pub(crate) expiration: DateTime<Utc>,
    pub(crate) source: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) visible_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct IdemRecord {
    pub(crate) payload: u64,
    pub(crate) id: String,
    pub(crate) status: &'static str,
}

/// One request as the simulator's log keeps it: its line, status and item count, no body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Its place in the log (1 first), across every endpoint.
    pub seq: u64,
    /// The HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// The path, without its query (which may carry a number).
    pub path: String,
    /// Status answered (0 for a dropped connection).
    pub status: u16,
    /// Items in the request body (`data` or `contacts` length), when any.
    pub items: Option<usize>,
}

pub(crate) struct Bucket {
    pub(crate) rate: f64,
    pub(crate) capacity: f64,
    pub(crate) tokens: f64,
    pub(crate) last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: f64) -> Bucket {
        // One second's worth of burst.
        let capacity = rate.max(1.0);
        Bucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    /// Take a token, or the seconds until one is available.
    pub(crate) fn take(&mut self) -> Result<(), f64> {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / self.rate)
        }
    }
}

pub(crate) struct Store {
    pub(crate) config: SimConfig,
    pub(crate) rng: u64,
    pub(crate) started: Instant,
    pub(crate) advanced_secs: f64,
    pub(crate) base: DateTime<Utc>,
    pub(crate) tokens: HashMap<String, (String, DateTime<Utc>)>,
    pub(crate) tokens_issued: u64,
    pub(crate) token_times: HashMap<String, VecDeque<Instant>>,
    pub(crate) lists: Vec<DncList>,
    pub(crate) rules: Vec<DncRule>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) by_number: HashMap<(String, String), usize>,
    /// Each list's entries in insertion order: a page is a slice of it, not a scan of every entry (a million-entry
    /// list pages back in a thousand requests).
    pub(crate) by_list: HashMap<String, Vec<usize>>,
    pub(crate) idem: HashMap<String, IdemRecord>,
    pub(crate) entries_bucket: Bucket,
    pub(crate) check_bucket: Bucket,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) fault_seen: Vec<(u64, u64)>,
    pub(crate) next_id: u64,
    /// Admin: the tenant's skills.
    pub(crate) skills: Vec<admin::Skill>,
    /// Admin: group id → ids of the skills that scrub it.
    pub(crate) scrubbed: HashMap<String, Vec<u64>>,
}

impl Store {
    pub(crate) fn new(config: SimConfig) -> Store {
        let fault_seen = vec![(0, 0); config.faults.len()];
        Store {
            rng: config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            started: Instant::now(),
            advanced_secs: 0.0,
            base: Utc::now(),
            tokens: HashMap::new(),
            tokens_issued: 0,
            token_times: HashMap::new(),
            lists: Vec::new(),
            rules: Vec::new(),
            entries: Vec::new(),
            by_number: HashMap::new(),
            by_list: HashMap::new(),
            idem: HashMap::new(),
            entries_bucket: Bucket::new(config.entries_rate),
            check_bucket: Bucket::new(config.check_rate),
            log: Vec::new(),
            fault_seen,
            next_id: 1,
            skills: admin::seed_skills(),
            scrubbed: HashMap::new(),
            config,
        }
    }

    pub(crate) fn random(&mut self) -> f64 {
        // xorshift64*: deterministic for the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        let secs =
            self.started.elapsed().as_secs_f64() * self.config.clock_scale + self.advanced_secs;
        self.base + chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    pub(crate) fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:06}", self.next_id)
    }

    /// The faults that fire on this request, in rule order, with their rule's index. Entry faults (lost writes, rejections) are
    /// only counted against their rule's `count` when the handler applies them ([`Store::claim_fault`]): a request
    /// another fault or the rate limit answers first must not use up a burst that never took effect.
    pub(crate) fn faults_for(&mut self, endpoint: Endpoint) -> Vec<(usize, FaultKind)> {
        let mut fired = Vec::new();
        for i in 0..self.config.faults.len() {
            let rule = self.config.faults[i].clone();
            if rule.endpoint != endpoint && rule.endpoint != Endpoint::Any {
                continue;
            }
            self.fault_seen[i].0 += 1;
            if self.fault_seen[i].0 <= rule.after
                || rule.count.is_some_and(|c| self.fault_seen[i].1 >= c)
            {
                continue;
            }
            if rule.probability < 1.0 && self.random() >= rule.probability {
                continue;
            }
            if !matches!(
                rule.kind,
                FaultKind::LoseWrites { .. } | FaultKind::RejectEntries { .. }
            ) {
                self.fault_seen[i].1 += 1;
            }
            fired.push((i, rule.kind));
        }
        fired
    }

    /// Write a new record of `phone` on `list_id` (both dialects): visible after a propagation delay drawn from the
    /// configured range; it replaces the number's expired record in place (`existing`), or is appended and indexed.
    pub(crate) fn write_entry(&mut self, existing: Option<usize>, mut entry: Entry) {
        let (lo, hi) = self.config.propagation_secs;
        let delay = lo as f64 + self.random() * (hi.saturating_sub(lo)) as f64;
        entry.created_at = self.now();
        entry.visible_at =
            entry.created_at + chrono::Duration::milliseconds((delay * 1000.0) as i64);
        match existing {
            Some(i) => self.entries[i] = entry,
            None => {
                let index = self.entries.len();
                self.by_number
                    .insert((entry.list_id.clone(), entry.phone.clone()), index);
                self.by_list
                    .entry(entry.list_id.clone())
                    .or_default()
                    .push(index);
                self.entries.push(entry);
            }
        }
    }

    /// Count an entry fault of rule `index` as applied, unless its burst is used up meanwhile.
    pub(crate) fn claim_fault(&mut self, index: usize) -> bool {
        let Some(rule) = self.config.faults.get(index) else {
            return false;
        };
        if rule.count.is_some_and(|c| self.fault_seen[index].1 >= c) {
            return false;
        }
        self.fault_seen[index].1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FaultKind, FaultRule};

    fn rule(endpoint: Endpoint, kind: FaultKind, after: u64, count: Option<u64>) -> FaultRule {
        FaultRule {
            endpoint,
            kind,
            probability: 1.0,
            after,
            count,
        }
    }

    fn entry(phone: &str, list: &str) -> Entry {
        let t = Utc::now();
        Entry {
            id: format!("e{phone}"),
            phone: phone.into(),
            list_id: list.into(),
            jurisdiction: "US-DC".into(),
            expiration: t,
            source: "s".into(),
            created_at: t,
            visible_at: t,
        }
    }

    /// A fault skips its first `after` requests, then fires `count` times, on its endpoint only (or any, for `Any`).
    #[test]
    fn a_fault_fires_after_its_offset_for_its_count_on_its_endpoint() {
        let mut store = Store::new(SimConfig {
            faults: vec![
                rule(
                    Endpoint::EntriesPost,
                    FaultKind::ServerError { status: 503 },
                    2,
                    Some(3),
                ),
                rule(Endpoint::Any, FaultKind::Reset, 0, Some(1)),
            ],
            ..SimConfig::default()
        });
        let fired: Vec<usize> = (0..8)
            .map(|_| store.faults_for(Endpoint::EntriesPost).len())
            .collect();
        // Request 1: only the `Any` reset; 2: nothing; 3–5: the 503 burst; then nothing.
        assert_eq!(fired, [1, 0, 1, 1, 1, 0, 0, 0]);
        assert!(store.faults_for(Endpoint::Lists).is_empty());
    }

    /// An entry fault is counted only when a handler applies it: a request answered by something else first does
    /// not use up the burst.
    #[test]
    fn an_entry_fault_is_used_up_only_when_applied() {
        let mut store = Store::new(SimConfig {
            faults: vec![rule(
                Endpoint::EntriesPost,
                FaultKind::LoseWrites { per_entry: 1.0 },
                0,
                Some(1),
            )],
            ..SimConfig::default()
        });
        assert_eq!(store.faults_for(Endpoint::EntriesPost).len(), 1);
        // Not applied (say, rate limited): it still fires on the next request.
        assert_eq!(store.faults_for(Endpoint::EntriesPost).len(), 1);
        assert!(store.claim_fault(0));
        assert!(!store.claim_fault(0), "the burst of one is used up");
        assert!(store.faults_for(Endpoint::EntriesPost).is_empty());
    }

    /// A new record is appended and indexed; a record replacing the number's expired one takes its place, so the
    /// list never holds the number twice. Either becomes visible within the configured propagation delay.
    #[test]
    fn a_write_appends_or_replaces_in_place_and_becomes_visible_after_the_delay() {
        let mut store = Store::new(SimConfig {
            propagation_secs: (10, 20),
            ..SimConfig::default()
        });
        store.write_entry(None, entry("+12025550100", "L1"));
        store.write_entry(None, entry("+12025550101", "L1"));
        let mut again = entry("+12025550100", "L1");
        again.id = "replacement".into();
        let existing = store
            .by_number
            .get(&("L1".to_string(), "+12025550100".to_string()))
            .copied();
        assert_eq!(existing, Some(0));
        store.write_entry(existing, again);
        assert_eq!(store.entries.len(), 2);
        assert_eq!(store.entries[0].id, "replacement");
        assert_eq!(store.by_list["L1"], vec![0, 1]);
        for e in &store.entries {
            let delay = (e.visible_at - e.created_at).num_milliseconds();
            assert!((10_000..=20_000).contains(&delay), "delay {delay} ms");
        }
    }

    /// The token bucket allows one second's burst, then says how long until the next token.
    #[test]
    fn the_rate_limit_allows_a_seconds_burst_then_says_how_long_to_wait() {
        let mut bucket = Bucket::new(5.0);
        for _ in 0..5 {
            assert!(bucket.take().is_ok());
        }
        let wait = bucket.take().unwrap_err();
        assert!(wait > 0.0 && wait <= 0.2 + 1e-9, "wait {wait}");
    }
}
