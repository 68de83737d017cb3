//! The circuit breaker: after a number of failures within a window the process
//! stops calling the model for a while, so a model that is down costs each visitor
//! nothing but the fall-back, rather than a timeout each.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::BreakerConfig;

pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When the failures within the window happened.
    failures: VecDeque<Instant>,
    /// Open (no calls) until then.
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the model may be called now (closed, or open long enough).
    pub fn allows(&self) -> bool {
        self.allows_at(Instant::now())
    }

    fn allows_at(&self, now: Instant) -> bool {
        let mut state = self.lock();
        match state.open_until {
            Some(until) if now < until => false,
            Some(_) => {
                state.open_until = None;
                true
            }
            None => true,
        }
    }

    /// A call failed; `true` when this failure opened the breaker.
    pub fn failed(&self) -> bool {
        self.failed_at(Instant::now())
    }

    fn failed_at(&self, now: Instant) -> bool {
        let mut state = self.lock();
        while state
            .failures
            .front()
            .is_some_and(|at| now.duration_since(*at) > self.config.window)
        {
            state.failures.pop_front();
        }
        state.failures.push_back(now);
        if state.failures.len() >= self.config.failures.max(1) {
            state.failures.clear();
            state.open_until = Some(now + self.config.open_for);
            return true;
        }
        false
    }

    /// While open: how long it stays so.
    pub fn open_for(&self) -> Option<std::time::Duration> {
        let now = Instant::now();
        self.lock()
            .open_until
            .filter(|until| now < *until)
            .map(|until| until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 5,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        })
    }

    #[test]
    fn five_failures_within_a_minute_open_it_for_thirty_seconds() {
        let breaker = breaker();
        let start = Instant::now();
        for i in 0..4 {
            assert!(!breaker.failed_at(start + Duration::from_secs(i * 10)));
        }
        assert!(breaker.allows_at(start + Duration::from_secs(45)));
        assert!(breaker.failed_at(start + Duration::from_secs(50)));
        assert!(!breaker.allows_at(start + Duration::from_secs(79)));
        assert!(breaker.allows_at(start + Duration::from_secs(81)));
    }

    #[test]
    fn failures_spread_over_more_than_the_window_do_not() {
        let breaker = breaker();
        let start = Instant::now();
        for i in 0..10 {
            assert!(!breaker.failed_at(start + Duration::from_secs(i * 20)));
        }
        assert!(breaker.allows_at(start + Duration::from_secs(200)));
    }
}
