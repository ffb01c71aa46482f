//! The duplicate check's memory: every username and alias accepted so far, as a 64-bit
//! fingerprint with the record that first used it.
//!
//! This is the one structure of a plan that grows with the input (one key per user for the
//! username, one more per alias), so it is built for size: 12 bytes per key (the fingerprint and a
//! 32-bit record number in two flat arrays), open addressing with linear probing, and split into
//! 256 shards by the fingerprint's top byte, each growing by half when it is 80% full. A general
//! `HashMap<u64, u64>` takes 17 bytes per slot, doubles all at once (holding the old and the new
//! table together at the peak) and hashes the already-random fingerprint again; here a resize only
//! ever copies one shard (1/256 of the keys) and the fingerprint is its own hash.
//!
//! Fingerprints are SipHash of a kind byte and the normalised value. Two distinct keys share one
//! with probability about n²/2⁶⁵ (≈ 3·10⁻⁶ for ten million keys), in which case the later user is
//! wrongly rejected as a duplicate, with its position, and can be migrated on its own.

use std::hash::{Hash, Hasher};

const SHARDS: usize = 256;
/// A shard grows when it would be fuller than MAX_LOAD_NUM / MAX_LOAD_DEN.
const MAX_LOAD_NUM: usize = 4;
const MAX_LOAD_DEN: usize = 5;
const FIRST_CAPACITY: usize = 64;
/// Record numbers above this are kept as "unknown" (the message then names no record).
const UNKNOWN_RECORD: u32 = u32::MAX;

/// Fingerprints of accepted keys with the record that first used each one.
pub(crate) struct Seen {
    shards: Vec<Shard>,
    len: usize,
}

#[derive(Default)]
struct Shard {
    /// 0 marks an empty slot (fingerprints are never 0).
    fps: Vec<u64>,
    records: Vec<u32>,
    len: usize,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
        }
    }
}

/// The slot a fingerprint starts probing at in a table of `cap` slots: the low 32 bits scaled
/// to `cap` (any capacity works, not only powers of two).
#[inline]
fn home(fp: u64, cap: usize) -> usize {
    (((fp & 0xffff_ffff) * cap as u64) >> 32) as usize
}

impl Shard {
    #[inline]
    fn find(&self, fp: u64) -> Result<usize, usize> {
        let cap = self.fps.len();
        let mut i = home(fp, cap);
        loop {
            let at = self.fps[i];
            if at == fp {
                return Ok(i);
            }
            if at == 0 {
                return Err(i);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    fn grow(&mut self) {
        let cap = (self.fps.len() + self.fps.len() / 2).max(FIRST_CAPACITY);
        let old_fps = std::mem::replace(&mut self.fps, vec![0; cap]);
        let old_records = std::mem::replace(&mut self.records, vec![0; cap]);
        for (fp, record) in old_fps.into_iter().zip(old_records) {
            if fp != 0 {
                let Err(i) = self.find(fp) else {
                    unreachable!("fingerprints are unique in a shard")
                };
                self.fps[i] = fp;
                self.records[i] = record;
            }
        }
    }
}

impl Seen {
    /// The fingerprint of a key of `kind` (username, email…) with the normalised `value`.
    pub fn fingerprint(kind: u8, value: &str) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        kind.hash(&mut h);
        value.hash(&mut h);
        h.finish().max(1)
    }

    fn shard(fp: u64) -> usize {
        (fp >> 56) as usize
    }

    /// The record that first used this fingerprint (`Some(None)` if its number was too large to
    /// keep), or `None` if it is new.
    pub fn check(&self, fp: u64) -> Option<Option<u64>> {
        let shard = &self.shards[Seen::shard(fp)];
        if shard.len == 0 {
            return None;
        }
        shard.find(fp).ok().map(|i| {
            let r = shard.records[i];
            (r != UNKNOWN_RECORD).then_some(r as u64)
        })
    }

    /// Remembers `fp` as first used by `record` (a fingerprint already present keeps its record).
    pub fn insert(&mut self, fp: u64, record: u64) {
        let shard = &mut self.shards[Seen::shard(fp)];
        if (shard.len + 1) * MAX_LOAD_DEN > shard.fps.len() * MAX_LOAD_NUM {
            shard.grow();
        }
        if let Err(i) = shard.find(fp) {
            shard.fps[i] = fp;
            shard.records[i] = u32::try_from(record)
                .ok()
                .filter(|r| *r != UNKNOWN_RECORD)
                .unwrap_or(UNKNOWN_RECORD);
            shard.len += 1;
            self.len += 1;
        }
    }

    /// Keys remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the tables.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.fps.len() * 12).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for i in (1..=n).step_by(997) {
            let fp = Seen::fingerprint(1, &format!("user{i}@example.com"));
            assert_eq!(seen.check(fp), Some(Some(i)));
            seen.insert(fp, n + i); // a duplicate keeps the first record
            assert_eq!(seen.check(fp), Some(Some(i)));
        }
        assert_eq!(seen.len(), n as usize);
        // Kinds are separate keys.
        assert_eq!(seen.check(Seen::fingerprint(0, "user1@example.com")), None);
        // 12 bytes per slot, at most 80% and (after the first growth) at least ~53% full.
        let per_key = seen.bytes() as f64 / n as f64;
        assert!((15.0..=23.0).contains(&per_key), "{per_key} bytes per key");
    }

    #[test]
    fn huge_record_numbers_are_kept_as_unknown() {
        let mut seen = Seen::default();
        let fp = Seen::fingerprint(0, "x");
        seen.insert(fp, 5_000_000_000);
        assert_eq!(seen.check(fp), Some(None));
        assert_ne!(Seen::fingerprint(0, ""), 0);
    }
}
