//! Value transforms users need when moving between systems: trimming, case, booleans from the usual
//! spellings, phone numbers to E.164, dates to the formats Cognito wants, name splitting and joining,
//! constants. Hand-written (no regex) because they run once per field of millions of records.

use std::borrow::Cow;

use super::Reason;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Copy, trimming surrounding white space.
    Trim,
    Lowercase,
    /// Trim and lower-case an email address (Cognito compares emails case-insensitively).
    LowercaseEmail,
    /// `true`/`false` from true/false, yes/no, y/n, 1/0, on/off, t/f (any case).
    Bool,
    /// The negation of `Bool` (e.g. `blocked` → enabled).
    NotBool,
    /// A phone number in E.164 (`+14155550123`), using the mapping's `default_region` for
    /// numbers written without a country code.
    E164,
    /// Epoch seconds from epoch seconds, epoch milliseconds or an ISO 8601 / RFC 3339 timestamp
    /// (Cognito's `updated_at`).
    EpochSeconds,
    /// `YYYY-MM-DD` from an ISO date or timestamp (Cognito's `birthdate`, OpenID format).
    Date,
    /// The first word of a full name.
    SplitNameFirst,
    /// Everything after the first word of a full name.
    SplitNameLast,
    /// The non-empty sources joined by a separator.
    Join(String),
    /// A constant value.
    Const(String),
}

impl Transform {
    pub fn from_name(
        name: &str,
        value: Option<&str>,
        separator: Option<&str>,
    ) -> Result<Transform, String> {
        Ok(match name {
            "trim" => Transform::Trim,
            "lowercase" => Transform::Lowercase,
            "lowercase_email" => Transform::LowercaseEmail,
            "bool" => Transform::Bool,
            "not" | "not_bool" => Transform::NotBool,
            "e164" => Transform::E164,
            "epoch_seconds" => Transform::EpochSeconds,
            "date" => Transform::Date,
            "split_name_first" => Transform::SplitNameFirst,
            "split_name_last" => Transform::SplitNameLast,
            "join" => Transform::Join(separator.unwrap_or(" ").to_string()),
            "const" => Transform::Const(
                value
                    .ok_or_else(|| "`const` needs `value`".to_string())?
                    .to_string(),
            ),
            other => {
                return Err(format!(
                "unknown transform `{other}` (known: trim, lowercase, lowercase_email, bool, not, \
                     e164, epoch_seconds, date, split_name_first, split_name_last, join, const)"
            ))
            }
        })
    }

    /// Applies the transform to the source values (absent fields are `None`). `Ok(None)` means the
    /// target stays empty.
    /// The result borrows from the source values (or the constant) where the transform leaves the
    /// text as it is, so most values cost no allocation.
    #[inline]
    pub fn apply<'a>(
        &'a self,
        values: &[Option<&'a str>],
        default_region: Option<&str>,
    ) -> Result<Option<Cow<'a, str>>, (Reason, String)> {
        let first = values
            .first()
            .copied()
            .flatten()
            .map(trim)
            .filter(|v| !v.is_empty());
        match self {
            Transform::Const(v) => Ok(Some(Cow::Borrowed(v.as_str()))),
            Transform::Join(sep) => {
                let parts: Vec<&str> = values
                    .iter()
                    .flatten()
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .collect();
                Ok((!parts.is_empty()).then(|| Cow::Owned(parts.join(sep))))
            }
            _ => {
                let Some(v) = first else { return Ok(None) };
                match self {
                    Transform::Trim => Ok(Some(Cow::Borrowed(v))),
                    Transform::Lowercase | Transform::LowercaseEmail => Ok(Some(lowercase(v))),
                    Transform::Bool => parse_bool(v)
                        .map(|b| Some(Cow::Borrowed(bool_str(b))))
                        .ok_or_else(|| (Reason::InvalidBoolean, format!("{v:?} is not a boolean"))),
                    Transform::NotBool => parse_bool(v)
                        .map(|b| Some(Cow::Borrowed(bool_str(!b))))
                        .ok_or_else(|| (Reason::InvalidBoolean, format!("{v:?} is not a boolean"))),
                    // Most exports already hold E.164: kept as they are, without a copy.
                    Transform::E164 if is_e164(v) => Ok(Some(Cow::Borrowed(v))),
                    Transform::E164 => to_e164(v, default_region)
                        .map(|p| Some(Cow::Owned(p)))
                        .ok_or_else(|| {
                            (
                                Reason::InvalidPhone,
                                "not a phone number that can be written in E.164".to_string(),
                            )
                        }),
                    Transform::EpochSeconds => to_epoch_seconds(v)
                        .map(|s| Some(Cow::Owned(s.to_string())))
                        .ok_or_else(|| (Reason::InvalidDate, format!("{v:?} is not a timestamp"))),
                    Transform::Date => to_date(v)
                        .map(|d| Some(Cow::Owned(d)))
                        .ok_or_else(|| (Reason::InvalidDate, format!("{v:?} is not a date"))),
                    Transform::SplitNameFirst => Ok(v.split_whitespace().next().map(Cow::Borrowed)),
                    Transform::SplitNameLast => {
                        let rest: Vec<&str> = v.split_whitespace().skip(1).collect();
                        Ok((!rest.is_empty()).then(|| Cow::Owned(rest.join(" "))))
                    }
                    Transform::Const(_) | Transform::Join(_) => unreachable!("handled above"),
                }
            }
        }
    }
}

/// `v.trim()` (Unicode white space), with a fast answer for the usual value that starts and ends
/// with a visible ASCII character.
#[inline]
pub fn trim(v: &str) -> &str {
    match v.as_bytes() {
        [first, .., last] | [first @ last] if visible_ascii(*first) && visible_ascii(*last) => v,
        _ => v.trim(),
    }
}

/// An ASCII byte that is neither white space nor a control character (`!` to `~`).
#[inline]
fn visible_ascii(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

/// The first control character in `v` and its 1-based character position: C0 (U+0000 to U+001F,
/// TAB, line feed and carriage return included), DEL (U+007F) or C1 (U+0080 to U+009F), i.e.
/// Unicode's `Cc` category ([`char::is_control`]). None belongs in a Cognito attribute: NUL and
/// the other C0 characters end up in other systems' C strings and logs, a line break cannot be
/// carried in Cognito's import CSV, and a leading TAB or CR is a spreadsheet formula trick.
///
/// Screened without branches first (C1 characters start with the byte 0xC2 in UTF-8), so a clean
/// value costs one vectorised pass.
#[inline]
pub fn control_character(v: &str) -> Option<(usize, char)> {
    let mut suspect = false;
    for &b in v.as_bytes() {
        suspect |= (b < 0x20) | (b == 0x7f) | (b == 0xc2);
    }
    if !suspect {
        return None;
    }
    v.chars()
        .enumerate()
        .find(|(_, c)| c.is_control())
        .map(|(i, c)| (i + 1, c))
}

/// `v.to_lowercase()`, without allocating when `v` is ASCII with no upper-case letter (the usual
/// case: ids, and emails already in lower case). For ASCII, `to_lowercase` is
/// `to_ascii_lowercase`.
pub fn lowercase(v: &str) -> Cow<'_, str> {
    // One pass for both questions, without early exits, so that it is vectorised.
    let (mut upper, mut high) = (false, 0u8);
    for &b in v.as_bytes() {
        upper |= b.is_ascii_uppercase();
        high |= b;
    }
    if high >= 0x80 {
        Cow::Owned(v.to_lowercase())
    } else if upper {
        Cow::Owned(v.to_ascii_lowercase())
    } else {
        Cow::Borrowed(v)
    }
}

/// `"true"` / `"false"` (what `bool::to_string` gives, without the formatting machinery).
pub fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    // JSON exports spell them exactly so.
    match v {
        "true" => return Some(true),
        "false" => return Some(false),
        _ => {}
    }
    // Compared ignoring ASCII case rather than lower-cased into a new string: this runs for
    // every boolean of every record.
    let v = v.trim();
    let is = |words: [&str; 6]| words.iter().any(|w| v.eq_ignore_ascii_case(w));
    if is(["true", "t", "yes", "y", "1", "on"]) {
        Some(true)
    } else if is(["false", "f", "no", "n", "0", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// Country calling codes for the regions most exports use; `default_region` may also be given as a
/// calling code directly (`"+44"` or `"44"`).
const CALLING_CODES: &[(&str, &str)] = &[
    ("US", "1"),
    ("CA", "1"),
    ("GB", "44"),
    ("UK", "44"),
    ("IE", "353"),
    ("DE", "49"),
    ("FR", "33"),
    ("ES", "34"),
    ("IT", "39"),
    ("NL", "31"),
    ("BE", "32"),
    ("CH", "41"),
    ("AT", "43"),
    ("SE", "46"),
    ("NO", "47"),
    ("DK", "45"),
    ("FI", "358"),
    ("PL", "48"),
    ("PT", "351"),
    ("AU", "61"),
    ("NZ", "64"),
    ("JP", "81"),
    ("KR", "82"),
    ("CN", "86"),
    ("IN", "91"),
    ("SG", "65"),
    ("BR", "55"),
    ("MX", "52"),
    ("AR", "54"),
    ("ZA", "27"),
    ("IL", "972"),
];

fn calling_code(region: &str) -> Option<String> {
    let r = region.trim().trim_start_matches('+');
    if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) {
        return Some(r.to_string());
    }
    CALLING_CODES
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(r))
        .map(|(_, cc)| cc.to_string())
}

/// Whether `v` is a valid E.164 number as Cognito wants it: `+`, a non-zero digit, at most 15 digits
/// (and at least 7: no real subscriber number with its country code is shorter).
pub fn is_e164(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 8
        && b.len() <= 16
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// Normalises a phone number to E.164: drops spaces, dashes, dots and parentheses; `00` becomes `+`;
/// a national number gets the default region's calling code (its leading trunk `0` dropped, except
/// in NANP regions which have none).
pub fn to_e164(v: &str, default_region: Option<&str>) -> Option<String> {
    let v = v.trim();
    let (plus, rest) = match v.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let mut digits = String::with_capacity(rest.len() + 4);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
            _ => return None,
        }
    }
    let number = if plus {
        format!("+{digits}")
    } else if let Some(intl) = digits.strip_prefix("00") {
        format!("+{intl}")
    } else {
        let cc = calling_code(default_region?)?;
        let national = if cc == "1" {
            digits.strip_prefix('1').unwrap_or(&digits)
        } else {
            digits.strip_prefix('0').unwrap_or(&digits)
        };
        format!("+{cc}{national}")
    };
    is_e164(&number).then_some(number)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD` at the start of `s`.
fn parse_ymd(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = num(&s[0..4])? as i64;
    let m = num(&s[5..7])?;
    let d = num(&s[8..10])?;
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

/// Epoch seconds from epoch seconds (≤ 11 digits), epoch milliseconds (12–13 digits), or an
/// ISO 8601 timestamp (`2023-04-05`, `2023-04-05T10:20:30Z`, `…T10:20:30.123+02:00`, space
/// instead of `T`).
pub fn to_epoch_seconds(v: &str) -> Option<i64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = v.parse().ok()?;
        return Some(if v.len() >= 12 { n / 1000 } else { n });
    }
    let (y, m, d) = parse_ymd(v)?;
    let mut secs = days_from_civil(y, m, d) * 86_400;
    let rest = &v[10..];
    if rest.is_empty() {
        return Some(secs);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    let (h, mi, s) = (num(&rest[0..2])?, num(&rest[3..5])?, num(&rest[6..8])?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    secs += (h * 3600 + mi * 60 + s) as i64;
    let mut tz = &rest[8..];
    if let Some(frac) = tz.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        tz = &frac[n..];
    }
    match tz {
        "" | "Z" | "z" => Some(secs),
        _ => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = tz[1..].replace(':', "");
            if t.len() != 4 {
                return None;
            }
            let off = (num(&t[0..2])? * 3600 + num(&t[2..4])? * 60) as i64;
            Some(secs - sign * off)
        }
    }
}

/// `YYYY-MM-DD` from a date or timestamp, or epoch seconds/milliseconds.
pub fn to_date(v: &str) -> Option<String> {
    let v = v.trim();
    if let Some((y, m, d)) = parse_ymd(v) {
        if v.len() == 10 || to_epoch_seconds(v).is_some() {
            return Some(format!("{y:04}-{m:02}-{d:02}"));
        }
        return None;
    }
    let secs = to_epoch_seconds(v)?;
    Some(crate::views::date::ymd(secs.div_euclid(86_400)))
}

/// Whether `v` looks like an email address Cognito accepts: one `@`, a non-empty local part, a
/// domain with a dot and no empty labels, no white space or control characters.
pub fn is_email(v: &str) -> bool {
    match is_ascii_email(v.as_bytes()) {
        Some(answer) => answer,
        None => is_email_by_the_rules(v),
    }
}

/// [`is_email`]'s rules written out plainly, for any text (the ASCII fast path must agree).
fn is_email_by_the_rules(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

/// [`is_email`] for an ASCII address in two passes (the whole value, then its domain) instead of
/// eight; `None` at the first non-ASCII byte, for the general rules.
#[inline]
fn is_ascii_email(b: &[u8]) -> Option<bool> {
    let mut at = None;
    let mut ats = 0;
    let mut bad = false;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x80 {
            return None;
        }
        // White space and control characters (ASCII's are all <= ' ', and DEL).
        bad |= c <= b' ' || c == 0x7f;
        if c == b'@' {
            ats += 1;
            at = Some(i);
        }
    }
    let Some(at) = at else {
        return Some(false);
    };
    let domain = &b[at + 1..];
    if bad || ats != 1 || at == 0 || at > 64 || domain.len() < 3 {
        return Some(false);
    }
    if domain[0] == b'.' || domain[domain.len() - 1] == b'.' {
        return Some(false);
    }
    let mut dot = false;
    let mut prev = 0u8;
    for &c in domain {
        if !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.') || (c == b'.' && prev == b'.') {
            return Some(false);
        }
        dot |= c == b'.';
        prev = c;
    }
    Some(dot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_matches_the_plain_version() {
        for v in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a",
            "a\u{a0}",
            "é",
            " é ",
            "ab",
            "a b",
            "\ta\n",
            "\u{2003}x\u{2003}",
            "~",
            "!x!",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
        }
    }

    #[test]
    fn control_characters_are_found_with_their_position() {
        for len in 1..20 {
            for at in 0..len {
                for c in [
                    '\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{80}', '\u{9f}', 'a', ' ', 'é',
                    '\u{a0}', '\u{c2}', '\u{2028}',
                ] {
                    let mut s: Vec<char> = vec!['x'; len];
                    s[at] = c;
                    let s: String = s.into_iter().collect();
                    let want = c.is_control().then_some((at + 1, c));
                    assert_eq!(control_character(&s), want, "{s:?}");
                }
            }
        }
        // The 0xC2 screen byte alone (as in `é`-free "Â") is no control character.
        assert_eq!(control_character("Â ok"), None);
        assert_eq!(control_character("Ada\u{0}Lovelace"), Some((4, '\0')));
    }

    #[test]
    fn e164() {
        assert_eq!(to_e164("+1 (415) 555-0123", None).unwrap(), "+14155550123");
        assert_eq!(to_e164("0044 20 7946 0958", None).unwrap(), "+442079460958");
        assert_eq!(
            to_e164("020 7946 0958", Some("GB")).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            to_e164("(415) 555-0123", Some("US")).unwrap(),
            "+14155550123"
        );
        assert_eq!(
            to_e164("1-415-555-0123", Some("us")).unwrap(),
            "+14155550123"
        );
        assert_eq!(to_e164("030 1234567", Some("+49")).unwrap(), "+49301234567");
        assert_eq!(to_e164("415 555 0123", None), None);
        assert_eq!(to_e164("call me", Some("US")), None);
        assert_eq!(to_e164("+0123", None), None);
        assert!(!is_e164("+1234567890123456"));
    }

    #[test]
    fn epoch_and_dates() {
        assert_eq!(to_epoch_seconds("1700000000"), Some(1_700_000_000));
        assert_eq!(to_epoch_seconds("1700000000123"), Some(1_700_000_000));
        assert_eq!(
            to_epoch_seconds("2023-11-14T22:13:20Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            to_epoch_seconds("2023-11-14T22:13:20.555Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            to_epoch_seconds("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(to_epoch_seconds("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(to_epoch_seconds("1970-01-01"), Some(0));
        assert_eq!(to_epoch_seconds("2023-02-30"), None);
        assert_eq!(to_epoch_seconds("yesterday"), None);
        assert_eq!(to_date("1990-07-04T00:00:00Z").unwrap(), "1990-07-04");
        assert_eq!(to_date("1990-07-04").unwrap(), "1990-07-04");
        assert_eq!(to_date("1700000000").unwrap(), "2023-11-14");
        assert_eq!(to_date("2000-02-29").unwrap(), "2000-02-29");
        assert_eq!(to_date("1900-02-29"), None);
    }

    #[test]
    fn booleans_names_joins() {
        for t in ["true", "TRUE", "yes", "Y", "1", "on", "t"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "No", "n", "0", "off", "F"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
        let split_first = Transform::SplitNameFirst;
        let split_last = Transform::SplitNameLast;
        let v = [Some("Ada  King Lovelace")];
        assert_eq!(split_first.apply(&v, None).unwrap().unwrap(), "Ada");
        assert_eq!(
            split_last.apply(&v, None).unwrap().unwrap(),
            "King Lovelace"
        );
        let join = Transform::Join(" ".into());
        assert_eq!(
            join.apply(&[Some(" Ada "), None, Some("Lovelace")], None)
                .unwrap()
                .unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(join.apply(&[None, Some("  ")], None).unwrap(), None);
        assert_eq!(
            Transform::Bool
                .apply(&[Some("perhaps")], None)
                .unwrap_err()
                .0,
            Reason::InvalidBoolean
        );
    }

    #[test]
    fn emails() {
        // The ASCII fast path answers as the rules written out plainly.
        let plain = is_email_by_the_rules;
        let alphabet = b"ab.@-_+ 1Z\t\x7f\x01";
        let mut x: u64 = 42;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (x >> 59) as usize + 1;
            let mut y = x;
            let v: String = (0..len)
                .map(|_| {
                    y = y.wrapping_mul(6364136223846793005).wrapping_add(1);
                    alphabet[(y >> 58) as usize % alphabet.len()] as char
                })
                .collect();
            assert_eq!(is_email(&v), plain(&v), "{v:?}");
        }
        let long_local = format!("{}@x.io", "a".repeat(64));
        assert!(is_email(&long_local) && plain(&long_local));
        let too_long = format!("{}@x.io", "a".repeat(65));
        assert!(!is_email(&too_long) && !plain(&too_long));
        assert!(is_email("ada@example.com"));
        assert!(is_email("a.b+tag@sub.example.co.uk"));
        assert!(!is_email("ada@example"));
        assert!(!is_email("ada example@example.com"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("ada@@example.com"));
        assert!(!is_email("ada@example..com"));
    }
}
