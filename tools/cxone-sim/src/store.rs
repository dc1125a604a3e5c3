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

/// One logged request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Sequence number.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path (no query).
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
