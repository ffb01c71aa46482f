//! `report --html`: a run's state drawn as one self-contained HTML file (inline CSS and SVG, no
//! script, no network, no font), readable in any browser, printable and attachable to a ticket.
//!
//! Why it exists: during a migration its owner asks the same questions every day (how many users
//! are in, how many were rejected and why, how fast did the jobs go) and would rather look at a
//! picture than at `status` tables. Everything comes from the state file, read only.
//!
//! What it shows, in order: the run's summary (pool, input, mode, times, users per route and
//! outcome); a slot for the trigger's progress ([`Extras::progress`], filled by the caller when it
//! has those numbers); rejections and failures by reason and by field with their first places in
//! the input; import jobs on a timeline; AdminCreateUser calls per second with throttles marked
//! (schema V4_VISIBILITY); `sync` runs' change sets when a `sync` recorded some.
//!
//! Safety: every text printed goes through the one [`escape`] function (usernames, reasons, field
//! and pool names are untrusted), in HTML and SVG alike; bodies of sections are [`Html`] values,
//! which only this module builds. No password, hash, presigned URL or rejection message (which may
//! quote a value) is printed: the state holds no secret, and of rejections only the reason code,
//! the field's name and the place in the input are shown. The file is written 0600.

mod escape;
mod svg;
mod time;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use escape::escape;
pub use svg::{nice_step, Linear, Time};

use crate::checkpoint::{
    to_ms, Checkpoint, CheckpointError, ChunkId, ChunkRow, Counts, Outcome, RejectedAt,
    RejectionGroup, Run, SecondStats, SyncRun, Verdict,
};
use svg::Series;
use time::{fmt_duration_ms, fmt_utc};

/// Errors of [`write`].
#[derive(Debug, thiserror::Error)]
pub enum HtmlReportError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write the report to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// HTML made by this module: escaped text, tables and charts. There is no way to make one from a
/// raw string outside it, so a [`Section`] cannot carry unescaped text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// A paragraph of (escaped) text.
    pub fn paragraph(text: &str) -> Html {
        Html(format!("<p>{}</p>\n", escape(text)))
    }

    /// A table: a header row, then rows of (escaped) cells; cells that are numbers are aligned
    /// right.
    pub fn table<S: AsRef<str>>(headers: &[&str], rows: &[Vec<S>]) -> Html {
        let mut h = String::from("<table>\n<thead><tr>");
        for c in headers {
            let _ = write!(h, "<th>{}</th>", escape(c));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for r in rows {
            h.push_str("<tr>");
            for c in r {
                let c = c.as_ref();
                let class = if !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) {
                    " class=\"n\""
                } else {
                    ""
                };
                let _ = write!(h, "<td{class}>{}</td>", escape(c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n");
        Html(h)
    }

    /// A two-column table of (escaped) names and values, without a header row.
    pub fn pairs<K: AsRef<str>, V: AsRef<str>>(rows: &[(K, V)]) -> Html {
        let mut h = String::from("<table class=\"pairs\">\n<tbody>\n");
        for (k, v) in rows {
            let v = v.as_ref();
            let class = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = writeln!(
                h,
                "<tr><th>{}</th><td{class}>{}</td></tr>",
                escape(k.as_ref()),
                escape(v)
            );
        }
        h.push_str("</tbody>\n</table>\n");
        Html(h)
    }

    /// Horizontal bars (one per label), e.g. users per day.
    pub fn bar_chart(title: &str, rows: &[(String, u64)]) -> Html {
        Html(figure(title, &svg::bars(title, BAR, rows)))
    }

    /// Appends `other`.
    pub fn push(&mut self, other: Html) {
        self.0.push_str(&other.0);
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A section of the report.
#[derive(Clone, Debug)]
pub struct Section {
    /// The anchor (`#id`); letters, digits and `-` only.
    pub id: &'static str,
    pub title: String,
    pub body: Html,
}

/// What the caller adds from other sources than the state file.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// The state as the user named it (`--state`), e.g. the `s3://` location a state was
    /// downloaded from; `None`: the state file's path. (A downloaded state's path is a private
    /// temporary file, gone when the report is read.)
    pub state_name: Option<String>,
    /// The trigger's progress (users left to the trigger now in the pool, remaining, arrivals per
    /// day: `cognito-migrate progress`), shown right after the summary.
    pub progress: Option<Section>,
}

impl Section {
    /// The trigger's progress ([`crate::views::TriggerProgress`], what `cognito-migrate progress`
    /// prints) as a section: the counts, the figures that tell when to retire the trigger, and
    /// the arrivals per day.
    pub fn trigger_progress(p: &crate::views::TriggerProgress) -> Section {
        let mut body = Html::paragraph(&format!(
            "Of the users left to the migration trigger, as the pool {} was read at {}.",
            p.pool_id, p.as_of
        ));
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_string());
        body.push(Html::pairs(&[
            ("left to the trigger", p.left_to_trigger.to_string()),
            ("arrived (now in the pool)", p.arrived.to_string()),
            ("remaining", p.remaining.to_string()),
            ("arrived, %", format!("{:.1}", p.percent_arrived)),
            ("arrivals in the last 7 days", p.last_7_days.to_string()),
            ("arrivals in the last 30 days", p.last_30_days.to_string()),
            ("first arrival", opt(&p.first_arrival)),
            ("last arrival", opt(&p.last_arrival)),
            (
                "days since the last arrival",
                p.days_since_last_arrival
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".to_string()),
            ),
        ]));
        if !p.per_day.is_empty() {
            let rows: Vec<(String, u64)> = p
                .per_day
                .iter()
                .map(|d| (d.date.clone(), d.arrivals))
                .collect();
            body.push(Html::bar_chart("Arrivals per day (UTC)", &rows));
        }
        Section {
            id: "progress",
            title: "The trigger's progress".to_string(),
            body,
        }
    }
}

/// Everything the report shows, read from a state.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub state: PathBuf,
    pub run: Run,
    /// First and last time anything of the run was recorded.
    pub span: (SystemTime, SystemTime),
    pub counts: Counts,
    pub routes: BTreeMap<String, Counts>,
    pub chunks: Vec<ChunkRow>,
    pub uploaded_at: BTreeMap<ChunkId, SystemTime>,
    pub rejection_groups: Vec<RejectionGroup>,
    pub first_rejected: Vec<RejectedAt>,
    pub admin_seconds: Vec<SecondStats>,
    /// `None` when the state has no `sync_runs` table.
    pub sync_runs: Option<Vec<SyncRun>>,
    pub generated_at: SystemTime,
}

/// Rejected or failed users listed by name.
pub const LISTED_USERS: usize = 50;

/// Reads what the report shows about `run` from `cp`.
pub fn gather(cp: &Checkpoint, run: &Run) -> Result<ReportData, CheckpointError> {
    Ok(ReportData {
        state: cp.path().to_path_buf(),
        run: run.clone(),
        span: cp.run_span(run.id)?,
        counts: cp.counts(run.id)?,
        routes: cp.route_counts(run.id)?,
        chunks: cp.chunks(run.id)?,
        uploaded_at: cp.chunk_uploaded_at(run.id)?,
        rejection_groups: cp.rejection_groups(run.id)?,
        first_rejected: cp.first_rejected(run.id, LISTED_USERS)?,
        admin_seconds: cp.admin_seconds(run.id)?,
        sync_runs: cp.sync_runs()?,
        generated_at: SystemTime::now(),
    })
}

/// Reads `run` from `cp` and writes its report to `path` (mode 0600).
pub fn write(
    cp: &Checkpoint,
    run: &Run,
    path: &Path,
    extras: &Extras,
) -> Result<ReportData, HtmlReportError> {
    let data = gather(cp, run)?;
    let html = render(&data, extras);
    let io_err = |source| HtmlReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = crate::fs::create_private(path).map_err(io_err)?;
    f.write_all(html.as_bytes()).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    Ok(data)
}

const BAR: &str = "#4e79a7";

fn outcome_colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Imported => "#59a14f",
        Outcome::Created => "#4e79a7",
        Outcome::Updated => "#76b7b2",
        Outcome::Skipped => "#edc948",
        Outcome::Trigger => "#b07aa1",
        Outcome::Rejected => "#f28e2b",
        Outcome::Failed => "#e15759",
        Outcome::Unknown => "#9c755f",
        Outcome::Pending => "#bab0ac",
    }
}

fn ms(t: SystemTime) -> i64 {
    to_ms(t)
}

/// The input's location without a query string (a presigned URL's signature is in it).
fn location(loc: &str) -> &str {
    loc.split(['?', '#']).next().unwrap_or(loc)
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.8rem 0}figcaption{color:#555;font-size:.85rem}
svg{max-width:100%;height:auto;font-size:11px}
svg .grid{stroke:#e4e4e4;stroke-width:1}svg .tick{fill:#666;font-size:10px}
svg .label{fill:#333}svg .value{fill:#333;font-size:10px}svg .legend{fill:#333}
nav ul{padding-left:1.2rem}code{background:#f4f4f4;padding:0 .2rem}
@media print{body{margin:0;max-width:none}section{break-inside:avoid}nav{display:none}}
";

fn figure(caption: &str, svg: &str) -> String {
    format!(
        "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        escape(caption)
    )
}

/// The report as one HTML5 document.
pub fn render(d: &ReportData, extras: &Extras) -> String {
    let mut sections: Vec<Section> = vec![summary(d)];
    if let Some(p) = &extras.progress {
        sections.push(p.clone());
    }
    sections.push(rejections(d));
    sections.push(import_jobs(d));
    sections.push(admin_create(d));
    if let Some(s) = sync_section(d) {
        sections.push(s);
    }
    let title = format!(
        "cognito-migrate: run {} into {}",
        d.run.id, d.run.spec.pool_id
    );
    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>{}</title>", escape(&title));
    let _ = writeln!(h, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        h,
        "<p class=\"sub\">From the state file {} · written {} by cognito-migrate {}</p>",
        escape(
            &extras
                .state_name
                .clone()
                .unwrap_or_else(|| d.state.display().to_string())
        ),
        fmt_utc(ms(d.generated_at)),
        escape(env!("CARGO_PKG_VERSION"))
    );
    h.push_str("<nav><ul>\n");
    for s in &sections {
        let _ = writeln!(
            h,
            "<li><a href=\"#{}\">{}</a></li>",
            escape(s.id),
            escape(&s.title)
        );
    }
    h.push_str("</ul></nav>\n");
    for s in &sections {
        let _ = writeln!(
            h,
            "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>",
            escape(s.id),
            escape(&s.title),
            s.body.as_str()
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn summary(d: &ReportData) -> Section {
    let r = &d.run;
    let (first, last) = (ms(d.span.0), ms(d.span.1));
    let verdict = match d.counts.verdict() {
        Verdict::Done => "done: every user is settled",
        Verdict::SomeFailed => "some users were rejected or failed (or their result is unknown)",
        Verdict::Pending => "not finished: users are still pending",
    };
    let mut body = Html::pairs(&[
        ("user pool", r.spec.pool_id.clone()),
        (
            "input",
            format!(
                "{} ({}, {} bytes)",
                location(&r.spec.input_location),
                r.spec.input_format,
                r.spec.input_size
            ),
        ),
        ("mode", r.spec.mode.clone()),
        (
            "run",
            format!("{}{}", r.id, if r.current { "" } else { " (superseded)" }),
        ),
        ("started", fmt_utc(first)),
        ("last recorded", fmt_utc(last)),
        ("elapsed", fmt_duration_ms(last - first)),
        ("verdict", verdict.to_string()),
    ]);
    // The counts exactly as `status --json` prints them.
    let c = &d.counts;
    let mut t = String::from("<table class=\"counts\">\n<thead><tr><th>users</th><th>number</th></tr></thead>\n<tbody>\n");
    for (name, n) in [
        ("total", c.total),
        ("imported", c.imported),
        ("created", c.created),
        ("updated", c.updated),
        ("skipped", c.skipped),
        ("trigger", c.trigger),
        ("rejected", c.rejected),
        ("failed", c.failed),
        ("unknown", c.unknown),
        ("pending", c.pending),
    ] {
        let _ = writeln!(
            t,
            "<tr><th>{name}</th><td class=\"n\" data-count=\"{name}\">{n}</td></tr>"
        );
    }
    t.push_str("</tbody>\n</table>\n");
    body.push(Html(t));
    // Users per route and outcome: a stacked bar per route, and the numbers.
    let used: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|o| d.routes.values().any(|c| c.get(*o) > 0))
        .collect();
    if !d.routes.is_empty() {
        let series: Vec<Series> = used
            .iter()
            .map(|o| Series {
                name: o.as_str(),
                colour: outcome_colour(*o),
            })
            .collect();
        let rows: Vec<(String, Vec<u64>)> = d
            .routes
            .iter()
            .map(|(route, c)| (route.clone(), used.iter().map(|o| c.get(*o)).collect()))
            .collect();
        let title = "Users per route and outcome";
        body.push(Html(figure(
            title,
            &svg::stacked_bars(title, &series, &rows),
        )));
        let mut t =
            String::from("<table class=\"routes\">\n<thead><tr><th>route</th><th>total</th>");
        for o in &used {
            let _ = write!(t, "<th>{}</th>", o.as_str());
        }
        t.push_str("</tr></thead>\n<tbody>\n");
        for (route, c) in &d.routes {
            let route = escape(route);
            let _ = write!(
                t,
                "<tr><th>{route}</th><td class=\"n\" data-route=\"{route}\" data-count=\"total\">{}</td>",
                c.total
            );
            for o in &used {
                let _ = write!(
                    t,
                    "<td class=\"n\" data-route=\"{route}\" data-count=\"{}\">{}</td>",
                    o.as_str(),
                    c.get(*o)
                );
            }
            t.push_str("</tr>\n");
        }
        t.push_str("</tbody>\n</table>\n");
        body.push(Html(t));
    }
    Section {
        id: "summary",
        title: "Summary".into(),
        body,
    }
}

fn rejections(d: &ReportData) -> Section {
    let mut body = Html::default();
    let groups = &d.rejection_groups;
    if groups.is_empty() {
        body.push(Html::paragraph("No user was rejected or failed."));
        return Section {
            id: "rejections",
            title: "Rejections and failures".into(),
            body,
        };
    }
    body.push(Html::paragraph(
        "Reason codes and the names of the fields concerned; never a value. Records and lines \
         are places in the input (`report --failed` lists every one).",
    ));
    let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_field: BTreeMap<&str, u64> = BTreeMap::new();
    for g in groups {
        *by_reason.entry(&g.reason).or_default() += g.users;
        if !g.field.is_empty() {
            *by_field.entry(&g.field).or_default() += g.users;
        }
    }
    let sorted = |m: BTreeMap<&str, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(30);
        v
    };
    body.push(Html::bar_chart("Users by reason", &sorted(by_reason)));
    if !by_field.is_empty() {
        body.push(Html::bar_chart(
            "Rejected users by field",
            &sorted(by_field),
        ));
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let places = g
                .first
                .iter()
                .map(|(r, l)| format!("record {r} (line {l})"))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                g.reason.clone(),
                g.field.clone(),
                g.users.to_string(),
                if g.users as usize > g.first.len() {
                    format!("{places}, …")
                } else {
                    places
                },
            ]
        })
        .collect();
    body.push(Html::table(
        &["reason", "field", "users", "first places"],
        &rows,
    ));
    let rows: Vec<Vec<String>> = d
        .first_rejected
        .iter()
        .map(|u| {
            vec![
                u.record.to_string(),
                u.line.to_string(),
                u.username.clone(),
                u.route.clone(),
                u.outcome.clone(),
                u.reason.clone(),
                u.field.clone(),
            ]
        })
        .collect();
    let total = d.counts.rejected + d.counts.failed;
    body.push(Html::paragraph(&format!(
        "The first {} of {total} rejected or failed users:",
        rows.len()
    )));
    body.push(Html::table(
        &[
            "record", "line", "username", "route", "outcome", "reason", "field",
        ],
        &rows,
    ));
    Section {
        id: "rejections",
        title: "Rejections and failures".into(),
        body,
    }
}

const JOB_SERIES: [Series; 5] = [
    Series {
        name: "written, waiting for a job",
        colour: "#d3d3d3",
    },
    Series {
        name: "created, uploading",
        colour: "#f1ce63",
    },
    Series {
        name: "uploaded, waiting to start",
        colour: "#a0cbe8",
    },
    Series {
        name: "running",
        colour: "#4e79a7",
    },
    Series {
        name: "ended",
        colour: "#333333",
    },
];

fn import_jobs(d: &ReportData) -> Section {
    let mut body = Html::default();
    if d.chunks.is_empty() {
        body.push(Html::paragraph("This run has no import job."));
        return Section {
            id: "import-jobs",
            title: "Import jobs".into(),
            body,
        };
    }
    let rows: Vec<svg::TimelineRow> = d
        .chunks
        .iter()
        .map(|c| {
            let written = ms(c.written_at);
            let created = c.created_at.map(ms);
            let uploaded = d.uploaded_at.get(&c.id).copied().map(ms);
            let started = c.started_at.map(ms);
            let finished = c.finished_at.map(ms);
            let now = ms(c.updated_at);
            let mut segments = Vec::new();
            // Each phase runs to the next recorded step (or to the last update while under way).
            let next = |after: [Option<i64>; 3]| after.into_iter().flatten().next();
            segments.push((
                written,
                created.or(next([started, finished, None])).unwrap_or(now),
                0,
            ));
            if let Some(a) = created {
                segments.push((a, next([uploaded, started, finished]).unwrap_or(now), 1));
            }
            if let Some(a) = uploaded {
                segments.push((a, next([started, finished, None]).unwrap_or(now), 2));
            }
            if let Some(a) = started {
                segments.push((a, finished.unwrap_or(now), 3));
            }
            let marks = finished.map(|f| vec![(f, 4)]).unwrap_or_default();
            svg::TimelineRow {
                label: format!("chunk {} · {} rows", c.id, c.row_count),
                segments,
                marks,
            }
        })
        .collect();
    let title = "Import jobs over time (UTC)";
    body.push(Html(figure(
        title,
        &svg::timeline(title, &JOB_SERIES, &rows),
    )));
    let opt = |t: Option<SystemTime>| t.map(|t| fmt_utc(ms(t))).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = d
        .chunks
        .iter()
        .map(|c| {
            let n = c.counts.unwrap_or_default();
            let ran = match (c.started_at, c.finished_at) {
                (Some(a), Some(b)) => fmt_duration_ms(ms(b) - ms(a)),
                _ => "-".into(),
            };
            vec![
                c.id.to_string(),
                c.route.clone(),
                c.job_id.clone().unwrap_or_else(|| "-".into()),
                c.status.to_string(),
                c.row_count.to_string(),
                n.imported.to_string(),
                n.skipped.to_string(),
                n.failed.to_string(),
                opt(c.created_at),
                opt(d.uploaded_at.get(&c.id).copied()),
                opt(c.started_at),
                opt(c.finished_at),
                ran,
            ]
        })
        .collect();
    body.push(Html::table(
        &[
            "chunk", "route", "job", "status", "rows", "imported", "skipped", "failed", "created",
            "uploaded", "started", "ended", "ran",
        ],
        &rows,
    ));
    Section {
        id: "import-jobs",
        title: "Import jobs".into(),
        body,
    }
}

/// Bucket widths the throughput chart may use, in seconds.
const BUCKETS: [i64; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/// The smallest bucket width giving at most `max_columns` columns over `span_seconds`.
pub fn bucket_seconds(span_seconds: i64, max_columns: i64) -> i64 {
    BUCKETS
        .iter()
        .copied()
        .find(|b| (span_seconds + b - 1) / b <= max_columns)
        .unwrap_or(3600 * ((span_seconds / 3600) / max_columns + 1))
}

/// Per-second stats summed into buckets of `width` seconds: (bucket start, calls, throttles).
pub fn bucketed(seconds: &[SecondStats], width: i64) -> Vec<(i64, u64, u64)> {
    let mut out: Vec<(i64, u64, u64)> = Vec::new();
    for s in seconds {
        let b = s.second - s.second.rem_euclid(width);
        match out.last_mut() {
            Some(last) if last.0 == b => {
                last.1 += s.calls;
                last.2 += s.throttles;
            }
            _ => out.push((b, s.calls, s.throttles)),
        }
    }
    out
}

fn admin_create(d: &ReportData) -> Section {
    let mut body = Html::default();
    let secs = &d.admin_seconds;
    let (Some(first), Some(last)) = (secs.first(), secs.last()) else {
        body.push(Html::paragraph(
            "No AdminCreateUser call is recorded for this run (none was made, or the run was \
             written by a version of cognito-migrate that did not record them).",
        ));
        return Section {
            id: "admin-create",
            title: "AdminCreateUser throughput".into(),
            body,
        };
    };
    let span = last.second - first.second + 1;
    let width = bucket_seconds(span, 150);
    let buckets = bucketed(secs, width);
    let values: Vec<(i64, f64)> = buckets
        .iter()
        .map(|b| (b.0 * 1000, b.1 as f64 / width as f64))
        .collect();
    let throttles: Vec<(i64, u64)> = buckets
        .iter()
        .filter(|b| b.2 > 0)
        .map(|b| (b.0 * 1000, b.2))
        .collect();
    let title = format!(
        "AdminCreateUser calls per second (UTC, {width} s columns); red marks: throttled calls"
    );
    body.push(Html(figure(
        &title,
        &svg::rate_columns(&title, "calls/s", BAR, width * 1000, &values, &throttles),
    )));
    let calls: u64 = secs.iter().map(|s| s.calls).sum();
    let throttled: u64 = secs.iter().map(|s| s.throttles).sum();
    let settled: u64 = secs.iter().map(|s| s.settled).sum();
    let peak = secs.iter().map(|s| s.calls).max().unwrap_or(0);
    let active = secs.iter().filter(|s| s.calls > 0).count() as u64;
    body.push(Html::pairs(&[
        ("calls", calls.to_string()),
        ("throttled calls", throttled.to_string()),
        ("users settled by the writer", settled.to_string()),
        ("busiest second (calls)", peak.to_string()),
        (
            "average over seconds with calls",
            format!("{:.1} calls/s", calls as f64 / active.max(1) as f64),
        ),
        (
            "first and last call",
            format!(
                "{} – {}",
                fmt_utc(first.second * 1000),
                fmt_utc(last.second * 1000)
            ),
        ),
    ]));
    Section {
        id: "admin-create",
        title: "AdminCreateUser throughput".into(),
        body,
    }
}

/// The change set columns drawn for each sync run.
const SYNC_SERIES: [Series; 8] = [
    Series {
        name: "created",
        colour: "#4e79a7",
    },
    Series {
        name: "updated",
        colour: "#76b7b2",
    },
    Series {
        name: "disabled",
        colour: "#9c755f",
    },
    Series {
        name: "enabled",
        colour: "#59a14f",
    },
    Series {
        name: "deleted",
        colour: "#e15759",
    },
    Series {
        name: "group_adds",
        colour: "#b07aa1",
    },
    Series {
        name: "group_removes",
        colour: "#ff9da7",
    },
    Series {
        name: "failed",
        colour: "#f28e2b",
    },
];

/// The sync runs' section, when a `sync` ran on the state: schema V7_SYNC creates the
/// `sync_runs` table in every state, so an empty table is a state no sync wrote.
fn sync_section(d: &ReportData) -> Option<Section> {
    let runs = d.sync_runs.as_ref().filter(|r| !r.is_empty())?;
    let mut body = Html::default();
    {
        let label = |r: &SyncRun| match r.started_at {
            Some(t) => time::fmt_short_date(t),
            None => format!("sync {}", r.id),
        };
        let get = |r: &SyncRun, name: &str| {
            r.counts
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .unwrap_or(0)
        };
        let cols: Vec<(String, Vec<u64>)> = runs
            .iter()
            .map(|r| {
                (
                    label(r),
                    SYNC_SERIES.iter().map(|s| get(r, s.name)).collect(),
                )
            })
            .collect();
        let title = "Change set of each sync run (UTC start)";
        body.push(Html(figure(
            title,
            &svg::stacked_columns(title, &SYNC_SERIES, &cols),
        )));
        let mut headers = vec!["sync", "started", "ended", "kind", "outcome"];
        headers.extend(crate::checkpoint::SYNC_COUNTS);
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.id.to_string(),
                    r.started_at.map(fmt_utc).unwrap_or_else(|| "-".into()),
                    r.finished_at.map(fmt_utc).unwrap_or_else(|| "-".into()),
                    format!(
                        "{}{}",
                        if r.full { "full" } else { "incremental" },
                        if r.plan { ", plan only" } else { "" }
                    ),
                    r.outcome.clone(),
                ];
                row.extend(r.counts.iter().map(|(_, v)| v.to_string()));
                row
            })
            .collect();
        body.push(Html::table(&headers, &rows));
    }
    Some(Section {
        id: "sync",
        title: "Sync runs".into(),
        body,
    })
}

#[cfg(test)]
mod tests;
