//! A background thread that owns the checkpoint writes of a reading pass, so that SQLite work
//! (outcome batches, [`Checkpoint::add_chunk`]) overlaps with reading and mapping on another core
//! instead of stalling the reader.
//!
//! Crash safety is that of the calls it makes: one thread applies the messages in the order they
//! were sent, with the same transactions as a direct caller. Anything not yet committed when the
//! process dies is simply not recorded, exactly like rows still buffered in a [`Writer`]: those
//! records are not in the skip set, so a resumed run reads and records them again (and a chunk
//! file whose chunk was not recorded is an orphan the run deletes).

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Checkpoint, ChunkSpec, Result, RunId, UserRow, Writer};

/// Rows sent to the thread in one message.
const SEND_ROWS: usize = 2_048;
/// Messages in flight (bounds memory; the reader waits when the thread falls behind).
const QUEUE: usize = 16;

enum Msg {
    Rows(Vec<UserRow>),
    /// Flush the outcome rows sent before it, then record the chunk and its users.
    Chunk(ChunkSpec, Vec<UserRow>),
}

/// Sends outcome rows and finished chunks to a recording thread. [`Recorder::finish`] waits until
/// everything sent is committed and returns the first error, if any; after an error on the thread,
/// sending fails and `finish` reports it.
pub struct Recorder {
    tx: Option<SyncSender<Msg>>,
    buf: Vec<UserRow>,
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
                tracing::error!("checkpoint recorder: {e}");
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

fn record(cp: Arc<Checkpoint>, run: RunId, rx: Receiver<Msg>) -> Result<u64> {
    let mut writer = Writer::new(cp.clone(), run);
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
            Err(RecvTimeoutError::Timeout) => {
                writer.flush_if_due()?;
            }
            Err(RecvTimeoutError::Disconnected) => return writer.finish(),
        }
    }
}
