//! A buffer in front of [`Checkpoint::record_batch`]: rows are committed every `max_rows` rows or
//! `max_delay` after the oldest buffered row, whichever comes first.

use std::borrow::Borrow;
use std::time::{Duration, Instant};

use super::{Checkpoint, Result, RunId, UserRow};

/// Buffers outcome rows and commits them in batches.
///
/// The time limit is checked on [`Writer::push`] and [`Writer::flush_if_due`] (there is no
/// background thread): a writer that may sit idle should call `flush_if_due` from its timer.
/// Dropping a writer flushes what it holds (errors are logged); a process crash loses at most the
/// rows not yet flushed, which is safe: their users stay `pending` (and were recorded as attempted
/// before their calls), so a resumed run verifies them instead of skipping them.
///
/// `C` is anything that borrows a [`Checkpoint`]: `&Checkpoint` or `Arc<Checkpoint>`.
#[derive(Debug)]
pub struct Writer<C: Borrow<Checkpoint>> {
    cp: C,
    run: RunId,
    buf: Vec<UserRow>,
    max_rows: usize,
    max_delay: Duration,
    oldest: Option<Instant>,
    written: u64,
}

impl<C: Borrow<Checkpoint>> Writer<C> {
    /// Default batch: 10,000 rows or 500 ms.
    pub fn new(cp: C, run: RunId) -> Self {
        Self::with_limits(cp, run, 10_000, Duration::from_millis(500))
    }

    pub fn with_limits(cp: C, run: RunId, max_rows: usize, max_delay: Duration) -> Self {
        let max_rows = max_rows.max(1);
        Writer {
            cp,
            run,
            buf: Vec::with_capacity(max_rows.min(100_000)),
            max_rows,
            max_delay,
            oldest: None,
            written: 0,
        }
    }

    /// Buffer a row; commits when the batch is full or old enough. Returns whether it committed.
    pub fn push(&mut self, row: UserRow) -> Result<bool> {
        if self.buf.is_empty() {
            self.oldest = Some(Instant::now());
        }
        self.buf.push(row);
        if self.buf.len() >= self.max_rows {
            self.flush()?;
            return Ok(true);
        }
        self.flush_if_due()
    }

    /// Commit if the oldest buffered row has waited `max_delay`. Returns whether it committed.
    pub fn flush_if_due(&mut self) -> Result<bool> {
        match self.oldest {
            Some(t) if t.elapsed() >= self.max_delay => {
                self.flush()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Commit everything buffered, in one transaction. On error the rows stay buffered.
    pub fn flush(&mut self) -> Result<usize> {
        if self.buf.is_empty() {
            return Ok(0);
        }
        self.cp.borrow().record_batch(self.run, &self.buf)?;
        let n = self.buf.len();
        self.written += n as u64;
        self.buf.clear();
        self.oldest = None;
        Ok(n)
    }

    /// Rows buffered, not yet committed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Rows committed by this writer.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flush; returns the rows committed by this writer in all.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.written)
    }

    /// Drop the buffered rows without committing them (as a crash would) and return them.
    pub fn discard(mut self) -> Vec<UserRow> {
        self.oldest = None;
        std::mem::take(&mut self.buf)
    }
}

impl<C: Borrow<Checkpoint>> Drop for Writer<C> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err(e) = self.flush() {
            tracing::error!(
                "checkpoint: {} outcome rows could not be recorded: {}",
                self.buf.len(),
                crate::display_chain(&e)
            );
        }
    }
}
