//! Streaming readers that turn a legacy export into [`LegacyUser`] records.
//!
//! This is the entry point of every migration: a [`Source`] reads one export (a file, stdin or,
//! through [`from_reader`], any byte stream such as an S3 object) and yields one record at a time
//! with its [`Position`](crate::record::Position), so that inputs of any size are read in constant
//! memory and every rejection can name its line. Generic formats (`csv`, `json`, `ndjson`) keep
//! all fields as they are; vendor formats (Auth0, Firebase, Keycloak, Django) also know where the
//! vendor keeps password hashes, group membership and the disabled flag, and come with a built-in
//! mapping ([`builtin_mapping`]).
//!
//! | format | input | password |
//! |---|---|---|
//! | `csv` | header row + rows; `,` or sniffed `;`/tab/`\|`; BOM stripped | in `fields`, the mapping picks it |
//! | `json` | `[ {...}, ... ]` or `{"users": [...]}` | in `fields` |
//! | `ndjson` | one object per line | in `fields` |
//! | `auth0` | user export (NDJSON) or JSON array; password-hash export | `passwordHash`, `custom_password_hash` → `Encoded` |
//! | `firebase` | `auth:export` JSON (`{"users":[...]}`) or headerless CSV | `passwordHash` + `salt` → `Firebase` |
//! | `keycloak` | realm export / `*-users-N.json` (`{"users":[...]}`) or an array of users | password credential → `Keycloak` |
//! | `django` | `dumpdata` JSON array or JSONL, or a CSV of `auth_user` | `password` → `Encoded` |
//! | `cognito` | another user pool: ListUsers + group membership ([`cognito`]) | none (Cognito gives no hashes) |
//!
//! Inputs are a path, `-` (stdin) or `s3://bucket/key` ([`s3`]: streamed, resumed by range when
//! the connection breaks); gzip is recognised by its magic bytes and decompressed on the fly.
//!
//! Positions: `record` is the 1-based index of the record in the input (a CSV header row is not
//! counted; entries a vendor reader skips — Keycloak service accounts, Django entries of other
//! models — keep their number, so numbers can have gaps); `line` is the 1-based line of the
//! record's first byte and `byte_offset` that byte's offset in the decompressed stream (after a
//! BOM, which is stripped with a warning), so `input[byte_offset..]` starts the record.
//!
//! Errors: a [`RecordError`] is about one record and reading goes on, except a *fatal* one (the
//! input broke off or its structure is lost), which is the last item; a [`SourceError`] means the
//! input cannot be read at all. Generic sources never interpret values; the vendor readers fail a
//! record only where the vendor's own structure is violated (no `user_id`/`localId`/`username`,
//! a password credential without its data…). Missing emails, bad phone numbers and duplicates are
//! for the mapping and the run to reject.

mod auth0;
pub mod cognito;
mod csv_reader;
mod django;
mod error;
pub mod fingerprint;
mod firebase;
mod firebase_layout;
mod generic;
mod input;
pub mod join;
mod json;
mod json_stream;
mod keycloak;
pub mod s3;

use std::fmt;
use std::io::BufRead;
use std::str::FromStr;

pub use error::{Reason, RecordError, SourceError};
pub use firebase_layout::FirebaseLayout;
pub use input::{decompress_if_gzip, open_reader};

use crate::record::{LegacyUser, Position};
use csv_reader::{CsvRows, Row};
use input::Input;
use json::{Fields, Obj};
use json_stream::JsonRecords;

/// The kinds of export this tool reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// Any CSV with a header row.
    Csv,
    /// A JSON array of objects (or an object with a `users` array).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Auth0 user export or password-hash export.
    Auth0,
    /// `firebase auth:export`, JSON or CSV.
    Firebase,
    /// Keycloak realm or users export.
    Keycloak,
    /// Django `dumpdata auth.user` or a CSV of `auth_user`.
    Django,
    /// Another Cognito user pool, read through ListUsers.
    Cognito,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Csv,
        Format::Json,
        Format::Ndjson,
        Format::Auth0,
        Format::Firebase,
        Format::Keycloak,
        Format::Django,
        Format::Cognito,
    ];

    /// The lower-case name used on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Auth0 => "auth0",
            Format::Firebase => "firebase",
            Format::Keycloak => "keycloak",
            Format::Django => "django",
            Format::Cognito => "cognito",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (expected one of: csv, json, ndjson, auth0, firebase, keycloak, django, cognito)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    /// Case-insensitive; `jsonl` is accepted for `ndjson`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "jsonl" {
            return Ok(Format::Ndjson);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Reading options; `Default` suits every format's usual export.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// CSV delimiter; `None` sniffs `,` `;` tab or `|` from the header line (generic and Django
    /// CSV; Firebase CSV always uses `,`).
    pub delimiter: Option<u8>,
    /// Whether the CSV's first row is a header. `None`: yes for `csv` and Django CSV; for Firebase
    /// CSV (which has none) a first row starting with `UID` is taken as a header. `Some(false)` on
    /// `csv` names the columns `col1`, `col2`, …
    pub has_header: Option<bool>,
    /// Name of the array member holding the users when a JSON document is an object
    /// (default `users`, as in Firebase and Keycloak exports).
    pub users_key: Option<String>,
    /// Largest accepted record in bytes (default 16 MiB); a larger one is a `malformed_record`
    /// error and reading goes on. Bounds memory use.
    pub max_record_bytes: Option<usize>,
    /// Keycloak: also read service-account users (skipped by default, with a warning).
    pub include_service_accounts: bool,
    /// Django JSON: read only entries of this model (e.g. `accounts.customuser`). By default
    /// entries of `auth.user` and of any model whose fields have a `password` are read.
    pub django_model: Option<String>,
    /// Firebase CSV: read every row in this firebase-tools layout instead of recognising each
    /// row's layout (see [`FirebaseLayout`]).
    pub firebase_layout: Option<FirebaseLayout>,
}

impl SourceOptions {
    fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
            .unwrap_or(json_stream::DEFAULT_MAX_RECORD_BYTES)
    }

    fn users_key(&self) -> &str {
        self.users_key.as_deref().unwrap_or("users")
    }
}

/// A stream of legacy users.
pub trait Source: Send {
    /// The next record, a record-level error (the run goes on: it becomes a rejection with its
    /// position), or `None` at the end. An error with [`RecordError::fatal`] set is the last item.
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>>;

    /// Non-fatal notes gathered while reading (e.g. "BOM stripped"), drained by the caller.
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Opens `location` (a path, or `-` for stdin; gzip decompressed) as an export of `format`.
pub fn open(
    format: Format,
    location: &str,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    if format == Format::Cognito {
        return Err(cognito_unsupported());
    }
    let reader = open_reader(location)?;
    from_reader_named(format, reader, location, opts)
}

/// Reads an export of `format` from any byte stream (gzip detected by its magic bytes), e.g. an
/// S3 object body.
pub fn from_reader(
    format: Format,
    reader: Box<dyn BufRead + Send>,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    from_reader_named(format, reader, "<input>", opts)
}

/// [`from_reader`] with a name for the input in messages.
pub fn from_reader_named(
    format: Format,
    reader: Box<dyn BufRead + Send>,
    location: &str,
    opts: &SourceOptions,
) -> Result<Box<dyn Source>, SourceError> {
    if format == Format::Cognito {
        return Err(cognito_unsupported());
    }
    let (reader, _) = decompress_if_gzip(reader).map_err(|e| SourceError::io(location, e))?;
    // The decompressed text may start in pieces too.
    let reader = input::with_first_line(reader).map_err(|e| SourceError::io(location, e))?;
    let mut input = Input::new(reader, location);
    let head = input.fill().map_err(|e| SourceError::io(location, e))?;
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Err(SourceError::invalid(
            location,
            "the input is UTF-16; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)",
        ));
    }
    let (first, bom) = input
        .sniff_keep()
        .map_err(|e| SourceError::io(location, e))?;
    let mut warnings = Vec::new();
    if bom {
        warnings.push("UTF-8 byte-order mark stripped".to_string());
    }
    let mut source = match format {
        Format::Csv => generic::open_csv(input, opts, &mut warnings)?,
        Format::Json => generic::open_json(input, first, opts)?,
        Format::Ndjson => generic::open_ndjson(input, first, opts, &mut warnings)?,
        Format::Auth0 => auth0::open(input, first, opts)?,
        Format::Firebase => firebase::open(input, first, opts, &mut warnings)?,
        Format::Keycloak => keycloak::open(input, first, opts)?,
        Format::Django => django::open(input, first, opts, &mut warnings)?,
        Format::Cognito => unreachable!(),
    };
    if !warnings.is_empty() {
        source = Box::new(WithWarnings {
            inner: source,
            pending: warnings,
        });
    }
    Ok(source)
}

/// Opens an S3 object (see [`s3`]) as an export of `format`; gzip is decompressed. Blocks until
/// the first bytes arrive, so call it outside async code (e.g. in `spawn_blocking`); the download
/// runs on `runtime`.
pub fn open_s3(
    format: Format,
    client: aws_sdk_s3::Client,
    object: &s3::S3Object,
    read: &s3::S3ReadOptions,
    opts: &SourceOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<Box<dyn Source>, SourceError> {
    if format == Format::Cognito {
        return Err(cognito_unsupported());
    }
    let name = object.location.to_string();
    let reader = s3::open_reader(client, object, read, runtime)?;
    let reader: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::with_capacity(
        input::BUFFER_SIZE,
        reader,
    ));
    let mut reader = input::with_first_line(reader).map_err(|e| SourceError::io(&name, e))?;
    let head = reader.fill_buf().map_err(|e| SourceError::io(&name, e))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if !gzip && read.start_offset == 0 && name.to_ascii_lowercase().ends_with(".gz") {
        return Err(SourceError::invalid(
            &name,
            "the name ends in .gz but the content is not gzip",
        ));
    }
    from_reader_named(format, reader, &name, opts)
}

fn cognito_unsupported() -> SourceError {
    SourceError::Unsupported(
        "the cognito format is read from a user pool (ListUsers), not from a file".to_string(),
    )
}

/// The built-in mapping (TOML, in the mapping module's syntax) of a vendor format; `None` for
/// the generic formats, whose columns are the user's own (see `samples/csv/mapping.toml`).
pub fn builtin_mapping(format: Format) -> Option<&'static str> {
    match format {
        Format::Auth0 => Some(include_str!("builtin_mappings/auth0.toml")),
        Format::Firebase => Some(include_str!("builtin_mappings/firebase.toml")),
        Format::Keycloak => Some(include_str!("builtin_mappings/keycloak.toml")),
        Format::Django => Some(include_str!("builtin_mappings/django.toml")),
        Format::Cognito => Some(include_str!("builtin_mappings/cognito.toml")),
        Format::Csv | Format::Json | Format::Ndjson => None,
    }
}

/// The field of a vendor format's records that holds the user's id in the legacy system (the one
/// its built-in mapping writes to `custom:legacy_id`); `None` for the generic formats. Recorded
/// with each user for the id map even when the pool has no `custom:legacy_id`.
pub fn legacy_id_field(format: Format) -> Option<&'static str> {
    match format {
        Format::Auth0 => Some("user_id"),
        Format::Firebase => Some("localId"),
        Format::Keycloak | Format::Django => Some("id"),
        Format::Cognito => Some("sub"),
        Format::Csv | Format::Json | Format::Ndjson => None,
    }
}

/// Prepends warnings found while opening to the source's own.
struct WithWarnings {
    inner: Box<dyn Source>,
    pending: Vec<String>,
}

impl Source for WithWarnings {
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>> {
        self.inner.next_record()
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let mut w = std::mem::take(&mut self.pending);
        w.extend(self.inner.take_warnings());
        w
    }
}

// ---------------------------------------------------------------------------------------------
// Shared drivers: a record splitter plus a per-format adapter.

/// Turns one JSON object into a user; `Ok(None)` skips the entry (not a user).
pub(crate) trait JsonAdapter: Send {
    /// Top-level members the adapter interprets itself: they come parsed in `captured`, and all
    /// other members come flattened in `fields`.
    const CAPTURE: &'static [&'static str];

    fn convert(
        &mut self,
        captured: Obj<'_>,
        fields: Fields,
        pos: Position,
    ) -> Result<Option<LegacyUser>, RecordError>;

    /// Called once at the end of the input, for summary warnings.
    fn finish(&mut self, _warnings: &mut Vec<String>) {}
}

pub(crate) struct JsonSource<A> {
    records: JsonRecords,
    adapter: A,
    warnings: Vec<String>,
    finished: bool,
}

impl<A: JsonAdapter> JsonSource<A> {
    pub(crate) fn new(records: JsonRecords, adapter: A) -> Self {
        JsonSource {
            records,
            adapter,
            warnings: Vec::new(),
            finished: false,
        }
    }
}

impl<A: JsonAdapter> Source for JsonSource<A> {
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>> {
        loop {
            let (pos, bytes) = match self.records.next_raw() {
                None => {
                    if !self.finished {
                        self.finished = true;
                        self.adapter.finish(&mut self.warnings);
                    }
                    return None;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(r)) => r,
            };
            // simdutf8 validates with SIMD (several times std's speed on a record); only an
            // invalid record is validated again by std, for the position of the bad byte.
            let text =
                match simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes)) {
                    Ok(t) => t,
                    Err(e) => {
                        let (line, col) = line_col(bytes, e.valid_up_to());
                        return Some(Err(RecordError::new(
                            pos,
                            Reason::InvalidJson,
                            format!("not valid UTF-8 at line {}, column {col}", pos.line + line),
                        )));
                    }
                };
            let mut fields = Fields::with_source(text, 256, 32);
            let captured = match json::parse_record(text, A::CAPTURE, &mut fields) {
                Ok(Some(captured)) => captured,
                Ok(None) => {
                    return Some(Err(RecordError::new(
                        pos,
                        Reason::MalformedRecord,
                        "expected a JSON object",
                    )))
                }
                Err(e) => {
                    let (line, col) = line_col(bytes, e.offset);
                    return Some(Err(RecordError::new(
                        pos,
                        Reason::InvalidJson,
                        format!(
                            "invalid JSON at line {}, column {col}: {}",
                            pos.line + line,
                            e.message
                        ),
                    )));
                }
            };
            if fields.overflowed() {
                return Some(Err(RecordError::new(
                    pos,
                    Reason::MalformedRecord,
                    format!(
                        "its fields take more than {} MiB once nested members are flattened",
                        crate::record::MAX_FIELDS_TEXT >> 20
                    ),
                )));
            }
            match self.adapter.convert(captured, fields, pos) {
                Ok(Some(mut user)) => {
                    // The line's bytes belong to the reader's buffer, which moves on.
                    user.fields.detach_source();
                    return Some(Ok(user));
                }
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let mut w = self.records.take_warnings();
        w.append(&mut self.warnings);
        w
    }
}

/// Lines after the first (0-based) and 1-based column of byte `offset` in `bytes`.
fn line_col(bytes: &[u8], offset: usize) -> (u64, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = input::count_newlines(before);
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(i) => offset - i,
        None => offset + 1,
    };
    (line, col)
}

/// Turns one CSV row into a user; `Ok(None)` skips the row.
pub(crate) trait CsvAdapter: Send {
    fn convert(&mut self, row: &Row<'_>) -> Result<Option<LegacyUser>, RecordError>;

    fn finish(&mut self, _warnings: &mut Vec<String>) {}
}

pub(crate) struct CsvSource<A> {
    rows: CsvRows,
    adapter: A,
    warnings: Vec<String>,
    finished: bool,
}

impl<A: CsvAdapter> CsvSource<A> {
    pub(crate) fn new(rows: CsvRows, adapter: A) -> Self {
        CsvSource {
            rows,
            adapter,
            warnings: Vec::new(),
            finished: false,
        }
    }
}

impl<A: CsvAdapter> Source for CsvSource<A> {
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>> {
        loop {
            let row = match self.rows.next_row() {
                None => {
                    if !self.finished {
                        self.finished = true;
                        self.adapter.finish(&mut self.warnings);
                    }
                    return None;
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(row)) => row,
            };
            match self.adapter.convert(&row) {
                Ok(Some(user)) => return Some(Ok(user)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// A CSV cell as text.
pub(crate) fn cell<'a>(row: &Row<'a>, i: usize, name: &str) -> Result<&'a str, RecordError> {
    std::str::from_utf8(row.get(i)).map_err(|_| {
        RecordError::new(row.position, Reason::BadValue, "not valid UTF-8").with_field(name)
    })
}

/// Reads the header row of a CSV into unique, trimmed column names (`col{N}` for blank ones;
/// duplicates get `_2`, `_3`… with a warning).
pub(crate) fn read_header(
    rows: &mut CsvRows,
    location: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<String>>, SourceError> {
    let row = match rows.next_header() {
        None => return Ok(None),
        Some(Err(e)) => return Err(SourceError::invalid(location, e.to_string())),
        Some(Ok(row)) => row,
    };
    let mut names: Vec<String> = Vec::with_capacity(row.len());
    for (i, raw) in row.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .map_err(|_| SourceError::invalid(location, "the header row is not valid UTF-8"))?
            .trim();
        let mut name = if name.is_empty() {
            format!("col{}", i + 1)
        } else {
            name.to_string()
        };
        if names.contains(&name) {
            let mut k = 2;
            while names.contains(&format!("{name}_{k}")) {
                k += 1;
            }
            let renamed = format!("{name}_{k}");
            warnings.push(format!(
                "duplicate column `{name}` (column {}) renamed `{renamed}`",
                i + 1
            ));
            name = renamed;
        }
        names.push(name);
    }
    Ok(Some(names))
}

/// Picks the CSV delimiter: the option, or sniffed from the first line (with a warning if it is
/// not a comma).
pub(crate) fn choose_delimiter(
    input: &mut Input,
    opts: &SourceOptions,
    warnings: &mut Vec<String>,
) -> Result<u8, SourceError> {
    if let Some(d) = opts.delimiter {
        return Ok(d);
    }
    let d = csv_reader::sniff_delimiter(input).map_err(|e| SourceError::io(&input.location, e))?;
    if d != b',' {
        let shown = if d == b'\t' {
            "tab".to_string()
        } else {
            format!("`{}`", d as char)
        };
        warnings.push(format!("delimiter {shown} detected from the header row"));
    }
    Ok(d)
}

/// Reads a boolean as exports write it: `true`/`false`, `t`/`f`, `1`/`0`, `yes`/`no`
/// (case-insensitive).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    let yes = ["true", "t", "1", "yes", "y"];
    let no = ["false", "f", "0", "no", "n"];
    if yes.iter().any(|y| s.eq_ignore_ascii_case(y)) {
        Some(true)
    } else if no.iter().any(|n| s.eq_ignore_ascii_case(n)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
