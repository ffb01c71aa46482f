//! Writing a directory file: stream users in, get a complete file (or none) out.
//!
//! Built for millions of users in constant memory: rows go through one prepared statement inside
//! one transaction with no journal (the file is a temporary one nobody else sees, so a crash loses
//! nothing that matters), SQLite's page cache is bounded, and the lookup indexes are created after
//! the load. The checksum is accumulated as rows go in. [`DirectoryWriter::finish`] renames the
//! finished file into place; dropping an unfinished writer deletes the temporary file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::checksum::{ContentHasher, RowRef};
use super::schema::{self, CREATE_TABLES, INDEXES, INSERT_USER};
use super::{
    DirectoryEntry, DirectoryError, DirectoryMeta, Result, SignIn, SqlContext, APPLICATION_ID,
    FORMAT_VERSION,
};
use crate::mapping::MappedUser;
use crate::password::PasswordHash;

/// Streams users into a new directory file. See the [module documentation](self).
pub struct DirectoryWriter {
    conn: Option<Connection>,
    tmp: PathBuf,
    path: PathBuf,
    pool_id: String,
    sign_in: SignIn,
    next_id: i64,
    hasher: ContentHasher,
    finished: bool,
}

impl std::fmt::Debug for DirectoryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryWriter")
            .field("path", &self.path)
            .field("users", &self.count())
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DirectoryError + '_ {
    move |error| DirectoryError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl DirectoryWriter {
    /// Starts a directory for the pool `pool_id` that signs users in as `sign_in` says. The file
    /// appears at `path` (replacing any file there) only when [`finish`](Self::finish) succeeds;
    /// until then rows go to a hidden temporary file next to it, created with mode 0600.
    pub fn create(path: impl AsRef<Path>, pool_id: &str, sign_in: SignIn) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .ok_or_else(|| DirectoryError::Io {
                path: path.clone(),
                error: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "the output path has no file name",
                ),
            })?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        crate::fs::create_private(&tmp).map_err(io_err(&tmp))?;
        let mut writer = DirectoryWriter {
            conn: None,
            tmp: tmp.clone(),
            path,
            pool_id: pool_id.to_string(),
            hasher: ContentHasher::new(pool_id, &sign_in),
            sign_in,
            next_id: 1,
            finished: false,
        };
        let conn = Connection::open(&tmp).ctx(&tmp)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; \
             PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-32768; PRAGMA temp_store=FILE; \
             PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={FORMAT_VERSION};"
        ))
        .ctx(&tmp)?;
        conn.execute_batch(CREATE_TABLES).ctx(&tmp)?;
        conn.execute_batch("BEGIN").ctx(&tmp)?;
        writer.conn = Some(conn);
        Ok(writer)
    }

    /// Users added so far.
    pub fn count(&self) -> u64 {
        (self.next_id - 1) as u64
    }

    /// Where the finished file will be.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sign_in(&self) -> &SignIn {
        &self.sign_in
    }

    /// Adds a mapped user with its parsed hash (stored as [`PasswordHash::encode`] writes it).
    pub fn add(&mut self, user: &MappedUser, hash: Option<&PasswordHash>) -> Result<()> {
        self.add_parts(
            &user.username,
            &user.attributes.to_map(),
            user.enabled,
            &user.groups,
            hash.map(PasswordHash::encode).as_deref(),
            user.position.record,
        )
    }

    /// Adds a user given as a [`DirectoryEntry`] (for tests and tools that build entries directly).
    pub fn add_entry(&mut self, entry: &DirectoryEntry) -> Result<()> {
        self.add_parts(
            &entry.username,
            &entry.attributes,
            entry.enabled,
            &entry.groups,
            entry.password_hash.as_deref(),
            entry.record,
        )
    }

    fn add_parts(
        &mut self,
        username: &str,
        attributes: &BTreeMap<String, String>,
        enabled: bool,
        groups: &[String],
        password_hash: Option<&str>,
        record: u64,
    ) -> Result<()> {
        let sign_in = &self.sign_in;
        let username_key = sign_in.username_key(username);
        let email_key = attributes
            .get("email")
            .filter(|_| sign_in.email)
            .map(|e| SignIn::email_key(e));
        let phone_key = attributes
            .get("phone_number")
            .filter(|_| sign_in.phone)
            .and_then(|p| SignIn::phone_key(p));
        let preferred_key = attributes
            .get("preferred_username")
            .filter(|_| sign_in.preferred_username)
            .map(|p| sign_in.username_key(p));
        let attributes_json = serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into());
        let groups_json = serde_json::to_string(groups).unwrap_or_else(|_| "[]".into());
        let id = self.next_id;
        let record = i64::try_from(record).unwrap_or(i64::MAX);
        let row = RowRef {
            id,
            username,
            username_key: &username_key,
            email_key: email_key.as_deref(),
            phone_key: phone_key.as_deref(),
            preferred_key: preferred_key.as_deref(),
            attributes: &attributes_json,
            enabled,
            groups: &groups_json,
            password_hash,
            record,
        };
        let conn = self.conn.as_ref().ok_or_else(|| DirectoryError::Damaged {
            path: self.tmp.clone(),
            message: "the writer is closed".into(),
        })?;
        let mut stmt = conn.prepare_cached(INSERT_USER).ctx(&self.tmp)?;
        stmt.execute(rusqlite::params![
            row.id,
            row.username,
            row.username_key,
            row.email_key,
            row.phone_key,
            row.preferred_key,
            row.attributes,
            row.enabled,
            row.groups,
            row.password_hash,
            row.record,
        ])
        .ctx(&self.tmp)?;
        self.hasher.add(&row);
        self.next_id += 1;
        Ok(())
    }

    /// Builds the indexes, writes the metadata, and moves the file into place (fsynced).
    pub fn finish(mut self) -> Result<DirectoryMeta> {
        let conn = self.conn.take().ok_or_else(|| DirectoryError::Damaged {
            path: self.tmp.clone(),
            message: "the writer is closed".into(),
        })?;
        let tmp = self.tmp.clone();
        for (name, column, what) in INDEXES {
            let wanted = match column {
                "username_key" => true,
                "email_key" => self.sign_in.email,
                "phone_key" => self.sign_in.phone,
                _ => self.sign_in.preferred_username,
            };
            if !wanted {
                continue;
            }
            let sql =
                format!("CREATE UNIQUE INDEX {name} ON users({column}) WHERE {column} IS NOT NULL");
            if let Err(e) = conn.execute_batch(&sql) {
                if is_unique_violation(&e) {
                    return Err(duplicate(&conn, &tmp, column, what));
                }
                return Err(DirectoryError::Sqlite {
                    path: tmp,
                    error: e,
                });
            }
        }
        let meta = DirectoryMeta {
            format_version: FORMAT_VERSION,
            pool_id: self.pool_id.clone(),
            sign_in: self.sign_in.clone(),
            built_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            user_count: self.count(),
            checksum: self.hasher.clone().finish(),
            built_by: format!("cognito-migrate {}", env!("CARGO_PKG_VERSION")),
        };
        schema::write_meta(&conn, &tmp, &meta)?;
        conn.execute_batch("COMMIT").ctx(&tmp)?;
        conn.close().map_err(|(_, e)| DirectoryError::Sqlite {
            path: tmp.clone(),
            error: e,
        })?;
        fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the rename durable; not every file system lets a directory be fsynced.
            if let Ok(d) = fs::File::open(parent) {
                let _ = d.sync_all();
            }
        }
        self.finished = true;
        Ok(meta)
    }
}

impl Drop for DirectoryWriter {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.conn.take());
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// Names two records that share a key, without the key's value (it is personal data).
fn duplicate(conn: &Connection, path: &Path, column: &str, what: &'static str) -> DirectoryError {
    let sql = format!(
        "SELECT record FROM users WHERE {column} = (SELECT {column} FROM users \
         WHERE {column} IS NOT NULL GROUP BY {column} HAVING count(*) > 1 LIMIT 1) \
         ORDER BY id LIMIT 2"
    );
    let records: Vec<i64> = conn
        .prepare(&sql)
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, i64>(0))
                .and_then(|rows| rows.collect())
        })
        .unwrap_or_default();
    let message = match records.as_slice() {
        [a, b, ..] => format!("(records {a} and {b})"),
        _ => "(the records could not be identified)".to_string(),
    };
    DirectoryError::Duplicate {
        path: path.to_path_buf(),
        key: what,
        message,
    }
}
