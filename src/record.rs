//! The canonical legacy-user record.
//!
//! Every source (CSV, JSON, Auth0, Firebase, Keycloak, Django, another pool) turns its export into a
//! stream of [`LegacyUser`] values, so that mapping, validation, routing and the writers only ever see
//! one shape. Fields are kept flat and named as the source names them (`email`, `user_metadata.plan`);
//! the mapping decides what becomes which Cognito attribute. Password material, group membership and
//! the enabled flag are typed, because they are not attributes and need special handling.

use std::collections::BTreeMap;
use std::fmt;

/// Where a record was found in its input, for error messages and for resuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// 1-based index of the record in the input (header rows not counted).
    pub record: u64,
    /// 1-based line on which the record starts; 0 where the input has no lines (e.g. ListUsers).
    pub line: u64,
    /// Byte offset of the record's first byte in the (decompressed) input.
    pub byte_offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "record {} (line {})", self.record, self.line)
        } else {
            write!(f, "record {}", self.record)
        }
    }
}

/// Password material as the source holds it, before the password module parses it.
///
/// `Debug` never shows the material itself.
#[derive(Clone, PartialEq, Eq)]
pub enum RawPassword {
    /// A self-describing string: modular crypt (`$2b$…`, `$6$…`, `$P$…`), PHC (`$argon2id$…`,
    /// `$pbkdf2-sha256$…`), Django (`pbkdf2_sha256$…`, `bcrypt_sha256$…`, `argon2$…`) and the like.
    Encoded(String),
    /// Firebase's modified scrypt: base64 hash and salt of one user; the project's `hash_config`
    /// (signer key, salt separator, rounds, mem_cost) comes from the run's settings.
    Firebase { hash: String, salt: String },
    /// A Keycloak password credential: its `secretData` and `credentialData` JSON strings.
    Keycloak {
        secret_data: String,
        credential_data: String,
    },
    /// An ASP.NET Identity (v2 or v3) `PasswordHash` column: base64 of the versioned blob.
    AspNetIdentity(String),
}

impl fmt::Debug for RawPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            RawPassword::Encoded(_) => "Encoded",
            RawPassword::Firebase { .. } => "Firebase",
            RawPassword::Keycloak { .. } => "Keycloak",
            RawPassword::AspNetIdentity(_) => "AspNetIdentity",
        };
        write!(f, "RawPassword::{kind}(<redacted>)")
    }
}

/// One user of the legacy system, as read from its export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LegacyUser {
    pub position: Position,
    /// Flat source fields by the source's own names; nested objects are joined with `.`
    /// (`user_metadata.plan`), arrays of scalars with `,`.
    pub fields: BTreeMap<String, String>,
    /// Group (or role) names the user belongs to.
    pub groups: Vec<String>,
    /// `false` for blocked / disabled / inactive users.
    pub enabled: bool,
    /// Password material, if the export has any for this user.
    pub password: Option<RawPassword>,
}

impl LegacyUser {
    pub fn new(position: Position) -> Self {
        LegacyUser {
            position,
            enabled: true,
            ..Default::default()
        }
    }

    /// A field's value, if present and not empty.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}
