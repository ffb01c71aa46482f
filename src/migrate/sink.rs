//! The outcome observer of a run's first pass: records what `plan::execute` decides in the
//! checkpoint as it comes, and keeps AdminCreateUser users in a spill file until the input has
//! been read to its end.

use std::io;

use crate::checkpoint::{ChunkSpec, ChunkUser, Outcome, RecordSet, Recorder, UserRow};
use crate::mapping::Rejection;
use crate::plan::chunks::ChunkFile;
use crate::plan::route::{Route, Routed};
use crate::plan::{ChunkRow, Observer};
use crate::progress::Task;
use crate::sink::admin_create::spill::SpillWriter;

use super::CancelToken;

/// A mapped user's links as (pool provider, provider's user id) pairs.
pub(crate) fn links_of(u: &crate::mapping::MappedUser) -> impl Iterator<Item = (&str, &str)> {
    u.links
        .iter()
        .filter_map(|l| Some((l.provider.as_deref()?, l.user_id.as_str())))
}

/// Records plan outcomes in the checkpoint as they come: rejections, trigger users, and import
/// users into their chunk while its file is being written (the chunk becomes work once the file
/// is complete; see `checkpoint::Recorder`).
pub(super) struct RunSink {
    /// Commits rows and chunks on a background thread, overlapping SQLite with reading.
    pub recorder: Recorder,
    pub skip: RecordSet,
    /// The reading bar: input bytes consumed.
    pub read: Task,
    /// Users for AdminCreateUser (modes admin-create and auto), kept until the input is read to
    /// its end (see `admin_create::spill`).
    pub admin: Option<SpillWriter>,
    /// `retry`: only these records are read into the writers.
    pub only: Option<RecordSet>,
    /// Set: the pass stops at the next record (nothing has been written to the pool yet).
    pub cancel: CancelToken,
}

impl RunSink {
    fn check_cancel(&self) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        Ok(())
    }
}

impl Observer for RunSink {
    fn skip(&mut self, record: u64) -> bool {
        if let Some(only) = &self.only {
            return !only.contains(record);
        }
        self.skip.contains(record)
    }

    fn routed(&mut self, r: Routed, row: Option<ChunkRow>) -> io::Result<()> {
        self.check_cancel()?;
        let u = &r.user;
        self.read.set(0, u.position.byte_offset);
        let base = UserRow::new(
            u.position,
            u.username.clone(),
            r.route.state_str(),
            Outcome::Pending,
        )
        .with_followups(!u.enabled, &u.groups)
        .with_links(links_of(u))
        .with_legacy_id(u.legacy_id.clone());
        match (r.route, row) {
            (Route::Trigger, _) => {
                let mut row = base;
                row.outcome = Outcome::Trigger;
                if let Some(why) = &r.not_imported_because {
                    row = row.with_reason("left_to_trigger", why.clone());
                }
                self.recorder.push(row).map_err(io::Error::other)?;
            }
            (_, Some(c)) => self
                .recorder
                .push_chunk_user(ChunkUser {
                    file: c.file,
                    line: c.row,
                    row: base,
                })
                .map_err(io::Error::other)?,
            (Route::AdminCreate | Route::Federated, None) if self.admin.is_some() => {
                self.admin.as_mut().expect("checked").push(&r.user)?;
            }
            (route, None) => {
                return Err(io::Error::other(format!(
                    "route {route} is not handled by this mode yet"
                )))
            }
        }
        Ok(())
    }

    fn rejected(&mut self, rejection: &Rejection) -> io::Result<()> {
        self.check_cancel()?;
        self.read.set(0, rejection.position.byte_offset);
        self.recorder
            .push(UserRow::rejected(rejection, ""))
            .map_err(io::Error::other)?;
        Ok(())
    }

    fn file_done(&mut self, file: &ChunkFile) -> io::Result<()> {
        let spec = ChunkSpec {
            route: file.route.as_str().to_string(),
            file_path: file.path.display().to_string(),
            row_count: file.rows,
            byte_size: file.bytes,
        };
        self.recorder
            .chunk_done(file.index, spec)
            .map_err(io::Error::other)?;
        Ok(())
    }
}
