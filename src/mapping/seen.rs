//! The duplicate check's memory: every username and alias accepted so far, as a 64-bit
//! fingerprint with the record that first used it, in a fixed memory budget that spills to disk.
//!
//! This is the one structure of a plan that grows with the input (one key per user for the
//! username, one more per alias). An exact one-pass check has to remember every key, so to keep
//! memory flat it keeps keys in memory up to a budget ([`DEFAULT_BUDGET`]) and then spills them.
//!
//! All of it lives in ONE allocation (the budget less 1/128, which covers the small scratch space
//! a shard is rehashed or sorted in), made on the first insert and kept until the end: the runs'
//! filters and indexes at its start, then room for the next run's, then the table. Nothing is
//! freed and allocated again per spill apart from a file name and, per merge, its readers' few
//! 4 KiB blocks (runs are written a 4 KiB block at a time from a buffer on the stack), so resident
//! memory cannot creep up from spill to spill through the
//! allocator: mimalloc backs large allocations with 2 MiB transparent huge pages, so the whole
//! allocation is resident from the start, and every separately allocated filter, table or
//! buffer used to add whole huge pages (+13% peak RSS at 5 million users, against +1% now).
//!
//! In memory: 12 bytes per key (the fingerprint, and a 32-bit record number packed two to a
//! word), open addressing with linear probing, split into 256 shards by the fingerprint's top
//! byte, each taking its whole share of the budget on its first key (while spilling is possible;
//! otherwise growing by a quarter, in place in its own region, when it is 80% full). A general
//! `HashMap<u64, u64>` takes 17 bytes per slot, doubles all at once and hashes the already-random
//! fingerprint again; here a resize only rehashes one shard and the fingerprint is its own hash.
//!
//! On disk: when a shard is full at its share, all of memory is written as one sorted *run* (the
//! shards in order of the top byte are already globally sorted once each is sorted) to a file in
//! [`std::env::temp_dir`] (`TMPDIR`), created 0600 and removed on drop, made of 4 KiB blocks of 341
//! (fingerprint, record) entries. Each run keeps in memory a blocked Bloom filter (10 bits per key,
//! one 64-byte cache line per lookup, ~1% false positives) and the first fingerprint of each block
//! (8 bytes per 341 keys), both built while the run is written, into the room reserved for them (1
//! byte per table slot); a lookup that gets past the filter reads one block with one `pread`. When
//! there are more than [`MAX_RUNS`] runs they are merged into one (its filter and index built where
//! the emptied table was, then moved to the start), so a lookup never costs more than a handful of
//! filter probes. The filters and indexes count against the budget (the table's share shrinks as
//! they grow), so memory stays at the budget until the filters alone take about half of it
//! (~1.27 bytes per key: ~13 million keys at the default budget). Past that, a merge builds the
//! merged filter beside the old ones, so the allocation grows to about twice the filters (~2.5
//! bytes per key) and keeps that size; the table keeps at least a quarter of the budget.
//!
//! A key lives in exactly one place (memory or one run; `insert` of a key already spilled keeps
//! the spilled record), so "first record wins" holds across spills and merges. `check` remembers
//! where it found a few keys missing (the table slot, and that no run has them), so the `insert`
//! that follows usually probes nothing again.
//!
//! Errors: the API has no error path, and losing exactness is not an option. If a spill or merge
//! cannot write, a warning is logged, nothing is lost (memory is only cleared once the run is
//! complete) and spilling stops: the table grows in memory from then on, as it did before spilling
//! existed. If a run cannot be read back, the key is reported as already seen (record unknown),
//! with an error logged: the user is rejected as a possible duplicate, with its position, instead
//! of risking a duplicate in the pool.
//!
//! Fingerprints are SipHash, keyed with a random key per process (so spilled fingerprints of
//! emails cannot be recomputed from a list of addresses), of a kind byte and the normalised value.
//! Two distinct keys share one with probability about n²/2⁶⁵ (≈ 3·10⁻⁶ for ten million keys), in
//! which case the later user is wrongly rejected as a duplicate, with its position, and can be
//! migrated on its own.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const SHARDS: usize = 256;
/// A shard grows when it would be fuller than MAX_LOAD_NUM / MAX_LOAD_DEN.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;
const FIRST_CAPACITY: usize = 64;
/// The smallest share of the budget a shard is given, in slots.
const MIN_SHARD_CAPACITY: usize = 8;
/// Record numbers above this are kept as "unknown" (the message then names no record).
const UNKNOWN_RECORD: u32 = u32::MAX;
/// Bytes per key in the table (fingerprint + record).
const SLOT_BYTES: usize = 12;

/// Memory for the table plus the runs' filters and indexes: holds ~2.04 million keys (a million
/// users with an email alias, as in `scripts/bench plan`) without spilling.
pub(crate) const DEFAULT_BUDGET: usize = 32 << 20;
/// More runs than this are merged into one.
pub(crate) const MAX_RUNS: usize = 8;

const BLOCK: usize = 4096;
const ENTRY: usize = 12;
const PER_BLOCK: usize = BLOCK / ENTRY;
const BLOOM_BITS_PER_KEY: usize = 10;
const BLOOM_PROBES: u32 = 7;
/// How many recent `check` misses are remembered for the `insert` that follows.
const RECENT: usize = 4;

/// One 64-byte (cache-line) unit of the allocation; filters are made of these.
type Line = [u64; 8];

/// A `check` miss remembered for `insert`: the fingerprint, the free table slot it would take
/// (valid while the table's `epoch` is unchanged and the slot still empty), and whether the
/// runs were searched too.
#[derive(Clone, Copy, Default)]
struct Miss {
    fp: u64,
    slot: usize,
    epoch: u64,
    runs_checked: bool,
}

/// Fingerprints of accepted keys with the record that first used each one.
pub(crate) struct Seen {
    table: Table,
    /// Keys in memory.
    len: usize,
    budget: usize,
    /// A shard's share of the budget, in slots.
    max_shard_capacity: usize,
    dir: PathBuf,
    /// Oldest first.
    runs: Vec<Run>,
    /// False after a spill or merge failed: the table grows in memory from then on.
    spilling: bool,
    recent: Cell<[Miss; RECENT]>,
    recent_next: Cell<usize>,
    spills: usize,
    merges: usize,
    /// The most memory held at any moment (tests check it against the budget).
    #[cfg(test)]
    peak: usize,
}

/// The one allocation: `filters` lines of the runs' filters, `reserve` lines for the next run's
/// filter, then the table: 256 shards, each a region of `stride` slots of which the shard uses the
/// first `caps[s]`, as `SHARDS * stride` fingerprint words followed by the records, two per word.
/// A shard grows in place by rehashing its few entries within its region.
#[derive(Default)]
struct Table {
    mem: Vec<Line>,
    /// The bytes the allocation is made with: the budget but for 1/128 of it, kept for the
    /// scratch space (16 bytes per key of one shard, ~0.4% of the table).
    budget: usize,
    filters: usize,
    reserve: usize,
    stride: usize,
    caps: Vec<usize>,
    lens: Vec<usize>,
    /// Changes whenever slots move (a shard grows, the table is laid out again).
    epoch: u64,
    /// One shard's entries while it is rehashed or sorted.
    scratch: Vec<(u64, u32)>,
}

/// Lines of a filter for `keys` keys.
fn filter_lines(keys: usize) -> usize {
    (keys * BLOOM_BITS_PER_KEY).div_ceil(512).max(1)
}

/// Lines of a run's index (one word per block) for `keys` keys.
fn index_lines(keys: usize) -> usize {
    keys.div_ceil(PER_BLOCK).div_ceil(8)
}

/// Lines a run of `keys` keys keeps in the allocation: its filter, then its index.
fn run_lines(keys: usize) -> usize {
    filter_lines(keys) + index_lines(keys)
}

/// Lines of a whole allocation with this layout.
fn lines_for(filters: usize, reserve: usize, stride: usize) -> usize {
    let slots = SHARDS * stride;
    ((filters + reserve) * 8 + slots + slots.div_ceil(2)).div_ceil(8)
}

#[inline]
fn record_at(records: &[u64], i: usize) -> u32 {
    (records[i / 2] >> ((i & 1) * 32)) as u32
}

#[inline]
fn set_record(records: &mut [u64], i: usize, r: u32) {
    let shift = (i & 1) * 32;
    let w = &mut records[i / 2];
    *w = (*w & !(0xffff_ffff << shift)) | (u64::from(r) << shift);
}

/// The entries of shard `s` (unordered) in a table area (fingerprints, then records).
fn shard_entries(
    area: &[u64],
    stride: usize,
    cap: usize,
    s: usize,
) -> impl Iterator<Item = (u64, u32)> + '_ {
    let (fps, records) = area.split_at(SHARDS * stride);
    let base = s * stride;
    (base..base + cap)
        .filter(|&i| fps[i] != 0)
        .map(move |i| (fps[i], record_at(records, i)))
}

impl Table {
    fn new(budget: usize) -> Table {
        Table {
            budget,
            caps: vec![0; SHARDS],
            lens: vec![0; SHARDS],
            ..Table::default()
        }
    }

    fn area(&self) -> &[u64] {
        &self.mem.as_flattened()[(self.filters + self.reserve) * 8..]
    }

    fn area_mut(&mut self) -> &mut [u64] {
        let at = (self.filters + self.reserve) * 8;
        &mut self.mem.as_flattened_mut()[at..]
    }

    /// Lays the table out again, empty, after `filters` lines of filters with `reserve` lines
    /// for the next one; the allocation only grows if it must (memory past the budget).
    fn relayout(&mut self, filters: usize, reserve: usize, stride: usize) {
        self.filters = filters;
        self.reserve = reserve;
        self.stride = stride;
        self.caps.fill(0);
        self.lens.fill(0);
        self.epoch += 1;
        // Kept once made: the stride only shrinks while spilling.
        let need = stride * MAX_LOAD_NUM / MAX_LOAD_DEN + 1;
        if self.scratch.capacity() < need {
            self.scratch = Vec::with_capacity(need);
        }
        if !self.mem.is_empty() {
            let need = lines_for(filters, reserve, stride);
            if self.mem.len() < need {
                self.mem.resize(need, [0; 8]);
            }
            self.area_mut()[..SHARDS * stride].fill(0);
        }
    }

    #[inline]
    fn find(&self, s: usize, fp: u64) -> Result<usize, usize> {
        let cap = self.caps[s];
        let base = s * self.stride;
        let fps = &self.area()[base..base + cap];
        let mut i = home(fp, cap);
        loop {
            let at = fps[i];
            if at == fp {
                return Ok(base + i);
            }
            if at == 0 {
                return Err(base + i);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    #[inline]
    fn record(&self, i: usize) -> u32 {
        record_at(&self.area()[SHARDS * self.stride..], i)
    }

    /// The record of `fp`, or the free slot it would take.
    #[inline]
    fn lookup(&self, s: usize, fp: u64) -> Result<u32, Option<usize>> {
        if self.lens[s] == 0 {
            return Err(None);
        }
        match self.find(s, fp) {
            Ok(i) => Ok(self.record(i)),
            Err(i) => Err(Some(i)),
        }
    }

    #[cfg(test)]
    fn get(&self, s: usize, fp: u64) -> Option<u32> {
        self.lookup(s, fp).ok()
    }

    /// Whether one more key in shard `s` would make it fuller than the maximum load.
    #[inline]
    fn full(&self, s: usize) -> bool {
        (self.lens[s] + 1) * MAX_LOAD_DEN > self.caps[s] * MAX_LOAD_NUM
    }

    /// Grows shard `s` by a quarter (or to `min` slots if that is more), to at most `max` slots;
    /// beyond the stride (only when spilling has stopped) the whole table is re-laid out.
    fn grow(&mut self, s: usize, min: usize, max: usize) {
        let old = self.caps[s];
        let cap = (old + old / 4)
            .max(FIRST_CAPACITY)
            .max(min)
            .min(max)
            .max(old + 1);
        if cap > self.stride {
            self.restride((self.stride * 2).max(cap));
        }
        if self.mem.is_empty() {
            // Zeroed memory from the allocator, made once: the whole budget, for every layout
            // the table takes while the filters grow.
            let lines = lines_for(self.filters, self.reserve, self.stride).max(self.budget / 64);
            self.mem = vec![[0; 8]; lines];
        }
        self.epoch += 1;
        let stride = self.stride;
        let base = s * stride;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(shard_entries(self.area(), stride, old, s));
        self.area_mut()[base..base + cap].fill(0);
        self.caps[s] = cap;
        for &(fp, r) in &scratch {
            let Err(i) = self.find(s, fp) else {
                unreachable!("fingerprints are unique in a shard")
            };
            self.set(i, fp, r);
        }
        self.scratch = scratch;
    }

    #[inline]
    fn set(&mut self, i: usize, fp: u64, r: u32) {
        let slots = SHARDS * self.stride;
        let area = self.area_mut();
        area[i] = fp;
        set_record(&mut area[slots..], i, r);
    }

    /// Moves every shard to a region of `stride` slots (same positions inside it), in a new,
    /// larger allocation (only when spilling has stopped).
    fn restride(&mut self, stride: usize) {
        if !self.mem.is_empty() {
            let mut mem = vec![[0; 8]; lines_for(self.filters, self.reserve, stride)];
            mem[..self.filters].copy_from_slice(&self.mem[..self.filters]);
            let at = (self.filters + self.reserve) * 8;
            let area = &mut mem.as_flattened_mut()[at..];
            let (fps, records) = area.split_at_mut(SHARDS * stride);
            let old = self.area();
            let (old_fps, old_records) = old.split_at(SHARDS * self.stride);
            for s in 0..SHARDS {
                let (from, to) = (s * self.stride, s * stride);
                for j in 0..self.caps[s] {
                    fps[to + j] = old_fps[from + j];
                    set_record(records, to + j, record_at(old_records, from + j));
                }
            }
            self.mem = mem;
        }
        self.stride = stride;
        self.epoch += 1;
    }

    /// Stores a key known to be absent from shard `s` at its free slot `i`.
    fn put(&mut self, s: usize, i: usize, fp: u64, record: u32) {
        self.set(i, fp, record);
        self.lens[s] += 1;
    }

    /// Slots in use.
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.caps.iter().sum()
    }

    /// Bytes held: the allocation and the scratch space.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.mem.len() * 64 + self.scratch.capacity() * 16
    }
}

impl Default for Seen {
    fn default() -> Self {
        Seen::with_budget(std::env::temp_dir(), DEFAULT_BUDGET)
    }
}

/// The slot a fingerprint starts probing at in a table of `cap` slots: the low 32 bits scaled
/// to `cap` (any capacity works, not only powers of two).
#[inline]
fn home(fp: u64, cap: usize) -> usize {
    (((fp & 0xffff_ffff) * cap as u64) >> 32) as usize
}

fn record_of(r: u32) -> Option<u64> {
    (r != UNKNOWN_RECORD).then_some(r as u64)
}

impl Seen {
    /// A check that keeps at most about `budget` bytes in memory and spills to files in `dir`.
    pub(crate) fn with_budget(dir: PathBuf, budget: usize) -> Seen {
        let mut seen = Seen {
            table: Table::new(budget - budget / 128),
            len: 0,
            budget,
            max_shard_capacity: 0,
            dir,
            runs: Vec::new(),
            spilling: cfg!(unix),
            recent: Cell::new([Miss::default(); RECENT]),
            recent_next: Cell::new(0),
            spills: 0,
            merges: 0,
            #[cfg(test)]
            peak: 0,
        };
        seen.layout();
        seen
    }

    /// The fingerprint of a key of `kind` (username, email…) with the normalised `value`.
    pub fn fingerprint(kind: u8, value: &str) -> u64 {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let mut h = KEYS.get_or_init(RandomState::new).build_hasher();
        kind.hash(&mut h);
        value.hash(&mut h);
        h.finish().max(1)
    }

    fn shard(fp: u64) -> usize {
        (fp >> 56) as usize
    }

    /// Lays the (empty) table out in what the allocation leaves after the runs' filters and
    /// indexes (at least a quarter of the budget), with room for its own when it spills.
    fn layout(&mut self) {
        let filters = self.table.filters;
        let share = self
            .table
            .budget
            .saturating_sub(filters * 64)
            .max(self.budget / 4);
        // Each slot also reserves the filter and index its key will need when it is spilled
        // (10 bits per key at most 80% full: 1 byte per 12-byte slot; 8 bytes per 341 keys:
        // < 1/32 byte per slot), with two lines to spare for rounding.
        let per_slot_x64 = (SLOT_BYTES + 1) * 64 + 2;
        let stride =
            (share.saturating_sub(128) * 64 / per_slot_x64 / SHARDS).max(MIN_SHARD_CAPACITY);
        self.max_shard_capacity = stride;
        let reserve = run_lines(SHARDS * (stride * MAX_LOAD_NUM / MAX_LOAD_DEN));
        self.table.relayout(filters, reserve, stride);
    }

    /// The record that first used this fingerprint (`Some(None)` if its number was too large to
    /// keep), or `None` if it is new.
    pub fn check(&self, fp: u64) -> Option<Option<u64>> {
        let slot = match self.table.lookup(Seen::shard(fp), fp) {
            Ok(r) => return Some(record_of(r)),
            Err(slot) => slot,
        };
        let found = if self.runs.is_empty() {
            None
        } else {
            self.in_runs(fp)
        };
        if found.is_none() {
            let mut recent = self.recent.get();
            let next = self.recent_next.get();
            recent[next] = Miss {
                fp,
                slot: slot.unwrap_or(usize::MAX),
                epoch: self.table.epoch,
                runs_checked: true,
            };
            self.recent.set(recent);
            self.recent_next.set((next + 1) % RECENT);
        }
        found
    }

    fn in_runs(&self, fp: u64) -> Option<Option<u64>> {
        for run in &self.runs {
            match run.get(fp, &self.table.mem) {
                Ok(None) => {}
                Ok(Some(r)) => return Some(record_of(r)),
                Err(e) => {
                    tracing::error!(
                        "cannot read the duplicate check's spill file {}: {e}; the key is \
                         treated as already seen (the user is rejected as a possible duplicate)",
                        run.path.display()
                    );
                    return Some(None);
                }
            }
        }
        None
    }

    /// What a recent `check` of `fp` found missing, forgotten once used: once inserted, the key
    /// may be spilled to a run.
    fn take_recent(&self, fp: u64) -> Option<Miss> {
        let mut recent = self.recent.get();
        let mut found = None;
        for m in recent.iter_mut().filter(|m| m.fp == fp) {
            found = Some(*m);
            m.fp = 0;
        }
        self.recent.set(recent);
        found
    }

    /// Remembers `fp` as first used by `record` (a fingerprint already present keeps its record).
    pub fn insert(&mut self, fp: u64, record: u64) {
        let s = Seen::shard(fp);
        let miss = self.take_recent(fp);
        // The slot `check` found free is still the one to take if no slot has moved since and
        // no other key took it.
        let mut slot = miss
            .filter(|m| m.epoch == self.table.epoch && m.slot != usize::MAX)
            .map(|m| m.slot)
            .filter(|i| self.table.area()[*i] == 0);
        if slot.is_none() {
            match self.table.lookup(s, fp) {
                Ok(_) => return,
                Err(free) => slot = free,
            }
        }
        let runs_checked = miss.is_some_and(|m| m.runs_checked);
        if !self.runs.is_empty() && !runs_checked && self.in_runs(fp).is_some() {
            return;
        }
        if self.table.full(s) {
            if !self.spilling {
                self.table.grow(s, 0, usize::MAX);
            } else if self.table.caps[s] < self.max_shard_capacity {
                // The whole share at once: the allocation is made at the full budget anyway
                // (and backed by transparent huge pages), so growing through every size on the
                // way rehashed each key about five times (3% of `plan`'s time at a million
                // users) for no memory saved; a sparser shard also means shorter probes.
                self.table
                    .grow(s, self.max_shard_capacity, self.max_shard_capacity);
            } else {
                self.spill();
                let max = if self.spilling {
                    self.max_shard_capacity
                } else {
                    usize::MAX
                };
                if self.table.full(s) {
                    self.table.grow(s, self.max_shard_capacity, max);
                }
            }
            slot = None;
        }
        let slot = match slot {
            Some(i) => i,
            None => {
                let Err(i) = self.table.find(s, fp) else {
                    unreachable!("checked absent")
                };
                i
            }
        };
        let record = u32::try_from(record)
            .ok()
            .filter(|r| *r != UNKNOWN_RECORD)
            .unwrap_or(UNKNOWN_RECORD);
        self.table.put(s, slot, fp, record);
        self.len += 1;
        #[cfg(test)]
        {
            self.peak = self.peak.max(self.bytes());
        }
    }

    /// Writes every key in memory to a new run and empties the table; merges the runs when
    /// there are too many. On an error, keeps everything in memory and stops spilling.
    fn spill(&mut self) {
        match self.write_run() {
            Ok(run) => {
                self.table.filters = run.index.end.div_ceil(8);
                self.len = 0;
                self.runs.push(run);
                self.spills += 1;
            }
            Err(e) => {
                tracing::warn!(
                    "cannot spill the duplicate check to {}: {e}; keeping it in memory from now \
                     on (memory grows with the number of users)",
                    self.dir.display()
                );
                self.spilling = false;
                return;
            }
        }
        if self.runs.len() > MAX_RUNS {
            match self.merge() {
                Ok(run) => {
                    self.runs.clear();
                    self.runs.push(run);
                    self.merges += 1;
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot merge the duplicate check's spill files in {}: {e}; keeping \
                         new keys in memory from now on (memory grows with the number of users)",
                        self.dir.display()
                    );
                    self.spilling = false;
                }
            }
        }
        self.layout();
    }

    /// Writes the table as a run, its filter built in the reserved room after the filters.
    fn write_run(&mut self) -> io::Result<Run> {
        let t = &mut self.table;
        let lines = run_lines(self.len);
        debug_assert!(lines <= t.reserve, "the run fits its reserved room");
        let (head, area) = t.mem.split_at_mut(t.filters + t.reserve);
        let at = t.filters;
        let room = &mut head[at..at + lines];
        let area = area.as_flattened();
        let mut out = RunWriter::create(&self.dir, self.len, room, at)?;
        let entries = &mut t.scratch;
        for s in 0..SHARDS {
            entries.clear();
            entries.extend(shard_entries(area, t.stride, t.caps[s], s));
            entries.sort_unstable_by_key(|e| e.0);
            for &(fp, r) in entries.iter() {
                out.push(fp, r)?;
            }
        }
        out.finish()
    }

    /// Merges all runs into one; on equal fingerprints (which `insert` never creates) the
    /// oldest run's record is kept. Its filter is built where the (empty) table was, then moved
    /// to the start of the allocation.
    fn merge(&mut self) -> io::Result<Run> {
        let total: usize = self.runs.iter().map(|r| r.len).sum();
        let lines = run_lines(total);
        let at = self.table.filters;
        if self.table.mem.len() < at + lines {
            // Only when the filters are more than half the budget (memory past the budget).
            self.table.mem.resize(at + lines, [0; 8]);
        }
        let room = &mut self.table.mem[at..at + lines];
        let mut out = RunWriter::create(&self.dir, total, room, at)?;
        let mut readers = self
            .runs
            .iter()
            .map(RunReader::new)
            .collect::<io::Result<Vec<_>>>()?;
        let mut heads = readers
            .iter_mut()
            .map(RunReader::next)
            .collect::<io::Result<Vec<_>>>()?;
        let mut last = 0u64;
        loop {
            let mut best: Option<usize> = None;
            for (i, h) in heads.iter().enumerate() {
                if let Some((fp, _)) = h {
                    if best.is_none_or(|b| heads[b].is_some_and(|(bf, _)| *fp < bf)) {
                        best = Some(i);
                    }
                }
            }
            let Some(b) = best else { break };
            let (fp, r) = heads[b].expect("chosen head exists");
            if fp != last {
                out.push(fp, r)?;
                last = fp;
            }
            heads[b] = readers[b].next()?;
        }
        drop(readers);
        let mut run = out.finish()?;
        self.table.mem.copy_within(at..at + lines, 0);
        run.filter = run.filter.start - at..run.filter.end - at;
        run.index = run.index.start - at * 8..run.index.end - at * 8;
        self.table.filters = lines;
        Ok(run)
    }

    /// Keys remembered (in memory and spilled).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len + self.runs.iter().map(|r| r.len).sum::<usize>()
    }

    /// Bytes held in memory: the allocation and the scratch space.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.table.bytes()
    }
}

#[inline]
fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: the fingerprint's bits are also used by the table and the shards.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A blocked Bloom filter over `lines`: each key sets [`BLOOM_PROBES`] bits in one line.
#[inline]
fn bloom_locate(lines: usize, fp: u64) -> (usize, u64) {
    let h = mix(fp);
    let line = (((h >> 32) * lines as u64) >> 32) as usize;
    (
        line,
        h.rotate_left(32) ^ h.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

fn bloom_add(filter: &mut [Line], fp: u64) {
    let (l, mut bits) = bloom_locate(filter.len(), fp);
    let line = &mut filter[l];
    for _ in 0..BLOOM_PROBES {
        let bit = (bits & 511) as usize;
        line[bit / 64] |= 1 << (bit % 64);
        bits >>= 9;
    }
}

#[inline]
fn bloom_maybe(filter: &[Line], fp: u64) -> bool {
    let (l, mut bits) = bloom_locate(filter.len(), fp);
    let line = &filter[l];
    for _ in 0..BLOOM_PROBES {
        let bit = (bits & 511) as usize;
        if line[bit / 64] & (1 << (bit % 64)) == 0 {
            return false;
        }
        bits >>= 9;
    }
    true
}

/// A sorted file of (fingerprint, record) entries in 4 KiB blocks, removed on drop.
struct Run {
    file: File,
    path: PathBuf,
    len: usize,
    /// Its filter's lines in the allocation.
    filter: Range<usize>,
    /// The first fingerprint of each block: its words in the allocation.
    index: Range<usize>,
}

impl Run {
    fn get(&self, fp: u64, mem: &[Line]) -> io::Result<Option<u32>> {
        if !bloom_maybe(&mem[self.filter.clone()], fp) {
            return Ok(None);
        }
        let b = mem.as_flattened()[self.index.clone()].partition_point(|first| *first <= fp);
        if b == 0 {
            return Ok(None);
        }
        let b = b - 1;
        let n = (self.len - b * PER_BLOCK).min(PER_BLOCK);
        let mut buf = [0u8; BLOCK];
        read_at(&self.file, &mut buf[..n * ENTRY], (b * BLOCK) as u64)?;
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (at, r) = entry(&buf, mid);
            match at.cmp(&fp) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(r)),
            }
        }
        Ok(None)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(
                "cannot remove the duplicate check's spill file {}: {e}",
                self.path.display()
            );
        }
    }
}

#[inline]
fn entry(block: &[u8], i: usize) -> (u64, u32) {
    let at = &block[i * ENTRY..(i + 1) * ENTRY];
    (
        u64::from_le_bytes(at[..8].try_into().expect("8 bytes")),
        u32::from_le_bytes(at[8..].try_into().expect("4 bytes")),
    )
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8], _offset: u64) -> io::Result<()> {
    // Spilling is off on other platforms (`Seen::spilling`), so there are no runs to read.
    Err(io::Error::other("spill files are only read on Unix"))
}

/// A new spill file: `cognito-migrate-duplicate-check.<pid>.<n>.run`, created 0600 (never
/// over an existing file).
fn create_spill_file(dir: &Path) -> io::Result<(File, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(
        "cognito-migrate-duplicate-check.{}.{n}.run",
        std::process::id()
    ));
    let file = crate::fs::private_options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((file, path))
}

/// Writes a run from entries in ascending order, building its filter and index in the lines it
/// is given (`run_lines` of its keys, from line `at` of the allocation).
struct RunWriter<'a> {
    /// Written a block at a time, without a buffer of its own: nothing is allocated per run
    /// (with huge pages a fresh allocation can cost 2 MiB of resident memory).
    out: Option<File>,
    path: PathBuf,
    block: [u8; BLOCK],
    in_block: usize,
    len: usize,
    filter: &'a mut [Line],
    index: &'a mut [u64],
    blocks: usize,
    at: usize,
}

impl<'a> RunWriter<'a> {
    fn create(
        dir: &Path,
        keys: usize,
        room: &'a mut [Line],
        at: usize,
    ) -> io::Result<RunWriter<'a>> {
        let (file, path) = create_spill_file(dir)?;
        // The lines held table slots or an older filter before.
        room.fill([0; 8]);
        let (filter, index) = room.split_at_mut(filter_lines(keys));
        Ok(RunWriter {
            out: Some(file),
            path,
            block: [0; BLOCK],
            in_block: 0,
            len: 0,
            filter,
            index: index.as_flattened_mut(),
            blocks: 0,
            at,
        })
    }

    fn push(&mut self, fp: u64, record: u32) -> io::Result<()> {
        if self.in_block == 0 {
            self.index[self.blocks] = fp;
            self.blocks += 1;
        }
        let at = &mut self.block[self.in_block * ENTRY..(self.in_block + 1) * ENTRY];
        at[..8].copy_from_slice(&fp.to_le_bytes());
        at[8..].copy_from_slice(&record.to_le_bytes());
        bloom_add(self.filter, fp);
        self.in_block += 1;
        self.len += 1;
        if self.in_block == PER_BLOCK {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> io::Result<()> {
        self.block[self.in_block * ENTRY..].fill(0);
        self.in_block = 0;
        self.out
            .as_mut()
            .expect("open until finished")
            .write_all(&self.block[..])
    }

    fn finish(mut self) -> io::Result<Run> {
        if self.in_block > 0 {
            self.flush_block()?;
        }
        let file = self.out.take().expect("open until finished");
        Ok(Run {
            file,
            path: std::mem::take(&mut self.path),
            len: self.len,
            filter: self.at..self.at + self.filter.len(),
            index: (self.at + self.filter.len()) * 8
                ..(self.at + self.filter.len()) * 8 + self.blocks,
        })
    }
}

impl Drop for RunWriter<'_> {
    /// An unfinished run (an error) removes its file.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            self.out.take();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads a run's entries in order.
struct RunReader<'a> {
    input: &'a File,
    left: usize,
    block: [u8; BLOCK],
    in_block: usize,
    at: usize,
}

impl<'a> RunReader<'a> {
    fn new(run: &'a Run) -> io::Result<RunReader<'a>> {
        use std::io::Seek;
        let mut file = &run.file;
        file.seek(io::SeekFrom::Start(0))?;
        Ok(RunReader {
            input: file,
            left: run.len,
            block: [0; BLOCK],
            in_block: 0,
            at: 0,
        })
    }

    fn next(&mut self) -> io::Result<Option<(u64, u32)>> {
        if self.at == self.in_block {
            if self.left == 0 {
                return Ok(None);
            }
            self.input.read_exact(&mut self.block[..])?;
            self.in_block = self.left.min(PER_BLOCK);
            self.left -= self.in_block;
            self.at = 0;
        }
        let e = entry(&self.block[..], self.at);
        self.at += 1;
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spill_files(seen: &Seen) -> Vec<PathBuf> {
        seen.runs.iter().map(|r| r.path.clone()).collect()
    }

    /// A fresh directory for one test's spill files.
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cognito-migrate-seen-test.{}.{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    /// xorshift64*: deterministic "random" keys for the model test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn remembers_every_key_with_its_first_record_across_growth() {
        let mut seen = Seen::default();
        let n = 300_000u64;
        for i in 1..=n {
            let fp = Seen::fingerprint(1, &format!("user{i}@example.com"));
            assert_eq!(seen.check(fp), None, "{i} is new");
            seen.insert(fp, i);
        }
        assert_eq!(seen.len(), n as usize);
        assert_eq!(seen.spills, 0, "300,000 keys fit in the default budget");
        for i in (1..=n).step_by(997) {
            let fp = Seen::fingerprint(1, &format!("user{i}@example.com"));
            assert_eq!(seen.check(fp), Some(Some(i)));
            seen.insert(fp, n + i); // a duplicate keeps the first record
            assert_eq!(seen.check(fp), Some(Some(i)));
        }
        assert_eq!(seen.len(), n as usize);
        // Kinds are separate keys.
        assert_eq!(seen.check(Seen::fingerprint(0, "user1@example.com")), None);
        // Every shard took its whole share on its first key (no rehashing on the way), and the
        // share holds its keys below the maximum load.
        assert_eq!(seen.table.slots(), SHARDS * seen.max_shard_capacity);
        assert!((0..SHARDS).all(|s| !seen.table.full(s)));
    }

    #[test]
    fn the_default_budget_holds_a_million_users_with_an_alias_without_spilling() {
        // 1.9 million keys in the benchmark's million users, at 80% load in 256 equal shares,
        // with ~7% to spare for uneven shards.
        let slots = Seen::default().max_shard_capacity * SHARDS;
        assert!(slots * 4 / 5 >= 2_030_000, "{slots} slots");
    }

    #[test]
    fn huge_record_numbers_are_kept_as_unknown() {
        let mut seen = Seen::default();
        let fp = Seen::fingerprint(0, "x");
        seen.insert(fp, 5_000_000_000);
        assert_eq!(seen.check(fp), Some(None));
        assert_ne!(Seen::fingerprint(0, ""), 0);
    }

    #[test]
    fn fingerprints_are_keyed_per_process() {
        let fixed = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            1u8.hash(&mut h);
            "someone@example.com".hash(&mut h);
            h.finish().max(1)
        };
        let fp = Seen::fingerprint(1, "someone@example.com");
        assert_ne!(fp, fixed, "not SipHash with the well-known zero key");
        assert_eq!(fp, Seen::fingerprint(1, "someone@example.com"));
        assert_ne!(fp, Seen::fingerprint(2, "someone@example.com"));
    }

    #[test]
    fn exact_against_a_model_with_a_tiny_budget_through_many_spills_and_merges() {
        let dir = test_dir("model");
        // ~20 slots per shard: a spill every ~4,000 keys.
        let mut seen = Seen::with_budget(dir.clone(), 64 << 10);
        let mut model: HashMap<u64, u64> = HashMap::new();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let distinct = 60_000u64;
        for record in 1..=250_000u64 {
            // Many repeats: keys drawn from a set smaller than the number of draws, skewed so
            // that some keys repeat often.
            let r = rng.next();
            let k = if r & 3 == 0 {
                r % 500
            } else {
                (r >> 8) % distinct
            };
            let fp = Seen::fingerprint((k % 3) as u8, &format!("key{k}"));
            let expected = model.get(&fp).map(|r| Some(*r));
            assert_eq!(seen.check(fp), expected, "key {k} at record {record}");
            if expected.is_none() || record % 7 == 0 {
                // Sometimes insert a key that is already there (memory or a run): it keeps
                // its first record.
                seen.insert(fp, record);
                model.entry(fp).or_insert(record);
            }
            assert_eq!(seen.len(), model.len());
        }
        assert!(seen.spills > 20, "{} spills", seen.spills);
        assert!(seen.merges >= 2, "{} merges", seen.merges);
        assert!(seen.runs.len() <= MAX_RUNS);
        assert!(seen.len < seen.len(), "some keys are spilled");
        for (fp, record) in &model {
            assert_eq!(seen.check(*fp), Some(Some(*record)));
        }
        for k in distinct..distinct + 5_000 {
            assert_eq!(seen.check(Seen::fingerprint(0, &format!("key{k}"))), None);
        }
        // Every file left is a current run.
        assert_eq!(files_in(&dir), seen.runs.len());
        drop(seen);
        assert_eq!(files_in(&dir), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn memory_stays_in_one_allocation_within_the_budget_through_spills_and_merges() {
        let dir = test_dir("budget");
        let budget = 256 << 10;
        let mut seen = Seen::with_budget(dir.clone(), budget);
        let mut record = 0u64;
        let mut allocation = None;
        // Until the filters take about half of the budget (where merges start to need more).
        while seen.len() < 100_000 {
            record += 1;
            let fp = Seen::fingerprint(0, &format!("u{record}"));
            assert_eq!(seen.check(fp), None);
            seen.insert(fp, record);
            let at = seen.table.mem.as_ptr();
            assert_eq!(*allocation.get_or_insert(at), at, "never allocated again");
        }
        assert!(
            seen.spills > 10 && seen.merges >= 1,
            "{} spills",
            seen.spills
        );
        // The allocation and the scratch space, measured after every insert.
        assert!(seen.peak <= budget, "{} bytes at the peak", seen.peak);
        assert!(
            seen.peak > budget * 9 / 10,
            "{} bytes: the budget is used",
            seen.peak
        );
        for r in (1..=record).step_by(101) {
            let fp = Seen::fingerprint(0, &format!("u{r}"));
            assert_eq!(seen.check(fp), Some(Some(r)));
        }
        drop(seen);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn first_record_wins_across_spills() {
        let dir = test_dir("first");
        let mut seen = Seen::with_budget(dir.clone(), 32 << 10);
        let first = Seen::fingerprint(0, "first");
        seen.insert(first, 1);
        let mut record = 2;
        while seen.spills < 3 {
            seen.insert(Seen::fingerprint(0, &format!("filler{record}")), record);
            record += 1;
        }
        assert!(
            seen.table.get(Seen::shard(first), first).is_none(),
            "spilled"
        );
        assert_eq!(seen.check(first), Some(Some(1)));
        seen.insert(first, record); // without a check before: still kept as record 1
        assert_eq!(seen.check(first), Some(Some(1)));
        // A huge record number spills as unknown.
        let huge = Seen::fingerprint(0, "huge");
        seen.insert(huge, 1 << 40);
        while seen.spills < 4 {
            record += 1;
            seen.insert(Seen::fingerprint(0, &format!("filler{record}")), record);
        }
        assert_eq!(seen.check(huge), Some(None));
        assert_eq!(seen.check(first), Some(Some(1)));
        // A key checked (absent) twice, inserted, spilled, then inserted again keeps its record.
        let twice = Seen::fingerprint(0, "checked twice");
        assert_eq!(seen.check(twice), None);
        assert_eq!(seen.check(twice), None);
        seen.insert(twice, 7);
        let spills = seen.spills;
        while seen.spills == spills {
            record += 1;
            seen.insert(Seen::fingerprint(0, &format!("filler{record}")), record);
        }
        seen.insert(twice, record + 1);
        assert_eq!(seen.check(twice), Some(Some(7)));
        drop(seen);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn spill_files_are_private_named_and_removed_on_drop() {
        let dir = test_dir("files");
        let mut seen = Seen::with_budget(dir.clone(), 32 << 10);
        let mut record = 0;
        while seen.runs.len() < 2 {
            record += 1;
            seen.insert(Seen::fingerprint(0, &format!("u{record}")), record);
        }
        let files = spill_files(&seen);
        assert_eq!(files.len(), 2);
        for f in &files {
            assert!(f.starts_with(&dir));
            let name = f.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("cognito-migrate-duplicate-check."),
                "{name}"
            );
            let meta = std::fs::metadata(f).unwrap();
            assert!(meta.len() > 0 && meta.len() % BLOCK as u64 == 0);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            }
        }
        drop(seen);
        for f in &files {
            assert!(!f.exists(), "{} removed", f.display());
        }
        assert_eq!(files_in(&dir), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_spill_that_cannot_write_keeps_everything_in_memory() {
        let dir = std::env::temp_dir().join(format!(
            "cognito-migrate-seen-test.{}.missing/none",
            std::process::id()
        ));
        let mut seen = Seen::with_budget(dir, 32 << 10);
        for record in 1..=20_000u64 {
            let fp = Seen::fingerprint(0, &format!("u{record}"));
            assert_eq!(seen.check(fp), None);
            seen.insert(fp, record);
        }
        assert!(!seen.spilling, "spilling stopped after the failure");
        assert_eq!(seen.spills, 0);
        assert_eq!(seen.len(), 20_000);
        assert!(seen.bytes() > 32 << 10, "memory grew past the budget");
        for record in (1..=20_000u64).step_by(13) {
            let fp = Seen::fingerprint(0, &format!("u{record}"));
            assert_eq!(seen.check(fp), Some(Some(record)));
        }
    }
}
