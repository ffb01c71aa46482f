//! `--hashes FILE`: passwords (and any fields the users lack) from a second export, joined to
//! the users by id.
//!
//! Some systems hand out users and password hashes separately: Auth0's user export has the
//! profiles but no hashes, and the password-hash export Auth0 support provides (NDJSON, one
//! `{"_id": {"$oid": …}, "email": …, "passwordHash": …}` per line) has little but the hashes. The
//! Auth0 reader gives both the same `user_id` (`auth0|<oid>` for the hash export), so they join
//! on it; other formats join on their id field (`localId`, `id`, `username`) or on a field named
//! with `--join-on`.
//!
//! The second file is read once, at open, into an index: a private SQLite database on disk
//! (SQLite's temporary database: a file in the temp directory that is unlinked as soon as it is
//! opened and so goes away with the process, whatever happens), with a small page cache, so
//! memory stays flat however many users there are. Then the users are streamed as usual and each
//! one looks its id up. A user found takes the hash record's password and the fields it does not
//! have itself; the users' own values win.
//!
//! Users found in only one of the two files are counted and reported with their positions (the
//! first [`SHOWN`] of each kind) in the source's warnings; so are hash records without the id
//! field, hash records the reader rejected, and ids repeated in the hash file (the first one
//! counts). Nothing of a hash or an id is put in a message.

use rusqlite::{params, Connection, OptionalExtension};

use super::{RecordError, Source, SourceError};
use crate::record::{LegacyUser, Position, RawPassword};

/// Positions listed per kind of mismatch; the rest are counted.
pub const SHOWN: usize = 10;

/// Counted occurrences with the first [`SHOWN`] positions.
#[derive(Default)]
struct Tally {
    count: u64,
    positions: Vec<Position>,
}

impl Tally {
    fn add(&mut self, p: Position) {
        self.count += 1;
        if self.positions.len() < SHOWN {
            self.positions.push(p);
        }
    }

    fn note(&self, what: &str, warnings: &mut Vec<String>) {
        if self.count == 0 {
            return;
        }
        let shown: Vec<String> = self.positions.iter().map(Position::to_string).collect();
        let more = if self.count > shown.len() as u64 {
            ", …"
        } else {
            ""
        };
        warnings.push(format!("{} {what}: {}{more}", self.count, shown.join(", ")));
    }
}

/// The users of one source with the passwords of another, joined by `key`.
pub struct Joined {
    users: Box<dyn Source>,
    index: Connection,
    key: String,
    hashes_name: String,
    /// Users without a match in the hash file, by their position in the users file.
    users_only: Tally,
    /// Notes from reading the hash file, given out with the first warnings.
    pending: Vec<String>,
    finished: bool,
    warnings: Vec<String>,
}

fn index_error(e: rusqlite::Error) -> SourceError {
    SourceError::Io {
        location: "the --hashes index (a temporary SQLite database)".to_string(),
        source: std::io::Error::other(e),
    }
}

/// A password as (kind, first text, second text) for the index, and back.
fn encode(p: &RawPassword) -> (i64, &str, &str) {
    match p {
        RawPassword::Encoded(s) => (0, s, ""),
        RawPassword::Firebase { hash, salt } => (1, hash, salt),
        RawPassword::Keycloak {
            secret_data,
            credential_data,
        } => (2, secret_data, credential_data),
        RawPassword::AspNetIdentity(s) => (3, s, ""),
    }
}

fn decode(kind: i64, a: String, b: String) -> Option<RawPassword> {
    Some(match kind {
        0 => RawPassword::Encoded(a),
        1 => RawPassword::Firebase { hash: a, salt: b },
        2 => RawPassword::Keycloak {
            secret_data: a,
            credential_data: b,
        },
        3 => RawPassword::AspNetIdentity(a),
        _ => return None,
    })
}

/// Field names and values as one text: `name \x1f value \x1e …` (the separators are control
/// characters no export puts in a name).
fn pack(user: &LegacyUser, key: &str) -> String {
    let mut out = String::new();
    for (k, v) in user.fields.iter() {
        if k != key {
            out.push_str(k);
            out.push('\x1f');
            out.push_str(v);
            out.push('\x1e');
        }
    }
    out
}

fn unpack(packed: &str) -> impl Iterator<Item = (&str, &str)> {
    packed
        .split('\x1e')
        .filter_map(|pair| pair.split_once('\x1f'))
}

impl Joined {
    /// Reads `hashes` into the index and returns `users` joined with it on the field `key`.
    /// `hashes_name` names the hash file in messages.
    pub fn new(
        users: Box<dyn Source>,
        mut hashes: Box<dyn Source>,
        key: &str,
        hashes_name: &str,
    ) -> Result<Joined, SourceError> {
        let index = Connection::open("").map_err(index_error)?;
        index
            .execute_batch(
                "PRAGMA journal_mode = OFF;
                 PRAGMA synchronous = OFF;
                 PRAGMA temp_store = FILE;
                 PRAGMA cache_size = -8192;
                 CREATE TABLE hashes (
                     key TEXT PRIMARY KEY,
                     record INTEGER NOT NULL,
                     line INTEGER NOT NULL,
                     byte_offset INTEGER NOT NULL,
                     kind INTEGER,
                     a TEXT,
                     b TEXT,
                     fields TEXT NOT NULL,
                     used INTEGER NOT NULL DEFAULT 0
                 ) WITHOUT ROWID;
                 BEGIN;",
            )
            .map_err(index_error)?;
        let (mut no_key, mut repeated, mut rejected) =
            (Tally::default(), Tally::default(), Tally::default());
        let mut fatal = None;
        {
            let mut insert = index
                .prepare(
                    "INSERT INTO hashes (key, record, line, byte_offset, kind, a, b, fields)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (key) DO NOTHING",
                )
                .map_err(index_error)?;
            while let Some(item) = hashes.next_record() {
                let user = match item {
                    Ok(u) => u,
                    Err(e) => {
                        rejected.add(e.position);
                        if e.fatal {
                            fatal = Some(e);
                        }
                        continue;
                    }
                };
                let Some(id) = user.field(key).filter(|v| !v.is_empty()) else {
                    no_key.add(user.position);
                    continue;
                };
                let (kind, a, b) = match &user.password {
                    Some(p) => {
                        let (k, a, b) = encode(p);
                        (Some(k), Some(a), Some(b))
                    }
                    None => (None, None, None),
                };
                let p = user.position;
                let n = insert
                    .execute(params![
                        id,
                        p.record as i64,
                        p.line as i64,
                        p.byte_offset as i64,
                        kind,
                        a,
                        b,
                        pack(&user, key)
                    ])
                    .map_err(index_error)?;
                if n == 0 {
                    repeated.add(p);
                }
            }
        }
        let mut pending = Vec::new();
        if let Some(e) = fatal {
            return Err(SourceError::invalid(
                hashes_name,
                format!("{}: {}", e.position, e.message),
            ));
        }
        let kind = format!("record(s) of the --hashes file {hashes_name}");
        rejected.note(
            &format!("{kind} could not be read (left out)"),
            &mut pending,
        );
        no_key.note(&format!("{kind} have no `{key}` (left out)"), &mut pending);
        repeated.note(
            &format!("{kind} repeat an earlier `{key}` (the first one counts)"),
            &mut pending,
        );
        pending.extend(
            hashes
                .take_warnings()
                .into_iter()
                .map(|w| format!("--hashes {hashes_name}: {w}")),
        );
        Ok(Joined {
            users,
            index,
            key: key.to_string(),
            hashes_name: hashes_name.to_string(),
            users_only: Tally::default(),
            pending,
            finished: false,
            warnings: Vec::new(),
        })
    }

    /// Gives `user` the password and missing fields of its hash record; false if there is none.
    fn join(&mut self, user: &mut LegacyUser) -> Result<bool, SourceError> {
        let Some(id) = user.field(&self.key).filter(|v| !v.is_empty()) else {
            return Ok(false);
        };
        let mut lookup = self
            .index
            .prepare_cached("SELECT kind, a, b, fields FROM hashes WHERE key = ?1")
            .map_err(index_error)?;
        type Found = (Option<i64>, Option<String>, Option<String>, String);
        let found: Option<Found> = lookup
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .map_err(index_error)?;
        let Some((kind, a, b, fields)) = found else {
            return Ok(false);
        };
        self.index
            .prepare_cached("UPDATE hashes SET used = 1 WHERE key = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(index_error)?;
        if let (Some(kind), Some(a), Some(b)) = (kind, a, b) {
            if let Some(p) = decode(kind, a, b) {
                user.password = Some(p);
            }
        }
        for (k, v) in unpack(&fields) {
            if !user.fields.contains_key(k) {
                user.fields.push(k, v);
            }
        }
        Ok(true)
    }

    /// The hash records no user matched.
    fn hashes_only(&self) -> Result<Tally, SourceError> {
        let mut tally = Tally::default();
        let mut count = self
            .index
            .prepare("SELECT count(*) FROM hashes WHERE used = 0")
            .map_err(index_error)?;
        tally.count = count
            .query_row([], |r| r.get::<_, i64>(0))
            .map_err(index_error)? as u64;
        let mut first = self
            .index
            .prepare(&format!(
                "SELECT record, line, byte_offset FROM hashes WHERE used = 0 ORDER BY record LIMIT {SHOWN}"
            ))
            .map_err(index_error)?;
        let rows = first
            .query_map([], |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
                Ok(Position {
                    record: n(0)?,
                    line: n(1)?,
                    byte_offset: n(2)?,
                })
            })
            .map_err(index_error)?;
        for p in rows {
            tally.positions.push(p.map_err(index_error)?);
        }
        Ok(tally)
    }

    fn finish(&mut self) {
        let key = &self.key;
        self.users_only.note(
            &format!("user(s) have no password record in the --hashes file (no matching `{key}`)"),
            &mut self.warnings,
        );
        match self.hashes_only() {
            Ok(t) => t.note(
                &format!(
                    "record(s) of the --hashes file {} match no user of the input (by `{key}`)",
                    self.hashes_name
                ),
                &mut self.warnings,
            ),
            Err(e) => self.warnings.push(format!("{e:#}")),
        }
    }
}

impl Source for Joined {
    fn next_record(&mut self) -> Option<Result<LegacyUser, RecordError>> {
        let item = self.users.next_record();
        match item {
            Some(Ok(mut user)) => {
                match self.join(&mut user) {
                    Ok(true) => {}
                    Ok(false) => self.users_only.add(user.position),
                    Err(e) => {
                        return Some(Err(RecordError::new(
                            user.position,
                            super::Reason::ReadError,
                            format!("{e:#}"),
                        )
                        .fatal()))
                    }
                }
                Some(Ok(user))
            }
            None => {
                if !self.finished {
                    self.finished = true;
                    self.finish();
                }
                None
            }
            other => other,
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        let mut w = std::mem::take(&mut self.pending);
        w.extend(self.users.take_warnings());
        w.append(&mut self.warnings);
        w
    }
}

/// The field the users and their hash records are joined on when `--join-on` is not given.
pub fn default_key(format: super::Format) -> Option<&'static str> {
    use super::Format;
    match format {
        Format::Auth0 => Some("user_id"),
        Format::Firebase => Some("localId"),
        Format::Keycloak => Some("id"),
        Format::Django => Some("id"),
        Format::Csv | Format::Json | Format::Ndjson | Format::Cognito => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceOptions};
    use super::*;

    fn real(name: &str) -> String {
        format!(
            "{}/tests/fixtures/real/auth0/{name}",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    /// Auth0's user export joined with its password-hash export (the format of Auth0's support
    /// article "How to Use the Password Hashes Export from Auth0": `_id.$oid`, optional
    /// `alt_id`, `passwordHash`, `identifiers`).
    #[test]
    fn auth0_user_export_joined_with_the_password_hash_export() {
        let opts = SourceOptions::default();
        let users = open(Format::Auth0, &real("users-export.ndjson"), &opts).unwrap();
        let hashes = open(Format::Auth0, &real("password-hashes.ndjson"), &opts).unwrap();
        let mut joined = Joined::new(users, hashes, "user_id", "password-hashes.ndjson").unwrap();
        let mut got = Vec::new();
        while let Some(r) = joined.next_record() {
            got.push(r.unwrap());
        }
        let ids: Vec<&str> = got.iter().map(|u| u.field("user_id").unwrap()).collect();
        assert_eq!(
            ids,
            [
                "auth0|5dea9f9c82dd7c0e76e4ec93",
                "auth0|euclid",
                "google-oauth2|104857392018475619283"
            ]
        );
        // _id.$oid and alt_id both find their user; the social user has no hash.
        assert!(
            matches!(&got[0].password, Some(RawPassword::Encoded(h)) if h.starts_with("$2b$10$"))
        );
        assert!(
            matches!(&got[1].password, Some(RawPassword::Encoded(h)) if h.starts_with("$2b$10$"))
        );
        assert!(got[2].password.is_none());
        // The users' own values win; fields only the hash record has are added.
        assert_eq!(got[1].field("email_verified"), Some("true"));
        assert_eq!(got[1].field("tenant"), Some("example-tenant-name"));
        assert_eq!(got[0].field("locale"), Some("es-AR"));
        let warnings = joined.take_warnings();
        assert_eq!(
            warnings,
            [
                "1 user(s) have no password record in the --hashes file (no matching `user_id`): record 3 (line 3)",
                "1 record(s) of the --hashes file password-hashes.ndjson match no user of the input (by `user_id`): record 3 (line 3)"
            ]
        );
        assert!(warnings.iter().all(|w| !w.contains("$2b$")));
    }

    #[test]
    fn hash_records_without_the_key_or_repeated_are_reported() {
        let users: Box<dyn Source> = super::super::from_reader(
            Format::Ndjson,
            Box::new(std::io::Cursor::new(
                b"{\"id\":\"1\"}\n{\"id\":\"2\"}\n".to_vec(),
            )),
            &SourceOptions::default(),
        )
        .unwrap();
        let hashes = super::super::from_reader(
            Format::Ndjson,
            Box::new(std::io::Cursor::new(
                b"{\"id\":\"1\",\"pw\":\"a\"}\n{\"pw\":\"b\"}\n{\"id\":\"1\",\"pw\":\"c\"}\nnot json\n"
                    .to_vec(),
            )),
            &SourceOptions::default(),
        )
        .unwrap();
        let mut joined = Joined::new(users, hashes, "id", "h.ndjson").unwrap();
        let one = joined.next_record().unwrap().unwrap();
        assert_eq!(
            one.field("pw"),
            Some("a"),
            "the first record of an id counts"
        );
        let two = joined.next_record().unwrap().unwrap();
        assert_eq!(two.field("pw"), None);
        assert!(joined.next_record().is_none());
        let w = joined.take_warnings();
        assert_eq!(
            w,
            [
                "1 record(s) of the --hashes file h.ndjson could not be read (left out): record 4 (line 4)",
                "1 record(s) of the --hashes file h.ndjson have no `id` (left out): record 2 (line 2)",
                "1 record(s) of the --hashes file h.ndjson repeat an earlier `id` (the first one counts): record 3 (line 3)",
                "1 user(s) have no password record in the --hashes file (no matching `id`): record 2 (line 2)",
            ]
        );
    }
}
