//! Circuit breaker: after N consecutive server errors, fail fast until a cool-off passes, then let one trial through.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    consecutive: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// Counts consecutive 5xx answers across every request of a client.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_off: Duration,
    state: Mutex<State>,
}

/// The breaker refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// Consecutive failures seen.
    pub failures: u32,
}

impl CircuitBreaker {
    /// Opens after `threshold` consecutive server errors, for `cool_off`.
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

    /// May a request go out? While open: no. After the cool-off: one trial request (half-open).
    pub fn check(&self) -> Result<(), Open> {
        let mut s = self.lock();
        match s.open_until {
            None => Ok(()),
            Some(until) if Instant::now() < until => Err(Open {
                failures: s.consecutive,
            }),
            Some(_) if s.trial_in_flight => Err(Open {
                failures: s.consecutive,
            }),
            Some(_) => {
                s.trial_in_flight = true;
                Ok(())
            }
        }
    }

    /// A response that was not a server error.
    pub fn record_success(&self) {
        let mut s = self.lock();
        s.consecutive = 0;
        s.open_until = None;
        s.trial_in_flight = false;
    }

    /// A server error (5xx).
    pub fn record_server_error(&self) {
        let mut s = self.lock();
        s.consecutive += 1;
        s.trial_in_flight = false;
        if s.consecutive >= self.threshold {
            s.open_until = Some(Instant::now() + self.cool_off);
        }
    }

    /// Whether the breaker is open now.
    pub fn is_open(&self) -> bool {
        self.lock().open_until.is_some_and(|u| Instant::now() < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cool_off() {
        let b = CircuitBreaker::new(3, Duration::from_millis(50));
        for _ in 0..2 {
            b.record_server_error();
            assert!(b.check().is_ok());
        }
        b.record_server_error();
        assert_eq!(b.check(), Err(Open { failures: 3 }));
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.check().is_ok(), "one trial after the cool-off");
        assert!(b.check().is_err(), "only one trial at a time");
        b.record_success();
        assert!(b.check().is_ok());
        assert!(!b.is_open());
    }
}
