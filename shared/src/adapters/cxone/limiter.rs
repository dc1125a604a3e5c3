//! Token-bucket rate limiter for one tenant (or one worker's share of it), paused as a whole by a 429.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct State {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

/// A token bucket: `rate` requests a second, a burst of `burst`. A 429's `Retry-After` pauses every caller, not only
/// the one that got it, because the tenant's limit is shared.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

impl RateLimiter {
    /// A limiter of `rate` requests a second; the burst is a tenth of a second's worth (at least 1), so requests are
    /// paced rather than bunched.
    pub fn new(rate: f64) -> RateLimiter {
        let rate = rate.max(0.001);
        let burst = (rate / 10.0).max(1.0);
        RateLimiter {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// The sustained rate, in requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for a slot.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        s.paused_until = None;
                        s.tokens = (s.tokens
                            + now.duration_since(s.last).as_secs_f64() * self.rate)
                            .min(self.burst);
                        s.last = now;
                        if s.tokens >= 1.0 {
                            s.tokens -= 1.0;
                            return;
                        }
                        Duration::from_secs_f64((1.0 - s.tokens) / self.rate)
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Pause every caller for `d` (from now), unless already paused longer.
    pub fn pause_for(&self, d: Duration) {
        let mut s = self.lock();
        let until = Instant::now() + d;
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        // After a pause, start again with an empty bucket: no burst into a limit that just fired.
        s.tokens = 0.0;
        s.last = until;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_to_the_rate() {
        let limiter = RateLimiter::new(100.0);
        let start = Instant::now();
        for _ in 0..60 {
            limiter.acquire().await;
        }
        let secs = start.elapsed().as_secs_f64();
        // 60 requests at 100/s with a burst of 10: at least 0.5 s.
        assert!(secs >= 0.45, "too fast: {secs}");
        assert!(secs < 1.5, "too slow: {secs}");
    }

    #[tokio::test]
    async fn a_pause_holds_every_caller() {
        let limiter = std::sync::Arc::new(RateLimiter::new(1000.0));
        limiter.pause_for(Duration::from_millis(300));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(290));
    }
}
