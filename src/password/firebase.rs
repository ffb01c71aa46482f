//! Firebase Authentication's modified scrypt, the only hash `firebase auth:export` gives out.
//!
//! Per github.com/firebase/scrypt (README and its `scrypt` utility): with the project's
//! `hash_config` (base64 signer key, base64 salt separator, rounds, mem_cost) and the user's base64
//! salt and hash,
//!
//! ```text
//! key  = scrypt(password, salt || salt_separator, N = 2^mem_cost, r = rounds, p = 1, dkLen = 64)
//! hash = AES-256-CTR(key = key[0..32], IV = 0^16).encrypt(signer_key)
//! ```
//!
//! and the password matches when `hash` equals the exported hash. The repository's published
//! example (signer key `jxspr8Ki…`, separator `Bw==`, rounds 8, mem_cost 14, salt
//! `42xEC+ixf3L2lw==`, password `user1password`) is one of the test vectors.
//!
//! Cognito cannot import this function. The signer key is per project, so `encode` writes
//! everything needed to verify later into one string:
//! `$cm-firebase-scrypt$r=<rounds>,m=<mem_cost>$<signer key>$<salt separator>$<salt>$<hash>`
//! (standard base64 without padding).

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::Deserialize;

use super::encoding::{b64_decode, b64_nopad, parse_u32, phc_params};
use super::{ct_eq, HashError};

const SCHEME: &str = "firebase-scrypt";
const PROJECT_PREFIX: &str = "$cm-firebase-scrypt$";

/// Firebase's limits on the project parameters: rounds 1–8, mem_cost 1–14.
const ROUNDS: std::ops::RangeInclusive<u32> = 1..=8;
const MEM_COST: std::ops::RangeInclusive<u32> = 1..=14;

/// A Firebase project's password hash parameters (Firebase console → Authentication → Users →
/// "Password hash parameters").
///
/// `Debug` does not show the signer key or the salt separator.
#[derive(Clone, PartialEq, Eq)]
pub struct FirebaseHashConfig {
    pub signer_key: Vec<u8>,
    pub salt_separator: Vec<u8>,
    pub rounds: u32,
    pub mem_cost: u32,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(alias = "signerKey", alias = "base64SignerKey")]
    base64_signer_key: String,
    #[serde(alias = "saltSeparator", alias = "base64SaltSeparator")]
    base64_salt_separator: String,
    rounds: u32,
    #[serde(alias = "memCost", alias = "memoryCost")]
    mem_cost: u32,
}

impl FirebaseHashConfig {
    /// Reads the `hash_config` as JSON: `{"algorithm": "SCRYPT", "base64_signer_key": "…",
    /// "base64_salt_separator": "…", "rounds": 8, "mem_cost": 14}` (camelCase keys accepted).
    pub fn from_json(s: &str) -> Result<Self, HashError> {
        let c: ConfigJson = serde_json::from_str(s).map_err(|_| {
            HashError::FirebaseConfig(
                "expected JSON with base64_signer_key, base64_salt_separator, rounds, mem_cost",
            )
        })?;
        if let Some(alg) = &c.algorithm {
            if !alg.eq_ignore_ascii_case("SCRYPT") {
                return Err(HashError::FirebaseConfig("algorithm is not SCRYPT"));
            }
        }
        let signer_key = b64_decode(&c.base64_signer_key, SCHEME, "")
            .map_err(|_| HashError::FirebaseConfig("base64_signer_key is not base64"))?;
        let salt_separator = b64_decode(&c.base64_salt_separator, SCHEME, "")
            .map_err(|_| HashError::FirebaseConfig("base64_salt_separator is not base64"))?;
        let config = FirebaseHashConfig {
            signer_key,
            salt_separator,
            rounds: c.rounds,
            mem_cost: c.mem_cost,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), HashError> {
        if !ROUNDS.contains(&self.rounds) {
            return Err(HashError::FirebaseConfig("rounds outside 1..=8"));
        }
        if !MEM_COST.contains(&self.mem_cost) {
            return Err(HashError::FirebaseConfig("mem_cost outside 1..=14"));
        }
        // A hash is as long as the signer key and at least 8 bytes: a shorter key would refuse
        // every user's hash, one by one.
        if self.signer_key.len() < 8 {
            return Err(HashError::FirebaseConfig("signer key shorter than 8 bytes"));
        }
        Ok(())
    }
}

impl fmt::Debug for FirebaseHashConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirebaseHashConfig")
            .field("rounds", &self.rounds)
            .field("mem_cost", &self.mem_cost)
            .field("signer_key", &"<redacted>")
            .field("salt_separator", &"<redacted>")
            .finish()
    }
}

/// One user's Firebase scrypt hash together with the project parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct FirebaseScryptHash {
    config: FirebaseHashConfig,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl FirebaseScryptHash {
    /// From an exported user's base64 `passwordHash` and `salt`.
    pub(crate) fn from_export(
        hash_b64: &str,
        salt_b64: &str,
        config: &FirebaseHashConfig,
    ) -> Result<Self, HashError> {
        let hash = b64_decode(hash_b64, SCHEME, "hash is not base64")?;
        let salt = b64_decode(salt_b64, SCHEME, "salt is not base64")?;
        Self::new(config.clone(), salt, hash)
    }

    fn new(config: FirebaseHashConfig, salt: Vec<u8>, hash: Vec<u8>) -> Result<Self, HashError> {
        config.validate()?;
        if hash.len() != config.signer_key.len() {
            return Err(HashError::malformed(
                SCHEME,
                "hash length differs from the signer key's",
            ));
        }
        if hash.len() < 8 {
            return Err(HashError::malformed(SCHEME, "hash shorter than 8 bytes"));
        }
        Ok(FirebaseScryptHash { config, salt, hash })
    }

    /// Parses `$cm-firebase-scrypt$r=…,m=…$<signer key>$<separator>$<salt>$<hash>`.
    pub(crate) fn parse_project(s: &str) -> Result<Self, HashError> {
        let rest = s
            .strip_prefix(PROJECT_PREFIX)
            .ok_or(HashError::UnknownFormat)?;
        let mut fields = rest.split('$');
        let (Some(params), Some(key), Some(sep), Some(salt), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(HashError::malformed(
                SCHEME,
                "expected r=..,m=..$<key>$<separator>$<salt>$<hash>",
            ));
        };
        let (mut rounds, mut mem_cost) = (None, None);
        for (k, v) in phc_params(params, SCHEME)? {
            let slot = match k {
                "r" => &mut rounds,
                "m" => &mut mem_cost,
                _ => return Err(HashError::malformed(SCHEME, "unknown parameter")),
            };
            if slot.is_some() {
                return Err(HashError::malformed(SCHEME, "repeated parameter"));
            }
            *slot = Some(parse_u32(v, SCHEME, "bad r/m parameter")?);
        }
        let (Some(rounds), Some(mem_cost)) = (rounds, mem_cost) else {
            return Err(HashError::malformed(SCHEME, "missing r or m"));
        };
        let config = FirebaseHashConfig {
            signer_key: b64_decode(key, SCHEME, "signer key is not base64")?,
            salt_separator: b64_decode(sep, SCHEME, "salt separator is not base64")?,
            rounds,
            mem_cost,
        };
        let salt = b64_decode(salt, SCHEME, "salt is not base64")?;
        let hash = b64_decode(hash, SCHEME, "hash is not base64")?;
        Self::new(config, salt, hash)
    }

    /// log₂ N of the underlying scrypt (the project's mem_cost).
    pub fn log_n(&self) -> u8 {
        u8::try_from(self.config.mem_cost).unwrap_or(u8::MAX)
    }

    /// r of the underlying scrypt (the project's rounds).
    pub fn r(&self) -> u32 {
        self.config.rounds
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let Ok(params) = ::scrypt::Params::new(self.log_n(), self.config.rounds, 1) else {
            return false;
        };
        let mut salt = self.salt.clone();
        salt.extend_from_slice(&self.config.salt_separator);
        let mut derived = [0u8; 64];
        if ::scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived).is_err() {
            return false;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&derived[..32]);
        let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &[0u8; 16].into());
        let mut out = self.config.signer_key.clone();
        cipher.apply_keystream(&mut out);
        ct_eq(&out, &self.hash)
    }

    pub(crate) fn encode(&self) -> String {
        format!(
            "{PROJECT_PREFIX}r={},m={}${}${}${}${}",
            self.config.rounds,
            self.config.mem_cost,
            b64_nopad(&self.config.signer_key),
            b64_nopad(&self.config.salt_separator),
            b64_nopad(&self.salt),
            b64_nopad(&self.hash)
        )
    }
}

impl fmt::Debug for FirebaseScryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirebaseScryptHash")
            .field("scheme", &SCHEME)
            .field("rounds", &self.config.rounds)
            .field("mem_cost", &self.config.mem_cost)
            .finish()
    }
}
