//! The report's charts: inline SVG drawn here (no script, no library), with linear and time
//! scales whose ticks fall on round values. Every label goes through [`escape`].

use std::fmt::Write;

use super::escape::{escape, shorten};
use super::time::{fmt_clock, fmt_short_date};

/// Chart width in SVG units (the SVG scales to the page width).
pub const WIDTH: f64 = 760.0;
/// Room for row labels left of horizontal bars and timelines.
const LABEL_W: f64 = 190.0;
const ROW_H: f64 = 22.0;
const AXIS_H: f64 = 26.0;
const PAD: f64 = 10.0;

/// A linear scale from `[0, max]` (rounded up to a nice value) onto `[0, length]` pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// The top of the domain: a multiple of `step`, at least the data's maximum.
    pub max: f64,
    /// Distance between ticks: 1, 2 or 5 times a power of ten.
    pub step: f64,
    pub length: f64,
}

impl Linear {
    /// A scale for values up to `data_max` with about `ticks` intervals. Counts get integer
    /// steps (at least 1); an empty or zero domain becomes `[0, 1]`.
    pub fn new(data_max: f64, ticks: usize, length: f64, integer: bool) -> Linear {
        let data_max = if data_max.is_finite() && data_max > 0.0 {
            data_max
        } else {
            0.0
        };
        let ticks = ticks.max(1) as f64;
        let mut step = nice_step(if data_max > 0.0 {
            data_max / ticks
        } else {
            1.0
        });
        if integer && step < 1.0 {
            step = 1.0;
        }
        let max = ((data_max / step).ceil() * step).max(step);
        Linear { max, step, length }
    }

    /// The pixel position of `v` (clamped to the range).
    pub fn at(&self, v: f64) -> f64 {
        (v / self.max).clamp(0.0, 1.0) * self.length
    }

    /// The tick values, 0 to `max` inclusive.
    pub fn ticks(&self) -> Vec<f64> {
        let n = (self.max / self.step).round() as usize;
        (0..=n).map(|i| i as f64 * self.step).collect()
    }
}

/// 1, 2 or 5 times a power of ten, the smallest of them at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        // A little tolerance against floating-point noise (e.g. 0.30000000000000004).
        if m * mag >= raw * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// A time scale from `[start, end]` (Unix milliseconds) onto `[0, length]` pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Time {
    pub start: i64,
    pub end: i64,
    pub length: f64,
}

/// Tick intervals a time axis may use, in seconds.
const TIME_STEPS: [i64; 20] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800,
];

impl Time {
    /// A scale over `[start, end]`; an empty span becomes one second.
    pub fn new(start: i64, end: i64, length: f64) -> Time {
        let end = end.max(start + 1000);
        Time { start, end, length }
    }

    pub fn at(&self, ms: i64) -> f64 {
        let f = (ms - self.start) as f64 / (self.end - self.start) as f64;
        f.clamp(0.0, 1.0) * self.length
    }

    /// The tick interval in seconds: the smallest of [`TIME_STEPS`] giving at most `max_ticks`
    /// intervals (whole weeks beyond).
    pub fn step_seconds(&self, max_ticks: usize) -> i64 {
        let span = ((self.end - self.start) as f64 / 1000.0).ceil() as i64;
        let max_ticks = max_ticks.max(1) as i64;
        TIME_STEPS
            .iter()
            .copied()
            .find(|s| span / s <= max_ticks)
            .unwrap_or_else(|| 604800 * (span / 604800 / max_ticks + 1))
    }

    /// Tick times (Unix ms) on multiples of the step (in UTC) within the span.
    pub fn ticks(&self, max_ticks: usize) -> Vec<i64> {
        let step = self.step_seconds(max_ticks) * 1000;
        let first = self.start.div_euclid(step) * step
            + if self.start.rem_euclid(step) == 0 {
                0
            } else {
                step
            };
        let mut out = Vec::new();
        let mut t = first;
        while t <= self.end {
            out.push(t);
            t += step;
        }
        out
    }

    /// A tick's label: the clock time, with the date when the span is over a day.
    pub fn label(&self, ms: i64) -> String {
        if self.end - self.start > 86_400_000 {
            fmt_short_date(ms)
        } else {
            fmt_clock(ms)
        }
    }
}

/// One series of a chart: its name and colour.
#[derive(Clone, Copy, Debug)]
pub struct Series {
    pub name: &'static str,
    pub colour: &'static str,
}

fn open_svg(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{}">"#,
        escape(title)
    );
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}">{}</text>"#,
        escape(s)
    );
}

/// Horizontal axis with value ticks along the bottom of a plot from `x0`.
fn value_axis(out: &mut String, scale: &Linear, x0: f64, top: f64, bottom: f64) {
    for v in scale.ticks() {
        let x = x0 + scale.at(v);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" class="grid"/>"#
        );
        text(out, x, bottom + 14.0, "middle", "tick", &fmt_num(v));
    }
}

fn time_axis(out: &mut String, scale: &Time, x0: f64, top: f64, bottom: f64) {
    for t in scale.ticks(8) {
        let x = x0 + scale.at(t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" class="grid"/>"#
        );
        text(out, x, bottom + 14.0, "middle", "tick", &scale.label(t));
    }
}

/// A vertical value axis: a grid line across the plot (from `left`, `plot_w` wide) and a label
/// left of it at each tick, the values rising from `bottom`.
fn vertical_value_axis(out: &mut String, y: &Linear, left: f64, plot_w: f64, bottom: f64) {
    for v in y.ticks() {
        let py = bottom - y.at(v);
        let _ = write!(
            out,
            r#"<line x1="{left:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" class="grid"/>"#,
            left + plot_w
        );
        text(out, left - 4.0, py + 4.0, "end", "tick", &fmt_num(v));
    }
}

/// A number as a tick label: integers plainly, else one decimal.
pub fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

/// A legend from `x0`, wrapped onto as many rows as the width needs: (markup, height used).
fn legend(series: &[Series], x0: f64) -> (String, f64) {
    let mut out = String::new();
    let (mut x, mut y) = (x0, 14.0);
    for s in series {
        let w = 24.0 + 7.0 * s.name.chars().count() as f64;
        if x > x0 && x + w > WIDTH {
            x = x0;
            y += 16.0;
        }
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/>"#,
            y - 9.0,
            s.colour
        );
        text(&mut out, x + 14.0, y, "start", "legend", s.name);
        x += w;
    }
    (out, y + 10.0)
}

/// The largest total of a stack: the value axis' maximum.
fn largest_stack(stacks: &[(String, Vec<u64>)]) -> u64 {
    stacks
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
}

/// The segments of one stack, in series order: each series with where its value starts and ends
/// along the stack. A zero value has no segment.
fn segments<'a>(
    series: &'a [Series],
    values: &'a [u64],
) -> impl Iterator<Item = (&'a Series, u64, u64)> + 'a {
    series
        .iter()
        .zip(values)
        .scan(0u64, |acc, (s, v)| {
            let from = *acc;
            *acc += v;
            Some((s, from, *acc))
        })
        .filter(|(_, from, to)| to > from)
}

/// One segment of a stack at `(x, y, width, height)`, its tooltip the stack's label, the value
/// and the series.
fn segment_rect(
    out: &mut String,
    (x, y, w, h): (f64, f64, f64, f64),
    s: &Series,
    label: &str,
    v: u64,
) {
    let _ = write!(
        out,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{}: {v} {}</title></rect>"#,
        s.colour,
        escape(label),
        escape(s.name)
    );
}

/// Horizontal stacked bars: one row per label, one segment per series (values in series order),
/// with a legend and a value axis. Each segment has a tooltip with its exact count.
pub fn stacked_bars(title: &str, series: &[Series], rows: &[(String, Vec<u64>)]) -> String {
    let max = largest_stack(rows);
    let plot_w = WIDTH - LABEL_W - PAD * 3.0;
    let scale = Linear::new(max as f64, 5, plot_w, true);
    let (key, top) = legend(series, LABEL_W);
    let bottom = top + ROW_H * rows.len().max(1) as f64;
    let height = bottom + AXIS_H;
    let mut out = String::new();
    open_svg(&mut out, height, title);
    out.push_str(&key);
    value_axis(&mut out, &scale, LABEL_W, top, bottom);
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = top + ROW_H * i as f64;
        text(
            &mut out,
            LABEL_W - 6.0,
            y + ROW_H * 0.68,
            "end",
            "label",
            &shorten(label, 28),
        );
        for (s, from, to) in segments(series, values) {
            let (x1, x2) = (scale.at(from as f64), scale.at(to as f64));
            let rect = (LABEL_W + x1, y + 3.0, (x2 - x1).max(0.5), ROW_H - 6.0);
            segment_rect(&mut out, rect, s, label, to - from);
        }
        let acc: u64 = values.iter().sum();
        text(
            &mut out,
            LABEL_W + scale.at(acc as f64) + 4.0,
            y + ROW_H * 0.68,
            "start",
            "value",
            &acc.to_string(),
        );
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars, one per label.
pub fn bars(title: &str, colour: &'static str, rows: &[(String, u64)]) -> String {
    let series = [Series {
        name: "users",
        colour,
    }];
    let rows: Vec<(String, Vec<u64>)> = rows.iter().map(|(l, v)| (l.clone(), vec![*v])).collect();
    stacked_bars(title, &series, &rows)
}

/// One row of a timeline: a label and the segments `(from, to, series index)` in Unix ms, plus
/// point marks `(at, series index)` (for an event with no duration, e.g. a job that never ran).
pub struct TimelineRow {
    pub label: String,
    pub segments: Vec<(i64, i64, usize)>,
    pub marks: Vec<(i64, usize)>,
}

/// Rows on a common time axis.
pub fn timeline(title: &str, series: &[Series], rows: &[TimelineRow]) -> String {
    let times = rows.iter().flat_map(|r| {
        r.segments
            .iter()
            .flat_map(|s| [s.0, s.1])
            .chain(r.marks.iter().map(|m| m.0))
    });
    let (start, end) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let (start, end) = if start > end { (0, 1000) } else { (start, end) };
    let plot_w = WIDTH - LABEL_W - PAD * 3.0;
    let scale = Time::new(start, end, plot_w);
    let (key, top) = legend(series, LABEL_W);
    let bottom = top + ROW_H * rows.len().max(1) as f64;
    let mut out = String::new();
    open_svg(&mut out, bottom + AXIS_H, title);
    out.push_str(&key);
    time_axis(&mut out, &scale, LABEL_W, top, bottom);
    for (i, r) in rows.iter().enumerate() {
        let y = top + ROW_H * i as f64;
        text(
            &mut out,
            LABEL_W - 6.0,
            y + ROW_H * 0.68,
            "end",
            "label",
            &shorten(&r.label, 28),
        );
        for &(a, b, s) in &r.segments {
            let Some(s) = series.get(s) else { continue };
            let (x1, x2) = (scale.at(a), scale.at(b));
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {}–{} ({})</title></rect>"#,
                LABEL_W + x1,
                y + 3.0,
                (x2 - x1).max(1.0),
                ROW_H - 6.0,
                s.colour,
                escape(&r.label),
                escape(s.name),
                fmt_clock(a),
                fmt_clock(b),
                super::time::fmt_duration_ms(b - a)
            );
        }
        for &(at, s) in &r.marks {
            let Some(s) = series.get(s) else { continue };
            let x = LABEL_W + scale.at(at);
            let _ = write!(
                out,
                r#"<path d="M{:.1} {:.1} l5 8 l-10 0 z" fill="{}"><title>{}: {} at {}</title></path>"#,
                x,
                y + 6.0,
                s.colour,
                escape(&r.label),
                escape(s.name),
                fmt_clock(at)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A rate over time: one column per bucket `(start ms, value)` of `bucket_ms`, and red marks
/// above buckets with throttled calls `(start ms, count)`.
pub fn rate_columns(
    title: &str,
    unit: &str,
    colour: &'static str,
    bucket_ms: i64,
    values: &[(i64, f64)],
    throttles: &[(i64, u64)],
) -> String {
    let start = values.first().map(|v| v.0).unwrap_or(0);
    let end = values.last().map(|v| v.0 + bucket_ms).unwrap_or(1000);
    let left = 56.0;
    // Room on the right for the last time label, centred on the axis's end.
    let plot_w = WIDTH - left - 34.0;
    let plot_h = 180.0;
    let (key, legend_h) = legend(
        &[
            Series {
                name: "AdminCreateUser calls/s",
                colour,
            },
            Series {
                name: "throttled (TooManyRequestsException)",
                colour: THROTTLE,
            },
        ],
        left,
    );
    let top = legend_h + 22.0;
    let bottom = top + plot_h;
    let max = values.iter().map(|v| v.1).fold(0.0, f64::max);
    let y = Linear::new(max, 4, plot_h, false);
    let x = Time::new(start, end, plot_w);
    let mut out = String::new();
    open_svg(&mut out, bottom + AXIS_H, title);
    out.push_str(&key);
    vertical_value_axis(&mut out, &y, left, plot_w, bottom);
    text(&mut out, 4.0, top - 10.0, "start", "tick", unit);
    time_axis(&mut out, &x, left, top, bottom);
    for &(t, v) in values {
        let (x1, x2) = (x.at(t), x.at(t + bucket_ms));
        let h = y.at(v);
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {} {}</title></rect>"#,
            left + x1,
            bottom - h,
            (x2 - x1 - 0.5).max(0.5),
            h,
            fmt_clock(t),
            fmt_num(v),
            escape(unit)
        );
    }
    for &(t, n) in throttles {
        let cx = left + x.at(t) + (x.at(t + bucket_ms) - x.at(t)) / 2.0;
        let _ = write!(
            out,
            r#"<path d="M{cx:.1} {:.1} l5 -9 l-10 0 z" fill="{THROTTLE}" class="throttle"><title>{}: {n} throttled</title></path>"#,
            top + 10.0,
            fmt_clock(t)
        );
    }
    out.push_str("</svg>");
    out
}

/// Colour of throttle marks.
pub const THROTTLE: &str = "#d62728";

/// Stacked columns over a sequence of labelled events (e.g. sync runs), one segment per series.
pub fn stacked_columns(title: &str, series: &[Series], cols: &[(String, Vec<u64>)]) -> String {
    let left = 56.0;
    let plot_w = WIDTH - left - PAD * 2.0;
    let plot_h = 180.0;
    let (key, legend_h) = legend(series, left);
    let top = legend_h + 14.0;
    let bottom = top + plot_h;
    let max = largest_stack(cols);
    let y = Linear::new(max as f64, 4, plot_h, true);
    let mut out = String::new();
    open_svg(&mut out, bottom + AXIS_H + 4.0, title);
    out.push_str(&key);
    vertical_value_axis(&mut out, &y, left, plot_w, bottom);
    let slot = plot_w / cols.len().max(1) as f64;
    // Every n-th label, so that labels (about 6 units a character) do not overlap.
    let widest = cols
        .iter()
        .map(|(l, _)| l.chars().count().min(16))
        .max()
        .unwrap_or(0) as f64;
    let label_every = ((widest * 6.0 + 8.0) / slot).ceil().max(1.0) as usize;
    for (i, (label, values)) in cols.iter().enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.15;
        let w = (slot * 0.7).max(1.0);
        for (s, from, to) in segments(series, values) {
            let (y1, y2) = (y.at(from as f64), y.at(to as f64));
            segment_rect(
                &mut out,
                (x0, bottom - y2, w, (y2 - y1).max(0.5)),
                s,
                label,
                to - from,
            );
        }
        if i.is_multiple_of(label_every) {
            text(
                &mut out,
                x0 + w / 2.0,
                bottom + 14.0,
                "middle",
                "tick",
                &shorten(label, 16),
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        for (raw, want) in [
            (1.0, 1.0),
            (1.2, 2.0),
            (2.0, 2.0),
            (2.1, 5.0),
            (7.0, 10.0),
            (12.0, 20.0),
            (0.3, 0.5),
            (0.30000000000000004, 0.5),
            (45.0, 50.0),
            (51.0, 100.0),
            (200_000.0, 200_000.0),
            (0.0, 1.0),
            (f64::NAN, 1.0),
        ] {
            assert_eq!(nice_step(raw), want, "{raw}");
        }
    }

    #[test]
    fn a_linear_scale_covers_the_data_with_round_ticks() {
        let s = Linear::new(937.0, 5, 500.0, true);
        assert_eq!((s.max, s.step), (1000.0, 200.0));
        assert_eq!(s.ticks(), vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(s.at(0.0), 0.0);
        assert_eq!(s.at(500.0), 250.0);
        assert_eq!(s.at(1000.0), 500.0);
        assert_eq!(s.at(2000.0), 500.0, "clamped");
        assert!(s.at(937.0) < 500.0 && s.at(937.0) > 460.0);
        // Counts never get fractional ticks; an empty chart still has an axis.
        let s = Linear::new(3.0, 5, 100.0, true);
        assert_eq!((s.max, s.step), (3.0, 1.0));
        let s = Linear::new(0.0, 5, 100.0, true);
        assert_eq!((s.max, s.step, s.ticks().len()), (1.0, 1.0, 2));
        let s = Linear::new(0.7, 4, 100.0, false);
        assert_eq!((s.max, s.step), (0.8, 0.2));
        // The top is always at least the data maximum.
        for m in [1u64, 7, 49, 50, 51, 99, 101, 12_345, 999_999] {
            let s = Linear::new(m as f64, 5, 100.0, true);
            assert!(
                s.max >= m as f64 && s.max < m as f64 * 2.5 + 1.0,
                "{m}: {s:?}"
            );
            assert!(s.ticks().len() <= 11, "{m}: {s:?}");
        }
    }

    #[test]
    fn a_time_scale_ticks_on_round_utc_times() {
        // 2026-12-07 10:00:07 to 10:03:50 UTC.
        let t0 = 1_796_637_607_000;
        let s = Time::new(t0, t0 + 223_000, 700.0);
        assert_eq!(s.step_seconds(8), 30);
        let ticks = s.ticks(8);
        assert_eq!(
            ticks.first().copied(),
            Some(t0 + 23_000),
            "the first :30 mark"
        );
        assert!(ticks.iter().all(|t| t % 30_000 == 0));
        assert!(ticks.len() <= 8 && ticks.len() >= 6, "{ticks:?}");
        assert_eq!(s.at(t0), 0.0);
        assert_eq!(s.at(t0 + 223_000), 700.0);
        assert_eq!(s.label(ticks[0]), "10:00:30");
        // A span of days is labelled with dates; an empty one still has a width.
        let s = Time::new(t0, t0 + 3 * 86_400_000, 700.0);
        assert_eq!(s.step_seconds(8), 43200);
        assert!(s.label(s.ticks(8)[0]).starts_with("12-07"));
        let s = Time::new(t0, t0, 700.0);
        assert_eq!(s.end - s.start, 1000);
    }

    #[test]
    fn a_legend_wraps_within_the_width() {
        let names = [
            "written, waiting for a job",
            "created, uploading",
            "uploaded, waiting to start",
            "running",
            "ended",
        ];
        let series: Vec<Series> = names
            .iter()
            .map(|n| Series {
                name: n,
                colour: "#000",
            })
            .collect();
        let (svg, height) = legend(&series, LABEL_W);
        let xs: Vec<f64> = svg
            .match_indices("<rect x=\"")
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(xs.len(), names.len());
        for (x, n) in xs.iter().zip(names) {
            assert!(x + 24.0 + 7.0 * n.len() as f64 <= WIDTH + 0.1, "{n} at {x}");
        }
        assert!(height > 30.0, "two rows: {height}");
        let (_, one_row) = legend(&series[..1], LABEL_W);
        assert_eq!(one_row, 24.0);
    }

    #[test]
    fn bars_are_proportional_and_labels_are_escaped() {
        let svg = bars(
            "t",
            "#123456",
            &[("<b>x</b>".into(), 50), ("y".into(), 100)],
        );
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        let widths: Vec<f64> = svg
            .match_indices(r##"fill="#123456"><title>"##)
            .map(|(i, _)| {
                let head = &svg[..i];
                let w = head.rfind("width=\"").unwrap() + 7;
                head[w..].split('"').next().unwrap().parse().unwrap()
            })
            .collect();
        assert_eq!(widths.len(), 2);
        assert!((widths[1] / widths[0] - 2.0).abs() < 0.01, "{widths:?}");
    }
}
