//! Rate limiters per Cognito quota category, slowing down on throttling and recovering (AIMD).
//!
//! Each category has a `governor` GCRA limiter at the configured rate, so calls leave evenly spaced
//! and never faster than the quota over any second. Its burst is a tenth of a second's calls (1 to
//! 10): enough that a writer woken a millisecond late does not lose that millisecond for good (with
//! a burst of one, timer lateness alone costs a few percent of the rate), far below Cognito's own
//! bucket. Quotas are per account and Region,
//! shared with other callers, so a `TooManyRequestsException` still happens; then the rate is cut
//! multiplicatively (×0.7, at most once per half second, never below a floor) and grows back
//! additively with every successful call until it is at the configured rate again. A governor
//! limiter's rate is fixed, so a change of rate installs a new limiter (not more often than every
//! 100 ms while growing, to keep the spacing exact).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

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
const REBUILD_EVERY: Duration = Duration::from_millis(100);

struct State {
    rate: f64,
    installed_rate: f64,
    limiter: Arc<DefaultDirectRateLimiter>,
    last_decrease: Option<Instant>,
    last_install: Instant,
}

/// One category's adaptive limiter.
pub struct AdaptiveLimiter {
    pub category: Category,
    max_rate: f64,
    min_rate: f64,
    state: Mutex<State>,
    calls: AtomicU64,
    throttled: AtomicU64,
}

/// A limiter at `rate`; `drained`: its burst already used up (a replacement must not let a burst
/// through just because it is new).
fn build(rate: f64, drained: bool) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let burst = NonZeroU32::new((rate / 10.0).clamp(1.0, 10.0) as u32).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(burst);
    let limiter = RateLimiter::direct(quota);
    if drained {
        for _ in 0..burst.get() {
            let _ = limiter.check();
        }
    }
    Arc::new(limiter)
}

impl AdaptiveLimiter {
    pub fn new(category: Category, rate: f64, min_fraction: f64) -> AdaptiveLimiter {
        let rate = rate.max(0.01);
        AdaptiveLimiter {
            category,
            max_rate: rate,
            min_rate: (rate * min_fraction.clamp(0.001, 1.0)).max(0.01),
            state: Mutex::new(State {
                rate,
                installed_rate: rate,
                limiter: build(rate, false),
                last_decrease: None,
                last_install: Instant::now(),
            }),
            calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    /// Waits until a call may be made.
    pub async fn acquire(&self) {
        let limiter = self.state.lock().expect("limiter state").limiter.clone();
        limiter.until_ready().await;
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call went through: grow the rate back towards the configured one.
    pub fn on_success(&self) {
        let mut s = self.state.lock().expect("limiter state");
        if s.rate >= self.max_rate {
            return;
        }
        s.rate = (s.rate + self.max_rate / 200.0).min(self.max_rate);
        if s.rate >= self.max_rate || s.last_install.elapsed() >= REBUILD_EVERY {
            self.install(&mut s);
        }
    }

    /// A call was throttled: cut the rate (once per window: the calls in flight were sent at the
    /// old rate and say nothing new).
    pub fn on_throttle(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().expect("limiter state");
        if s.last_decrease
            .is_some_and(|t| t.elapsed() < DECREASE_WINDOW)
        {
            return;
        }
        s.last_decrease = Some(Instant::now());
        s.rate = (s.rate * DECREASE).max(self.min_rate);
        self.install(&mut s);
    }

    fn install(&self, s: &mut State) {
        if (s.rate - s.installed_rate).abs() > f64::EPSILON {
            s.limiter = build(s.rate, true);
            s.installed_rate = s.rate;
            s.last_install = Instant::now();
        }
    }

    /// The rate in force now.
    pub fn rate(&self) -> f64 {
        self.state.lock().expect("limiter state").rate
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
            l.state.lock().unwrap().last_decrease = None;
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
        // 21 calls at 100/s with a burst of 10: 10 at once, then 11 × 10 ms.
        assert!(e >= Duration::from_millis(100), "{e:?}");
        assert!(e < Duration::from_millis(600), "{e:?}");
        assert_eq!(l.calls(), 21);
    }
}
