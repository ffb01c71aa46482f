//! The directory's content checksum: SHA-256 over a canonical serialisation of the pool id, the
//! sign-in settings and every user row in id order.
//!
//! It exists so that the trigger can tell a complete, unaltered copy (e.g. one it just downloaded
//! from S3) from a truncated or edited one. It is computed while the file is written (no second
//! pass) and stored in the `meta` table; it covers the rows, not the file's bytes, so it does not
//! depend on SQLite's page layout and can live inside the file it describes.
//!
//! Serialisation: the tag `cognito-migrate-directory/1`, then every field as an 8-byte
//! little-endian length followed by its UTF-8 bytes (`u64::MAX` and nothing for NULL), integers as
//! 8 bytes little-endian, booleans as one byte.

use std::path::Path;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::schema::SELECT_ALL_IN_ORDER;
use super::{DirectoryMeta, Result, SignIn, SqlContext};

/// One user row, as the checksum sees it.
#[derive(Clone, Copy, Debug)]
pub struct RowRef<'a> {
    pub id: i64,
    pub username: &'a str,
    pub username_key: &'a str,
    pub email_key: Option<&'a str>,
    pub phone_key: Option<&'a str>,
    pub preferred_key: Option<&'a str>,
    pub attributes: &'a str,
    pub enabled: bool,
    pub groups: &'a str,
    pub password_hash: Option<&'a str>,
    pub record: i64,
}

/// Accumulates the checksum.
#[derive(Clone)]
pub struct ContentHasher {
    sha: Sha256,
}

impl ContentHasher {
    pub fn new(pool_id: &str, sign_in: &SignIn) -> ContentHasher {
        let mut h = ContentHasher { sha: Sha256::new() };
        h.sha.update(b"cognito-migrate-directory/1");
        h.text(Some(pool_id));
        let s = serde_json::to_string(sign_in).unwrap_or_default();
        h.text(Some(&s));
        h
    }

    fn text(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.sha.update((s.len() as u64).to_le_bytes());
                self.sha.update(s.as_bytes());
            }
            None => self.sha.update(u64::MAX.to_le_bytes()),
        }
    }

    pub fn add(&mut self, row: &RowRef<'_>) {
        self.sha.update(row.id.to_le_bytes());
        self.text(Some(row.username));
        self.text(Some(row.username_key));
        self.text(row.email_key);
        self.text(row.phone_key);
        self.text(row.preferred_key);
        self.text(Some(row.attributes));
        self.sha.update([u8::from(row.enabled)]);
        self.text(Some(row.groups));
        self.text(row.password_hash);
        self.sha.update(row.record.to_le_bytes());
    }

    /// `sha256:<64 hex digits>`.
    pub fn finish(self) -> String {
        let digest = self.sha.finalize();
        let mut s = String::with_capacity(71);
        s.push_str("sha256:");
        for b in digest.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// Recomputes the checksum of an open file: (checksum, rows read).
pub(super) fn of_file(
    conn: &Connection,
    path: &Path,
    meta: &DirectoryMeta,
) -> Result<(String, u64)> {
    let mut hasher = ContentHasher::new(&meta.pool_id, &meta.sign_in);
    let mut stmt = conn.prepare(SELECT_ALL_IN_ORDER).ctx(path)?;
    let mut rows = stmt.query([]).ctx(path)?;
    let mut count = 0u64;
    while let Some(r) = rows.next().ctx(path)? {
        let get_text = |i: usize| -> rusqlite::Result<Option<&str>> {
            match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Ok(None),
                v => v.as_str().map(Some).map_err(rusqlite::Error::from),
            }
        };
        let row = RowRef {
            id: r.get(0).ctx(path)?,
            username: get_text(1).ctx(path)?.unwrap_or_default(),
            username_key: get_text(2).ctx(path)?.unwrap_or_default(),
            email_key: get_text(3).ctx(path)?,
            phone_key: get_text(4).ctx(path)?,
            preferred_key: get_text(5).ctx(path)?,
            attributes: get_text(6).ctx(path)?.unwrap_or_default(),
            enabled: r.get(7).ctx(path)?,
            groups: get_text(8).ctx(path)?.unwrap_or_default(),
            password_hash: get_text(9).ctx(path)?,
            record: r.get(10).ctx(path)?,
        };
        hasher.add(&row);
        count += 1;
    }
    Ok((hasher.finish(), count))
}
