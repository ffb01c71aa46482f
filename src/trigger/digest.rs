//! The keyed digest that stands for a user in the trigger's logs.
//!
//! Logs must not hold usernames, yet an operator needs to follow one user's attempts and answer
//! "what happened to alice?". The log shows the first 12 hex digits of
//! HMAC-SHA256(key, lower-cased trimmed login): stable for a user, meaningless without the key.
//! With `COGNITO_MIGRATE_LOG_KEY` set, the digest is stable across cold starts and the operator can
//! compute it for a given user (`printf %s alice | openssl dgst -sha256 -hmac "$KEY"`, first 12
//! digits); without it, a random key is drawn per cold start, so lines can be correlated within
//! one execution environment only and nobody can map a digest back to a user.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Computes the log digest. `Debug` never shows the key.
#[derive(Clone)]
pub struct LogDigest {
    key: Vec<u8>,
}

impl std::fmt::Debug for LogDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogDigest(<key redacted>)")
    }
}

impl LogDigest {
    /// A digest with a fresh random key (per cold start).
    pub fn random() -> LogDigest {
        let key: [u8; 32] = rand::random();
        LogDigest { key: key.to_vec() }
    }

    /// A digest with a configured key (the bytes of `COGNITO_MIGRATE_LOG_KEY`).
    pub fn with_key(key: &[u8]) -> LogDigest {
        LogDigest { key: key.to_vec() }
    }

    /// The first 12 hex digits of HMAC-SHA256(key, lower-cased trimmed `login`).
    pub fn of(&self, login: &str) -> String {
        // HMAC takes keys of any length, so this cannot fail; fall back to a fixed marker anyway.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) else {
            return "000000000000".to_string();
        };
        mac.update(login.trim().to_lowercase().as_bytes());
        let tag = mac.finalize().into_bytes();
        tag.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}
