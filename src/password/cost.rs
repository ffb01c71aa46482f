//! How much work verifying a hash takes, and caps on it.
//!
//! The user-migration trigger has 5 seconds per invocation and verifies hashes whose parameters
//! come from a legacy database: a hash with bcrypt cost 20 or 4 GiB of scrypt memory would time
//! the trigger out or exhaust the function's memory. [`PasswordHash::exceeds`] compares a hash's
//! [`WorkEstimate`] with a [`CostCap`] *before* anything is computed, so the trigger can refuse
//! (and, say, send the user through a password reset) instead.
//!
//! [`PasswordHash::exceeds`]: super::PasswordHash::exceeds

use std::fmt;

/// The cost parameters of one hash, per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkEstimate {
    /// bcrypt: 2^cost key expansions.
    Bcrypt { cost: u32 },
    /// PBKDF2: `iterations` HMACs for each of `blocks` output blocks.
    Pbkdf2 { iterations: u32, blocks: u32 },
    /// Argon2: `memory_kib` KiB filled `iterations` times over `parallelism` lanes.
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    /// scrypt (standard and Firebase's): 128·r·2^log_n bytes, `p` times.
    Scrypt { log_n: u8, r: u32, p: u32 },
    /// SHA-crypt: `rounds` digest rounds.
    ShaCrypt { rounds: u32 },
    /// MD5-crypt: a fixed 1000 rounds.
    Md5Crypt,
    /// phpass: 2^log2_rounds MD5s.
    Phpass { log2_rounds: u8 },
    /// One fast digest (Django's legacy MD5/SHA-1 hashers) or 25 DES blocks (DES crypt).
    Digest,
}

impl WorkEstimate {
    /// Memory the computation allocates, in KiB (0 where it is negligible).
    pub fn memory_kib(&self) -> u64 {
        match *self {
            WorkEstimate::Argon2 { memory_kib, .. } => u64::from(memory_kib),
            WorkEstimate::Scrypt { log_n, r, .. } => {
                // 128 · r · N bytes = r · N / 8 KiB.
                1u64.checked_shl(u32::from(log_n))
                    .and_then(|n| n.checked_mul(u64::from(r)))
                    .map_or(u64::MAX, |v| v / 8)
            }
            _ => 0,
        }
    }
}

impl fmt::Display for WorkEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WorkEstimate::Bcrypt { cost } => write!(f, "cost {cost}"),
            WorkEstimate::Pbkdf2 { iterations, blocks } => {
                write!(f, "{iterations} iterations")?;
                if blocks > 1 {
                    write!(f, " x {blocks} blocks")?;
                }
                Ok(())
            }
            WorkEstimate::Argon2 {
                memory_kib,
                iterations,
                parallelism,
            } => write!(f, "m={memory_kib},t={iterations},p={parallelism}"),
            WorkEstimate::Scrypt { log_n, r, p } => write!(f, "N=2^{log_n},r={r},p={p}"),
            WorkEstimate::ShaCrypt { rounds } => write!(f, "{rounds} rounds"),
            WorkEstimate::Md5Crypt => write!(f, "1000 rounds"),
            WorkEstimate::Phpass { log2_rounds } => write!(f, "2^{log2_rounds} rounds"),
            WorkEstimate::Digest => write!(f, "one digest"),
        }
    }
}

/// Upper bounds on the work one verification may take.
///
/// The defaults ([`CostCap::default`]) keep one verification well under a second on a Lambda
/// function with 1–2 GB of memory, and above anything a sane legacy system used:
///
/// | family | default cap | about |
/// |---|---|---|
/// | bcrypt | cost ≤ 14 | 1 s at cost 14 |
/// | PBKDF2 | iterations × output blocks ≤ 2,000,000 | Django 5's 1,000,000 passes |
/// | Argon2, scrypt | memory ≤ 256 MiB (262,144 KiB) | |
/// | Argon2 | t ≤ 10 passes, p ≤ 16 lanes | |
/// | scrypt | p ≤ 16, memory × p ≤ 1 GiB | Django's default is N=2^14, r=8, p=5 |
/// | SHA-crypt | rounds ≤ 1,000,000 | passlib's default is 656,000 |
/// | phpass | 2^n MD5s, n ≤ 20 | WordPress uses 2^13 |
///
/// MD5-crypt's 1000 rounds are always within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostCap {
    pub bcrypt_max_cost: u32,
    /// Caps iterations × output blocks (a 512-bit PBKDF2-SHA256 key costs twice its iterations).
    pub pbkdf2_max_iterations: u64,
    /// Caps the memory of Argon2 and of one scrypt lane.
    pub max_memory_kib: u64,
    pub argon2_max_iterations: u32,
    pub argon2_max_parallelism: u32,
    pub scrypt_max_parallelism: u32,
    /// Caps scrypt's memory × p, its total work.
    pub scrypt_max_total_kib: u64,
    pub sha_crypt_max_rounds: u32,
    pub phpass_max_log2_rounds: u8,
}

impl Default for CostCap {
    fn default() -> Self {
        CostCap {
            bcrypt_max_cost: 14,
            pbkdf2_max_iterations: 2_000_000,
            max_memory_kib: 256 * 1024,
            argon2_max_iterations: 10,
            argon2_max_parallelism: 16,
            scrypt_max_parallelism: 16,
            scrypt_max_total_kib: 1024 * 1024,
            sha_crypt_max_rounds: 1_000_000,
            phpass_max_log2_rounds: 20,
        }
    }
}

impl CostCap {
    /// `Some(reason)` when `work` exceeds this cap.
    pub fn check(&self, work: &WorkEstimate) -> Option<String> {
        match *work {
            WorkEstimate::Bcrypt { cost } if cost > self.bcrypt_max_cost => Some(format!(
                "bcrypt cost {cost} exceeds the cap of {}",
                self.bcrypt_max_cost
            )),
            WorkEstimate::Pbkdf2 { iterations, blocks } => {
                let total = u64::from(iterations) * u64::from(blocks);
                (total > self.pbkdf2_max_iterations).then(|| {
                    format!(
                        "pbkdf2 {iterations} iterations x {blocks} blocks exceeds the cap of {}",
                        self.pbkdf2_max_iterations
                    )
                })
            }
            WorkEstimate::Argon2 {
                memory_kib,
                iterations,
                parallelism,
            } => {
                if u64::from(memory_kib) > self.max_memory_kib {
                    Some(format!(
                        "argon2 memory {memory_kib} KiB exceeds the cap of {} KiB",
                        self.max_memory_kib
                    ))
                } else if iterations > self.argon2_max_iterations {
                    Some(format!(
                        "argon2 t={iterations} exceeds the cap of {}",
                        self.argon2_max_iterations
                    ))
                } else if parallelism > self.argon2_max_parallelism {
                    Some(format!(
                        "argon2 p={parallelism} exceeds the cap of {}",
                        self.argon2_max_parallelism
                    ))
                } else {
                    None
                }
            }
            WorkEstimate::Scrypt { log_n, r, p } => {
                let memory = work.memory_kib();
                if memory > self.max_memory_kib {
                    Some(format!(
                        "scrypt memory {memory} KiB (N=2^{log_n}, r={r}) exceeds the cap of {} KiB",
                        self.max_memory_kib
                    ))
                } else if p > self.scrypt_max_parallelism {
                    Some(format!(
                        "scrypt p={p} exceeds the cap of {}",
                        self.scrypt_max_parallelism
                    ))
                } else if memory.saturating_mul(u64::from(p)) > self.scrypt_max_total_kib {
                    Some(format!(
                        "scrypt memory x p = {} KiB exceeds the cap of {} KiB",
                        memory.saturating_mul(u64::from(p)),
                        self.scrypt_max_total_kib
                    ))
                } else {
                    None
                }
            }
            WorkEstimate::ShaCrypt { rounds } if rounds > self.sha_crypt_max_rounds => {
                Some(format!(
                    "sha-crypt {rounds} rounds exceeds the cap of {}",
                    self.sha_crypt_max_rounds
                ))
            }
            WorkEstimate::Phpass { log2_rounds } if log2_rounds > self.phpass_max_log2_rounds => {
                Some(format!(
                    "phpass 2^{log2_rounds} rounds exceeds the cap of 2^{}",
                    self.phpass_max_log2_rounds
                ))
            }
            _ => None,
        }
    }
}
