//! Rate limiters per Cognito quota category: calls evenly spaced a little under the quota, a gentle
//! slowdown on throttling and a fast recovery.
//!
//! Why it exists: Cognito refuses calls over a category's quota with `TooManyRequestsException`,
//! and the quota may act as a token bucket with a burst or as a strict "at most N calls in any
//! one-second window". Calls evenly spaced at rate r never put more than ⌈r⌉ *send* times in a
//! one-second window, but calls reach the server with jitter (connection pools, scheduling, the
//! server's own queueing): a window of *arrival* times holds the calls sent within 1 s + J, where J
//! is how much the delays of calls about a second apart differ. Pacing at the quota itself is
//! therefore throttled now and then; pacing at [`Tuning::headroom`] (98%) of it absorbs J up to
//! 1/0.98 − 1 ≈ 20 ms with no throttle at all, and never empties a bucket.
//!
//! The logic is [`Pacer`], a state machine on an injected clock (a [`Duration`] since an origin),
//! so it is unit-tested on a virtual clock against simulated servers; [`AdaptiveLimiter`] runs it
//! on tokio's clock for the writer.
//!
//! - **Pacing.** Each caller reserves the next free send slot: `slot = max(next, now)`,
//!   `next = slot + 1/rate`. Calls leave evenly spaced; after a pause the next call goes at once and
//!   the rest follow at the rate, never a catch-up burst; timer lateness is never carried over.
//! - **A window on the actual send times.** A caller can leave late (a busy machine deschedules
//!   it), and a late call followed by punctual ones is a burst at the server. So a call also waits
//!   until the call ⌊quota⌋ sends before it left at least 1 s + [`Tuning::guard`] (10 ms) earlier:
//!   no ⌊quota⌋ + 1 calls ever leave within 1.01 s, whatever the lateness. Punctual calls at the
//!   ceiling are 1/0.98 s ≈ 1.02 s apart per ⌊quota⌋ + 1 and never wait for it.
//! - **On a throttle** the rate is cut ×[`Tuning::decrease`] (0.9), once per episode: a throttled
//!   call that was paced before the last cut says nothing about the new rate (it was in flight, or
//!   the server's window still held the calls of the second before). A throttle during the fast
//!   climb after a cut cuts from that cut's level, so repeated throttles compound (a quota far
//!   below `--rate` is found in a few episodes).
//! - **Recovery** is linear in time: back to [`Tuning::recover_to`] (98%) of the rate that was
//!   throttled within [`Tuning::fast`] (0.5 s), then probing upwards by [`Tuning::probe`] (1% of
//!   the ceiling per second) up to the ceiling. A throttle caused by jitter alone costs a few
//!   calls' worth of time; with a quota shared with another caller each throttle lowers the level
//!   the rate returns to, so the rate settles just under what is left instead of hitting it twice a
//!   second.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The quota categories the writer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    UserCreation,
    UserUpdate,
    UserResourceUpdate,
    UserRead,
    /// AdminListGroupsForUser and the other reads of a user's resources (50 RPS by default).
    UserResourceRead,
    UserPoolResourceUpdate,
    UserList,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::UserCreation => "UserCreation",
            Category::UserUpdate => "UserUpdate",
            Category::UserResourceUpdate => "UserResourceUpdate",
            Category::UserRead => "UserRead",
            Category::UserResourceRead => "UserResourceRead",
            Category::UserPoolResourceUpdate => "UserPoolResourceUpdate",
            Category::UserList => "UserList",
        }
    }
}

/// The pacing constants (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    /// The highest rate used, as a fraction of the configured rate (the quota).
    pub headroom: f64,
    /// A throttle multiplies the rate by this.
    pub decrease: f64,
    /// After a cut the rate climbs back to this fraction of the rate that was throttled...
    pub recover_to: f64,
    /// ...within this time, linearly...
    pub fast: Duration,
    /// ...then grows by this fraction of the ceiling per second, up to the ceiling.
    pub probe: f64,
    /// The rate never falls below this fraction of the configured rate.
    pub min_fraction: f64,
    /// No ⌊quota⌋ + 1 calls leave within 1 s + this.
    pub guard: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            headroom: 0.98,
            decrease: 0.9,
            recover_to: 0.98,
            fast: Duration::from_millis(500),
            probe: 0.01,
            min_fraction: 0.1,
            guard: Duration::from_millis(10),
        }
    }
}

/// A reserved send slot. Hand it back to [`Pacer::on_throttle`] when its call was throttled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Reservations are numbered; a cut remembers the first number paced after it.
    seq: u64,
    /// When the call may leave (since the pacer's origin).
    pub slot: Duration,
}

/// The last cut: when, the first reservation paced after it, down to which rate, and the rate the
/// fast recovery climbs to.
#[derive(Clone, Copy, Debug)]
struct Cut {
    at: Duration,
    first_seq: u64,
    to: f64,
    target: f64,
}

/// The pacing state machine of one category, on an injected clock: every method takes the time
/// now as a [`Duration`] since an origin of the caller's choice, and none reads a clock itself.
#[derive(Clone, Debug)]
pub struct Pacer {
    tuning: Tuning,
    ceiling: f64,
    floor: f64,
    /// The next free send slot.
    next: Duration,
    seq: u64,
    cut: Option<Cut>,
    /// The actual send times of the last ⌊quota⌋ calls.
    sent: VecDeque<Duration>,
    window_calls: usize,
    /// How long ago the call ⌊quota⌋ sends back must have left.
    window: Duration,
}

/// The spacing of calls at `rate`, rounded up to the nanosecond: ⌈r⌉ periods then always span a
/// whole second, so no window of one second holds more than ⌈r⌉ slots.
fn period(rate: f64) -> Duration {
    Duration::from_nanos((1e9 / rate.max(0.001)).ceil() as u64)
}

impl Pacer {
    /// A pacer for a quota of `rate` calls per second.
    pub fn new(rate: f64, tuning: Tuning) -> Pacer {
        let rate = rate.max(0.01);
        let ceiling = rate * tuning.headroom.clamp(0.01, 1.0);
        let window_calls = (rate.floor() as usize).clamp(1, u32::MAX as usize);
        Pacer {
            tuning,
            ceiling,
            floor: (rate * tuning.min_fraction.clamp(0.001, 1.0)).min(ceiling),
            next: Duration::ZERO,
            seq: 0,
            cut: None,
            sent: VecDeque::new(),
            window_calls,
            // 1 s + guard, unless punctual calls at the ceiling would wait for it (a quota with a
            // fraction, e.g. 10.5: ten periods at 10.29/s are 0.97 s).
            window: (Duration::from_secs(1) + tuning.guard)
                .min(period(ceiling) * window_calls as u32),
        }
    }

    /// The highest rate it paces at.
    pub fn ceiling(&self) -> f64 {
        self.ceiling
    }

    /// The rate in force at `now`.
    pub fn rate(&self, now: Duration) -> f64 {
        let Some(c) = self.cut else {
            return self.ceiling;
        };
        let dt = now.saturating_sub(c.at).as_secs_f64();
        let fast = self.tuning.fast.as_secs_f64();
        let rate = if dt < fast {
            c.to + (c.target - c.to) * dt / fast
        } else {
            c.target + self.tuning.probe * self.ceiling * (dt - fast)
        };
        rate.min(self.ceiling)
    }

    /// Reserves the next send slot for a caller asking at `now`.
    pub fn reserve(&mut self, now: Duration) -> Ticket {
        let slot = self.next.max(now);
        self.next = slot + period(self.rate(slot));
        self.seq += 1;
        Ticket {
            seq: self.seq,
            slot,
        }
    }

    /// A caller whose slot has come asks to send at `now`: `Ok` records the send, `Err(t)` says
    /// to ask again at `t` (the call ⌊quota⌋ sends back left less than 1 s + guard ago).
    pub fn send(&mut self, now: Duration) -> Result<(), Duration> {
        if self.sent.len() >= self.window_calls {
            let earliest = self.sent[0] + self.window;
            if now < earliest {
                return Err(earliest);
            }
            self.sent.pop_front();
        }
        self.sent.push_back(now);
        Ok(())
    }

    /// The call of `ticket` was throttled; the answer came at `now`. Returns whether the rate was
    /// cut (it is not for a call paced before the last cut).
    pub fn on_throttle(&mut self, ticket: &Ticket, now: Duration) -> bool {
        if self.cut.is_some_and(|c| ticket.seq < c.first_seq) {
            return false;
        }
        let mut rate = self.rate(now);
        if let Some(c) = self
            .cut
            .filter(|c| now.saturating_sub(c.at) < self.tuning.fast)
        {
            // Throttled again while still climbing back: the last cut was not enough, cut from
            // its level (repeated throttles compound instead of being undone by the climb).
            rate = rate.min(c.to);
        }
        let to = (rate * self.tuning.decrease).max(self.floor);
        let target = (rate * self.tuning.recover_to).clamp(to, self.ceiling);
        self.cut = Some(Cut {
            at: now,
            first_seq: self.seq + 1,
            to,
            target,
        });
        true
    }

    /// How long after a throttle at the ceiling, with no further throttle, the rate is back at it.
    pub fn recovery_time(&self) -> Duration {
        let t = self.tuning;
        let probe = (1.0 - t.recover_to.min(1.0)) / t.probe.max(1e-9);
        t.fast + Duration::from_secs_f64(probe)
    }
}

/// One category's adaptive limiter: a [`Pacer`] on tokio's clock, with counters.
pub struct AdaptiveLimiter {
    pub category: Category,
    max_rate: f64,
    origin: Instant,
    pacer: Mutex<Pacer>,
    calls: AtomicU64,
    throttled: AtomicU64,
}

impl AdaptiveLimiter {
    /// A limiter for a quota of `rate` calls per second that never slows below `min_fraction` of
    /// it.
    pub fn new(category: Category, rate: f64, min_fraction: f64) -> AdaptiveLimiter {
        let tuning = Tuning {
            min_fraction,
            ..Tuning::default()
        };
        AdaptiveLimiter {
            category,
            max_rate: rate,
            origin: Instant::now(),
            pacer: Mutex::new(Pacer::new(rate, tuning)),
            calls: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Waits for this caller's send slot (and, if it comes late, for the window of actual send
    /// times). Give the ticket to [`AdaptiveLimiter::on_throttle`] if the call is throttled.
    pub async fn acquire(&self) -> Ticket {
        let ticket = self.pacer.lock().expect("pacer").reserve(self.now());
        let mut at = ticket.slot;
        loop {
            tokio::time::sleep_until(self.origin + at).await;
            let now = self.now();
            match self.pacer.lock().expect("pacer").send(now) {
                Ok(()) => break,
                Err(later) => at = later,
            }
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        ticket
    }

    /// The call sent with `ticket` was throttled: slow down (once per episode).
    pub fn on_throttle(&self, ticket: &Ticket) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        self.pacer.lock().expect("pacer").on_throttle(ticket, now);
    }

    /// The rate in force now.
    pub fn rate(&self) -> f64 {
        let now = self.now();
        self.pacer.lock().expect("pacer").rate(now)
    }

    /// The configured rate (the quota).
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
mod tests;
