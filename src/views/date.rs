//! UTC calendar dates from Unix milliseconds, for arrivals per day and the id map's `created`
//! column. Days are UTC days (Cognito's dates are instants; a table per local day would depend on
//! where it is printed). Written here because it is twenty lines and the crate has no date library.

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day number (days since 1970-01-01) of an instant in Unix milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// (year, month, day) of a day number (Howard Hinnant's `civil_from_days`, proleptic Gregorian):
/// the crate's one calendar computation (also the HTML report's and the `to_date` transform's).
pub fn civil_from_days(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn ymd(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of an instant in Unix milliseconds.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        ymd(day_of(ms)),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
