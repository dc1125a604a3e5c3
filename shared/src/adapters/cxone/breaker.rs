//! Circuit breaker over *requests*, not attempts: it opens after `threshold` consecutive requests that failed after
//! all their retries (5xx, 408, timeouts, resets: what says the service is unhealthy), stays open for a cool-off, then
//! lets one trial attempt through (half-open) whose answer closes it or opens it again.
//!
//! Why requests and not attempts: a degraded service (a fifth of its answers 5xx or reset) is not a dead one. Each
//! request's retries absorb such faults; five *attempts* failing in a row across concurrent requests happen often
//! under those faults and would stop a run that was going to succeed. Five *requests* each failing eight attempts in a
//! row do not happen unless the service is down.
//!
//! The trial is held by a [`Permit`]: whatever ends the attempt (an answer, a timeout, a reset, a token failure, the
//! future being dropped), the permit's `Drop` releases the trial, so the breaker can never stay half-open with no
//! trial in flight.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    /// Consecutive requests that failed after their retries.
    consecutive: u32,
    /// Open until then (`Some` also while half-open: the instant has passed and a trial may be in flight).
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// Counts consecutive failed requests across every request of a client.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_off: Duration,
    state: Mutex<State>,
}

/// The breaker refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Consecutive failed requests seen.
    pub failures: u32,
    /// When to ask again: the end of the cool-off, or (a trial in flight) soon, to learn its outcome.
    pub retry_at: Instant,
}

/// How often a request waiting on another's half-open trial looks again.
const TRIAL_POLL: Duration = Duration::from_millis(20);

/// Leave to send one attempt. A trial permit (half-open) decides the breaker by its attempt's outcome; dropped
/// without one (cancelled, timed out, a token failure before anything was sent), it only releases the trial, so the
/// next attempt becomes the trial.
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
}

impl Permit<'_> {
    /// Whether this attempt is the half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The service answered (any answer but a 5xx or 408): it is healthy; a trial closes the breaker.
    pub fn healthy(self) {
        self.breaker.record_healthy();
    }

    /// The attempt failed the way an unhealthy service fails (5xx, 408, timeout, reset): a trial opens the breaker
    /// for another cool-off; any other attempt is judged with its request, after its retries.
    pub fn unhealthy(mut self) {
        if self.trial {
            self.trial = false;
            self.breaker.reopen();
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.trial {
            self.breaker.lock().trial_in_flight = false;
        }
    }
}

impl CircuitBreaker {
    /// Opens after `threshold` consecutive failed requests, for `cool_off`.
    pub fn new(threshold: u32, cool_off: Duration) -> CircuitBreaker {
        CircuitBreaker {
            threshold: threshold.max(1),
            cool_off,
            state: Mutex::new(State {
                consecutive: 0,
                open_until: None,
                trial_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May an attempt go out? Closed: yes. Open: no, until the cool-off ends. Then one trial (half-open); the
    /// others wait for its outcome.
    pub fn admit(&self) -> Result<Permit<'_>, Open> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.open_until {
            None => Ok(Permit {
                breaker: self,
                trial: false,
            }),
            Some(until) if now < until => Err(Open {
                failures: s.consecutive,
                retry_at: until,
            }),
            Some(_) if s.trial_in_flight => Err(Open {
                failures: s.consecutive,
                retry_at: now + TRIAL_POLL,
            }),
            Some(_) => {
                s.trial_in_flight = true;
                Ok(Permit {
                    breaker: self,
                    trial: true,
                })
            }
        }
    }

    fn record_healthy(&self) {
        let mut s = self.lock();
        s.consecutive = 0;
        s.open_until = None;
        s.trial_in_flight = false;
    }

    fn reopen(&self) {
        let mut s = self.lock();
        s.trial_in_flight = false;
        s.open_until = Some(Instant::now() + self.cool_off);
    }

    /// A request gave up after its retries for reasons that say the service is unhealthy: the `threshold`-th in a
    /// row opens the breaker.
    pub fn request_failed(&self) {
        let mut s = self.lock();
        s.consecutive += 1;
        if s.consecutive >= self.threshold && s.open_until.is_none() {
            s.open_until = Some(Instant::now() + self.cool_off);
        }
    }

    /// Whether the breaker is open now (cooling off, or half-open awaiting a trial's outcome).
    pub fn is_open(&self) -> bool {
        let s = self.lock();
        s.open_until
            .is_some_and(|u| Instant::now() < u || s.trial_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_failed_requests_and_half_opens_after_cool_off() {
        let b = CircuitBreaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            b.request_failed();
            assert!(b.admit().is_ok());
        }
        b.request_failed();
        let open = b.admit().unwrap_err();
        assert_eq!(open.failures, 3);
        assert!(open.retry_at > Instant::now());
        std::thread::sleep(Duration::from_millis(60));
        let trial = b.admit().expect("one trial after the cool-off");
        assert!(trial.is_trial());
        assert!(b.admit().is_err(), "only one trial at a time");
        trial.healthy();
        let next = b.admit().unwrap();
        assert!(!next.is_trial());
        assert!(!b.is_open());
    }

    #[test]
    fn a_healthy_answer_resets_the_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(60));
        b.request_failed();
        b.admit().unwrap().healthy();
        b.request_failed();
        assert!(b.admit().is_ok(), "not two in a row");
    }

    #[test]
    fn a_failed_trial_reopens_and_a_dropped_one_releases_the_trial() {
        let b = CircuitBreaker::new(1, Duration::from_millis(30));
        b.request_failed();
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(40));
        b.admit().unwrap().unhealthy();
        let open = b.admit().unwrap_err();
        assert!(open.retry_at > Instant::now() + Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(40));
        // A trial that ends without a verdict (its future dropped: a timeout, a token failure) releases the trial:
        // the next attempt is the trial, not refused forever.
        drop(b.admit().unwrap());
        let again = b.admit().expect("the trial was released");
        assert!(again.is_trial());
        again.healthy();
        assert!(!b.is_open());
        // A plain attempt's failure is judged with its request: it does not open the breaker by itself.
        b.admit().unwrap().unhealthy();
        assert!(b.admit().is_ok());
    }
}
