//! Differential test of the CSV reader against the `csv` crate.
//!
//! Our reader drives `csv-core` itself to keep exact positions across blank lines and quoted
//! fields that span lines; the `csv` crate's `Reader` is the reference for the values. Generated
//! tables — cells with the delimiter, quotes, CR, LF, spaces and non-ASCII text, quoted where
//! needed or for no reason, LF or CRLF line ends, blank lines between rows, any of the four
//! delimiters — are read by both; every row must give the same cells (our fields are the
//! non-empty cells under their header names) and start at the byte where it was written.

use std::fmt;
use std::io::{BufRead, BufReader, Cursor};

use cognito_migrate::source::{self, Format, SourceOptions};
use proptest::prelude::*;

use super::runner::run;

#[derive(Clone)]
struct Table {
    delimiter: u8,
    text: String,
    /// Byte offset of each data row.
    starts: Vec<usize>,
    header: Vec<String>,
    buffer: usize,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Table {{ delimiter: {:?}, buffer: {}, starts: {:?}, text: {:?} }}",
            self.delimiter as char, self.buffer, self.starts, self.text
        )
    }
}

fn cell() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        8 => proptest::char::range('a', 'z'),
        2 => proptest::sample::select(vec![',', ';', '\t', '|', '"', '\n', '\r', ' ', '\'', '\\']),
        1 => proptest::sample::select(vec!['é', '中', '😀', '\u{2028}']),
    ];
    proptest::collection::vec(c, 0..12).prop_map(String::from_iter)
}

fn table() -> impl Strategy<Value = Table> {
    (2..6usize)
        .prop_flat_map(|columns| {
            (
                proptest::collection::vec(cell(), columns..=columns),
                proptest::collection::vec(
                    proptest::collection::vec(cell(), columns..=columns),
                    1..6,
                ),
                proptest::sample::select(vec![b',', b';', b'\t', b'|']),
                any::<u64>(),
                prop_oneof![1 => Just(256 * 1024), 2 => 1..32usize],
            )
        })
        .prop_map(|(header, rows, delimiter, style, buffer)| {
            // Header names as read: unique, trimmed, not empty.
            let header: Vec<String> = header
                .iter()
                .enumerate()
                .map(|(i, h)| format!("h{i}{}", h.trim().replace(['\r', '\n'], "")))
                .collect();
            let mut state = style | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let mut text = String::new();
            let mut starts = Vec::new();
            let write_row = |text: &mut String, row: &[String], next: &mut dyn FnMut() -> u64| {
                for (i, cell) in row.iter().enumerate() {
                    if i > 0 {
                        text.push(delimiter as char);
                    }
                    let needs = cell.contains([delimiter as char, '"', '\r', '\n']);
                    if needs || next().is_multiple_of(5) {
                        text.push('"');
                        text.push_str(&cell.replace('"', "\"\""));
                        text.push('"');
                    } else {
                        text.push_str(cell);
                    }
                }
                text.push_str(if next().is_multiple_of(2) {
                    "\n"
                } else {
                    "\r\n"
                });
            };
            write_row(&mut text, &header, &mut next);
            for row in &rows {
                if next() % 4 == 0 {
                    text.push_str(if next() % 2 == 0 { "\n" } else { "\r\n\r\n" });
                }
                starts.push(text.len());
                write_row(&mut text, row, &mut next);
            }
            Table {
                delimiter,
                text,
                starts,
                header,
                buffer,
            }
        })
}

fn check_table(t: Table) -> Result<(), String> {
    let mut reference = csv::ReaderBuilder::new()
        .delimiter(t.delimiter)
        .has_headers(true)
        .from_reader(t.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reference
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the csv crate refuses the table: {e}"))?;
    let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
        t.buffer,
        Cursor::new(t.text.clone().into_bytes()),
    ));
    let opts = SourceOptions {
        delimiter: Some(t.delimiter),
        has_header: Some(true),
        ..SourceOptions::default()
    };
    let mut src = source::from_reader(Format::Csv, reader, &opts)
        .map_err(|e| format!("the source does not open: {e}"))?;
    let mut ours = Vec::new();
    while let Some(item) = src.next_record() {
        ours.push(item.map_err(|e| format!("a valid table gives an error: {e}"))?);
    }
    if ours.len() != rows.len() {
        return Err(format!(
            "{} rows, the csv crate reads {}",
            ours.len(),
            rows.len()
        ));
    }
    for (i, (user, row)) in ours.iter().zip(&rows).enumerate() {
        let expected: Vec<(String, String)> = t
            .header
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), v.to_string()))
            .collect();
        let mut got: Vec<(String, String)> = user
            .fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut expected = expected;
        expected.sort();
        got.sort();
        if got != expected {
            return Err(format!(
                "row {}: ours {got:?}, the csv crate's {expected:?}",
                i + 1
            ));
        }
        let start = t.starts[i];
        let line = 1 + t.text[..start].matches('\n').count() as u64;
        let pos = user.position;
        if (pos.record, pos.line, pos.byte_offset) != (i as u64 + 1, line, start as u64) {
            return Err(format!(
                "row {} at {pos:?}, written at byte {start} on line {line}",
                i + 1
            ));
        }
    }
    Ok(())
}

#[test]
fn csv_reader_agrees_with_the_csv_crate_on_valid_tables() {
    run("CSV differential", 300, table(), check_table);
}
