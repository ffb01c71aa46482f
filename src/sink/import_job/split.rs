//! Chunks over Cognito's per-file limits: move their pending users into new chunks, or split
//! their file into smaller ones.

use std::io::Write;
use std::path::PathBuf;

use crate::checkpoint::{CheckpointError, ChunkId, ChunkRow, ChunkSpec, UserRow};

use super::settle::to_user_row;
use super::*;

impl ImportJobWriter {
    pub(super) fn rechunk(&self, row: &ChunkRow) -> Result<Option<ChunkId>, ImportJobError> {
        let users: Vec<UserRow> = self
            .checkpoint
            .chunk_users(row.id)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|u| to_user_row(&u))
            .collect();
        if users.len() as u64 != row.row_count {
            return Err(CheckpointError::Invalid {
                path: self.checkpoint.path().to_path_buf(),
                message: format!(
                    "chunk {} lists {} users for {} rows",
                    row.id,
                    users.len(),
                    row.row_count
                ),
            }
            .into());
        }
        let spec = ChunkSpec {
            route: row.route.clone(),
            file_path: row.file_path.clone(),
            row_count: row.row_count,
            byte_size: row.byte_size,
        };
        let new = self.checkpoint.add_chunk(self.run.id, &spec, users)?;
        self.emit(Event::Expired {
            chunk: row.id,
            new_chunk: new.id,
        });
        Ok(Some(new.id))
    }

    /// Splits the pending users of an ended chunk into smaller chunks, each with its own file
    /// holding their lines of the chunk's file (header first). File names derive from the chunk and
    /// the first record of each piece, so a split redone after a crash writes the same files.
    pub(super) fn split(&self, row: &ChunkRow, why: &str) -> Result<(), ImportJobError> {
        let users = self.pending_users(row.id)?;
        if users.is_empty() {
            return Ok(());
        }
        let data = match std::fs::read(&row.file_path) {
            Ok(d) => d,
            Err(e) => {
                let m = format!("the import file could not be read to split it: {e}");
                self.fail_pending(row, "split_failed", &m)?;
                return Ok(());
            }
        };
        let mut lines = data.split_inclusive(|b| *b == b'\n');
        let header = lines.next().unwrap_or_default();
        let lines: Vec<&[u8]> = lines.collect();
        let n = users.len() as u64;
        if n <= 1 {
            self.fail_pending(row, "over_limits", why)?;
            return Ok(());
        }
        // As many pieces as both limits need (at least two), by rows.
        let user_bytes: u64 = users
            .iter()
            .filter_map(|u| u.chunk_line)
            .filter_map(|l| lines.get(l as usize - 1))
            .map(|l| l.len() as u64)
            .sum();
        let pieces = n
            .div_ceil(self.cfg.max_rows.max(1))
            .max((user_bytes + header.len() as u64).div_ceil(self.cfg.max_bytes.max(1)))
            .max(2)
            .min(n);
        let per = n.div_ceil(pieces) as usize;
        let stem = row.file_path.strip_suffix(".csv").unwrap_or(&row.file_path);
        let mut new_chunks = Vec::new();
        for part in users.chunks(per) {
            let path = PathBuf::from(format!("{stem}-c{}r{}.csv", row.id.0, part[0].record));
            let mut bytes = header.len() as u64;
            let mut f = std::io::BufWriter::new(
                crate::fs::create_private(&path).map_err(|e| self.io(&path, e))?,
            );
            f.write_all(header).map_err(|e| self.io(&path, e))?;
            for u in part {
                let line = u
                    .chunk_line
                    .and_then(|l| lines.get((l as usize).wrapping_sub(1)))
                    .ok_or_else(|| {
                        self.invalid(format!(
                            "chunk {}: user record {} has no line in its file",
                            row.id, u.record
                        ))
                    })?;
                f.write_all(line).map_err(|e| self.io(&path, e))?;
                if !line.ends_with(b"\n") {
                    f.write_all(b"\n").map_err(|e| self.io(&path, e))?;
                    bytes += 1;
                }
                bytes += line.len() as u64;
            }
            let f = f.into_inner().map_err(|e| self.io(&path, e.into_error()))?;
            f.sync_all().map_err(|e| self.io(&path, e))?;
            let spec = ChunkSpec {
                route: row.route.clone(),
                file_path: path.display().to_string(),
                row_count: part.len() as u64,
                byte_size: bytes,
            };
            let new =
                self.checkpoint
                    .add_chunk(self.run.id, &spec, part.iter().map(to_user_row))?;
            new_chunks.push(new.id);
        }
        self.emit(Event::Split {
            chunk: row.id,
            new_chunks,
            why: why.to_string(),
        });
        Ok(())
    }
}

/// Whether a job's completion message says its file was over a per-file limit.
pub(super) fn over_limits(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("maximum")
        || m.contains("too large")
        || m.contains("exceed")
        || m.contains("limit"))
        && (m.contains("file") || m.contains("users") || m.contains("mb") || m.contains("size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages_are_recognised() {
        assert!(over_limits(
            "The CSV file has 10 users; the maximum is 5 per file."
        ));
        assert!(over_limits(
            "The CSV file is larger than the maximum of 100 MB."
        ));
        assert!(!over_limits(
            "Too many users have failed or been skipped during the import."
        ));
        assert!(!over_limits("The CSV header lacks column(s): email."));
    }
}
