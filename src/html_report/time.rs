//! Times in the report: Unix milliseconds shown in UTC (the report may be read anywhere), without
//! a date-time dependency.

use crate::views::date::civil_from_days;

fn parts(ms: i64) -> ((i64, u32, u32), (i64, i64, i64)) {
    let secs = ms.div_euclid(1000);
    let day = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    (civil_from_days(day), (s / 3600, s / 60 % 60, s % 60))
}

/// `2026-12-07 16:31:23 UTC`.
pub fn fmt_utc(ms: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// `16:31:23` (UTC).
pub fn fmt_clock(ms: i64) -> String {
    let (_, (h, mi, s)) = parts(ms);
    format!("{h:02}:{mi:02}:{s:02}")
}

/// `12-07 16:31` (UTC).
pub fn fmt_short_date(ms: i64) -> String {
    let ((_, mo, d), (h, mi, _)) = parts(ms);
    format!("{mo:02}-{d:02} {h:02}:{mi:02}")
}

/// `1 h 02 min`, `3 min 05 s`, `4.2 s`.
pub fn fmt_duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_instants() {
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(1_796_637_607_000), "2026-12-07 10:00:07 UTC");
        assert_eq!(fmt_utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(fmt_utc(-1000), "1969-12-31 23:59:59 UTC");
        assert_eq!(fmt_clock(1_796_637_607_999), "10:00:07");
        assert_eq!(fmt_short_date(1_796_637_607_000), "12-07 10:00");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration_ms(4_200), "4.2 s");
        assert_eq!(fmt_duration_ms(185_000), "3 min 05 s");
        assert_eq!(fmt_duration_ms(3_720_000), "1 h 02 min");
        assert_eq!(fmt_duration_ms(-5), "0.0 s");
    }
}
