//! The HTTP parts that are not CXone's: the one backoff schedule, `Retry-After`, what a status says about
//! trying again, and transport errors described without secrets. Every HTTP call the crate makes itself (both CXone
//! dialects and their token requests, provisioning's create-if-absent, the check's audit webhook, the FTC download
//! service) retries through these, so a change of policy is made once; the AWS SDK's calls retry on their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Full-jitter exponential backoff, the one schedule of every retry above (CXone calls, token requests, the audit
/// webhook, provisioning's creates, the FTC download): a wait drawn uniformly from `[0, min(max, base × 2^attempt)]`.
/// Hand-written: a xorshift draw is all it needs, and the retry decisions (429 with or without `Retry-After`, the
/// deadline, the breaker) are the policy's, not a crate's.
pub struct Backoff {
    base: Duration,
    max: Duration,
    state: AtomicU64,
}

impl Backoff {
    /// Waits from `base`, doubling, capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Backoff {
            base,
            max,
            state: AtomicU64::new(seed | 1),
        }
    }

    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        cap.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// What an HTTP status says about sending the same request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: done.
    Success,
    /// 429: "later", not "broken": wait for `Retry-After` or back off; it says nothing of the service's health.
    Throttled,
    /// 408 and 5xx: the server may or may not have acted; repeat only what is safe to repeat.
    Transient,
    /// Any other status: sending it again would get the same refusal.
    Final,
}

/// The class of `status` (see [`StatusClass`]).
pub fn classify(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 => StatusClass::Throttled,
        408 | 500..=599 => StatusClass::Transient,
        _ => StatusClass::Final,
    }
}

/// The longest `Retry-After` honoured by default: a server's hint beyond it (an hour, `1e300`) is taken as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `Retry-After` as seconds or an HTTP date, clamped to `0..=max`: a huge value can neither freeze the client nor
/// overflow a `Duration` (`1e300` seconds would panic in `Duration::from_secs_f64`); a malformed one is `None`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, max: Duration) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(secs.min(max.as_secs_f64())));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO).min(max))
}

/// A transport error's description without the URL's query (URLs carry no secrets here, but stay short).
pub fn redact_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let max = MAX_RETRY_AFTER;
        let with = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
            retry_after(&h, max)
        };
        assert_eq!(with("2"), Some(Duration::from_secs(2)));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        // Clamped, never a freeze or a panic.
        assert_eq!(with("3600"), Some(max));
        assert_eq!(with("1e300"), Some(max));
        assert_eq!(with("Fri, 31 Dec 9999 23:59:59 GMT"), Some(max));
        assert_eq!(with("-5"), None);
        assert_eq!(with("NaN"), None);
        assert_eq!(with("inf"), None);
        assert_eq!(with("soon"), None);
    }

    #[test]
    fn statuses_classified() {
        assert_eq!(classify(201), StatusClass::Success);
        assert_eq!(classify(429), StatusClass::Throttled);
        assert_eq!(classify(408), StatusClass::Transient);
        assert_eq!(classify(503), StatusClass::Transient);
        assert_eq!(classify(400), StatusClass::Final);
        assert_eq!(classify(413), StatusClass::Final);
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..40 {
            let cap = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(16))
                .min(Duration::from_secs(1));
            assert!(b.delay(attempt) <= cap);
        }
    }
}
