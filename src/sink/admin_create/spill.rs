//! The AdminCreateUser users of a run, kept in a private file until the input has been read to
//! its end.
//!
//! Why: nothing may be written to the pool from an input that turns out to be broken (a
//! truncated export, a `.gz` that ends early, an S3 body that cannot be read on). Import jobs
//! already wait for the whole input (their files are complete before the first job); users for
//! AdminCreateUser used to be created while the input was still being read. Now the reading pass
//! writes them here, and only once it ended cleanly does `run` hand them to the writer
//! ([`super::Feeder`]). A file rather than memory, because an input can hold millions of users,
//! and rather than reading the input twice, because stdin cannot be read again.
//!
//! One JSON object a line: the user's position, username, attributes, enabled flag and groups.
//! Never a password or hash (AdminCreateUser takes none). The file holds personal data: mode
//! 0600, beside the import files, removed once the run is complete.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::create_private;
use crate::mapping::providers::Link;
use crate::mapping::MappedUser;
use crate::record::Position;

/// One user as a line of the file.
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    record: u64,
    line: u64,
    byte_offset: u64,
    username: std::borrow::Cow<'a, str>,
    attributes: Vec<(std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    enabled: bool,
    groups: Vec<String>,
    /// Federated identities to link: (the pool's provider name, the provider's user id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    links: Vec<(String, String)>,
    /// Absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legacy_id: Option<std::borrow::Cow<'a, str>>,
}

/// Writes the users of a reading pass; [`SpillWriter::finish`] once the input is read.
pub struct SpillWriter {
    out: BufWriter<File>,
    path: PathBuf,
    users: u64,
}

impl SpillWriter {
    /// Creates (or empties) the file, mode 0600.
    pub fn create(path: &Path) -> io::Result<SpillWriter> {
        Ok(SpillWriter {
            out: BufWriter::new(create_private(path)?),
            path: path.to_path_buf(),
            users: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds one user (its password, if any, is not written).
    pub fn push(&mut self, u: &MappedUser) -> io::Result<()> {
        let line = Line {
            record: u.position.record,
            line: u.position.line,
            byte_offset: u.position.byte_offset,
            username: u.username.as_str().into(),
            attributes: u
                .attributes
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            enabled: u.enabled,
            groups: u.groups.clone(),
            links: u
                .links
                .iter()
                .filter_map(|l| Some((l.provider.clone()?, l.user_id.clone())))
                .collect(),
            legacy_id: u.legacy_id.as_deref().map(Into::into),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.users += 1;
        Ok(())
    }

    /// Flushes and syncs the file; returns how many users it holds.
    pub fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.users)
    }
}

/// The users of a file [`SpillWriter`] wrote, in the order they were written.
pub fn read(path: &Path) -> io::Result<impl Iterator<Item = io::Result<MappedUser>>> {
    let mut input = BufReader::new(File::open(path)?);
    let mut buf = String::new();
    let path = path.display().to_string();
    Ok(std::iter::from_fn(move || {
        buf.clear();
        match input.read_line(&mut buf) {
            Ok(0) => None,
            Ok(_) => Some(parse(&buf).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: a line of the AdminCreateUser spill file is damaged: {e}"),
                )
            })),
            Err(e) => Some(Err(e)),
        }
    }))
}

fn parse(text: &str) -> Result<MappedUser, serde_json::Error> {
    let l: Line = serde_json::from_str(text)?;
    Ok(MappedUser {
        position: Position {
            record: l.record,
            line: l.line,
            byte_offset: l.byte_offset,
        },
        username: l.username.into_owned(),
        attributes: l.attributes.into_iter().collect(),
        enabled: l.enabled,
        groups: l.groups,
        password: None,
        links: l
            .links
            .into_iter()
            .map(|(provider, user_id)| Link {
                vendor: provider.clone(),
                provider: Some(provider),
                user_id,
            })
            .collect(),
        legacy_id: l.legacy_id.map(|l| l.into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Attributes;
    use crate::record::RawPassword;

    #[test]
    fn users_read_back_as_written_without_their_password() {
        let dir = std::env::temp_dir().join(format!("cm-spill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spill.ndjson");
        let users: Vec<MappedUser> = (1..=3u64)
            .map(|i| MappedUser {
                position: Position {
                    record: i,
                    line: i + 1,
                    byte_offset: i * 100,
                },
                username: format!("user{i}"),
                attributes: Attributes::from_iter([
                    ("email", format!("u{i}@example.com")),
                    ("name", format!("Zoë \"{i}\", \\ Ångström")),
                ]),
                enabled: i != 2,
                groups: if i == 3 {
                    vec!["a".into(), "b,c".into()]
                } else {
                    vec![]
                },
                password: Some(RawPassword::Encoded("$2b$10$secret-hash".into())),
                links: if i == 2 {
                    vec![Link {
                        vendor: "Google".into(),
                        provider: Some("Google".into()),
                        user_id: "10432".into(),
                    }]
                } else {
                    vec![]
                },
                legacy_id: (i != 1).then(|| format!("L-{i}")),
            })
            .collect();
        let mut w = SpillWriter::create(&path).unwrap();
        for u in &users {
            w.push(u).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("secret-hash"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back: Vec<MappedUser> = read(&path).unwrap().map(Result::unwrap).collect();
        let want: Vec<MappedUser> = users
            .into_iter()
            .map(|mut u| {
                u.password = None;
                u
            })
            .collect();
        assert_eq!(back, want);
        std::fs::write(&path, "{\"record\":1,\n").unwrap();
        let err = read(&path).unwrap().next().unwrap().unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
