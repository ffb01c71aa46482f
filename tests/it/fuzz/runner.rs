//! Runs one property as a bounded or time-boxed campaign, with a watchdog for hangs.
//!
//! A bounded run (the default, inside `cargo test`) is deterministic: the same cases every time,
//! so CI does not turn red by chance. A campaign (`COGNITO_FUZZ_SECONDS`) draws fresh random
//! cases batch after batch until its time is up and prints how many it ran. Either way a case
//! that runs for more than [`HANG`] aborts the process after printing the case, since a reader
//! that never returns would otherwise hang the test run. The watchdog keeps one running case per
//! test thread: the fuzz tests share the `it` test binary with the other tests and run in parallel.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// A case taking longer than this is a hang (inputs are a few KiB; a case takes milliseconds).
const HANG: Duration = Duration::from_secs(60);

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// The cases running now, one per test thread, for the watchdog: when each started and how to
/// show it.
type Current = Arc<Mutex<HashMap<ThreadId, (Instant, String)>>>;

fn watchdog() -> &'static Current {
    static CURRENT: OnceLock<Current> = OnceLock::new();
    CURRENT.get_or_init(|| {
        let current: Current = Arc::default();
        let watched = Arc::clone(&current);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let guard = watched.lock().unwrap_or_else(|e| e.into_inner());
            for (started, case) in guard.values() {
                if started.elapsed() > HANG {
                    eprintln!("a case ran for more than {HANG:?} (a hang?): {case}");
                    std::process::abort();
                }
            }
        });
        current
    })
}

/// A case the watchdog sees, until dropped (also when the case panics, so that a failed test does
/// not look like a hang to the watchdog while the other tests go on).
struct Running<'a> {
    current: &'a Current,
    thread: ThreadId,
}

impl<'a> Running<'a> {
    fn start(current: &'a Current, shown: String) -> Running<'a> {
        let thread = std::thread::current().id();
        let mut cases = current.lock().unwrap_or_else(|e| e.into_inner());
        cases.insert(thread, (Instant::now(), shown));
        Running { current, thread }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut cases = self.current.lock().unwrap_or_else(|e| e.into_inner());
        cases.remove(&self.thread);
    }
}

/// Runs `test` on values of `strategy`: `default_cases` deterministic cases, or what the
/// environment asks for (see the crate documentation). Panics with the smallest failing value.
pub fn run<S>(
    name: &str,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), String>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let cases = env_number("COGNITO_FUZZ_CASES").map_or(default_cases, |n| n as u32);
    let seconds = env_number("COGNITO_FUZZ_SECONDS");
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let current = watchdog();
    let started = Instant::now();
    let mut total: u64 = 0;
    loop {
        let mut runner = match seconds {
            Some(_) => TestRunner::new(config.clone()),
            None => TestRunner::new_with_rng(
                config.clone(),
                TestRng::deterministic_rng(RngAlgorithm::ChaCha),
            ),
        };
        let result = runner.run(&strategy, |value| {
            let shown = format!("{value:?}");
            let running = Running::start(current, shown);
            let outcome = test(value);
            drop(running);
            outcome.map_err(TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("{name}: {e}");
        }
        total += u64::from(cases);
        match seconds {
            Some(s) if started.elapsed() < Duration::from_secs(s) => {}
            _ => break,
        }
    }
    if seconds.is_some() {
        eprintln!(
            "fuzz {name}: {total} cases in {:.0?}, no failure",
            started.elapsed()
        );
    }
}
