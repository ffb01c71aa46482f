//! Why a record is not migrated: the fixed set of [`Reason`]s and the [`Rejection`] with the
//! record's position and field that reports and the checkpoint keep.

use serde::Serialize;

use crate::record::Position;

/// Why a record was rejected: a small fixed set, stable in reports and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    MalformedRecord,
    MissingRequired,
    InvalidUsername,
    InvalidEmail,
    InvalidPhone,
    InvalidBoolean,
    InvalidNumber,
    InvalidDate,
    TooLong,
    TooShort,
    OutOfRange,
    DuplicateUsername,
    DuplicateEmail,
    DuplicatePhone,
    DuplicateAlias,
    InvalidPasswordHash,
    UnimportablePasswordHash,
    NotVerifiable,
    /// An attribute value holds a control character (see [`transform::control_character`]).
    ControlCharacter,
    InvalidGroup,
    /// A federated identity whose provider is not in the `[providers]` table or not in the pool,
    /// with `--unknown-provider reject`.
    UnknownProvider,
    /// More federated identities than Cognito links to one user (five).
    TooManyIdentities,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedRecord => "malformed_record",
            Reason::MissingRequired => "missing_required",
            Reason::InvalidUsername => "invalid_username",
            Reason::InvalidEmail => "invalid_email",
            Reason::InvalidPhone => "invalid_phone",
            Reason::InvalidBoolean => "invalid_boolean",
            Reason::InvalidNumber => "invalid_number",
            Reason::InvalidDate => "invalid_date",
            Reason::TooLong => "too_long",
            Reason::TooShort => "too_short",
            Reason::OutOfRange => "out_of_range",
            Reason::DuplicateUsername => "duplicate_username",
            Reason::DuplicateEmail => "duplicate_email",
            Reason::DuplicatePhone => "duplicate_phone",
            Reason::DuplicateAlias => "duplicate_alias",
            Reason::InvalidPasswordHash => "invalid_password_hash",
            Reason::UnimportablePasswordHash => "unimportable_password_hash",
            Reason::NotVerifiable => "not_verifiable",
            Reason::ControlCharacter => "control_character",
            Reason::InvalidGroup => "invalid_group",
            Reason::UnknownProvider => "unknown_provider",
            Reason::TooManyIdentities => "too_many_identities",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that will not be migrated, and why. Never holds password material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    #[serde(flatten)]
    pub position: PositionJson,
    pub field: String,
    pub reason: Reason,
    pub message: String,
}

/// [`Position`] as it appears in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PositionJson {
    pub record: u64,
    pub line: u64,
    pub byte_offset: u64,
}

impl From<Position> for PositionJson {
    fn from(p: Position) -> Self {
        PositionJson {
            record: p.record,
            line: p.line,
            byte_offset: p.byte_offset,
        }
    }
}

impl Rejection {
    pub fn new(
        position: Position,
        field: &str,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Rejection {
            position: position.into(),
            field: field.to_string(),
            reason,
            message: message.into(),
        }
    }

    pub fn position(&self) -> Position {
        Position {
            record: self.position.record,
            line: self.position.line,
            byte_offset: self.position.byte_offset,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {} ({})",
            self.position(),
            self.field,
            self.message,
            self.reason
        )
    }
}
