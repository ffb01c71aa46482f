//! Errors of the source readers.
//!
//! Two kinds, because the run treats them differently: a [`SourceError`] means the input cannot be
//! read at all (nothing to migrate, the run stops before it starts), while a [`RecordError`] is about
//! one record, which becomes a rejection with its [`Position`] while the run goes on. Messages never
//! quote record content, so no password material can reach a log or a report through them.

use std::fmt;
use std::io;

use crate::record::Position;

/// Why a record could not be read: a small fixed set of codes for reports and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The record's structure is wrong: a CSV row with the wrong number of fields, a JSON element
    /// that is not an object, a record larger than the limit.
    MalformedRecord,
    /// The record is not valid JSON (or the JSON around it is broken).
    InvalidJson,
    /// A field the format requires is absent.
    MissingField,
    /// A field has a value the format does not allow (bad UTF-8, `is_active` that is no boolean…).
    BadValue,
    /// The input could not be read any further (I/O or decompression error).
    ReadError,
}

impl Reason {
    /// The stable code used in reports: `malformed_record`, `invalid_json`, `missing_field`,
    /// `bad_value`, `read_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedRecord => "malformed_record",
            Reason::InvalidJson => "invalid_json",
            Reason::MissingField => "missing_field",
            Reason::BadValue => "bad_value",
            Reason::ReadError => "read_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with one record.
///
/// Normally the source goes on with the next record after returning one. A *fatal* one
/// ([`RecordError::fatal`]: the input broke off, or its structure is lost so that no later record can
/// be found reliably) is always the last item a source yields; the caller should fail the run
/// rather than count it as one more rejection, since the rest of the input was never read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {reason}{}: {message}", field.as_ref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
pub struct RecordError {
    /// Where the record starts.
    pub position: Position,
    /// The field at fault, where there is one.
    pub field: Option<String>,
    pub reason: Reason,
    /// Human-readable detail; never contains record content.
    pub message: String,
    /// True when the source cannot go on after this error (see the type's documentation).
    pub fatal: bool,
}

impl RecordError {
    pub fn new(position: Position, reason: Reason, message: impl Into<String>) -> Self {
        RecordError {
            position,
            field: None,
            reason,
            message: message.into(),
            fatal: false,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }

    pub(crate) fn missing(position: Position, field: &str) -> Self {
        RecordError::new(
            position,
            Reason::MissingField,
            format!("required field `{field}` is missing"),
        )
        .with_field(field)
    }

    pub(crate) fn read_error(position: Position, err: &io::Error) -> Self {
        RecordError::new(
            position,
            Reason::ReadError,
            format!("input could not be read further: {err}"),
        )
        .fatal()
    }
}

/// The input cannot be opened or read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Opening or reading the input failed (missing file, permission, broken gzip header…).
    #[error("cannot read {location}")]
    Io {
        location: String,
        #[source]
        source: io::Error,
    },
    /// The location or format is not handled by this reader (e.g. `s3://` here, `cognito`).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The input is readable but not of the expected shape (no header row, no `users` array…).
    #[error("{location}: {message}")]
    InvalidInput { location: String, message: String },
}

impl SourceError {
    pub(crate) fn io(location: &str, source: io::Error) -> Self {
        SourceError::Io {
            location: location.to_string(),
            source,
        }
    }

    pub(crate) fn invalid(location: &str, message: impl Into<String>) -> Self {
        SourceError::InvalidInput {
            location: location.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_position_reason_and_field() {
        let pos = Position {
            record: 3,
            line: 7,
            byte_offset: 120,
        };
        let e = RecordError::missing(pos, "email");
        assert_eq!(
            e.to_string(),
            "record 3 (line 7): missing_field (field `email`): required field `email` is missing"
        );
        assert!(!e.fatal);
        let e = RecordError::new(pos, Reason::InvalidJson, "expected `,`");
        assert_eq!(
            e.to_string(),
            "record 3 (line 7): invalid_json: expected `,`"
        );
    }
}
