//! A background thread that owns the checkpoint writes of a reading pass, so that SQLite work
//! (outcome batches, chunk users) overlaps with reading and mapping on another core instead of
//! stalling the reader.
//!
//! Crash safety is that of the calls it makes: one thread applies the messages in the order they
//! were sent, with the same transactions as a direct caller. Anything not yet committed when the
//! process dies is simply not recorded, exactly like rows still buffered in a [`Writer`]: those
//! records are not in the skip set, so a resumed run reads and records them again (and a chunk
//! file whose chunk was not recorded is an orphan the run deletes).
//!
//! Chunk users are recorded while their file is being written, not after: the first user of a
//! file opens a chunk in the `writing` state ([`Checkpoint::begin_chunk`]), its users follow in
//! batched transactions ([`Checkpoint::write_chunk_users`], multi-row INSERTs, not fsynced), and
//! [`Recorder::chunk_done`] ends the writing ([`Checkpoint::finish_chunk`]: the last users, the
//! row-count check and the switch to an ordinary `written` chunk in one transaction). A crash in
//! between leaves a `writing` chunk, which is invisible to every reader and discarded when the run
//! is opened again (its users deleted, its file an orphan): its records are read and recorded
//! again, each once. The reader never holds more than a batch of chunk users.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Checkpoint, ChunkId, ChunkSpec, Result, RunId, UserRow, Writer};

/// Rows sent to the thread in one message.
const SEND_ROWS: usize = 2_048;
/// Messages in flight (bounds memory; the reader waits when the thread falls behind). They hold
/// as many rows as one chunk-user transaction, so that the reader goes on while the thread
/// commits instead of stalling on a full queue for the whole transaction.
const QUEUE: usize = CHUNK_COMMIT_ROWS / SEND_ROWS;

/// Chunk users the thread commits in one transaction (fewer when due by time). Measured with
/// `scripts/bench import_job` (1M users, 2 cores): 16,384 made the recorder the bottleneck of
/// pass 1 (35.4 s, the reader held back by the full queue); 262,144 let it keep up (22.1 s).
/// 131,072 with a queue of as many rows keeps the memory held (pending rows plus queue) as it
/// was with 262,144 and a 32,768-row queue, and lets reading overlap the commits.
const CHUNK_COMMIT_ROWS: usize = 131_072;
/// The longest a chunk user waits on the thread before its transaction.
const CHUNK_COMMIT_AFTER: Duration = Duration::from_millis(500);

/// One user of a chunk file being written: the file (route and 1-based file number within the
/// route, as the plan numbers them) and its 1-based data line in that file.
#[derive(Clone, Debug)]
pub struct ChunkUser {
    pub file: u32,
    pub line: u64,
    pub row: UserRow,
}

enum Msg {
    Rows(Vec<UserRow>),
    /// Flush the outcome rows sent before it, then record the chunk and its users.
    Chunk(ChunkSpec, Vec<UserRow>),
    /// Users of chunk files still being written.
    ChunkUsers(Vec<ChunkUser>),
    /// File `.0` of route `.1.route` is complete: end its chunk's writing.
    ChunkDone(u32, ChunkSpec),
}

/// Sends outcome rows and finished chunks to a recording thread. [`Recorder::finish`] waits until
/// everything sent is committed and returns the first error, if any; after an error on the thread,
/// sending fails and `finish` reports it.
pub struct Recorder {
    tx: Option<SyncSender<Msg>>,
    buf: Vec<UserRow>,
    chunk_buf: Vec<ChunkUser>,
    handle: Option<JoinHandle<Result<u64>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Start the thread. Outcome rows are committed in [`Writer`] batches (10,000 rows or
    /// 500 ms after the oldest row reached the thread).
    pub fn start(cp: Arc<Checkpoint>, run: RunId) -> Recorder {
        let (tx, rx) = sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("checkpoint-recorder".into())
            .spawn(move || record(cp, run, rx))
            .expect("spawning the checkpoint recorder thread");
        Recorder {
            tx: Some(tx),
            buf: Vec::with_capacity(SEND_ROWS),
            chunk_buf: Vec::with_capacity(SEND_ROWS),
            handle: Some(handle),
        }
    }

    /// Queue an outcome row (see [`Checkpoint::record_batch`]).
    pub fn push(&mut self, row: UserRow) -> Result<(), RecorderError> {
        self.buf.push(row);
        if self.buf.len() >= SEND_ROWS {
            let rows = std::mem::replace(&mut self.buf, Vec::with_capacity(SEND_ROWS));
            self.send(Msg::Rows(rows))?;
        }
        Ok(())
    }

    /// Queue a written chunk file and its users (see [`Checkpoint::add_chunk`]); the rows pushed
    /// before it are committed first.
    pub fn add_chunk(&mut self, spec: ChunkSpec, users: Vec<UserRow>) -> Result<(), RecorderError> {
        if !self.buf.is_empty() {
            let rows = std::mem::take(&mut self.buf);
            self.send(Msg::Rows(rows))?;
        }
        self.send(Msg::Chunk(spec, users))
    }

    /// Queue a user of a chunk file still being written (see [`Checkpoint::write_chunk_users`]):
    /// its chunk is opened in the `writing` state when its file's first user arrives.
    pub fn push_chunk_user(&mut self, user: ChunkUser) -> Result<(), RecorderError> {
        self.chunk_buf.push(user);
        if self.chunk_buf.len() >= SEND_ROWS {
            let users = std::mem::replace(&mut self.chunk_buf, Vec::with_capacity(SEND_ROWS));
            self.send(Msg::ChunkUsers(users))?;
        }
        Ok(())
    }

    /// File `file` of route `spec.route` is complete (every one of its users was pushed with
    /// [`Recorder::push_chunk_user`]): record its path, size and row count and make its chunk
    /// work for the import-job writer (see [`Checkpoint::finish_chunk`]). The outcome rows pushed
    /// before it are committed first.
    pub fn chunk_done(&mut self, file: u32, spec: ChunkSpec) -> Result<(), RecorderError> {
        if !self.buf.is_empty() {
            let rows = std::mem::take(&mut self.buf);
            self.send(Msg::Rows(rows))?;
        }
        if !self.chunk_buf.is_empty() {
            let users = std::mem::take(&mut self.chunk_buf);
            self.send(Msg::ChunkUsers(users))?;
        }
        self.send(Msg::ChunkDone(file, spec))
    }

    fn send(&mut self, msg: Msg) -> Result<(), RecorderError> {
        let ok = match &self.tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            // The thread stopped: it failed. Report its error.
            Err(self.join().err().unwrap_or(RecorderError::Stopped))
        }
    }

    /// Wait until everything queued is committed. Returns the outcome rows committed.
    pub fn finish(mut self) -> Result<u64, RecorderError> {
        if !self.buf.is_empty() {
            let rows = std::mem::take(&mut self.buf);
            self.send(Msg::Rows(rows))?;
        }
        if !self.chunk_buf.is_empty() {
            let users = std::mem::take(&mut self.chunk_buf);
            self.send(Msg::ChunkUsers(users))?;
        }
        self.join()
    }

    fn join(&mut self) -> Result<u64, RecorderError> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => match h.join() {
                Ok(r) => r.map_err(RecorderError::Checkpoint),
                Err(_) => Err(RecorderError::Panicked),
            },
            None => Err(RecorderError::Stopped),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Without `finish` (an error elsewhere): commit what was queued, as a Writer would.
        if self.handle.is_some() {
            if !self.buf.is_empty() {
                let rows = std::mem::take(&mut self.buf);
                if let Some(tx) = &self.tx {
                    let _ = tx.send(Msg::Rows(rows));
                }
            }
            if let Err(e) = self.join() {
                tracing::error!("checkpoint recorder: {}", crate::display_chain(&e));
            }
        }
    }
}

/// Errors of a [`Recorder`].
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(transparent)]
    Checkpoint(#[from] super::CheckpointError),
    #[error("the checkpoint recorder thread panicked")]
    Panicked,
    #[error("the checkpoint recorder thread has stopped")]
    Stopped,
}

/// The chunks being written, on the recording thread.
struct Writing {
    cp: Arc<Checkpoint>,
    run: RunId,
    /// (route, file number, chunk) of the files being written.
    open: Vec<(String, u32, ChunkId)>,
    /// Users not yet committed, per chunk (in arrival order of the chunks).
    pending: Vec<(ChunkId, Vec<(i64, UserRow)>)>,
    pending_rows: usize,
    oldest: Option<Instant>,
    /// Users already recorded before (re-chunked only when their chunk ends).
    held: HashMap<ChunkId, Vec<(i64, UserRow)>>,
}

impl Writing {
    fn add(&mut self, users: Vec<ChunkUser>) -> Result<()> {
        for u in users {
            // A linear scan: only a few files are open at a time, and it allocates nothing.
            let open = self
                .open
                .iter()
                .find(|(route, file, _)| *file == u.file && *route == u.row.route);
            let chunk = match open {
                Some((_, _, c)) => *c,
                None => {
                    let c = self.cp.begin_chunk(self.run, &u.row.route)?;
                    self.open.push((u.row.route.clone(), u.file, c));
                    c
                }
            };
            let line = i64::try_from(u.line).map_err(|_| {
                self.cp
                    .invalid(format!("chunk line {} is out of range", u.line))
            })?;
            match self.pending.iter_mut().find(|(c, _)| *c == chunk) {
                Some((_, v)) => v.push((line, u.row)),
                None => self.pending.push((chunk, vec![(line, u.row)])),
            }
            self.pending_rows += 1;
            self.oldest.get_or_insert_with(Instant::now);
        }
        if self.pending_rows
            >= crate::testing_hook::testing_hook_chunk_commit_rows(CHUNK_COMMIT_ROWS)
        {
            self.commit()?;
        }
        Ok(())
    }

    fn commit_if_due(&mut self) -> Result<()> {
        match self.oldest {
            Some(t) if t.elapsed() >= CHUNK_COMMIT_AFTER => self.commit(),
            _ => Ok(()),
        }
    }

    fn commit(&mut self) -> Result<()> {
        self.oldest = None;
        if self.pending_rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let held = self.cp.write_chunk_users(self.run, &batches)?;
        for (chunk, line, row) in held {
            self.held.entry(chunk).or_default().push((line, row));
        }
        crate::testing_hook::testing_hook_kill_at("chunk-writing");
        Ok(())
    }

    fn done(&mut self, file: u32, spec: &ChunkSpec) -> Result<()> {
        let open = self
            .open
            .iter()
            .position(|(route, f, _)| *f == file && *route == spec.route);
        let chunk = match open {
            Some(i) => self.open.swap_remove(i).2,
            // A file with no users (not written by the plan, but harmless): an empty chunk.
            None => self.cp.begin_chunk(self.run, &spec.route)?,
        };
        let mut rest = match self.pending.iter().position(|(c, _)| *c == chunk) {
            Some(i) => {
                let (_, v) = self.pending.remove(i);
                self.pending_rows -= v.len();
                v
            }
            None => Vec::new(),
        };
        rest.extend(self.held.remove(&chunk).unwrap_or_default());
        self.cp.finish_chunk(self.run, chunk, spec, &rest)?;
        Ok(())
    }
}

fn record(cp: Arc<Checkpoint>, run: RunId, rx: Receiver<Msg>) -> Result<u64> {
    let mut writer = Writer::new(cp.clone(), run);
    let mut writing = Writing {
        cp: cp.clone(),
        run,
        open: Vec::new(),
        pending: Vec::new(),
        pending_rows: 0,
        oldest: None,
        held: HashMap::new(),
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Msg::Rows(rows)) => {
                for row in rows {
                    writer.push(row)?;
                }
            }
            Ok(Msg::Chunk(spec, users)) => {
                writer.flush()?;
                cp.add_chunk(run, &spec, users)?;
            }
            Ok(Msg::ChunkUsers(users)) => {
                writing.add(users)?;
            }
            Ok(Msg::ChunkDone(file, spec)) => {
                writer.flush()?;
                writing.done(file, &spec)?;
            }
            Err(RecvTimeoutError::Timeout) => {
                writer.flush_if_due()?;
                writing.commit_if_due()?;
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Chunks still open (reading stopped early) stay `writing`: nothing to redo now,
                // and a resumed run discards them. Their committed users are harmless meanwhile.
                writing.commit()?;
                return writer.finish();
            }
        }
    }
}
