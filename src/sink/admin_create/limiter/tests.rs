//! The pacer on a virtual clock: send slots checked window by window, recovery times, and whole
//! runs simulated against the two kinds of quota the emulator enforces (a strict one-second sliding
//! window and a token bucket), with 16 calls in flight whose arrival at the server jitters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::*;

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// xorshift64: reproducible jitter without a dependency.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The most times in any half-open window (t − 1 s, t] (times sorted).
fn max_per_second(times: &[Duration]) -> usize {
    let mut start = 0;
    let mut most = 0;
    for (i, t) in times.iter().enumerate() {
        while times[start] + SECOND <= *t {
            start += 1;
        }
        most = most.max(i + 1 - start);
    }
    most
}

/// A quota as a server enforces it: is a call arriving at `at` admitted?
trait Quota {
    fn admit(&mut self, at: Duration) -> bool;
}

/// At most `limit` admitted calls in any window (t − 1 s, t], as the emulator's `sliding_window`.
struct SlidingWindow {
    limit: usize,
    admitted: VecDeque<Duration>,
}

impl Quota for SlidingWindow {
    fn admit(&mut self, at: Duration) -> bool {
        while self.admitted.front().is_some_and(|t| *t + SECOND <= at) {
            self.admitted.pop_front();
        }
        if self.admitted.len() < self.limit {
            self.admitted.push_back(at);
            true
        } else {
            false
        }
    }
}

/// A bucket of `rate` tokens refilled at `rate` per second, as the emulator's `token_bucket` with a
/// one-second burst.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Duration,
}

impl Quota for TokenBucket {
    fn admit(&mut self, at: Duration) -> bool {
        let dt = at.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.last = self.last.max(at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A simulated run and what the server saw.
struct Run {
    quota: f64,
    seconds: f64,
    workers: usize,
    /// Each call reaches the server `base + jitter × U[0, 1)` after its slot.
    base: Duration,
    jitter: Duration,
    /// The answer takes this long back.
    answer: Duration,
    /// A throttled call is retried after this.
    backoff: Duration,
    /// Another caller using the same quota, evenly spaced at this rate (0: none).
    competitor: f64,
    /// This share of callers leave up to `late` after their slot (a descheduled thread).
    late_share: f64,
    late: Duration,
    tuning: Tuning,
}

#[derive(Debug)]
struct Seen {
    calls: usize,
    throttled: usize,
    /// Calls of ours admitted per second after the first second.
    rate: f64,
}

impl Run {
    fn new(quota: f64, jitter_ms: u32) -> Run {
        Run {
            quota,
            seconds: 60.0,
            workers: 16,
            base: 2 * MS,
            jitter: jitter_ms * MS,
            answer: 10 * MS,
            backoff: 75 * MS,
            competitor: 0.0,
            late_share: 0.0,
            late: Duration::ZERO,
            tuning: Tuning::default(),
        }
    }

    fn against(&self, mut quota: impl Quota, seed: u64) -> Seen {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Ev {
            Ready,
            Send,
            Arrive,
            Answer(bool),
            Competitor,
        }
        let mut pacer = Pacer::new(self.quota, self.tuning);
        let mut rng = Rng(seed);
        let mut queue = BinaryHeap::new();
        let mut order = 0u64;
        let mut push = |q: &mut BinaryHeap<_>, at: Duration, w: usize, ev: Ev| {
            order += 1;
            q.push(Reverse((at, order, w, ev)));
        };
        let mut tickets = vec![None; self.workers];
        for w in 0..self.workers {
            push(&mut queue, Duration::ZERO, w, Ev::Ready);
        }
        if self.competitor > 0.0 {
            push(&mut queue, Duration::ZERO, usize::MAX, Ev::Competitor);
        }
        let end = secs(self.seconds);
        let (mut calls, mut throttled, mut admitted) = (0, 0, 0);
        while let Some(Reverse((now, _, w, ev))) = queue.pop() {
            if now > end {
                break;
            }
            match ev {
                Ev::Ready => {
                    let t = pacer.reserve(now);
                    tickets[w] = Some(t);
                    let late = if rng.unit() < self.late_share {
                        self.late.mul_f64(rng.unit())
                    } else {
                        Duration::ZERO
                    };
                    push(&mut queue, t.slot + late, w, Ev::Send);
                }
                Ev::Send => match pacer.send(now) {
                    Ok(()) => {
                        let delay = self.base + self.jitter.mul_f64(rng.unit());
                        push(&mut queue, now + delay, w, Ev::Arrive);
                    }
                    Err(later) => push(&mut queue, later, w, Ev::Send),
                },
                Ev::Arrive => {
                    calls += 1;
                    let ok = quota.admit(now);
                    if ok && now >= SECOND {
                        admitted += 1;
                    }
                    push(&mut queue, now + self.answer, w, Ev::Answer(ok));
                }
                Ev::Answer(true) => push(&mut queue, now, w, Ev::Ready),
                Ev::Answer(false) => {
                    throttled += 1;
                    pacer.on_throttle(&tickets[w].expect("a ticket"), now);
                    push(&mut queue, now + self.backoff, w, Ev::Ready);
                }
                Ev::Competitor => {
                    quota.admit(now);
                    let next = now + secs(1.0 / self.competitor);
                    push(&mut queue, next, w, Ev::Competitor);
                }
            }
        }
        Seen {
            calls,
            throttled,
            rate: admitted as f64 / (self.seconds - 1.0),
        }
    }

    fn sliding(&self, seed: u64) -> Seen {
        let limit = self.quota as usize;
        self.against(
            SlidingWindow {
                limit,
                admitted: VecDeque::new(),
            },
            seed,
        )
    }

    fn bucket(&self, seed: u64) -> Seen {
        self.against(
            TokenBucket {
                rate: self.quota,
                tokens: self.quota,
                last: Duration::ZERO,
            },
            seed,
        )
    }
}

#[test]
fn slots_never_put_more_than_the_ceiling_in_any_second() {
    // 16 callers asking at once, then callers arriving at random moments, at three quotas.
    for quota in [10.0, 50.0, 120.0] {
        let mut p = Pacer::new(quota, Tuning::default());
        let mut rng = Rng(7);
        let mut slots: Vec<Duration> = (0..16).map(|_| p.reserve(Duration::ZERO).slot).collect();
        let mut now = Duration::ZERO;
        for _ in 0..(quota as usize * 30) {
            now += secs(rng.unit() * 1.5 / quota);
            slots.push(p.reserve(now).slot);
        }
        let limit = (quota * Tuning::default().headroom).ceil() as usize;
        assert!(limit <= quota as usize);
        assert_eq!(max_per_second(&slots), limit, "quota {quota}");
    }
}

#[test]
fn a_pause_is_not_followed_by_a_burst() {
    let mut p = Pacer::new(50.0, Tuning::default());
    let mut slots: Vec<Duration> = (0..30).map(|_| p.reserve(Duration::ZERO).slot).collect();
    // Nobody asks for 0.8 s after the last slot, then 40 callers at once.
    let resume = *slots.last().unwrap() + 800 * MS;
    slots.extend((0..40).map(|_| p.reserve(resume).slot));
    assert_eq!(
        slots[30], resume,
        "the first call after a pause goes at once"
    );
    let gaps = slots[31..].windows(2).map(|w| w[1] - w[0]);
    assert!(
        gaps.clone().all(|g| g >= secs(1.0 / 49.0) - MS / 1000),
        "{slots:?}"
    );
    assert!(max_per_second(&slots) <= 49);
}

#[test]
fn late_callers_never_put_quota_plus_one_sends_within_a_second_and_punctual_ones_never_wait() {
    let mut p = Pacer::new(50.0, Tuning::default());
    let mut rng = Rng(11);
    let mut sent = Vec::new();
    let mut waited = 0;
    for _ in 0..3000 {
        let t = p.reserve(Duration::ZERO);
        // A third of the calls leave up to 60 ms after their slot.
        let mut at = t.slot;
        if rng.unit() < 0.33 {
            at += (60 * MS).mul_f64(rng.unit());
        }
        while let Err(later) = p.send(at) {
            assert!(later > at);
            at = later;
            waited += 1;
        }
        sent.push(at);
    }
    assert!(waited > 0, "the case must make some calls wait");
    sent.sort();
    for w in sent.windows(51) {
        assert!(w[50] - w[0] >= 1010 * MS, "{:?}", w[50] - w[0]);
    }
    // Punctual: nobody waits.
    let mut p = Pacer::new(50.0, Tuning::default());
    for _ in 0..3000 {
        let t = p.reserve(Duration::ZERO);
        assert_eq!(p.send(t.slot), Ok(()));
    }
}

#[test]
fn late_callers_against_a_sliding_window_are_not_throttled() {
    for seed in [1, 2, 3] {
        let mut r = Run::new(50.0, 5);
        r.late_share = 0.3;
        r.late = 60 * MS;
        let seen = r.sliding(seed);
        assert_eq!(seen.throttled, 0, "{seen:?}");
        assert!(seen.rate >= 0.97 * 50.0, "{seen:?}");
    }
}

#[test]
fn a_throttle_cuts_gently_and_the_rate_is_back_at_the_ceiling_after_the_recovery_time() {
    let mut p = Pacer::new(50.0, Tuning::default());
    let c = p.ceiling();
    assert!((c - 49.0).abs() < 1e-9);
    let at = secs(10.0);
    let t = p.reserve(at);
    assert!(p.on_throttle(&t, at));
    assert!((p.rate(at) - 0.9 * c).abs() < 1e-9, "{}", p.rate(at));
    // Fast: 98% of the throttled rate half a second later.
    assert!((p.rate(at + 500 * MS) - 0.98 * c).abs() < 1e-9);
    assert!(p.rate(at + 250 * MS) > 0.93 * c);
    // Then probing: the ceiling again after 0.5 s + 2% / (1%/s) = 2.5 s, not before.
    assert_eq!(p.recovery_time(), 2500 * MS);
    assert!(p.rate(at + 2400 * MS) < c);
    assert!((p.rate(at + p.recovery_time()) - c).abs() < 1e-9);
    assert_eq!(p.rate(at + secs(60.0)), c);
}

#[test]
fn calls_paced_before_a_cut_do_not_cut_again_later_ones_do() {
    let mut p = Pacer::new(50.0, Tuning::default());
    let in_flight: Vec<Ticket> = (0..16).map(|_| p.reserve(Duration::ZERO)).collect();
    let now = 300 * MS;
    assert!(p.on_throttle(&in_flight[3], now));
    let after_first = p.rate(now);
    for t in &in_flight {
        assert!(!p.on_throttle(t, now + 10 * MS), "{t:?}");
    }
    assert!((p.rate(now) - after_first).abs() < 1e-9);
    let later = p.reserve(now + 20 * MS);
    assert!(p.on_throttle(&later, now + 40 * MS));
    assert!(p.rate(now + 40 * MS) < after_first);
}

#[test]
fn the_rate_never_falls_below_its_floor() {
    let tuning = Tuning {
        min_fraction: 0.1,
        ..Tuning::default()
    };
    let mut p = Pacer::new(25.0, tuning);
    let mut now = Duration::ZERO;
    for _ in 0..100 {
        let t = p.reserve(now);
        now += MS;
        p.on_throttle(&t, now);
    }
    assert!((p.rate(now) - 2.5).abs() < 1e-9, "{}", p.rate(now));
}

#[test]
fn a_sliding_window_quota_is_met_without_a_throttle_while_jitter_stays_under_the_headroom() {
    // Arrival jitter up to 15 ms: below 1/0.98 − 1 ≈ 20 ms, so no window ever holds 51 calls.
    for seed in [1, 2, 3] {
        let seen = Run::new(50.0, 15).sliding(seed);
        assert_eq!(seen.throttled, 0, "{seen:?}");
        assert!(seen.rate >= 0.97 * 50.0, "{seen:?}");
    }
}

#[test]
fn beyond_the_headroom_throttles_stay_under_1_percent_and_the_rate_degrades_gently() {
    // Jitter up to 40 ms, twice what the headroom absorbs: no pacing can keep every window under
    // the limit at 97% (50 / 1.04 = 48.1/s is the most that is always safe). Throttles happen,
    // each costs little.
    for seed in [1, 2, 3] {
        let seen = Run::new(50.0, 40).sliding(seed);
        assert!(
            seen.throttled > 0,
            "the case must provoke throttling: {seen:?}"
        );
        assert!(
            (seen.throttled as f64) < 0.01 * seen.calls as f64,
            "{seen:?}"
        );
        assert!(seen.rate >= 0.95 * 50.0, "{seen:?}");
    }
}

#[test]
fn a_token_bucket_quota_is_met_without_a_throttle_even_with_heavy_jitter() {
    for (quota, jitter) in [(50.0, 15), (50.0, 60), (10.0, 60), (120.0, 60)] {
        let seen = Run::new(quota, jitter).bucket(5);
        assert_eq!(seen.throttled, 0, "quota {quota}: {seen:?}");
        assert!(seen.rate >= 0.97 * quota, "quota {quota}: {seen:?}");
    }
}

#[test]
fn a_shared_quota_settles_under_what_is_left_instead_of_hammering_it() {
    // Another caller sends 10 of the 50 calls a second (and does not retry its throttled ones):
    // at least 40 are left for us.
    let shared = |tuning: Tuning| {
        let mut r = Run::new(50.0, 15);
        r.competitor = 10.0;
        r.tuning = tuning;
        r
    };
    let sliding = shared(Tuning::default()).sliding(9);
    let bucket = shared(Tuning::default()).bucket(9);
    for (name, seen) in [("sliding", &sliding), ("bucket", &bucket)] {
        assert!(seen.rate >= 0.95 * 40.0, "{name}: {seen:?}");
        assert!(
            (seen.throttled as f64) < 0.05 * seen.calls as f64,
            "{name}: {seen:?}"
        );
    }
    // Without slowing down, the same run is throttled several times as often.
    let stubborn = Tuning {
        decrease: 1.0,
        recover_to: 1.0,
        ..Tuning::default()
    };
    let seen = shared(stubborn).sliding(9);
    assert!(
        seen.throttled > 3 * sliding.throttled,
        "{seen:?} vs {sliding:?}"
    );
}

#[tokio::test]
async fn the_limiter_waits_for_its_slots_on_the_real_clock() {
    let l = AdaptiveLimiter::new(Category::UserCreation, 100.0, 0.1);
    let t = Instant::now();
    for _ in 0..21 {
        l.acquire().await;
    }
    // 21 calls at 98/s: the first at once, then 20 periods of 10.2 ms.
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(200), "{e:?}");
    assert!(e < Duration::from_secs(2), "{e:?}");
    assert_eq!(l.calls(), 21);
    let ticket = l.acquire().await;
    l.on_throttle(&ticket);
    assert_eq!(l.throttled(), 1);
    assert!(l.rate() < 0.95 * 98.0, "{}", l.rate());
}
