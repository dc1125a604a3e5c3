//! The cooldown's logic: how long to wait after the last write, and which numbers to probe (the probe itself is
//! `steps::probe_canary`, shared with reconcile; what it found is `run::canary`). The waiting itself belongs to the
//! caller (a Step Functions `Wait`, or the local driver).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::run::LedgerRecord;

/// Whether a list may be probed yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cooldown {
    /// At least the minimum time has passed since the last write.
    pub elapsed: bool,
    /// Seconds still to wait (0 when elapsed).
    pub wait_seconds: u64,
}

/// No list is ready before `min` after its last write.
pub fn cooldown(last_write: DateTime<Utc>, now: DateTime<Utc>, min: Duration) -> Cooldown {
    let ready_at = last_write + chrono::Duration::from_std(min).unwrap_or(chrono::Duration::MAX);
    if now >= ready_at {
        Cooldown {
            elapsed: true,
            wait_seconds: 0,
        }
    } else {
        let secs = (ready_at - now).num_milliseconds().max(0) as u64;
        Cooldown {
            elapsed: false,
            wait_seconds: secs.div_ceil(1000).max(1),
        }
    }
}

/// Pick up to `n` numbers spread over the ledger (deterministic), held by CXone.
pub fn canary_sample(records: &[LedgerRecord], n: usize) -> Vec<String> {
    let held: Vec<String> = records
        .iter()
        .filter(|r| r.held())
        .map(|r| r.phone_number.clone())
        .collect();
    spread(&held, n)
}

/// Up to `n` items evenly spread over `items` (deterministic).
pub fn spread<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if items.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (items.len() / n).max(1);
    items.iter().step_by(step).take(n).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::EntryOutcome;

    #[test]
    fn cooldown_waits_180_seconds_after_the_last_write() {
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let min = Duration::from_secs(180);
        assert_eq!(
            cooldown(t0, t0 + chrono::Duration::seconds(10), min),
            Cooldown {
                elapsed: false,
                wait_seconds: 170
            }
        );
        assert_eq!(
            cooldown(t0, t0 + chrono::Duration::milliseconds(179_500), min).wait_seconds,
            1
        );
        assert!(cooldown(t0, t0 + chrono::Duration::seconds(180), min).elapsed);
    }

    #[test]
    fn canary_sample_spreads_over_held_entries() {
        let ledger: Vec<LedgerRecord> = (0..100)
            .map(|i| {
                LedgerRecord::sample(
                    &format!("+1202555{i:04}"),
                    EntryOutcome::Created { id: i.to_string() },
                )
            })
            .collect();
        let s = canary_sample(&ledger, 5);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0], "+12025550000");
        assert_eq!(s[1], "+12025550020");
    }
}
