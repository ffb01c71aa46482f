//! The generic formats: `csv`, `json` and `ndjson`.
//!
//! They know nothing of any vendor: every column or (flattened) member becomes a field under its
//! own name, and the user's mapping says which field is the username, the password hash and so
//! on. This is what lets the tool read exports of home-grown systems without code.

use super::csv_reader::{CsvRows, Row};
use super::error::{Reason, RecordError, SourceError};
use super::input::Input;
use super::json::{Fields, Obj};
use super::json_stream::JsonRecords;
use super::{
    cell, choose_delimiter, read_header, CsvAdapter, CsvSource, JsonAdapter, JsonSource, Source,
    SourceOptions,
};
use crate::record::{LegacyUser, Position};

/// Every member flattened into `fields`.
pub(crate) struct Flat;

impl JsonAdapter for Flat {
    const CAPTURE: &'static [&'static str] = &[];

    fn convert(
        &mut self,
        _captured: Obj<'_>,
        fields: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError> {
        let mut user = LegacyUser::new(pos);
        user.fields = fields;
        Ok(Some(user))
    }
}

pub(crate) fn open_json(
    input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    let location = input.location.clone();
    let records = JsonRecords::array(input, opts.users_key(), opts.max_record_bytes()).map_err(
        |e| match (e, first) {
            (SourceError::InvalidInput { message, .. }, Some(b'{')) => SourceError::invalid(
                &location,
                format!("{message} (for one JSON object per line, use the ndjson format)"),
            ),
            (e, _) => e,
        },
    )?;
    Ok(Box::new(JsonSource::new(records, Flat)))
}

pub(crate) fn open_ndjson(
    input: Input,
    first: Option<u8>,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<Box<dyn Source>, SourceError> {
    if first == Some(b'[') {
        warnings.push("the input is a JSON array, not NDJSON: read as an array".to_string());
        let records = JsonRecords::array(input, opts.users_key(), opts.max_record_bytes())?;
        return Ok(Box::new(JsonSource::new(records, Flat)));
    }
    Ok(Box::new(JsonSource::new(
        JsonRecords::ndjson(input, opts.max_record_bytes()),
        Flat,
    )))
}

/// Columns by header name.
pub(crate) struct CsvColumns {
    names: Vec<String>,
}

impl CsvColumns {
    pub(crate) fn new(names: Vec<String>) -> Self {
        CsvColumns { names }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Puts every non-empty cell of `row` into `fields` under its column name; a row whose length
    /// differs from the header's is an error.
    pub(crate) fn fill(&self, row: &Row<'_>, fields: &mut Fields) -> Result<(), RecordError> {
        if row.len() != self.names.len() {
            return Err(RecordError::new(
                row.position,
                Reason::MalformedRecord,
                format!(
                    "row has {} fields, the header has {}",
                    row.len(),
                    self.names.len()
                ),
            ));
        }
        for (i, name) in self.names.iter().enumerate() {
            let v = cell(row, i, name)?;
            if !v.is_empty() {
                fields.push(name, v);
            }
        }
        Ok(())
    }
}

/// Every non-empty cell into `fields`.
pub(crate) struct GenericCsv {
    columns: Option<CsvColumns>,
}

impl CsvAdapter for GenericCsv {
    fn convert(&mut self, row: &Row<'_>) -> Result<Option<LegacyUser>, RecordError> {
        let columns = self.columns.get_or_insert_with(|| {
            CsvColumns::new((1..=row.len()).map(|i| format!("col{i}")).collect())
        });
        let mut fields = Fields::with_capacity(256, columns.names.len());
        columns.fill(row, &mut fields)?;
        let mut user = LegacyUser::new(row.position);
        user.fields = fields;
        Ok(Some(user))
    }
}

/// Sets up a CSV reader: delimiter (given or sniffed) and, if `header`, the column names.
pub(crate) fn csv_rows_with_header(
    mut input: Input,
    opts: &SourceOptions,
    header: bool,
    warnings: &mut Vec<String>,
) -> Result<(CsvRows, Option<Vec<String>>), SourceError> {
    let location = input.location.clone();
    let delimiter = choose_delimiter(&mut input, opts, warnings)?;
    let mut rows = CsvRows::new(input, delimiter, opts.max_record_bytes());
    let names = if header {
        let names = read_header(&mut rows, &location, warnings)?;
        if names.is_none() {
            warnings.push("the input is empty".to_string());
        }
        names
    } else {
        None
    };
    Ok((rows, names))
}

pub(crate) fn open_csv(
    input: Input,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<Box<dyn Source>, SourceError> {
    let header = opts.has_header.unwrap_or(true);
    let (rows, names) = csv_rows_with_header(input, opts, header, warnings)?;
    Ok(Box::new(CsvSource::new(
        rows,
        GenericCsv {
            columns: names.map(CsvColumns::new),
        },
    )))
}
