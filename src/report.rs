//! CSV reports that people open in spreadsheets (`rejects.csv`, `report --failed`, a directory
//! build's rejects): one writer, so that every such file neutralises formulas the same way.
//!
//! Why: a cell that starts with `=`, `+`, `-` or `@` (or a TAB or CR, which some spreadsheets
//! skip before looking for one) is run as a formula when the file is opened, and usernames, field
//! names and messages in these reports come from the legacy export, i.e. from anyone who could
//! sign up there (`=HYPERLINK(…)`). OWASP's rule for CSV injection is applied: such a cell gets a
//! leading `'`, which spreadsheets show as text; quoting is the `csv` crate's.
//!
//! Cognito's import CSVs are not reports: they are data for Cognito, written exactly
//! ([`crate::plan::chunks`]), and never go through here.

use std::borrow::Cow;
use std::io::{self, Write};

/// Whether a spreadsheet could take a cell that starts with `c` for a formula.
fn starts_formula(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// `cell` as it is safe to put in a report: with a `'` before it if it starts with `=`, `+`, `-`,
/// `@`, TAB or CR, else unchanged.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if starts_formula(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A CSV report: a header row, then rows whose every cell is [`neutralise`]d.
pub struct ReportCsv<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> ReportCsv<W> {
    /// Starts a report on `out` with the given column names.
    pub fn new(out: W, header: &[&str]) -> io::Result<ReportCsv<W>> {
        let mut r = ReportCsv {
            out: csv::Writer::from_writer(out),
        };
        r.row(header)?;
        Ok(r)
    }

    /// Writes one row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> io::Result<()> {
        self.out
            .write_record(cells.iter().map(|c| neutralise(c.as_ref()).into_owned()))?;
        Ok(())
    }

    /// Flushes what is buffered to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes, then gives the underlying writer back (e.g. to sync or rename the file).
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_quote_and_the_rest_stay_exact() {
        for (cell, want) in [
            ("=1+1@example.com", "'=1+1@example.com"),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("ada@example.com", "ada@example.com"),
            ("a=b", "a=b"),
            ("", ""),
            ("'quoted", "'quoted"),
            (" =1", " =1"),
        ] {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn a_report_neutralises_every_cell_and_reads_back() {
        let mut r = ReportCsv::new(Vec::new(), &["username", "field", "n"]).unwrap();
        r.row(&["=1+1@example.com", "=HYPERLINK(\"http://evil\",\"x\")", "3"])
            .unwrap();
        let text = String::from_utf8(r.into_inner().unwrap()).unwrap();
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][0], "'=1+1@example.com");
        assert_eq!(&rows[0][1], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(&rows[0][2], "3");
        assert!(!text.lines().skip(1).any(|l| l.starts_with('=')), "{text}");
    }
}
