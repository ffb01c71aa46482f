//! Streaming CSV rows with exact positions.
//!
//! Built on `csv-core` (the push parser under the `csv` crate) rather than `csv::Reader`, because
//! the record's first byte and line must be exact for rejections and for resuming by byte range,
//! also after blank lines (which `csv::Reader` skips without moving its reported position) and
//! after quoted fields spanning several lines. Quoting, doubled quotes, CRLF/LF/CR terminators and
//! other delimiters are handled by `csv-core`; this module adds positions, a size cap per record
//! and delimiter sniffing.

use super::error::{Reason, RecordError};
use super::input::{count_newlines, Input};
use crate::record::Position;

/// One parsed row; field bytes borrow the reader's buffers until the next call.
pub(crate) struct Row<'a> {
    pub position: Position,
    out: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Row<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

pub(crate) struct CsvRows {
    input: Input,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    max: usize,
    /// Data rows handed out so far.
    record: u64,
    /// The next row is the header row (it does not count as a record).
    header_next: bool,
    done: bool,
}

impl CsvRows {
    pub fn new(input: Input, delimiter: u8, max: usize) -> Self {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        CsvRows {
            input,
            core,
            out: vec![0; 4096],
            ends: vec![0; 64],
            max,
            record: 0,
            header_next: false,
            done: false,
        }
    }

    /// Reads the next row without counting it as a record (for the header row).
    pub fn next_header(&mut self) -> Option<Result<Row<'_>, RecordError>> {
        self.header_next = true;
        self.next_row()
    }

    /// The next row, a record-level error (too large, read error), or `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<Row<'_>, RecordError>> {
        let counting = !std::mem::take(&mut self.header_next);
        if self.done {
            return None;
        }
        // Skip blank lines so that the position is the row's first byte. csv-core would skip them
        // too; doing it here keeps its state at the start of a record.
        loop {
            let buf = match self.input.fill() {
                Ok(b) => b,
                Err(e) => return self.fail_io(&e),
            };
            if buf.is_empty() {
                self.done = true;
                return None;
            }
            let skip = buf
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(buf.len());
            let nl = count_newlines(&buf[..skip]);
            let at_content = skip < buf.len();
            self.input.consume_counted(skip, nl);
            if at_content {
                break;
            }
        }
        let position = Position {
            record: self.record + u64::from(counting),
            line: self.input.line,
            byte_offset: self.input.offset,
        };
        let (mut outlen, mut endlen) = (0usize, 0usize);
        let mut too_large = false;
        loop {
            let buf = match self.input.fill() {
                Ok(b) => b,
                Err(e) => return self.fail_io_at(position, &e),
            };
            let (res, nin, nout, nend) =
                self.core
                    .read_record(buf, &mut self.out[outlen..], &mut self.ends[endlen..]);
            let nl = count_newlines(&buf[..nin]);
            self.input.consume_counted(nin, nl);
            outlen += nout;
            endlen += nend;
            use csv_core::ReadRecordResult::*;
            match res {
                InputEmpty => continue,
                OutputFull => {
                    if self.out.len() >= self.max {
                        // Keep parsing to the end of the row, dropping its bytes.
                        too_large = true;
                        outlen = 0;
                        endlen = 0;
                    } else {
                        let n = (self.out.len() * 2).min(self.max.max(4096));
                        self.out.resize(n, 0);
                    }
                }
                OutputEndsFull => {
                    if self.ends.len() >= 65_536 {
                        too_large = true;
                        endlen = 0;
                    } else {
                        let n = self.ends.len() * 2;
                        self.ends.resize(n, 0);
                    }
                }
                Record => {
                    if counting {
                        self.record += 1;
                    }
                    if too_large {
                        return Some(Err(RecordError::new(
                            position,
                            Reason::MalformedRecord,
                            format!(
                                "row larger than {} bytes or 65536 fields (an unclosed quote?)",
                                self.max
                            ),
                        )));
                    }
                    return Some(Ok(Row {
                        position,
                        out: &self.out[..outlen],
                        ends: &self.ends[..endlen],
                    }));
                }
                End => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    fn fail_io(&mut self, e: &std::io::Error) -> Option<Result<Row<'_>, RecordError>> {
        let position = Position {
            record: self.record + 1,
            line: self.input.line,
            byte_offset: self.input.offset,
        };
        self.fail_io_at(position, e)
    }

    fn fail_io_at(
        &mut self,
        position: Position,
        e: &std::io::Error,
    ) -> Option<Result<Row<'_>, RecordError>> {
        self.done = true;
        Some(Err(RecordError::read_error(position, e)))
    }
}

/// Guesses the delimiter from the header line: the most frequent of `,` `;` tab `|` outside
/// quotes (ties go to `,`).
pub(crate) fn sniff_delimiter(input: &mut Input) -> std::io::Result<u8> {
    let buf = input.fill()?;
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let mut counts = [0usize; 4];
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let mut in_quotes = false;
    for &b in &buf[..line_end] {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            if let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
                counts[i] += 1;
            }
        }
    }
    let mut best = 0;
    for i in 1..4 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    Ok(CANDIDATES[best])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Cursor};

    fn input(text: &str, cap: usize) -> Input {
        let r: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
            cap,
            Cursor::new(text.as_bytes().to_vec()),
        ));
        Input::new(r, "test")
    }

    fn rows(
        text: &str,
        cap: usize,
        delim: u8,
        max: usize,
    ) -> Vec<Result<(Position, Vec<String>), RecordError>> {
        let mut r = CsvRows::new(input(text, cap), delim, max);
        let mut v = Vec::new();
        if let Some(h) = r.next_header() {
            let h = h.unwrap();
            v.push(Ok((
                h.position,
                h.iter()
                    .map(|f| String::from_utf8(f.to_vec()).unwrap())
                    .collect(),
            )));
        }
        while let Some(row) = r.next_row() {
            v.push(row.map(|row| {
                (
                    row.position,
                    row.iter()
                        .map(|f| String::from_utf8(f.to_vec()).unwrap())
                        .collect(),
                )
            }));
        }
        v
    }

    #[test]
    fn positions_survive_crlf_blank_lines_and_multiline_quoted_fields() {
        let text =
            "a,b\r\n1,\"x\r\ny, \"\"q\"\"\"\r\n\r\n\r\n2,z\r\n3,\"multi\nline\nfield\"\n4,end";
        for cap in [1, 2, 5, 4096] {
            let got: Vec<_> = rows(text, cap, b',', 1 << 20)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let summary: Vec<_> = got
                .iter()
                .map(|(p, f)| (p.record, p.line, f.join("|")))
                .collect();
            assert_eq!(
                summary,
                vec![
                    (0, 1, "a|b".to_string()),
                    (1, 2, "1|x\r\ny, \"q\"".to_string()),
                    (2, 6, "2|z".to_string()),
                    (3, 7, "3|multi\nline\nfield".to_string()),
                    (4, 10, "4|end".to_string()),
                ],
                "cap {cap}"
            );
            for (p, f) in &got {
                assert!(
                    text[p.byte_offset as usize..].starts_with(&f[0]),
                    "cap {cap}"
                );
            }
        }
    }

    #[test]
    fn oversized_rows_are_errors_and_reading_continues() {
        let text = format!("h\n{}\nok\n", "z".repeat(10_000));
        let got = rows(&text, 64, b',', 5000);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].as_ref().unwrap_err().reason, Reason::MalformedRecord);
        assert_eq!(got[2].as_ref().unwrap().1, vec!["ok"]);
        assert_eq!(got[2].as_ref().unwrap().0.line, 3);
    }

    #[test]
    fn sniffs_the_most_frequent_delimiter_outside_quotes() {
        assert_eq!(
            sniff_delimiter(&mut input("a;b;c\n1,2;3;4", 64)).unwrap(),
            b';'
        );
        assert_eq!(sniff_delimiter(&mut input("a\tb\tc\n", 64)).unwrap(), b'\t');
        assert_eq!(
            sniff_delimiter(&mut input("\"x;y;z\",b\n", 64)).unwrap(),
            b','
        );
        assert_eq!(sniff_delimiter(&mut input("single\n", 64)).unwrap(), b',');
    }
}
