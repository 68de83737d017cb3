//! Rate limits: token buckets in process memory, one set per limit.
//!
//! Each caller (an email, a client IP, a conversation, a token) has a bucket that
//! holds up to `burst` calls and refills at `count` per `per`; a call takes one, and a
//! call that finds the bucket empty is refused with `RATE_LIMITED` and the whole
//! seconds until one call is allowed again (`retryAfter`). A bucket that has refilled
//! completely is forgotten, so memory follows the callers of the last few minutes.
//!
//! Buckets live per process: behind a load balancer, each of N processes enforces
//! its own budget, so a caller spread across them gets up to N times the limit.
//!
//! Written here rather than taken from `governor`: sign-in needs to take a call and
//! give it back when the password was right (only failures count per email), and
//! every refusal needs its wait in whole seconds; both are a few lines on a plain
//! bucket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::Principal;
use crate::config::{Limits, Rate};
use crate::error::{AppError, AppResult};

/// A bucket: the calls it holds now (fractional while refilling), as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one limit, by caller.
pub struct Limiter {
    rate: Rate,
    what: &'static str,
    buckets: Mutex<Buckets>,
}

struct Buckets {
    by_key: HashMap<String, Bucket>,
    next_sweep: Instant,
}

impl Limiter {
    /// A limiter of `rate`; `what` names the limit in refusals ("sign-in attempts
    /// from this address").
    pub fn new(rate: Rate, what: &'static str) -> Limiter {
        Limiter {
            rate,
            what,
            buckets: Mutex::new(Buckets {
                by_key: HashMap::new(),
                next_sweep: Instant::now(),
            }),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.rate.count) / self.rate.per.as_secs_f64()
    }

    /// How long an emptied bucket takes to fill: after that it is forgotten.
    fn fill_time(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.rate.burst) / self.per_second())
    }

    /// Take one call from `key`'s bucket, or say how long until one is allowed.
    pub fn take(&self, key: &str) -> AppResult<()> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> AppResult<()> {
        if self.rate.is_off() {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst);
        let per_second = self.per_second();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if now >= buckets.next_sweep {
            let fill = self.fill_time();
            buckets
                .by_key
                .retain(|_, bucket| now.saturating_duration_since(bucket.at) < fill);
            buckets.next_sweep = now + fill.clamp(Duration::from_secs(1), Duration::from_secs(60));
        }
        let bucket = match buckets.by_key.get_mut(key) {
            Some(bucket) => bucket,
            None => buckets.by_key.entry(key.to_owned()).or_insert(Bucket {
                tokens: burst,
                at: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second;
        Err(AppError::RateLimited {
            message: format!("too many {}: try again later", self.what),
            retry_after: (wait.ceil() as u64).max(1),
        })
    }

    /// Give back a call taken from `key`'s bucket (it turned out not to count).
    pub fn give_back(&self, key: &str) {
        if self.rate.is_off() {
            return;
        }
        let burst = f64::from(self.rate.burst);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = buckets.by_key.get_mut(key) {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }

    /// Callers with a bucket that has not refilled.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_key
            .len()
    }
}

/// Every rate limit of the server (see the book's reference/limits-and-codes.md).
pub struct RateLimits {
    pub signin_email: Limiter,
    pub signin_ip: Limiter,
    pub start_conversation: Limiter,
    pub visitor_writes: Limiter,
    pub typing: Limiter,
    pub token: Limiter,
}

impl RateLimits {
    pub fn new(limits: &Limits) -> RateLimits {
        let rate = |rate: Rate| if limits.rate_limits { rate } else { Rate::OFF };
        RateLimits {
            signin_email: Limiter::new(
                rate(limits.rate_signin_email),
                "failed sign-ins for this email",
            ),
            signin_ip: Limiter::new(
                rate(limits.rate_signin_ip),
                "sign-in attempts from this address",
            ),
            start_conversation: Limiter::new(
                rate(limits.rate_start_conversation),
                "conversations started from this address",
            ),
            visitor_writes: Limiter::new(
                rate(limits.rate_visitor_writes),
                "messages in this conversation",
            ),
            typing: Limiter::new(
                rate(limits.rate_typing),
                "typing notices in this conversation",
            ),
            token: Limiter::new(rate(limits.rate_token), "requests with this token"),
        }
    }

    /// One request (or WebSocket operation) of an agent, API key or visitor. Agents
    /// are counted per agent (all of an agent's tokens share one budget), keys per
    /// key, visitors per conversation.
    pub fn request(&self, principal: &Principal) -> AppResult<()> {
        let key = match principal {
            Principal::Agent(agent) => &agent.agent_id,
            Principal::ApiKey(key) => &key.key_id,
            Principal::Visitor(visitor) => &visitor.conversation_id,
        };
        self.token.take(key)
    }

    /// A visitor's write to its conversation (`sendMessage`, `captureLead`,
    /// `rateConversation`, `requestHuman`); agents and keys are not counted here.
    pub fn visitor_write(&self, principal: &Principal) -> AppResult<()> {
        per_conversation(&self.visitor_writes, principal)
    }

    /// A visitor's `setTyping`.
    pub fn visitor_typing(&self, principal: &Principal) -> AppResult<()> {
        per_conversation(&self.typing, principal)
    }

    /// A `startConversation` from `ip` with `widget_key`.
    pub fn start_conversation(&self, ip: IpAddr, widget_key: &str) -> AppResult<()> {
        self.start_conversation.take(&format!("{ip}|{widget_key}"))
    }
}

/// Take from a visitor's conversation's bucket; other principals pass.
fn per_conversation(limiter: &Limiter, principal: &Principal) -> AppResult<()> {
    match principal {
        Principal::Visitor(visitor) => limiter.take(&visitor.conversation_id),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().expect("a valid rate")
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_the_wait() {
        let limiter = Limiter::new(rate("5/15m"), "attempts");
        let now = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take_at("a", now).is_ok());
        }
        let Err(AppError::RateLimited { retry_after, .. }) = limiter.take_at("a", now) else {
            panic!("the sixth call is refused");
        };
        // One call comes back every 3 minutes.
        assert_eq!(retry_after, 180);
        assert!(
            limiter.take_at("b", now).is_ok(),
            "other keys are not affected"
        );
        assert!(limiter.take_at("a", now + Duration::from_secs(180)).is_ok());
    }

    #[test]
    fn burst_differs_from_the_rate() {
        let limiter = Limiter::new(rate("20/1m,burst=10"), "messages");
        let now = Instant::now();
        for _ in 0..10 {
            assert!(limiter.take_at("c", now).is_ok());
        }
        assert!(limiter.take_at("c", now).is_err());
        // 20 per minute: one every 3 seconds.
        assert!(limiter.take_at("c", now + Duration::from_secs(3)).is_ok());
    }

    #[test]
    fn a_call_given_back_does_not_count() {
        let limiter = Limiter::new(rate("1/1h"), "sign-ins");
        let now = Instant::now();
        assert!(limiter.take_at("e", now).is_ok());
        limiter.give_back("e");
        assert!(limiter.take_at("e", now).is_ok());
        assert!(limiter.take_at("e", now).is_err());
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let limiter = Limiter::new(rate("10/1s"), "requests");
        let now = Instant::now();
        for i in 0..100 {
            assert!(limiter.take_at(&format!("k{i}"), now).is_ok());
        }
        assert_eq!(limiter.tracked(), 100);
        assert!(
            limiter
                .take_at("late", now + Duration::from_secs(5))
                .is_ok()
        );
        assert_eq!(limiter.tracked(), 1, "only the caller of now is kept");
    }

    #[test]
    fn an_off_limit_allows_everything() {
        let limiter = Limiter::new(Rate::OFF, "anything");
        for _ in 0..10_000 {
            assert!(limiter.take("x").is_ok());
        }
        assert_eq!(limiter.tracked(), 0);
    }
}
