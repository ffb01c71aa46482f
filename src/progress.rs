//! What a long run shows while it works: progress bars on a terminal, plain periodic log lines on
//! stderr when stderr is not a terminal (CI, `2> log`), and a final summary table.
//!
//! Writers only bump atomic counters; one background ticker thread renders them (bars every 100 ms,
//! plain lines every `interval`), so counting costs a relaxed atomic add per event even at a
//! million users. Any writer uses the same small API:
//!
//! ```no_run
//! use cognito_migrate::progress::{Output, Progress, Table, Unit};
//!
//! let progress = Progress::new(Output::auto());
//! // A bar: reading 1 GB of input.
//! let read = progress.task("reading", Some(1 << 30), Unit::Bytes, &[]);
//! read.set(0, 4096);
//! read.finish("done");
//! // Named counters with rate and ETA, e.g. the admin-create writer's:
//! let w = progress.task("admin-create", Some(5000), Unit::Users, &["created", "skipped", "failed"]);
//! w.add(0, 1); // one created
//! w.add(2, 1); // one failed
//! progress.println("a message that does not break the bars");
//! w.finish("done");
//! progress.finish();
//! let mut t = Table::new(&["step", "users"]);
//! t.row(vec!["created".into(), "4999".into()]);
//! eprint!("{}", t.render());
//! ```
//!
//! A task's position is the sum of its counters (bytes for [`Unit::Bytes`]). The output mode is
//! [`Output::auto`]: bars when stderr is a terminal, else plain lines; `COGNITO_MIGRATE_PROGRESS`
//! = `bars` | `plain` | `off` overrides it and `COGNITO_MIGRATE_PROGRESS_INTERVAL` (seconds, default
//! 10) sets the plain-line period. Every task prints one final line when it finishes, in any mode
//! but `off`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// indicatif bars on stderr.
    Bars,
    /// A plain line per running task on stderr every interval, and one when it finishes.
    Plain(Duration),
    /// Nothing.
    Off,
}

impl Output {
    /// Bars on a terminal, plain lines otherwise; `COGNITO_MIGRATE_PROGRESS` and
    /// `COGNITO_MIGRATE_PROGRESS_INTERVAL` override.
    pub fn auto() -> Output {
        let interval = std::env::var("COGNITO_MIGRATE_PROGRESS_INTERVAL")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(10));
        match std::env::var("COGNITO_MIGRATE_PROGRESS").as_deref() {
            Ok("bars") => Output::Bars,
            Ok("plain") => Output::Plain(interval),
            Ok("off") => Output::Off,
            _ if std::io::stderr().is_terminal() => Output::Bars,
            _ => Output::Plain(interval),
        }
    }
}

/// What a task counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Users,
    Files,
}

impl Unit {
    fn noun(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Users => "users",
            Unit::Files => "files",
        }
    }

    fn amount(self, n: u64) -> String {
        match self {
            Unit::Bytes => HumanBytes(n).to_string(),
            _ => thousands(n),
        }
    }
}

struct TaskState {
    name: String,
    unit: Unit,
    labels: Vec<String>,
    counts: Vec<AtomicU64>,
    /// `u64::MAX`: unknown.
    total: AtomicU64,
    started: Instant,
    finished: Mutex<Option<(Duration, String)>>,
    done: AtomicBool,
    bar: Option<ProgressBar>,
    /// `Output::Off`: print nothing.
    quiet: bool,
}

impl TaskState {
    fn position(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn total(&self) -> Option<u64> {
        match self.total.load(Ordering::Relaxed) {
            u64::MAX => None,
            t => Some(t),
        }
    }

    fn counters_text(&self) -> String {
        let mut s = String::new();
        for (i, l) in self.labels.iter().enumerate() {
            if i > 0 {
                s.push_str(" · ");
            }
            let _ = write!(
                s,
                "{} {}",
                thousands(self.counts[i].load(Ordering::Relaxed)),
                l
            );
        }
        s
    }

    /// `reading: 345,000/1,000,000 users (34%) · 120,000 users/s · ETA 5s`
    fn plain_line(&self, elapsed: Duration) -> String {
        let pos = self.position();
        let mut s = format!("{}: {}", self.name, self.unit.amount(pos));
        if let Some(t) = self.total() {
            let pct = if t == 0 {
                100.0
            } else {
                pos as f64 * 100.0 / t as f64
            };
            let _ = write!(
                s,
                "/{} {} ({pct:.0}%)",
                self.unit.amount(t),
                self.unit.noun()
            );
        } else if self.unit != Unit::Bytes {
            let _ = write!(s, " {}", self.unit.noun());
        }
        if !self.labels.is_empty() {
            let _ = write!(s, " [{}]", self.counters_text());
        }
        let secs = elapsed.as_secs_f64();
        if secs > 0.0 && pos > 0 {
            let rate = pos as f64 / secs;
            let _ = write!(s, " · {}/s", self.unit.amount(rate as u64));
            if let Some(t) = self.total() {
                if t > pos && !self.done.load(Ordering::Relaxed) {
                    let eta = Duration::from_secs_f64((t - pos) as f64 / rate);
                    let _ = write!(s, " · ETA {}", short_duration(eta));
                }
            }
        }
        s
    }

    fn refresh_bar(&self) {
        if let Some(bar) = &self.bar {
            if let Some(t) = self.total() {
                if bar.length() != Some(t) {
                    bar.set_length(t);
                    bar.set_style(style(self.unit, true));
                }
            }
            bar.set_position(self.position());
            if !self.labels.is_empty() {
                bar.set_message(self.counters_text());
            }
        }
    }
}

fn style(unit: Unit, has_total: bool) -> ProgressStyle {
    let t = match (unit, has_total) {
        (Unit::Bytes, true) => {
            "{prefix:>14} [{bar:28}] {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}"
        }
        (Unit::Bytes, false) => "{prefix:>14} {spinner} {bytes} {msg} {bytes_per_sec}",
        (_, true) => "{prefix:>14} [{bar:28}] {human_pos}/{human_len} {msg} {per_sec} ETA {eta}",
        (_, false) => "{prefix:>14} {spinner} {human_pos} {msg} {per_sec}",
    };
    ProgressStyle::with_template(t)
        .expect("the progress templates are valid")
        .progress_chars("=> ")
}

/// One bar or set of counters. Cheap to clone; counting is a relaxed atomic add.
#[derive(Clone)]
pub struct Task(Arc<TaskState>);

impl Task {
    /// Adds `n` to counter `i` (0 for a plain bar).
    pub fn add(&self, i: usize, n: u64) {
        if let Some(c) = self.0.counts.get(i) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Sets counter `i` (e.g. a job's ImportedUsers as Cognito reports it, or a byte offset).
    pub fn set(&self, i: usize, v: u64) {
        if let Some(c) = self.0.counts.get(i) {
            c.store(v, Ordering::Relaxed);
        }
    }

    pub fn get(&self, i: usize) -> u64 {
        self.0
            .counts
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum of the counters.
    pub fn position(&self) -> u64 {
        self.0.position()
    }

    pub fn set_total(&self, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
    }

    /// Ends the task with a note (`done`, `succeeded`, …) and prints its final line. Idempotent.
    pub fn finish(&self, note: &str) {
        if self.0.done.swap(true, Ordering::SeqCst) {
            return;
        }
        let elapsed = self.0.started.elapsed();
        *self.0.finished.lock().unwrap() = Some((elapsed, note.to_string()));
        let line = format!(
            "{} — {note} in {}",
            self.0.plain_line(elapsed),
            short_duration(elapsed)
        );
        match &self.0.bar {
            Some(bar) => {
                self.0.refresh_bar();
                bar.finish_with_message(format!(
                    "{} {note} in {}",
                    self.0.counters_text(),
                    short_duration(elapsed)
                ));
            }
            None if self.0.quiet => {}
            None => eprintln!("{line}"),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.0.done.load(Ordering::Relaxed)
    }
}

struct Inner {
    output: Output,
    multi: Option<MultiProgress>,
    tasks: Mutex<Vec<Arc<TaskState>>>,
    stop: AtomicBool,
}

/// The progress display of one command. Cheap to clone.
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

impl Progress {
    pub fn new(output: Output) -> Progress {
        let multi = (output == Output::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let inner = Arc::new(Inner {
            output,
            multi,
            tasks: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        if output != Output::Off {
            let weak = Arc::downgrade(&inner);
            let _ = std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || ticker(weak));
        }
        Progress(inner)
    }

    /// A display that shows nothing (tests, `--quiet`).
    pub fn hidden() -> Progress {
        Progress::new(Output::Off)
    }

    pub fn output(&self) -> Output {
        self.0.output
    }

    /// A new task: `labels` names its counters (none: a single counter, a plain bar).
    pub fn task(&self, name: &str, total: Option<u64>, unit: Unit, labels: &[&str]) -> Task {
        let bar = self.0.multi.as_ref().map(|m| {
            let b = m.add(match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::no_length(),
            });
            b.set_style(style(unit, total.is_some()));
            b.set_prefix(name.to_string());
            b
        });
        let n = labels.len().max(1);
        let state = Arc::new(TaskState {
            name: name.to_string(),
            quiet: self.0.output == Output::Off,
            unit,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(total.unwrap_or(u64::MAX)),
            started: Instant::now(),
            finished: Mutex::new(None),
            done: AtomicBool::new(false),
            bar,
        });
        self.0.tasks.lock().unwrap().push(state.clone());
        Task(state)
    }

    /// Prints a message on stderr without breaking the bars.
    pub fn println(&self, message: impl AsRef<str>) {
        match (&self.0.multi, self.0.output) {
            (_, Output::Off) => {}
            (Some(m), _) => {
                let _ = m.println(message.as_ref());
            }
            (None, _) => eprintln!("{}", message.as_ref()),
        }
    }

    /// Stops the ticker and clears unfinished bars. Tasks still running print no final line.
    pub fn finish(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        for t in self.0.tasks.lock().unwrap().iter() {
            if let Some(b) = &t.bar {
                if !t.done.load(Ordering::Relaxed) {
                    b.finish_and_clear();
                }
            }
        }
    }
}

fn ticker(inner: Weak<Inner>) {
    let mut last_plain = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Some(inner) = inner.upgrade() else { return };
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        match inner.output {
            Output::Bars => {
                for t in inner.tasks.lock().unwrap().iter() {
                    if !t.done.load(Ordering::Relaxed) {
                        t.refresh_bar();
                    }
                }
            }
            Output::Plain(every) if last_plain.elapsed() >= every => {
                last_plain = Instant::now();
                for t in inner.tasks.lock().unwrap().iter() {
                    if !t.done.load(Ordering::Relaxed) {
                        eprintln!("{}", t.plain_line(t.started.elapsed()));
                    }
                }
            }
            _ => {}
        }
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h{:02}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60)
    }
}

/// A plain text table: left-aligned text, right-aligned numbers.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Table {
        self.rows.push(cells);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let cell = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
        let mut width = vec![0usize; cols];
        let mut numeric = vec![true; cols];
        for (i, w) in width.iter_mut().enumerate() {
            *w = self
                .rows
                .iter()
                .chain([&self.header])
                .map(|r| cell(r, i).chars().count())
                .max()
                .unwrap_or(0);
            numeric[i] = self.rows.iter().all(|r| {
                let c = cell(r, i);
                c.is_empty() || c == "-" || c.chars().all(|ch| ch.is_ascii_digit() || ch == ',')
            });
        }
        let mut out = String::new();
        let line = |out: &mut String, r: &Vec<String>| {
            for i in 0..cols {
                let c = cell(r, i);
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric[i] {
                    let _ = write!(out, "{c:>w$}", w = width[i]);
                } else if i + 1 == cols {
                    out.push_str(&c);
                } else {
                    let _ = write!(out, "{c:<w$}", w = width[i]);
                }
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_render_plain_lines() {
        let p = Progress::new(Output::Off);
        let t = p.task(
            "admin-create",
            Some(10),
            Unit::Users,
            &["created", "skipped", "failed"],
        );
        t.add(0, 6);
        t.add(1, 1);
        t.add(2, 1);
        assert_eq!(t.position(), 8);
        assert_eq!(t.get(0), 6);
        let named = t.0.plain_line(Duration::from_secs(2));
        assert!(named.starts_with("admin-create: "), "{named}");
        assert!(named.contains("8/10 users (80%)"), "{named}");
        assert!(
            named.contains("6 created · 1 skipped · 1 failed"),
            "{named}"
        );
        assert!(named.contains("4/s"), "{named}");
        assert!(named.contains("ETA 500ms"), "{named}");
        t.finish("done");
        assert!(t.is_finished());
        p.finish();
    }

    #[test]
    fn bytes_and_unknown_totals() {
        let p = Progress::new(Output::Off);
        let t = p.task("reading", None, Unit::Bytes, &[]);
        t.set(0, 2048);
        let line = t.0.plain_line(Duration::from_secs(1));
        assert!(line.contains("2.00 KiB"), "{line}");
        assert!(!line.contains("ETA"), "{line}");
        t.set_total(4096);
        assert!(t.0.plain_line(Duration::from_secs(1)).contains("(50%)"));
    }

    #[test]
    fn numbers_and_tables() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_secs(245)), "4m05s");
        let mut t = Table::new(&["chunk", "status", "imported"]);
        t.row(vec!["1".into(), "succeeded".into(), "1,000".into()]);
        t.row(vec!["12".into(), "failed".into(), "7".into()]);
        let s = t.render();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "chunk  status     imported");
        assert_eq!(lines[2], "    1  succeeded     1,000");
        assert_eq!(lines[3], "   12  failed            7");
    }
}
