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

/// Why a `--hash-config` could not be read. Never contains the key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashConfigError {
    /// Neither a JSON object nor the console's text block.
    #[error("{0}")]
    Syntax(String),
    #[error("missing key `{0}`")]
    Missing(&'static str),
    #[error("unknown key `{0}`")]
    Unknown(String),
    #[error("key `{0}` is given twice")]
    Repeated(&'static str),
    #[error("`{key}` {problem}")]
    Bad {
        key: &'static str,
        problem: &'static str,
    },
}

/// The keys of a `hash_config`, with the other spellings accepted for each.
const KEYS: [(&str, &[&str]); 5] = [
    ("algorithm", &[]),
    (
        "base64_signer_key",
        &["signerKey", "base64SignerKey", "signer_key"],
    ),
    (
        "base64_salt_separator",
        &["saltSeparator", "base64SaltSeparator", "salt_separator"],
    ),
    ("rounds", &[]),
    ("mem_cost", &["memCost", "memoryCost", "memory_cost"]),
];

fn canonical_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|(k, aliases)| *k == key || aliases.contains(&key))
        .map(|(k, _)| *k)
}

impl FirebaseHashConfig {
    /// Reads the `hash_config` in either form:
    /// - the text the Firebase console shows (Authentication → Users → ⋮ → Password hash
    ///   parameters): `hash_config { algorithm: SCRYPT, base64_signer_key: …,
    ///   base64_salt_separator: …, rounds: 8, mem_cost: 14, }` (one `key: value` per line or
    ///   separated by commas; the `hash_config { … }` wrapper is optional);
    /// - JSON: `{"algorithm": "SCRYPT", "base64_signer_key": "…", "base64_salt_separator": "…",
    ///   "rounds": 8, "mem_cost": 14}` (camelCase keys accepted).
    pub fn parse(text: &str) -> Result<Self, HashConfigError> {
        let pairs = if text.trim_start().starts_with('{') {
            json_pairs(text)?
        } else {
            text_pairs(text)?
        };
        let mut values: [Option<String>; 5] = Default::default();
        for (key, value) in pairs {
            let canonical =
                canonical_key(&key).ok_or_else(|| HashConfigError::Unknown(sanitize_key(&key)))?;
            let slot = KEYS
                .iter()
                .position(|(k, _)| *k == canonical)
                .expect("a known key");
            if values[slot].replace(value).is_some() {
                return Err(HashConfigError::Repeated(canonical));
            }
        }
        let [algorithm, signer_key, salt_separator, rounds, mem_cost] = values;
        if let Some(alg) = algorithm {
            if !alg.eq_ignore_ascii_case("SCRYPT") {
                return Err(HashConfigError::Bad {
                    key: "algorithm",
                    problem: "is not SCRYPT (Firebase exports are hashed with its scrypt)",
                });
            }
        }
        let base64 = |key: &'static str, v: Option<String>| {
            let v = v.ok_or(HashConfigError::Missing(key))?;
            b64_decode(&v, SCHEME, "").map_err(|_| HashConfigError::Bad {
                key,
                problem: "is not base64",
            })
        };
        let number = |key: &'static str, v: Option<String>| {
            v.ok_or(HashConfigError::Missing(key))?
                .parse::<u32>()
                .map_err(|_| HashConfigError::Bad {
                    key,
                    problem: "is not a whole number",
                })
        };
        let config = FirebaseHashConfig {
            signer_key: base64("base64_signer_key", signer_key)?,
            salt_separator: base64("base64_salt_separator", salt_separator)?,
            rounds: number("rounds", rounds)?,
            mem_cost: number("mem_cost", mem_cost)?,
        };
        if !ROUNDS.contains(&config.rounds) {
            return Err(HashConfigError::Bad {
                key: "rounds",
                problem: "is outside 1..=8",
            });
        }
        if !MEM_COST.contains(&config.mem_cost) {
            return Err(HashConfigError::Bad {
                key: "mem_cost",
                problem: "is outside 1..=14",
            });
        }
        // A hash is as long as the signer key and at least 8 bytes: a shorter key would refuse
        // every user's hash, one by one (a fuzz finding).
        if config.signer_key.len() < 8 {
            return Err(HashConfigError::Bad {
                key: "base64_signer_key",
                problem: "is shorter than 8 bytes (a Firebase hash is as long as its key)",
            });
        }
        Ok(config)
    }

    /// [`FirebaseHashConfig::parse`] with the error as a [`HashError`] (without the detail).
    pub fn from_json(s: &str) -> Result<Self, HashError> {
        Self::parse(s).map_err(|_| {
            HashError::FirebaseConfig(
                "expected base64_signer_key, base64_salt_separator, rounds, mem_cost (JSON or the console's hash_config text)",
            )
        })
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

/// The members of a JSON `hash_config`, numbers and strings as text.
fn json_pairs(text: &str) -> Result<Vec<(String, String)>, HashConfigError> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            HashConfigError::Syntax(format!(
                "not a JSON object (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    let key =
                        canonical_key(&k).ok_or(HashConfigError::Unknown(sanitize_key(&k)))?;
                    return Err(HashConfigError::Bad {
                        key,
                        problem: "is neither a string nor a number",
                    });
                }
            };
            Ok((k, text))
        })
        .collect()
}

/// The `key: value` pairs of the console's text block, with or without its
/// `hash_config { … }` wrapper; values may be quoted.
fn text_pairs(text: &str) -> Result<Vec<(String, String)>, HashConfigError> {
    let mut body = text.trim();
    if let Some(rest) = body.strip_prefix("hash_config") {
        body = rest.trim_start();
    }
    if let Some(rest) = body.strip_prefix('{') {
        body = rest
            .trim_end()
            .strip_suffix('}')
            .ok_or_else(|| HashConfigError::Syntax("`hash_config {` has no closing `}`".into()))?;
    }
    let mut pairs = Vec::new();
    for (n, line) in body.lines().enumerate() {
        for item in line.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item.split_once(':').ok_or_else(|| {
                HashConfigError::Syntax(format!(
                    "line {} of the hash_config text is not `key: value` (neither is it JSON)",
                    n + 1
                ))
            })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            pairs.push((key.trim().to_string(), value.to_string()));
        }
    }
    Ok(pairs)
}

/// A key name fit for a message (it is never a secret, but it may be garbage).
fn sanitize_key(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of github.com/firebase/scrypt's published example, in the block the Firebase
    /// console shows (Authentication → Users → ⋮ → Password hash parameters; its layout as in
    /// firebase.google.com/docs/cli/auth).
    const CONSOLE: &str = "hash_config {
  algorithm: SCRYPT,
  base64_signer_key: jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==,
  base64_salt_separator: Bw==,
  rounds: 8,
  mem_cost: 14,
}
";

    #[test]
    fn the_consoles_hash_config_text_reads_like_the_json() {
        let text = FirebaseHashConfig::parse(CONSOLE).unwrap();
        let json = FirebaseHashConfig::parse(
            r#"{"algorithm":"SCRYPT","base64_signer_key":"jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}"#,
        )
        .unwrap();
        assert_eq!(text, json);
        assert_eq!((text.rounds, text.mem_cost), (8, 14));
        assert_eq!(text.salt_separator, [7]);
        // The same on one line, without the wrapper, and with quoted values.
        let one_line = "algorithm: SCRYPT, base64_signer_key: \"jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==\", base64_salt_separator: Bw==, rounds: 8, mem_cost: 14";
        assert_eq!(FirebaseHashConfig::parse(one_line).unwrap(), json);
        // The published example user verifies with it.
        let hash = FirebaseScryptHash::from_export(
            "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
            "42xEC+ixf3L2lw==",
            &text,
        )
        .unwrap();
        assert!(hash.verify("user1password"));
        assert!(!hash.verify("user2password"));
    }

    #[test]
    fn hash_config_errors_name_the_key_and_never_the_secret() {
        let without = |key: &str| -> String {
            CONSOLE
                .lines()
                .filter(|l| !l.trim_start().starts_with(key))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for (text, expected) in [
            (without("rounds"), "missing key `rounds`"),
            (
                without("base64_signer_key"),
                "missing key `base64_signer_key`",
            ),
            (without("mem_cost"), "missing key `mem_cost`"),
            (
                CONSOLE.replace("rounds: 8", "rounds: eight"),
                "`rounds` is not a whole number",
            ),
            (
                CONSOLE.replace("mem_cost: 14", "mem_cost: 15"),
                "`mem_cost` is outside 1..=14",
            ),
            (
                CONSOLE.replace("algorithm: SCRYPT", "algorithm: BCRYPT"),
                "`algorithm` is not SCRYPT",
            ),
            (
                CONSOLE.replace("jxspr8Ki0", "jx!pr8Ki0"),
                "`base64_signer_key` is not base64",
            ),
            (
                CONSOLE.replace("rounds: 8", "rounds: 8,\n  round: 8"),
                "unknown key `round`",
            ),
            (
                CONSOLE.replace("mem_cost: 14", "mem_cost: 14, memCost: 14"),
                "key `mem_cost` is given twice",
            ),
            (
                CONSOLE.replace("rounds: 8", "rounds 8"),
                "line 5 of the hash_config text is not `key: value`",
            ),
            (
                CONSOLE.trim_end().trim_end_matches('}').to_string(),
                "has no closing `}`",
            ),
            (
                r#"{"base64_signer_key": "AA==", "rounds": 8"#.to_string(),
                "not a JSON object",
            ),
            (
                r#"{"base64_signer_key":"AA==","base64_salt_separator":"Bw==","mem_cost":14}"#
                    .to_string(),
                "missing key `rounds`",
            ),
        ] {
            let err = FirebaseHashConfig::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} (wanted {expected})");
            assert!(!err.contains("pr8Ki0"), "{err}");
        }
    }
}
