//! Rate limiters per Cognito quota category, slowing down on throttling and recovering (AIMD).
//!
//! Two layers per category. A `governor` GCRA limiter at the configured rate is the hard cap: no
//! call leaves faster than that over any second (its burst, a tenth of a second's calls, only
//! absorbs timer lateness). Under it, an adaptive pacer hands out evenly spaced send times at the
//! rate in force: every caller reserves the next slot, so a rate change applies to the very next
//! reservation and timer lateness is never lost. Quotas are per account and Region, shared with
//! other callers, so a `TooManyRequestsException` still happens; then the rate is cut
//! multiplicatively (×0.7, at most once per half second, never below a floor) and grows back
//! additively with every call that goes through, up to the configured rate.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// The quota categories the writer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    UserCreation,
    UserUpdate,
    UserResourceUpdate,
    UserRead,
    UserPoolResourceUpdate,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::UserCreation => "UserCreation",
            Category::UserUpdate => "UserUpdate",
            Category::UserResourceUpdate => "UserResourceUpdate",
            Category::UserRead => "UserRead",
            Category::UserPoolResourceUpdate => "UserPoolResourceUpdate",
        }
    }
}

const DECREASE: f64 = 0.7;
const DECREASE_WINDOW: Duration = Duration::from_millis(500);

struct Pacer {
    rate: f64,
    /// The next free send time.
    next: Instant,
    last_decrease: Option<Instant>,
}

/// One category's adaptive limiter.
pub struct AdaptiveLimiter {
    pub category: Category,
    max_rate: f64,
    min_rate: f64,
    cap: DefaultDirectRateLimiter,
    pacer: Mutex<Pacer>,
    calls: AtomicU64,
    throttled: AtomicU64,
}

fn period(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(0.001))
}

impl AdaptiveLimiter {
    pub fn new(category: Category, rate: f64, min_fraction: f64) -> AdaptiveLimiter {
        let rate = rate.max(0.01);
        let burst =
            NonZeroU32::new((rate / 10.0).clamp(1.0, 10.0) as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period(rate))
            .expect("a positive period")
            .allow_burst(burst);
        AdaptiveLimiter {
            category,
            max_rate: rate,
            min_rate: (rate * min_fraction.clamp(0.001, 1.0)).max(0.01),
            cap: RateLimiter::direct(quota),
            pacer: Mutex::new(Pacer {
                rate,
                next: Instant::now(),
                last_decrease: None,
            }),
            calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Waits until a call may be made: the next slot at the rate in force, then the hard cap.
    pub async fn acquire(&self) {
        let slot = {
            let mut p = self.pacer.lock().expect("pacer");
            let now = Instant::now();
            let slot = p.next.max(now);
            p.next = slot + period(p.rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
        self.cap.until_ready().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call went through: grow the rate back towards the configured one.
    pub fn on_success(&self) {
        let mut p = self.pacer.lock().expect("pacer");
        if p.rate < self.max_rate {
            p.rate = (p.rate + self.max_rate / 200.0).min(self.max_rate);
        }
    }

    /// A call was throttled: cut the rate (once per window: the calls in flight were sent at the
    /// old rate and say nothing new).
    pub fn on_throttle(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut p = self.pacer.lock().expect("pacer");
        let now = Instant::now();
        if p.last_decrease.is_some_and(|t| now - t < DECREASE_WINDOW) {
            return;
        }
        p.last_decrease = Some(now);
        p.rate = (p.rate * DECREASE).max(self.min_rate);
    }

    /// The rate in force now.
    pub fn rate(&self) -> f64 {
        self.pacer.lock().expect("pacer").rate
    }

    pub fn max_rate(&self) -> f64 {
        self.max_rate
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_cuts_the_rate_once_per_window_and_successes_restore_it() {
        let l = AdaptiveLimiter::new(Category::UserCreation, 50.0, 0.1);
        l.on_throttle();
        l.on_throttle();
        assert!((l.rate() - 35.0).abs() < 1e-9, "{}", l.rate());
        assert_eq!(l.throttled(), 2);
        for _ in 0..10_000 {
            l.on_success();
        }
        assert_eq!(l.rate(), 50.0);
    }

    #[test]
    fn the_rate_never_falls_below_its_floor() {
        let l = AdaptiveLimiter::new(Category::UserUpdate, 25.0, 0.1);
        for _ in 0..50 {
            l.pacer.lock().unwrap().last_decrease = None;
            l.on_throttle();
        }
        assert!((l.rate() - 2.5).abs() < 1e-9, "{}", l.rate());
    }

    #[tokio::test]
    async fn calls_are_spaced_at_the_rate() {
        let l = AdaptiveLimiter::new(Category::UserCreation, 100.0, 0.1);
        let t = Instant::now();
        for _ in 0..21 {
            l.acquire().await;
        }
        let e = t.elapsed();
        // 21 calls paced at 100/s: the first at once, then 20 × 10 ms.
        assert!(e >= Duration::from_millis(195), "{e:?}");
        assert!(e < Duration::from_millis(600), "{e:?}");
        assert_eq!(l.calls(), 21);
    }
}
