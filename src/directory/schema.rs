//! The directory file's SQL: tables, the indexes built after the load, and the `meta` table's
//! keys — kept in one place so that the writer, the reader and the checksum agree.

use std::path::Path;

use rusqlite::Connection;

use super::{DirectoryError, DirectoryMeta, Result, SignIn, SqlContext, FORMAT_VERSION};

/// Tables, created before the load. No index but the rowid: indexes are built after the load,
/// which is several times faster than maintaining them row by row.
pub(super) const CREATE_TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL,
    email_key TEXT,
    phone_key TEXT,
    preferred_key TEXT,
    attributes TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    groups TEXT NOT NULL,
    password_hash TEXT,
    record INTEGER NOT NULL
);
";

/// The lookup indexes: (index name, column, what the key is in messages).
pub(super) const INDEXES: [(&str, &str, &str); 4] = [
    ("users_by_username", "username_key", "username"),
    ("users_by_email", "email_key", "email"),
    ("users_by_phone", "phone_key", "phone_number"),
    ("users_by_preferred", "preferred_key", "preferred_username"),
];

pub(super) const INSERT_USER: &str = "INSERT INTO users (id, username, username_key, email_key, \
     phone_key, preferred_key, attributes, enabled, groups, password_hash, record) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Every column, in the order the checksum reads them.
pub(super) const SELECT_ALL_IN_ORDER: &str = "SELECT id, username, username_key, email_key, \
     phone_key, preferred_key, attributes, enabled, groups, password_hash, record \
     FROM users ORDER BY id";

pub(super) mod keys {
    pub const FORMAT_VERSION: &str = "format_version";
    pub const POOL_ID: &str = "pool_id";
    pub const SIGN_IN: &str = "sign_in";
    pub const BUILT_AT: &str = "built_at";
    pub const USER_COUNT: &str = "user_count";
    pub const CHECKSUM: &str = "checksum";
    pub const BUILT_BY: &str = "built_by";
}

/// A `file:` URI that opens `path` immutable: SQLite takes no locks and never looks for a journal,
/// which is right for a file nobody writes and works on read-only file systems.
pub(super) fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.to_string_lossy().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' | b'~' => {
                uri.push(b as char)
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

pub(super) fn write_meta(conn: &Connection, path: &Path, meta: &DirectoryMeta) -> Result<()> {
    let sign_in = serde_json::to_string(&meta.sign_in).map_err(|e| DirectoryError::Damaged {
        path: path.to_path_buf(),
        message: format!("cannot encode the sign-in settings: {e}"),
    })?;
    let rows = [
        (keys::FORMAT_VERSION, meta.format_version.to_string()),
        (keys::POOL_ID, meta.pool_id.clone()),
        (keys::SIGN_IN, sign_in),
        (keys::BUILT_AT, meta.built_at.to_string()),
        (keys::USER_COUNT, meta.user_count.to_string()),
        (keys::CHECKSUM, meta.checksum.clone()),
        (keys::BUILT_BY, meta.built_by.clone()),
    ];
    let mut stmt = conn
        .prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        .ctx(path)?;
    for (k, v) in rows {
        stmt.execute([k, v.as_str()]).ctx(path)?;
    }
    Ok(())
}

pub(super) fn read_meta(conn: &Connection, path: &Path) -> Result<DirectoryMeta> {
    let mut stmt = conn.prepare("SELECT key, value FROM meta").ctx(path)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .ctx(path)?;
    let mut map = std::collections::HashMap::new();
    for row in rows {
        let (k, v) = row.ctx(path)?;
        map.insert(k, v);
    }
    let damaged = |message: String| DirectoryError::Damaged {
        path: path.to_path_buf(),
        message,
    };
    let get = |k: &str| {
        map.get(k)
            .cloned()
            .ok_or_else(|| damaged(format!("its metadata has no {k}")))
    };
    let number = |k: &str| -> Result<u64> {
        get(k)?
            .parse::<u64>()
            .map_err(|_| damaged(format!("its metadata's {k} is not a number")))
    };
    let format_version = number(keys::FORMAT_VERSION)? as i64;
    if format_version != FORMAT_VERSION {
        return Err(DirectoryError::Version {
            path: path.to_path_buf(),
            found: format_version,
            supported: FORMAT_VERSION,
        });
    }
    let sign_in: SignIn = serde_json::from_str(&get(keys::SIGN_IN)?)
        .map_err(|_| damaged("its metadata's sign_in is not valid".into()))?;
    Ok(DirectoryMeta {
        format_version,
        pool_id: get(keys::POOL_ID)?,
        sign_in,
        built_at: number(keys::BUILT_AT)?,
        user_count: number(keys::USER_COUNT)?,
        checksum: get(keys::CHECKSUM)?,
        built_by: get(keys::BUILT_BY)?,
    })
}
