//! Streaming record splitters for JSON inputs.
//!
//! Exports are often one huge JSON document (`[ {...}, {...} ]`, or `{"users": [...]}` as written
//! by `firebase auth:export` and Keycloak), too big to load. [`JsonRecords`] walks the document
//! byte by byte, tracking only string/escape state and bracket depth, and hands out one array
//! element at a time with the line and byte offset where it starts; the element alone is then
//! parsed. NDJSON (one object per line) goes through the same interface; a line that sits whole in
//! the input's buffer is lent from there rather than copied. Memory stays bounded by
//! the largest single record (capped by `max_record_bytes`), whatever the input size.

use std::io;

use super::error::{Reason, RecordError, SourceError};
use super::input::{count_newlines, Input};
use crate::record::Position;

/// Default cap on one record's size.
pub(crate) const DEFAULT_MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// How the input holds its records.
enum Mode {
    /// One record per line.
    Ndjson,
    /// Elements of a JSON array; `expect_comma` after the first element.
    Array { expect_comma: bool },
    /// Nothing more to read.
    Done,
}

/// Why scanning one value stopped early.
enum ScanError {
    /// The input ended inside the value.
    Eof,
    /// A closing bracket with nothing open, or a byte that cannot start a value.
    Unexpected,
    Io(io::Error),
}

/// Yields the raw bytes of each record with its position.
pub(crate) struct JsonRecords {
    input: Input,
    mode: Mode,
    buf: Vec<u8>,
    max: usize,
    /// Records handed out so far (including ones that failed).
    record: u64,
    /// Length of the line (with its `\n`) last handed out straight from the input's buffer,
    /// consumed when the next record is asked for.
    pending: usize,
    warnings: Vec<String>,
}

impl JsonRecords {
    /// Reads one JSON object per line; blank lines are skipped.
    pub fn ndjson(input: Input, max: usize) -> Self {
        JsonRecords {
            input,
            mode: Mode::Ndjson,
            buf: Vec::with_capacity(4096),
            max,
            record: 0,
            pending: 0,
            warnings: Vec::new(),
        }
    }

    /// Reads the elements of a top-level array, or of the array under `users_key` when the
    /// document is an object (`{"realm": "x", "users": [...]}`); other members, however large, are
    /// skipped without being kept. Expects the input positioned at the document's first byte
    /// (after any BOM and whitespace).
    pub fn array(mut input: Input, users_key: &str, max: usize) -> Result<Self, SourceError> {
        let location = input.location.clone();
        let io_err = |e| SourceError::io(&location, e);
        match input.peek_non_ws().map_err(io_err)? {
            Some(b'[') => input.consume_counted(1, 0),
            Some(b'{') => {
                input.consume_counted(1, 0);
                find_member_array(&mut input, users_key, max)?;
            }
            Some(_) => {
                return Err(SourceError::invalid(
                    &location,
                    format!(
                        "line {}: expected a JSON array or an object with a `{users_key}` array",
                        input.line
                    ),
                ))
            }
            None => {
                return Ok(JsonRecords {
                    input,
                    mode: Mode::Done,
                    buf: Vec::new(),
                    max,
                    record: 0,
                    pending: 0,
                    warnings: vec!["the input is empty".to_string()],
                })
            }
        }
        Ok(JsonRecords {
            input,
            mode: Mode::Array {
                expect_comma: false,
            },
            buf: Vec::with_capacity(4096),
            max,
            record: 0,
            pending: 0,
            warnings: Vec::new(),
        })
    }

    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// The next record's bytes and position, a record-level error, or `None` at the end.
    pub fn next_raw(&mut self) -> Option<Result<(Position, &[u8]), RecordError>> {
        if self.pending > 0 {
            self.input.consume_counted(self.pending, 1);
            self.pending = 0;
        }
        match self.mode {
            Mode::Done => None,
            Mode::Ndjson => self.next_line(),
            Mode::Array { .. } => self.next_element(),
        }
    }

    fn here(&self) -> Position {
        Position {
            record: self.record + 1,
            line: self.input.line,
            byte_offset: self.input.offset,
        }
    }

    fn fail(&mut self, err: RecordError) -> Option<Result<(Position, &[u8]), RecordError>> {
        self.mode = Mode::Done;
        Some(Err(err.fatal()))
    }

    fn next_line(&mut self) -> Option<Result<(Position, &[u8]), RecordError>> {
        // Skip leading whitespace, including blank lines.
        match self.input.peek_non_ws() {
            Ok(Some(_)) => {}
            Ok(None) => {
                if self.record == 0 {
                    self.warnings.push("the input is empty".to_string());
                }
                self.mode = Mode::Done;
                return None;
            }
            Err(e) => {
                let pos = self.here();
                return self.fail(RecordError::read_error(pos, &e));
            }
        }
        let pos = self.here();
        // Usually the whole line is in the input's buffer: hand it out from there, without a copy.
        let max = self.max;
        let whole = match self.input.fill() {
            Ok(buf) => memchr::memchr(b'\n', buf).filter(|&i| i <= max),
            Err(_) => None,
        };
        if let Some(i) = whole {
            self.record += 1;
            self.pending = i + 1;
            // The same buffered bytes again (nothing was consumed); a separate call because the
            // borrow checker cannot return the first one conditionally.
            return match self.input.fill() {
                Ok(buf) => {
                    let mut line = &buf[..i];
                    while let [rest @ .., b'\r' | b' ' | b'\t'] = line {
                        line = rest;
                    }
                    Some(Ok((pos, line)))
                }
                Err(e) => {
                    self.pending = 0;
                    self.mode = Mode::Done;
                    Some(Err(RecordError::read_error(pos, &e).fatal()))
                }
            };
        }
        self.buf.clear();
        let mut too_large = false;
        // Read up to the end of the line, keeping at most `max` bytes.
        loop {
            let buf = match self.input.fill() {
                Ok(b) => b,
                Err(e) => return self.fail(RecordError::read_error(pos, &e)),
            };
            if buf.is_empty() {
                break;
            }
            let (n, end) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let content = if end { &buf[..n - 1] } else { &buf[..n] };
            if !too_large && self.buf.len() + content.len() <= self.max {
                self.buf.extend_from_slice(content);
            } else {
                too_large = true;
            }
            self.input.consume_counted(n, end as u64);
            if end {
                break;
            }
        }
        self.record += 1;
        if too_large {
            return Some(Err(RecordError::new(
                pos,
                Reason::MalformedRecord,
                format!("record longer than {} bytes", self.max),
            )));
        }
        while matches!(self.buf.last(), Some(b'\r' | b' ' | b'\t')) {
            self.buf.pop();
        }
        Some(Ok((pos, &self.buf)))
    }

    fn next_element(&mut self) -> Option<Result<(Position, &[u8]), RecordError>> {
        let Mode::Array { expect_comma } = self.mode else {
            return None;
        };
        let mut after_comma = false;
        // Find where the next element starts (after a comma, unless it is the first).
        loop {
            let b = match self.input.peek_non_ws() {
                Ok(b) => b,
                Err(e) => {
                    let pos = self.here();
                    return self.fail(RecordError::read_error(pos, &e));
                }
            };
            match b {
                None => {
                    let pos = self.here();
                    return self.fail(RecordError::new(
                        pos,
                        Reason::InvalidJson,
                        "the input ends inside the array (truncated?)",
                    ));
                }
                Some(b']') => {
                    self.input.consume_counted(1, 0);
                    if after_comma {
                        self.warnings.push(format!(
                            "line {}: trailing comma after the last record ignored",
                            self.input.line
                        ));
                    }
                    self.mode = Mode::Done;
                    return None;
                }
                Some(b',') if expect_comma && !after_comma => {
                    self.input.consume_counted(1, 0);
                    after_comma = true;
                }
                Some(c) if expect_comma && !after_comma => {
                    if matches!(c, b'{' | b'[' | b'"') {
                        self.warnings.push(format!(
                            "line {}: missing comma before record {}",
                            self.input.line,
                            self.record + 1
                        ));
                        break;
                    }
                    let pos = self.here();
                    return self.fail(RecordError::new(
                        pos,
                        Reason::InvalidJson,
                        "expected `,` or `]` between records",
                    ));
                }
                Some(_) => break,
            }
        }
        let pos = self.here();
        self.record += 1;
        self.mode = Mode::Array { expect_comma: true };
        self.buf.clear();
        let mut too_large = false;
        match scan_value(
            &mut self.input,
            Some(&mut self.buf),
            self.max,
            &mut too_large,
        ) {
            Ok(()) => {}
            Err(ScanError::Eof) => {
                return self.fail(RecordError::new(
                    pos,
                    Reason::InvalidJson,
                    "the input ends inside this record (unbalanced brackets or truncated input)",
                ))
            }
            Err(ScanError::Unexpected) => {
                return self.fail(RecordError::new(
                    pos,
                    Reason::InvalidJson,
                    "unexpected character where a record should start",
                ))
            }
            Err(ScanError::Io(e)) => return self.fail(RecordError::read_error(pos, &e)),
        }
        if too_large {
            return Some(Err(RecordError::new(
                pos,
                Reason::MalformedRecord,
                format!("record larger than {} bytes", self.max),
            )));
        }
        Some(Ok((pos, &self.buf)))
    }
}

/// Moves `input` into the array held by the member `key` of the object whose `{` was consumed.
fn find_member_array(input: &mut Input, key: &str, max: usize) -> Result<(), SourceError> {
    let location = input.location.clone();
    let invalid =
        |line: u64, msg: &str| SourceError::invalid(&location, format!("line {line}: {msg}"));
    let mut name = Vec::new();
    let mut first = true;
    loop {
        let b = input
            .peek_non_ws()
            .map_err(|e| SourceError::io(&location, e))?;
        match b {
            Some(b'}') if first => break,
            Some(b'"') => {}
            None => {
                return Err(invalid(
                    input.line,
                    "the input ends inside the top-level object",
                ))
            }
            Some(_) => return Err(invalid(input.line, "expected a member name")),
        }
        first = false;
        name.clear();
        let mut too_large = false;
        scan_value(input, Some(&mut name), 64 * 1024, &mut too_large).map_err(|e| match e {
            ScanError::Io(e) => SourceError::io(&location, e),
            _ => invalid(input.line, "the input ends inside a member name"),
        })?;
        let is_key =
            !too_large && name.len() == key.len() + 2 && &name[1..name.len() - 1] == key.as_bytes();
        match input
            .peek_non_ws()
            .map_err(|e| SourceError::io(&location, e))?
        {
            Some(b':') => input.consume_counted(1, 0),
            _ => return Err(invalid(input.line, "expected `:` after a member name")),
        }
        let v = input
            .peek_non_ws()
            .map_err(|e| SourceError::io(&location, e))?;
        if is_key {
            if v == Some(b'[') {
                input.consume_counted(1, 0);
                return Ok(());
            }
            return Err(invalid(input.line, &format!("`{key}` is not an array")));
        }
        if v.is_none() {
            return Err(invalid(
                input.line,
                "the input ends inside the top-level object",
            ));
        }
        let mut ignored = false;
        scan_value(input, None, max, &mut ignored).map_err(|e| match e {
            ScanError::Io(e) => SourceError::io(&location, e),
            ScanError::Eof => invalid(input.line, "the input ends inside the top-level object"),
            ScanError::Unexpected => invalid(input.line, "unexpected character in a value"),
        })?;
        match input
            .peek_non_ws()
            .map_err(|e| SourceError::io(&location, e))?
        {
            Some(b',') => input.consume_counted(1, 0),
            Some(b'}') => break,
            None => {
                return Err(invalid(
                    input.line,
                    "the input ends inside the top-level object",
                ))
            }
            Some(_) => {
                return Err(invalid(
                    input.line,
                    "expected `,` or `}` in the top-level object",
                ))
            }
        }
    }
    Err(SourceError::invalid(
        &location,
        format!("the top-level object has no `{key}` array"),
    ))
}

/// Consumes one complete JSON value starting at the next byte, appending its bytes to `out` while
/// they fit in `max` (beyond that it sets `too_large`, keeps scanning to the value's end and
/// stores nothing more). Checks only bracket balance and string boundaries, not full syntax: the
/// record's own parse does that.
fn scan_value(
    input: &mut Input,
    mut out: Option<&mut Vec<u8>>,
    max: usize,
    too_large: &mut bool,
) -> Result<(), ScanError> {
    let first = match input.fill() {
        Ok([]) => return Err(ScanError::Eof),
        Ok(b) => b[0],
        Err(e) => return Err(ScanError::Io(e)),
    };
    let scalar = !matches!(first, b'{' | b'[' | b'"');
    if matches!(first, b'}' | b']' | b',' | b':') {
        return Err(ScanError::Unexpected);
    }
    let mut depth: u32 = 0;
    let mut in_str = false;
    let mut esc = false;
    loop {
        let buf = input.fill().map_err(ScanError::Io)?;
        if buf.is_empty() {
            // A scalar may end with the input (not inside an array, but let the parse say so).
            if scalar {
                return Ok(());
            }
            return Err(ScanError::Eof);
        }
        let mut end = None;
        if scalar {
            if let Some(i) = buf
                .iter()
                .position(|&b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))
            {
                end = Some(i);
            }
        } else {
            let mut i = 0;
            let n = buf.len();
            while i < n {
                if in_str {
                    if esc {
                        esc = false;
                        i += 1;
                        continue;
                    }
                    // Most of a record's bytes are inside strings: jump to the next quote or
                    // backslash.
                    match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                        None => break,
                        Some(k) => {
                            i += k;
                            if buf[i] == b'\\' {
                                esc = true;
                            } else {
                                in_str = false;
                                if depth == 0 {
                                    end = Some(i + 1);
                                    break;
                                }
                            }
                            i += 1;
                            continue;
                        }
                    }
                }
                let b = buf[i];
                match b {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            return Err(ScanError::Unexpected);
                        }
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        let n = end.unwrap_or(buf.len());
        if let Some(out) = out.as_deref_mut() {
            if !*too_large && out.len() + n <= max {
                out.extend_from_slice(&buf[..n]);
            } else {
                *too_large = true;
            }
        }
        let newlines = count_newlines(&buf[..n]);
        input.consume_counted(n, newlines);
        if end.is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Cursor};

    fn input_with_buffer(text: &str, cap: usize) -> Input {
        let r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
            cap,
            Cursor::new(text.as_bytes().to_vec()),
        ));
        Input::new(r, "test")
    }

    fn collect(mut recs: JsonRecords) -> Vec<Result<(Position, String), RecordError>> {
        let mut v = Vec::new();
        while let Some(r) = recs.next_raw() {
            v.push(r.map(|(p, b)| (p, String::from_utf8(b.to_vec()).unwrap())));
        }
        v
    }

    #[test]
    fn splits_a_top_level_array_with_tricky_strings_at_any_buffer_size() {
        let text =
            "[\n  {\"a\":\"x]},{\\\"y\\\"\"},\n  {\"b\":[1,{\"c\":\"é\\\\\"}]} ,\"s\",42\n]\n";
        for cap in [1, 2, 3, 7, 64, 4096] {
            let recs = JsonRecords::array(input_with_buffer(text, cap), "users", 1 << 20).unwrap();
            let got = collect(recs);
            let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
            assert_eq!(got.len(), 4, "cap {cap}");
            assert_eq!(got[0].1, "{\"a\":\"x]},{\\\"y\\\"\"}");
            assert_eq!(got[1].1, "{\"b\":[1,{\"c\":\"é\\\\\"}]}");
            assert_eq!(got[2].1, "\"s\"");
            assert_eq!(got[3].1, "42");
            for (p, raw) in &got {
                assert!(text[p.byte_offset as usize..].starts_with(raw.as_str()));
            }
            assert_eq!(got[0].0.line, 2);
            assert_eq!(got[1].0.line, 3);
            assert_eq!(got[1].0.record, 2);
        }
    }

    #[test]
    fn finds_the_users_array_inside_an_object_skipping_other_members() {
        let text = r#"{"realm":"r","clients":[{"x":"users]"},{"y":[[]]}],"n":1,"users":[{"u":1},{"u":2}],"after":true}"#;
        let recs = JsonRecords::array(input_with_buffer(text, 5), "users", 1 << 20).unwrap();
        let got: Vec<_> = collect(recs).into_iter().map(|r| r.unwrap().1).collect();
        assert_eq!(got, vec!["{\"u\":1}", "{\"u\":2}"]);

        let missing =
            JsonRecords::array(input_with_buffer(r#"{"realm":"r"}"#, 64), "users", 1 << 20);
        assert!(matches!(missing, Err(SourceError::InvalidInput { .. })));
        let not_array =
            JsonRecords::array(input_with_buffer(r#"{"users":{}}"#, 64), "users", 1 << 20);
        assert!(not_array.is_err());
        let scalar = JsonRecords::array(input_with_buffer("42", 64), "users", 1 << 20);
        assert!(scalar.is_err());
    }

    #[test]
    fn truncated_array_gives_a_fatal_error_after_the_good_records() {
        let text = "[{\"a\":1},\n{\"b\":2";
        let recs = JsonRecords::array(input_with_buffer(text, 64), "users", 1 << 20).unwrap();
        let got = collect(recs);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        let e = got[1].as_ref().unwrap_err();
        assert!(e.fatal);
        assert_eq!(e.position.line, 2);
        assert_eq!(e.position.record, 2);
    }

    #[test]
    fn lenient_about_trailing_and_missing_commas_with_warnings() {
        let text = "[{\"a\":1} {\"b\":2},]";
        let mut recs = JsonRecords::array(input_with_buffer(text, 64), "users", 1 << 20).unwrap();
        let mut n = 0;
        while let Some(r) = recs.next_raw() {
            r.unwrap();
            n += 1;
        }
        assert_eq!(n, 2);
        assert_eq!(recs.take_warnings().len(), 2);
    }

    #[test]
    fn too_large_records_are_skipped_not_kept() {
        let big = "x".repeat(100);
        let text = format!("[{{\"a\":\"{big}\"}},{{\"b\":1}}]");
        let recs = JsonRecords::array(input_with_buffer(&text, 16), "users", 50).unwrap();
        let got = collect(recs);
        assert_eq!(got.len(), 2);
        let e = got[0].as_ref().unwrap_err();
        assert_eq!(e.reason, Reason::MalformedRecord);
        assert!(!e.fatal);
        assert_eq!(got[1].as_ref().unwrap().1, "{\"b\":1}");
    }

    #[test]
    fn ndjson_lines_with_blank_lines_crlf_and_positions() {
        let text = "{\"a\":1}\r\n\r\n   \n  {\"b\":2}\n{bad\n{\"c\":3}";
        // Small buffers split lines (copied); a large one holds them whole (borrowed).
        for cap in [3, 11, 4096] {
            let recs = JsonRecords::ndjson(input_with_buffer(text, cap), 1 << 20);
            ndjson_positions_are_exact(text, recs);
        }
    }

    fn ndjson_positions_are_exact(text: &str, recs: JsonRecords) {
        let got: Vec<_> = collect(recs).into_iter().map(Result::unwrap).collect();
        let lines: Vec<_> = got
            .iter()
            .map(|(p, s)| (p.record, p.line, s.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (1, 1, "{\"a\":1}"),
                (2, 4, "{\"b\":2}"),
                (3, 5, "{bad"),
                (4, 6, "{\"c\":3}")
            ]
        );
        for (p, raw) in &got {
            assert!(text[p.byte_offset as usize..].starts_with(raw.as_str()));
        }
    }

    #[test]
    fn ndjson_overlong_line_is_a_record_error_and_reading_goes_on() {
        let text = format!("{{\"a\":\"{}\"}}\n{{\"b\":1}}\n", "y".repeat(200));
        let recs = JsonRecords::ndjson(input_with_buffer(&text, 32), 64);
        let got = collect(recs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap_err().reason, Reason::MalformedRecord);
        assert_eq!(got[1].as_ref().unwrap().0.line, 2);
    }
}
