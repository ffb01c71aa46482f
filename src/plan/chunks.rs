//! Import CSV files exactly as Cognito's import job wants them.
//!
//! Every column of the pool's `GetCSVHeader`, plus `password_hash` for a job that names a
//! `PasswordHashingAlgorithm`; UTF-8 without BOM; values unquoted with commas escaped as `\,`
//! (Cognito's "Formatting the CSV file" rules, see [`push_field`]); booleans `true`/`false` (`cognito:mfa_enabled`,
//! `email_verified`, `phone_number_verified` default to `false`). A file holds at most 500,000 users
//! and 100 MB (Cognito's limits), so each route rolls over to a new file at either limit. Files hold
//! personal data and hashes and are created with mode 0600.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::route::{Route, Routed};
use crate::fs::create_private;
use crate::mapping::{Attributes, NameTable};

/// Cognito's limits per import file.
pub const MAX_ROWS: u64 = 500_000;
pub const MAX_BYTES: u64 = 100 * 1000 * 1000;

/// One finished import file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChunkFile {
    pub path: PathBuf,
    #[serde(serialize_with = "ser_route")]
    pub route: Route,
    /// 1-based number of this file within its route.
    pub index: u32,
    pub rows: u64,
    pub bytes: u64,
}

fn ser_route<S: serde::Serializer>(r: &Route, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

/// A file written under a temporary name (its name + `.partial`, mode 0600) that gets its own name
/// only when [`Partial::commit`]ted; dropped uncommitted (an error, a broken input), the temporary
/// is removed. So an interrupted `plan` leaves no file that looks complete (a SIGKILL can leave a
/// `.partial` one, which says what it is).
#[derive(Debug)]
pub struct Partial {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Partial {
    /// Creates `path` + `.partial`; the file is returned beside the guard.
    pub fn create(path: &Path) -> io::Result<(Partial, File)> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let file = create_private(&tmp)?;
        Ok((
            Partial {
                tmp,
                path: path.to_path_buf(),
                committed: false,
            },
            file,
        ))
    }

    /// Gives the file its name (write and sync it first).
    pub fn commit(mut self) -> io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

struct Open {
    out: BufWriter<File>,
    file: ChunkFile,
    /// The file's temporary name until the whole pass is done.
    partial: Partial,
}

/// The files of one route, rolled over at the limits.
pub struct ChunkSet {
    dir: PathBuf,
    prefix: String,
    route: Route,
    columns: Vec<Column>,
    /// For each column, its slot in the name table of the last user written (`None`: not an
    /// attribute column, or not in that table); recomputed when a user has another table.
    slots: Vec<Option<usize>>,
    table: Option<NameTable>,
    max_rows: u64,
    max_bytes: u64,
    row: Vec<u8>,
    header_bytes: Vec<u8>,
    open: Option<Open>,
    /// Files closed and synced, still under their temporary names ([`ChunkSet::finish`]).
    done: Vec<(ChunkFile, Partial)>,
}

/// Where one column's value comes from, decided once per set rather than for every row.
enum Column {
    Username,
    PasswordHash,
    /// A boolean that defaults to `false`.
    Flag(String),
    Attribute(String),
}

impl Column {
    fn of(name: &str) -> Column {
        match name {
            "cognito:username" => Column::Username,
            "password_hash" => Column::PasswordHash,
            "cognito:mfa_enabled" | "email_verified" | "phone_number_verified" => {
                Column::Flag(name.to_string())
            }
            other => Column::Attribute(other.to_string()),
        }
    }
}

/// File-name stem for a route: `import-bcrypt`, `import-nohash`.
pub fn stem(route: Route) -> String {
    match route {
        Route::Import(Some(a)) => format!("import-{}", a.as_str().to_lowercase().replace('_', "-")),
        Route::Import(None) => "import-nohash".into(),
        Route::AdminCreate => "admin-create".into(),
        Route::Trigger => "trigger".into(),
    }
}

/// Appends one field the way Cognito's CSV import documents it: values are never put in quotation
/// marks, and a comma inside a value is written with a backslash before it (`\,`). Values with line
/// breaks cannot be represented; the mapping rejects them before they get here.
pub fn push_field(buf: &mut Vec<u8>, first: bool, v: &str) {
    if !first {
        buf.push(b',');
    }
    let b = v.as_bytes();
    // Most columns of a row are empty.
    if b.is_empty() {
        return;
    }
    if !crate::bytes::contains_any(b, [b',']) {
        buf.extend_from_slice(b);
        return;
    }
    for &c in b {
        if c == b',' {
            buf.push(b'\\');
        }
        buf.push(c);
    }
}

/// Appends one row of fields (see [`push_field`]) and its line end.
pub fn encode_row<'a>(buf: &mut Vec<u8>, fields: impl Iterator<Item = &'a str>) {
    for (i, v) in fields.enumerate() {
        push_field(buf, i == 0, v);
    }
    buf.push(b'\n');
}

impl ChunkSet {
    /// `header` is the pool's GetCSVHeader; `password_hash` is appended for hash routes.
    pub fn new(
        dir: &Path,
        prefix: &str,
        route: Route,
        pool_header: &[String],
    ) -> io::Result<ChunkSet> {
        Self::with_limits(dir, prefix, route, pool_header, MAX_ROWS, MAX_BYTES)
    }

    pub fn with_limits(
        dir: &Path,
        prefix: &str,
        route: Route,
        pool_header: &[String],
        max_rows: u64,
        max_bytes: u64,
    ) -> io::Result<ChunkSet> {
        let mut header = pool_header.to_vec();
        if matches!(route, Route::Import(Some(_))) {
            header.push("password_hash".into());
        }
        let mut header_bytes = Vec::new();
        encode_row(&mut header_bytes, header.iter().map(String::as_str));
        Ok(ChunkSet {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            route,
            columns: header.iter().map(|c| Column::of(c)).collect(),
            slots: Vec::new(),
            table: None,
            max_rows,
            max_bytes,
            row: Vec::with_capacity(1024),
            header_bytes,
            open: None,
            done: Vec::new(),
        })
    }

    fn roll(&mut self) -> io::Result<()> {
        self.close()?;
        let index = self.done.len() as u32 + 1;
        let path = self.dir.join(format!(
            "{}{}-{index:04}.csv",
            self.prefix,
            stem(self.route)
        ));
        let (partial, file) = Partial::create(&path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&self.header_bytes)?;
        self.open = Some(Open {
            out,
            partial,
            file: ChunkFile {
                path,
                route: self.route,
                index,
                rows: 0,
                bytes: self.header_bytes.len() as u64,
            },
        });
        Ok(())
    }

    /// Resolves the attribute columns in `a`'s name table, unless they already are.
    fn resolve(&mut self, a: &Attributes) {
        if self.table.as_ref().is_some_and(|t| t.is(a)) {
            return;
        }
        self.slots = self
            .columns
            .iter()
            .map(|col| match col {
                Column::Flag(name) | Column::Attribute(name) => a.slot(name),
                Column::Username | Column::PasswordHash => None,
            })
            .collect();
        self.table = Some(a.table());
    }

    /// Writes one user; returns (file index, 1-based data row within that file).
    pub fn write(&mut self, r: &Routed) -> io::Result<(u32, u64)> {
        let u = &r.user;
        self.resolve(&u.attributes);
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        let attr = |slot: Option<usize>| slot.and_then(|i| u.attributes.get_slot(i));
        encode_row(
            &mut row,
            self.columns
                .iter()
                .zip(&self.slots)
                .map(|(col, &slot)| match col {
                    Column::Username => u.username.as_str(),
                    Column::PasswordHash => r.import_hash.as_deref().unwrap_or(""),
                    Column::Flag(_) => attr(slot).unwrap_or("false"),
                    Column::Attribute(_) => attr(slot).unwrap_or(""),
                }),
        );
        let need_roll = match &self.open {
            None => true,
            Some(o) => {
                o.file.rows >= self.max_rows || o.file.bytes + row.len() as u64 > self.max_bytes
            }
        };
        if need_roll {
            self.roll()?;
        }
        let o = self.open.as_mut().expect("a file is open after roll");
        o.out.write_all(&row)?;
        o.file.rows += 1;
        o.file.bytes += row.len() as u64;
        let at = (o.file.index, o.file.rows);
        self.row = row;
        Ok(at)
    }

    /// Flushes, syncs and closes the open file (it keeps its temporary name).
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(mut o) = self.open.take() {
            o.out.flush()?;
            o.out.get_ref().sync_all()?;
            self.done.push((o.file, o.partial));
        }
        Ok(())
    }

    /// Closes the last file and gives every file its name; returns them. Called once the whole
    /// input is read: a set dropped before (an error, a broken input) removes its files.
    pub fn finish(mut self) -> io::Result<Vec<ChunkFile>> {
        self.close()?;
        let mut files = Vec::with_capacity(self.done.len());
        for (file, partial) in self.done.drain(..) {
            partial.commit()?;
            files.push(file);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped_as_cognito_documents() {
        let mut buf = Vec::new();
        push_field(&mut buf, true, "Smith, Jr.");
        push_field(&mut buf, false, "");
        push_field(&mut buf, false, "a,b,c");
        push_field(&mut buf, false, "plain");
        assert_eq!(buf, b"Smith\\, Jr.,,a\\,b\\,c,plain");
    }
}
