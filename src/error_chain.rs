//! Printing an error with its causes, each once.
//!
//! An error type here displays only its own message: `#[error("…")]` never also formats a field
//! that is its `#[source]` (or `#[from]`), so the printer of the chain shows each cause once
//! (issue #14: "Permission denied (os error 13): Permission denied (os error 13)"). Some
//! third-party errors still repeat their cause (rusqlite's `SqliteFailure` displays SQLite's
//! message, and its source says it again with the code); [`display_chain`] drops such repeats.

use std::error::Error;

/// An error and its causes on one line, `a: b: c`, each said once: a cause whose text the line
/// already ends with is left out, and one that ends with the previous cause's text replaces it.
pub fn display_chain(e: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        let last = parts.last().expect("never empty");
        if last.ends_with(&text) {
            // Said already.
        } else if text.ends_with(last.as_str()) && parts.len() > 1 {
            *parts.last_mut().expect("never empty") = text;
        } else {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;
    use crate::checkpoint::{CheckpointError, ChunkId};
    use crate::sink::import_job::service::UploadError;
    use crate::sink::import_job::ImportJobError;
    use crate::source::SourceError;

    /// Walks the chain: no error's message contains its cause's message.
    fn assert_each_cause_once(e: &(dyn Error + 'static)) {
        let mut current: &(dyn Error + 'static) = e;
        while let Some(cause) = current.source() {
            let (outer, inner) = (current.to_string(), cause.to_string());
            assert!(
                !outer.contains(&inner),
                "`{outer}` repeats its cause `{inner}`"
            );
            current = cause;
        }
    }

    fn denied() -> io::Error {
        io::Error::from_raw_os_error(13)
    }

    #[test]
    fn the_crates_errors_do_not_repeat_their_causes() {
        let path = PathBuf::from("/x/state.db");
        let upload = || UploadError::File {
            path: "/x/chunk.csv".into(),
            source: denied(),
        };
        let errors: Vec<Box<dyn Error + 'static>> = vec![
            Box::new(CheckpointError::Io {
                path: path.clone(),
                source: denied(),
            }),
            Box::new(SourceError::io("/x/users.csv", denied())),
            Box::new(upload()),
            Box::new(ImportJobError::Upload {
                chunk: ChunkId(3),
                source: upload(),
            }),
            Box::new(crate::lease::LeaseError::Io {
                path: path.clone(),
                source: denied(),
            }),
        ];
        for e in &errors {
            assert_each_cause_once(e.as_ref());
            let line = display_chain(e.as_ref());
            assert_eq!(line.matches("os error 13").count(), 1, "{line}");
        }
        assert_eq!(
            display_chain(errors[3].as_ref()),
            format!(
                "chunk 3: cannot read the import file /x/chunk.csv: {}",
                denied()
            )
        );
    }

    #[test]
    fn sqlite_s_repeated_message_is_said_once() {
        let dir =
            std::env::temp_dir().join(format!("cognito-migrate-chain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-db.txt");
        std::fs::write(&path, "x".repeat(200)).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let source = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        let e = CheckpointError::Sqlite { path, source };
        assert_each_cause_once(&e);
        let line = display_chain(&e);
        assert_eq!(line.matches("file is not a database").count(), 1, "{line}");
        assert!(
            line.ends_with("Error code 26: file is not a database"),
            "{line}"
        );
    }
}
