//! The user directory file: the legacy users the migration trigger may still have to migrate, in
//! one SQLite file the trigger reads at sign-in.
//!
//! # Why it exists
//!
//! Cognito's import jobs keep a password only for the hashes Cognito accepts. Everyone else keeps
//! their password through the user-migration Lambda trigger ([`crate::trigger`]), which, when an
//! unknown user signs in, must find that user by the name they typed, check the password against
//! the legacy hash and answer with the attributes the target pool accepts. This file is what the
//! trigger reads: built once by `cognito-migrate directory build` with the same mapping and
//! validation as `plan` (so attributes are already what the pool takes), small enough to ship to
//! Lambda, and fast to open (opening reads the metadata table and nothing else; the trigger then
//! checks the content checksum once per cold start).
//!
//! # Layout (format version 1)
//!
//! * `users`: one row per user: `username` (what Cognito will call the user), lookup keys
//!   `username_key` (folded to lower case unless the pool is case-sensitive), `email_key`
//!   (lower-cased), `phone_key` (E.164) and `preferred_key` — the last three only for pools that
//!   sign users in with those attributes (as username or as alias) —, the Cognito attributes as a
//!   JSON object, the enabled flag, the groups as a JSON array, the hash as
//!   [`PasswordHash::encode`](crate::password::PasswordHash::encode) writes it (or NULL), and the
//!   record's position in the input. Each lookup key has a unique index.
//! * `meta`: format version, pool id, sign-in settings, build time, user count and a content
//!   checksum (`sha256:` over a canonical serialisation of every row, see [`checksum`]), which lets
//!   the trigger check the file at cold start, a local one or a copy it downloaded from S3
//!   ([`DirectoryFile::verify_checksum`]): SQLite does not notice altered bytes inside a row.
//!
//! `PRAGMA application_id` marks the file as a directory (`CMDI`) and `PRAGMA user_version` holds
//! the format version, so a wrong or newer file is refused with a clear message.
//!
//! # Writing and reading
//!
//! [`DirectoryWriter`] streams users into a temporary file next to the destination (one
//! transaction, no journal, indexes built after the load) and renames it into place when complete,
//! so a crash never leaves a half-built directory under the final name. The file is created with
//! mode 0600: it holds password hashes. [`build`] drives a whole build from a source.
//!
//! [`DirectoryFile`] opens a finished file read-only and immutable (no locks, no journal, works on a
//! read-only file system such as a Lambda package) and answers lookups by sign-in name in
//! microseconds. Opening does not scan anything.

mod build;
pub mod checksum;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::pool::PoolSchema;

pub use build::{build, BuildError, BuildSummary, Selection};
pub use writer::DirectoryWriter;

/// The directory file format this build writes and reads.
pub const FORMAT_VERSION: i64 = 1;

/// `PRAGMA application_id` of a directory file: `CMDI` in ASCII.
pub const APPLICATION_ID: i64 = 0x434D_4449;

/// Errors of the directory file. Messages name the file and what is wrong, never a user's data.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    // The cause is part of the message (not a `source`), so that it shows wherever the error is
    // printed, once.
    #[error("directory file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("directory file {path}: SQLite: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("{path} is not a cognito-migrate directory file")]
    NotADirectory { path: PathBuf },
    #[error(
        "directory file {path} has format version {found}; this cognito-migrate reads version \
         {supported} (rebuild it with `cognito-migrate directory build`)"
    )]
    Version {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("directory file {path} is damaged: {message}")]
    Damaged { path: PathBuf, message: String },
    #[error(
        "directory file {path} does not match its checksum (recorded {recorded}, content \
         {computed}): it is incomplete or was altered"
    )]
    ChecksumMismatch {
        path: PathBuf,
        recorded: String,
        computed: String,
    },
    #[error("directory file {path}: two users share the {key} {message}")]
    Duplicate {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

pub(crate) trait SqlContext<T> {
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> SqlContext<T> for rusqlite::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|error| DirectoryError::Sqlite {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// How the target pool signs users in, as far as lookups are concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    /// Users may sign in with their email address (as username or alias).
    pub email: bool,
    /// Users may sign in with their phone number (as username or alias).
    pub phone: bool,
    /// `preferred_username` is an alias.
    pub preferred_username: bool,
    /// Email and/or phone *are* the username (`UsernameAttributes`): Cognito generates the internal
    /// username, so the trigger never answers one.
    pub username_attributes: bool,
    /// The pool compares usernames case-sensitively.
    pub case_sensitive: bool,
}

impl SignIn {
    pub fn of_pool(schema: &PoolSchema) -> SignIn {
        let has = |list: &[String], a: &str| list.iter().any(|x| x == a);
        SignIn {
            email: has(&schema.username_attributes, "email")
                || has(&schema.alias_attributes, "email"),
            phone: has(&schema.username_attributes, "phone_number")
                || has(&schema.alias_attributes, "phone_number"),
            preferred_username: has(&schema.alias_attributes, "preferred_username"),
            username_attributes: !schema.username_attributes.is_empty(),
            case_sensitive: schema.username_case_sensitive,
        }
    }

    /// The lookup key of a username (or preferred username): folded to lower case unless the pool
    /// is case-sensitive.
    pub fn username_key(&self, username: &str) -> String {
        if self.case_sensitive {
            username.to_string()
        } else {
            username.to_lowercase()
        }
    }

    /// The lookup key of an email address: lower case.
    pub fn email_key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// The lookup key of a phone number typed at sign-in: E.164 with spaces, dashes, dots and
    /// parentheses removed; `None` when it cannot be one.
    pub fn phone_key(phone: &str) -> Option<String> {
        let s: String = phone
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        crate::mapping::transform::is_e164(&s).then_some(s)
    }
}

/// Which lookup key found a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    Username,
    Email,
    Phone,
    PreferredUsername,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Username => "username",
            MatchedBy::Email => "email",
            MatchedBy::Phone => "phone_number",
            MatchedBy::PreferredUsername => "preferred_username",
        }
    }
}

/// What the `meta` table says about a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectoryMeta {
    pub format_version: i64,
    pub pool_id: String,
    pub sign_in: SignIn,
    /// Seconds since the Unix epoch.
    pub built_at: u64,
    pub user_count: u64,
    /// `sha256:<hex>` of the content; see [`checksum`].
    pub checksum: String,
    /// The cognito-migrate version that built it.
    pub built_by: String,
}

/// One user as stored. `Debug` never shows the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The username Cognito will give the user (for pools with email or phone as username, the
    /// email or phone number itself).
    pub username: String,
    /// Cognito attributes as mapped for the pool (names as the pool knows them).
    pub attributes: BTreeMap<String, String>,
    pub enabled: bool,
    pub groups: Vec<String>,
    /// The legacy hash in [`PasswordHash::encode`](crate::password::PasswordHash::encode)'s
    /// notation, if the user has one.
    pub password_hash: Option<String>,
    /// 1-based record index in the input the directory was built from.
    pub record: u64,
}

impl fmt::Debug for DirectoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryEntry")
            .field("record", &self.record)
            .field("enabled", &self.enabled)
            .field("attributes", &self.attributes.len())
            .field("groups", &self.groups.len())
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// A user found by a lookup, and the key that found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub entry: DirectoryEntry,
    pub matched_by: MatchedBy,
}

/// An open, finished directory file (read-only). `Send + Sync`: one connection behind a mutex,
/// held only for the microseconds of a lookup.
pub struct DirectoryFile {
    path: PathBuf,
    conn: Mutex<Connection>,
    meta: DirectoryMeta,
}

impl fmt::Debug for DirectoryFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryFile")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

const SELECT_ENTRY: &str =
    "SELECT username, attributes, enabled, groups, password_hash, record FROM users";

impl DirectoryFile {
    /// Opens a directory file read-only, checks its kind and version, and reads its metadata.
    /// Reads a few pages; scans nothing.
    pub fn open(path: impl AsRef<Path>) -> Result<DirectoryFile> {
        let path = path.as_ref().to_path_buf();
        // Fail with a plain I/O error (not SQLite's "unable to open") when the file is missing.
        std::fs::metadata(&path).map_err(|error| DirectoryError::Io {
            path: path.clone(),
            error,
        })?;
        let uri = schema::immutable_uri(&path);
        let conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ctx(&path)?;
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|_| DirectoryError::NotADirectory { path: path.clone() })?;
        if app_id != APPLICATION_ID {
            return Err(DirectoryError::NotADirectory { path });
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .ctx(&path)?;
        if version != FORMAT_VERSION {
            return Err(DirectoryError::Version {
                path,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let meta = schema::read_meta(&conn, &path)?;
        Ok(DirectoryFile {
            path,
            conn: Mutex::new(conn),
            meta,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> &DirectoryMeta {
        &self.meta
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves a read-only connection usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds the user who signs in as `login`: by username first, then — where the pool signs in
    /// with them — by email address, phone number and preferred username.
    pub fn find(&self, login: &str) -> Result<Option<Found>> {
        let login = login.trim();
        if login.is_empty() {
            return Ok(None);
        }
        let sign_in = &self.meta.sign_in;
        let mut keys: Vec<(MatchedBy, &str, String)> = vec![(
            MatchedBy::Username,
            "username_key",
            sign_in.username_key(login),
        )];
        if sign_in.email && login.contains('@') {
            keys.push((MatchedBy::Email, "email_key", SignIn::email_key(login)));
        }
        if sign_in.phone {
            if let Some(p) = SignIn::phone_key(login) {
                keys.push((MatchedBy::Phone, "phone_key", p));
            }
        }
        if sign_in.preferred_username {
            keys.push((
                MatchedBy::PreferredUsername,
                "preferred_key",
                sign_in.username_key(login),
            ));
        }
        let conn = self.conn();
        for (matched_by, column, key) in keys {
            let sql = format!("{SELECT_ENTRY} WHERE {column} = ?1");
            let mut stmt = conn.prepare_cached(&sql).ctx(&self.path)?;
            let row = stmt
                .query_row([&key], |r| self.entry_from_row(r))
                .optional()
                .ctx(&self.path)?;
            if let Some(entry) = row {
                return Ok(Some(Found {
                    entry: entry?,
                    matched_by,
                }));
            }
        }
        Ok(None)
    }

    /// The password hash of the `n`-th user (0-based, taken modulo the user count), or `None` for
    /// an empty directory or a user without a hash. The trigger verifies unknown users' passwords
    /// against such a hash, so that "no such user" takes as long as "wrong password".
    pub fn hash_at(&self, n: u64) -> Result<Option<String>> {
        if self.meta.user_count == 0 {
            return Ok(None);
        }
        let id = (n % self.meta.user_count) as i64 + 1;
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT password_hash FROM users WHERE id = ?1")
            .ctx(&self.path)?;
        Ok(stmt
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()
            .ctx(&self.path)?
            .flatten())
    }

    /// Recomputes the content checksum (reads every row: about a second per million users) and
    /// compares it with the recorded one. Also checks the user count.
    pub fn verify_checksum(&self) -> Result<()> {
        let conn = self.conn();
        let (computed, count) = checksum::of_file(&conn, &self.path, &self.meta)?;
        if count != self.meta.user_count {
            return Err(DirectoryError::Damaged {
                path: self.path.clone(),
                message: format!(
                    "it holds {count} users but its metadata says {}",
                    self.meta.user_count
                ),
            });
        }
        if computed != self.meta.checksum {
            return Err(DirectoryError::ChecksumMismatch {
                path: self.path.clone(),
                recorded: self.meta.checksum.clone(),
                computed,
            });
        }
        Ok(())
    }

    fn entry_from_row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<DirectoryEntry>> {
        let username: String = r.get(0)?;
        let attributes: String = r.get(1)?;
        let enabled: bool = r.get(2)?;
        let groups: String = r.get(3)?;
        let password_hash: Option<String> = r.get(4)?;
        let record: i64 = r.get(5)?;
        let damaged = |what: &str| DirectoryError::Damaged {
            path: self.path.clone(),
            message: format!("record {record}: {what} is not valid JSON"),
        };
        let attributes = match serde_json::from_str(&attributes) {
            Ok(a) => a,
            Err(_) => return Ok(Err(damaged("attributes"))),
        };
        let groups = match serde_json::from_str(&groups) {
            Ok(g) => g,
            Err(_) => return Ok(Err(damaged("groups"))),
        };
        Ok(Ok(DirectoryEntry {
            username,
            attributes,
            enabled,
            groups,
            password_hash,
            record: u64::try_from(record).unwrap_or(0),
        }))
    }
}

/// Who a directory user is, without their attributes or hash: for the id map and `progress`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryIdentity {
    /// 1-based record index in the input the directory was built from.
    pub record: u64,
    pub username: String,
    /// The user's `custom:legacy_id` attribute, if the mapping wrote one.
    pub legacy_id: Option<String>,
}

impl DirectoryFile {
    /// Every user's [`DirectoryIdentity`], in record order. Reads every row (no hash is read).
    pub fn identities(&self) -> Result<Vec<DirectoryIdentity>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT record, username, json_extract(attributes, '$.\"custom:legacy_id\"') \
                 FROM users ORDER BY record",
            )
            .ctx(&self.path)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DirectoryIdentity {
                    record: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    username: r.get(1)?,
                    legacy_id: match r.get_ref(2)? {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Text(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                        rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                        rusqlite::types::ValueRef::Blob(_) => None,
                    },
                })
            })
            .ctx(&self.path)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().ctx(&self.path)
    }
}

/// Opens `path` for a quick look at its metadata without keeping it open.
pub fn read_meta(path: impl AsRef<Path>) -> Result<DirectoryMeta> {
    Ok(DirectoryFile::open(path)?.meta)
}
