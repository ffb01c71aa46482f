//! A small, strict JSON parser for one record, and the flattening of its fields.
//!
//! Each record (a JSON array element or an NDJSON line) is flattened into
//! [`LegacyUser::fields`](crate::record::LegacyUser::fields) while it is parsed
//! ([`parse_record`]): a scalar goes straight from the record's bytes to its field, with no tree
//! in between. Only the few top-level members a vendor format must interpret (password material,
//! groups, identities…) are "captured" into a borrowed tree ([`Json`]) that points into the bytes
//! wherever a string has no escapes. A dedicated parser rather than `serde_json::Value` because it
//! keeps numbers exactly as written (`1.50`, 20-digit ids) and allocates little, which matters for
//! the throughput target. Nesting is limited, so hostile input cannot overflow the stack.

use std::borrow::Cow;

/// Flattened fields in document order (the last duplicate wins).
pub(crate) type Fields = crate::record::Fields;

/// Deepest nesting of arrays and objects accepted in one record.
const MAX_DEPTH: usize = 128;

/// An object's members in document order (duplicates kept; the last one wins when flattening).
pub(crate) type Obj<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

/// A parsed JSON value borrowing from the record's text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// A number exactly as written.
    Num(&'a str),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    Obj(Obj<'a>),
}

/// Where and why parsing failed; the message never quotes the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Byte offset of the problem within the parsed text.
    pub offset: usize,
    pub message: &'static str,
}

impl<'a> Json<'a> {
    /// The text of a scalar: strings as they are, numbers as written, booleans `true`/`false`.
    /// `None` for null, arrays and objects.
    pub fn scalar_text(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            Json::Num(n) => Some(n),
            Json::Bool(true) => Some("true"),
            Json::Bool(false) => Some("false"),
            _ => None,
        }
    }

    /// Like [`Json::scalar_text`], but by value, reusing an owned string.
    pub fn into_scalar_string(self) -> Option<String> {
        match self {
            Json::Str(s) => Some(s.into_owned()),
            Json::Num(n) => Some(n.to_string()),
            Json::Bool(b) => Some(if b { "true" } else { "false" }.to_string()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Obj(members) => get(members, key),
            _ => None,
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(
            self,
            Json::Null | Json::Bool(_) | Json::Num(_) | Json::Str(_)
        )
    }
}

/// The last member named `key`.
pub(crate) fn get<'o, 'a>(members: &'o Obj<'a>, key: &str) -> Option<&'o Json<'a>> {
    members
        .iter()
        .rev()
        .find(|(k, _)| crate::bytes::same(k.as_bytes(), key.as_bytes()))
        .map(|(_, v)| v)
}

/// Removes every member named `key` and returns the last one's value.
pub(crate) fn take<'a>(members: &mut Obj<'a>, key: &str) -> Option<Json<'a>> {
    let mut found = None;
    let mut i = 0;
    while i < members.len() {
        if members[i].0 == key {
            found = Some(members.remove(i).1);
        } else {
            i += 1;
        }
    }
    found
}

/// Parses exactly one JSON value (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Json<'_>, ParseError> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.pos != p.b.len() {
        return Err(p.err("unexpected characters after the value"));
    }
    Ok(v)
}

/// Parses one record: a JSON object whose members are flattened into `fields` (see
/// [`flatten_members`] for the rules), except the top-level members named in `capture`, which
/// are returned parsed. `Ok(None)` if the record is valid JSON but not an object.
pub(crate) fn parse_record<'a>(
    text: &'a str,
    capture: &[&str],
    fields: &mut Fields,
) -> Result<Option<Obj<'a>>, ParseError> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    p.ws();
    let captured = if p.b.get(p.pos) == Some(&b'{') {
        Some(p.top_object(capture, fields)?)
    } else {
        p.value()?;
        None
    };
    p.ws();
    if p.pos != p.b.len() {
        return Err(p.err("unexpected characters after the value"));
    }
    Ok(captured)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, message: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            message,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Result<Json<'a>, ParseError> {
        match self.b.get(self.pos) {
            None => Err(self.err("unexpected end of the record")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Json::Num),
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn literal(&mut self, word: &'static str, v: Json<'a>) -> Result<Json<'a>, ParseError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Json<'a>, ParseError> {
        let mut members = Vec::with_capacity(8);
        self.members(|p, key| {
            let v = p.value()?;
            members.push((key, v));
            Ok(())
        })?;
        Ok(Json::Obj(members))
    }

    /// The record's object: captured members into the returned tree, the rest flattened.
    fn top_object(&mut self, capture: &[&str], fields: &mut Fields) -> Result<Obj<'a>, ParseError> {
        let mut captured = Vec::new();
        let mut prefix = String::new();
        self.members(|p, key| {
            if capture
                .iter()
                .any(|c| crate::bytes::same(c.as_bytes(), key.as_bytes()))
            {
                let v = p.value()?;
                captured.push((key, v));
            } else if !p.flat_scalar(&key, fields)? {
                // Only nested values need their name built up.
                prefix.clear();
                prefix.push_str(&key);
                p.flat_value(&mut prefix, fields)?;
            }
            Ok(())
        })?;
        Ok(captured)
    }

    /// Parses an object's members (at its `{`), handing each name to `member`, which must
    /// consume the value.
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        self.enter()?;
        self.pos += 1; // '{'
        self.ws();
        if self.b.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.b.get(self.pos) != Some(&b'"') {
                return Err(self.err("expected a member name in quotes"));
            }
            let key = self.string()?;
            self.ws();
            if self.b.get(self.pos) != Some(&b':') {
                return Err(self.err("expected `:` after a member name"));
            }
            self.pos += 1;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unexpected end of the record in an object")),
                Some(_) => return Err(self.err("expected `,` or `}` in an object")),
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Parses a value and flattens it into `fields` under the name `prefix`.
    fn flat_value(&mut self, prefix: &mut String, fields: &mut Fields) -> Result<(), ParseError> {
        match self.b.get(self.pos) {
            Some(b'{') => self.members(|p, key| {
                let base = prefix.len();
                prefix.push('.');
                prefix.push_str(&key);
                let r = p.flat_value(prefix, fields);
                prefix.truncate(base);
                r
            }),
            // Arrays need a look at all their items first (joined or indexed).
            Some(b'[') => {
                let v = self.value()?;
                flatten_value(prefix, v, fields);
                Ok(())
            }
            _ => {
                self.flat_scalar(prefix, fields)?;
                Ok(())
            }
        }
    }

    /// If the next value is a scalar, parses it straight into the field `name` (null: no field)
    /// and returns true; returns false, consuming nothing, at an object or array.
    fn flat_scalar(&mut self, name: &str, fields: &mut Fields) -> Result<bool, ParseError> {
        match self.b.get(self.pos) {
            Some(b'{' | b'[') => return Ok(false),
            Some(b'"') => {
                let s = self.string()?;
                fields.push(name, &s);
            }
            Some(b't') => {
                self.literal("true", Json::Null)?;
                fields.push(name, "true");
            }
            Some(b'f') => {
                self.literal("false", Json::Null)?;
                fields.push(name, "false");
            }
            Some(b'n') => {
                self.literal("null", Json::Null)?;
            }
            Some(b'-' | b'0'..=b'9') => {
                let n = self.number()?;
                fields.push(name, n);
            }
            // The error a value would give.
            _ => {
                self.value()?;
            }
        }
        Ok(true)
    }

    fn array(&mut self) -> Result<Json<'a>, ParseError> {
        self.enter()?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.ws();
        if self.b.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Json::Arr(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.b.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unexpected end of the record in an array")),
                Some(_) => return Err(self.err("expected `,` or `]` in an array")),
            }
        }
        self.depth -= 1;
        Ok(Json::Arr(items))
    }

    /// A number's text, exactly as written.
    fn number(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let b = self.b;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while matches!(b.get(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => {
                self.pos = i;
                return Err(self.err("invalid number"));
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                self.pos = i;
                return Err(self.err("invalid number"));
            }
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !matches!(b.get(i), Some(b'0'..=b'9')) {
                self.pos = i;
                return Err(self.err("invalid number"));
            }
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
        }
        self.pos = i;
        Ok(&self.s[start..i])
    }

    /// A string starting at the opening quote; borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        let b = self.b;
        // Fast path: jump to the closing quote (or the first backslash or control character).
        let i = special(b, start);
        match b.get(i) {
            Some(b'"') => {
                self.pos = i + 1;
                return Ok(Cow::Borrowed(&self.s[start..i]));
            }
            None => {
                self.pos = b.len();
                return Err(self.err("unterminated string"));
            }
            Some(b'\\') => {}
            Some(_) => {
                // A control character; an unterminated string is reported as such first.
                if memchr::memchr2(b'"', b'\\', &b[i..]).is_none() {
                    self.pos = b.len();
                    return Err(self.err("unterminated string"));
                }
                self.pos = i;
                return Err(self.err("control character in a string"));
            }
        }
        let mut i = i;
        // Slow path: unescape into an owned string.
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(&self.s[start..i]);
        loop {
            // Copy the run up to the next quote or backslash.
            let run_start = i;
            i = special(b, i);
            if b.get(i).is_some_and(|&c| c < 0x20) {
                self.pos = i;
                return Err(self.err("control character in a string"));
            }
            out.push_str(&self.s[run_start..i]);
            match b.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                _ => {}
            }
            // Backslash.
            i += 1;
            let c = match b.get(i) {
                Some(&c) => c,
                None => {
                    self.pos = i;
                    return Err(self.err("unterminated string"));
                }
            };
            i += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    self.pos = i;
                    let hi = self.hex4()?;
                    i = self.pos;
                    let ch = if (0xD800..0xDC00).contains(&hi) {
                        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
                            self.pos = i + 2;
                            let lo = self.hex4()?;
                            i = self.pos;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err(self.err("invalid surrogate pair in a string"));
                            }
                            let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            char::from_u32(code)
                        } else {
                            None
                        }
                    } else {
                        char::from_u32(hi)
                    };
                    match ch {
                        Some(ch) => out.push(ch),
                        None => return Err(self.err("lone surrogate in a string")),
                    }
                }
                _ => {
                    self.pos = i - 1;
                    return Err(self.err("invalid escape in a string"));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.b.get(self.pos) {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err("invalid \\u escape in a string")),
            };
            v = v * 16 + d as u32;
            self.pos += 1;
        }
        Ok(v)
    }
}

/// Index of the first `"`, `\\` or control character (< 0x20) at or after `from` in `b`, or
/// `b.len()`. Most strings in an export are short, where a call to `memchr2` plus a second pass
/// for control characters cost more than the scan itself: this looks at eight bytes per step
/// (SWAR) and checks all three kinds of byte at once.
#[inline]
fn special(b: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let quote = x ^ (ONES * b'"' as u64);
        let backslash = x ^ (ONES * b'\\' as u64);
        // A byte's high bit ends up set where the byte is zero (resp. below 0x20); bytes above
        // the first such byte may be flagged falsely (borrows), never bytes below it, so the
        // lowest flag is exact.
        let hit = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | x.wrapping_sub(ONES * 0x20) & !x)
            & HIGH;
        if hit != 0 {
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Flattens an object's members into `out`: nested objects joined with `.`, arrays of scalars
/// joined with `,`, arrays holding objects or arrays indexed (`identities.0.provider`), booleans
/// `true`/`false`, numbers as written; null, empty arrays and empty objects leave no field.
pub(crate) fn flatten_members(members: Obj<'_>, out: &mut Fields) {
    let mut prefix = String::new();
    flatten_members_at(&mut prefix, members, out);
}

/// [`flatten_members`] below `prefix` (a field name, or empty for the top level).
pub(crate) fn flatten_members_at(prefix: &mut String, members: Obj<'_>, out: &mut Fields) {
    let base = prefix.len();
    for (k, v) in members {
        if base > 0 {
            prefix.push('.');
        }
        prefix.push_str(&k);
        flatten_value(prefix, v, out);
        prefix.truncate(base);
    }
}

/// Flattens one value stored under the field name `prefix`.
pub(crate) fn flatten_value(prefix: &mut String, v: Json<'_>, out: &mut Fields) {
    match v {
        Json::Null => {}
        Json::Obj(members) => flatten_members_at(prefix, members, out),
        Json::Arr(items) => {
            if items.iter().all(Json::is_scalar) {
                // Every item but null, each after a comma but the first (an empty string too:
                // `["", "a"]` is `,a`, not `a`).
                let mut joined = String::new();
                for (i, t) in items.iter().filter_map(Json::scalar_text).enumerate() {
                    if i > 0 {
                        joined.push(',');
                    }
                    joined.push_str(t);
                }
                if !joined.is_empty() {
                    out.push(prefix, &joined);
                }
            } else {
                let base = prefix.len();
                for (i, item) in items.into_iter().enumerate() {
                    use std::fmt::Write;
                    let _ = write!(prefix, ".{i}");
                    flatten_value(prefix, item, out);
                    prefix.truncate(base);
                }
            }
        }
        scalar => {
            if let Some(s) = scalar.scalar_text() {
                out.push(prefix, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Flattens through the tree and through the streaming parse; both must agree.
    fn flat(text: &str) -> BTreeMap<String, String> {
        let mut out = Fields::new();
        match parse(text).unwrap() {
            Json::Obj(m) => flatten_members(m, &mut out),
            other => panic!("not an object: {other:?}"),
        }
        let mut streamed = Fields::new();
        assert!(parse_record(text, &[], &mut streamed)
            .unwrap()
            .unwrap()
            .is_empty());
        assert_eq!(streamed, out);
        out.to_map()
    }

    #[test]
    fn parses_scalars_and_keeps_numbers_as_written() {
        assert_eq!(parse(" 1.50 ").unwrap(), Json::Num("1.50"));
        assert_eq!(
            parse("12345678901234567890123").unwrap(),
            Json::Num("12345678901234567890123")
        );
        assert_eq!(parse("-0.5e-3").unwrap(), Json::Num("-0.5e-3"));
        assert_eq!(parse("true").unwrap(), Json::Bool(true));
        assert_eq!(parse("null").unwrap(), Json::Null);
        assert!(matches!(
            parse(r#""plain""#).unwrap(),
            Json::Str(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn unescapes_strings_including_surrogate_pairs() {
        let v = parse(r#""a\"b\\c\/d\n\u00e9\ud83d\ude00]}""#).unwrap();
        assert_eq!(v, Json::Str(Cow::Owned("a\"b\\c/d\né😀]}".into())));
        assert_eq!(parse(r#""naïve ✓""#).unwrap().as_str(), Some("naïve ✓"));
    }

    #[test]
    fn rejects_invalid_json_with_offsets() {
        for bad in [
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1 2]",
            "\"abc",
            "\"a\\x\"",
            "\"\\ud800\"",
            "01",
            "1.",
            "tru",
            "{\"a\":1} x",
            "\"tab\there\"",
            "\"ctl\u{1}\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse("{\"a\": tru}").unwrap_err();
        assert_eq!(e.offset, 6);
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep).unwrap_err().message, "nesting too deep");
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn special_byte_scan_matches_a_plain_loop() {
        let alphabet = [
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b']',
        ];
        // Every placement of one or two interesting bytes in runs of up to 20 bytes, at every
        // start, so that both the 8-byte steps and the tail loop are covered.
        for len in 0..20 {
            for x in 0..len.max(1) {
                for y in x..len.max(1) {
                    for &cx in &alphabet {
                        for &cy in &alphabet[..3] {
                            let mut b = vec![b'a'; len];
                            if len > 0 {
                                b[x] = cx;
                                b[y] = cy;
                            }
                            for from in 0..=len {
                                let plain = (from..len)
                                    .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
                                    .unwrap_or(len);
                                assert_eq!(special(&b, from), plain, "{b:?} from {from}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn special_byte_scan_matches_a_plain_loop_on_long_runs() {
        // Runs long enough for the 16-byte steps, then the 8-byte steps and the tail, with a
        // few interesting bytes (or none) at random places; every start position.
        let interesting = [b'"', b'\\', 0x00, 0x1f];
        let plain_bytes = [b'a', 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b']', b'/', b'~'];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let len = (next() % 72) as usize;
            let mut b: Vec<u8> = (0..len)
                .map(|_| plain_bytes[(next() % plain_bytes.len() as u64) as usize])
                .collect();
            for _ in 0..(next() % 3) {
                if len > 0 {
                    let at = (next() % len as u64) as usize;
                    b[at] = interesting[(next() % 4) as usize];
                }
            }
            for from in 0..=len {
                let plain = (from..len)
                    .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
                    .unwrap_or(len);
                assert_eq!(special(&b, from), plain, "{b:?} from {from}");
            }
        }
    }

    #[test]
    fn string_errors_keep_their_precedence() {
        assert_eq!(
            parse("\"ab\u{1}cd").unwrap_err().message,
            "unterminated string"
        );
        let e = parse("\"abcdefghij\u{1}\"").unwrap_err();
        assert_eq!((e.offset, e.message), (11, "control character in a string"));
        let e = parse("\"a\\n\u{1}").unwrap_err();
        assert_eq!((e.offset, e.message), (4, "control character in a string"));
        assert_eq!(
            parse("\"abcdefgh\\nijklmnop\"").unwrap().as_str(),
            Some("abcdefgh\nijklmnop")
        );
    }

    #[test]
    fn flattens_nested_objects_arrays_and_scalars() {
        let f = flat(
            r#"{"email":"a@x.io","n":1.0,"ok":true,"gone":null,
                "meta":{"plan":"pro","deep":{"x":[1,2]},"empty":{}},
                "tags":["a","b",null,3],"none":[],
                "ids":[{"p":"google","id":"g1"},{"p":"fb"}],
                "mixed":[1,{"k":"v"}]}"#,
        );
        let expected: BTreeMap<String, String> = [
            ("email", "a@x.io"),
            ("n", "1.0"),
            ("ok", "true"),
            ("meta.plan", "pro"),
            ("meta.deep.x", "1,2"),
            ("tags", "a,b,3"),
            ("ids.0.p", "google"),
            ("ids.0.id", "g1"),
            ("ids.1.p", "fb"),
            ("mixed.0", "1"),
            ("mixed.1.k", "v"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(f, expected);
    }

    #[test]
    fn parse_record_captures_named_members_and_reports_non_objects() {
        let mut fields = Fields::new();
        let captured = parse_record(
            r#" {"a":{"b":"x"},"pw":{"v":"secret"},"n":[1,2],"pw2":"s"} "#,
            &["pw", "pw2"],
            &mut fields,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            fields.iter().collect::<Vec<_>>(),
            vec![("a.b", "x"), ("n", "1,2")]
        );
        assert_eq!(captured.len(), 2);
        assert_eq!(
            captured[0].1.get("v").and_then(Json::as_str),
            Some("secret")
        );
        assert_eq!(parse_record("[1]", &[], &mut Fields::new()).unwrap(), None);
        assert!(parse_record("{\"a\":1} {}", &[], &mut Fields::new()).is_err());
        assert!(parse_record("{\"a\":{\"b\":}}", &[], &mut Fields::new()).is_err());
    }

    #[test]
    fn duplicates_keep_the_last_value_in_the_map() {
        let m = flat(r#"{"a":1,"b":2,"a":3}"#);
        assert_eq!(m.get("a").map(String::as_str), Some("3"));
    }

    #[test]
    fn take_and_get_use_the_last_duplicate() {
        let Json::Obj(mut m) = parse(r#"{"a":1,"b":2,"a":3}"#).unwrap() else {
            panic!()
        };
        assert_eq!(get(&m, "a"), Some(&Json::Num("3")));
        assert_eq!(take(&mut m, "a"), Some(Json::Num("3")));
        assert_eq!(m.len(), 1);
        assert_eq!(take(&mut m, "zz"), None);
    }
}
