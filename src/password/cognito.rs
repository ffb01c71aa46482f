//! What Amazon Cognito's user import accepts in the CSV's `password_hash` column, and the
//! conversion of every importable legacy hash into it.
//!
//! # What was found
//!
//! * `CreateUserImportJob` has a `PasswordHashingAlgorithm` parameter, one per job: "The password
//!   hashing algorithm used to generate the hashes in the CSV file for this import job. Valid
//!   values: `BCRYPT` | `SCRYPT` | `ARGON2ID` | `PBKDF2_SHA256`" — the model documentation of
//!   aws-sdk-cognitoidentityprovider 1.144 (`CreateUserImportJobInput::password_hashing_algorithm`,
//!   `types::PasswordHashingAlgorithmType`), the same text in the Dart `aws_client` docs
//!   (pub.dev/documentation/aws_client/latest/cognito_identity_provider/CognitoIdentityProvider/createUserImportJob.html).
//! * Caps, from AWS's documentation as recorded in the project's shared notes: bcrypt cost ≤ 12;
//!   argon2id m ≤ 19456 KiB, t ≤ 2, p ≤ 1; PBKDF2-SHA256 ≤ 600,000 iterations; scrypt
//!   N ≤ 65536, r ≤ 8, p ≤ 1.
//! * AWS's page "Importing users with password hashes", which would give the exact string per
//!   algorithm, is in none of the corpora searched (AWS docs, web pages, public code, issues,
//!   November 2026): every stored copy of the CSV-import guide predates the feature and still says
//!   "we don't support importing hashes"; no public code producing the column was found.
//!
//! # What is assumed (the project's assumption, which the local emulator in `tests/emulator/` is
//! written to accept)
//!
//! | algorithm | `password_hash` value |
//! |---|---|
//! | `BCRYPT` | the modular crypt string as is: `$2a$`, `$2b$` or `$2y$`, cost ≤ 12. `$2x$` (crypt_blowfish's buggy-hash marker) is not importable. |
//! | `ARGON2ID` | PHC `$argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<hash>`, standard base64 without padding. Only version 19; argon2i/argon2d are not importable. |
//! | `PBKDF2_SHA256` | PHC `$pbkdf2-sha256$i=<iterations>,l=<hash length in bytes>$<salt>$<hash>`, standard base64 without padding. |
//! | `SCRYPT` | PHC `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>`, standard base64 without padding. |
//!
//! Conversions (same function, other notation): Django's `bcrypt$` drops its prefix; Django's
//! `argon2$…` and Keycloak's argon2id become the PHC string; passlib's, Django's, Keycloak's and
//! ASP.NET Identity v3's (PRF = HMAC-SHA256) PBKDF2-SHA256 become the PHC string — Django's salt
//! is an ASCII string whose *bytes* are the salt, so its base64 is what goes into the PHC salt
//! field; Django's `scrypt$` becomes the PHC string the same way. Hashes whose function differs
//! (pre-hashed bcrypt: Django `bcrypt_sha256`, WordPress `$wp$`; PBKDF2 with SHA-1/SHA-512;
//! argon2i/argon2d; Firebase's scrypt; SHA-crypt, MD5-crypt, phpass) cannot be imported: the
//! trigger verifies those.

use std::fmt;
use std::str::FromStr;

use super::bcrypt::{BcryptFlavor, BcryptVersion};
use super::pbkdf2::Pbkdf2Digest;
use super::{Argon2Variant, PasswordHash};

/// Cognito's caps on imported hashes.
pub mod caps {
    /// Highest bcrypt cost.
    pub const BCRYPT_MAX_COST: u32 = 12;
    /// Highest argon2id memory, KiB.
    pub const ARGON2ID_MAX_M: u32 = 19_456;
    /// Highest argon2id passes.
    pub const ARGON2ID_MAX_T: u32 = 2;
    /// Highest argon2id lanes.
    pub const ARGON2ID_MAX_P: u32 = 1;
    /// Highest PBKDF2-SHA256 iteration count.
    pub const PBKDF2_SHA256_MAX_ITERATIONS: u32 = 600_000;
    /// Highest scrypt N.
    pub const SCRYPT_MAX_N: u64 = 65_536;
    /// Highest scrypt r.
    pub const SCRYPT_MAX_R: u32 = 8;
    /// Highest scrypt p.
    pub const SCRYPT_MAX_P: u32 = 1;
}

/// The algorithms a Cognito import job accepts (`PasswordHashingAlgorithm`), one per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImportAlgorithm {
    Bcrypt,
    Scrypt,
    Argon2id,
    Pbkdf2Sha256,
}

impl ImportAlgorithm {
    /// Every algorithm, in API order.
    pub const ALL: [ImportAlgorithm; 4] = [
        ImportAlgorithm::Bcrypt,
        ImportAlgorithm::Scrypt,
        ImportAlgorithm::Argon2id,
        ImportAlgorithm::Pbkdf2Sha256,
    ];

    /// The API value: `BCRYPT`, `SCRYPT`, `ARGON2ID`, `PBKDF2_SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportAlgorithm::Bcrypt => "BCRYPT",
            ImportAlgorithm::Scrypt => "SCRYPT",
            ImportAlgorithm::Argon2id => "ARGON2ID",
            ImportAlgorithm::Pbkdf2Sha256 => "PBKDF2_SHA256",
        }
    }
}

impl fmt::Display for ImportAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown algorithm name given to [`ImportAlgorithm::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown import algorithm (expected BCRYPT, SCRYPT, ARGON2ID or PBKDF2_SHA256)")]
pub struct ParseImportAlgorithmError;

impl FromStr for ImportAlgorithm {
    type Err = ParseImportAlgorithmError;

    /// Reads the API value, case-insensitively (`-` accepted for `_`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        ImportAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == upper)
            .ok_or(ParseImportAlgorithmError)
    }
}

impl From<ImportAlgorithm>
    for aws_sdk_cognitoidentityprovider::types::PasswordHashingAlgorithmType
{
    fn from(a: ImportAlgorithm) -> Self {
        Self::from(a.as_str())
    }
}

/// Why a hash cannot go into a Cognito import; the user then migrates through the trigger.
/// The reason names the scheme and parameters, never the hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NotImportable {
    pub reason: String,
}

fn refuse(reason: impl Into<String>) -> Result<(ImportAlgorithm, String), NotImportable> {
    Err(NotImportable {
        reason: reason.into(),
    })
}

pub(crate) fn import(hash: &PasswordHash) -> Result<(ImportAlgorithm, String), NotImportable> {
    match hash {
        PasswordHash::Bcrypt(h) => {
            match h.flavor() {
                BcryptFlavor::Plain | BcryptFlavor::Django => {}
                BcryptFlavor::DjangoSha256 => {
                    return refuse(
                        "django-bcrypt-sha256 (bcrypt_sha256) runs bcrypt over a SHA-256 \
                         pre-hash; Cognito's BCRYPT takes the plain password",
                    )
                }
                BcryptFlavor::WordPress => {
                    return refuse(
                        "wordpress-bcrypt ($wp$) runs bcrypt over an HMAC-SHA384 pre-hash; \
                         Cognito's BCRYPT takes the plain password",
                    )
                }
            }
            if h.version() == BcryptVersion::TwoX {
                return refuse(
                    "bcrypt $2x$ (crypt_blowfish's buggy-hash marker) is not importable",
                );
            }
            if h.cost() > caps::BCRYPT_MAX_COST {
                return refuse(format!(
                    "bcrypt cost {} exceeds Cognito's cap of {}",
                    h.cost(),
                    caps::BCRYPT_MAX_COST
                ));
            }
            Ok((ImportAlgorithm::Bcrypt, h.mcf().to_owned()))
        }
        PasswordHash::Argon2(h) => {
            if h.variant() != Argon2Variant::Argon2id {
                return refuse(format!(
                    "{} ({}) is not importable; Cognito imports argon2id only",
                    hash.scheme(),
                    h.variant().as_str()
                ));
            }
            if h.version() != 0x13 {
                return refuse(format!(
                    "argon2id v={} is not importable; Cognito imports v=19",
                    h.version()
                ));
            }
            let over = [
                ("m", h.memory_kib(), caps::ARGON2ID_MAX_M),
                ("t", h.iterations(), caps::ARGON2ID_MAX_T),
                ("p", h.parallelism(), caps::ARGON2ID_MAX_P),
            ]
            .into_iter()
            .filter(|(_, v, cap)| v > cap)
            .map(|(k, v, cap)| format!("{k}={v} (cap {cap})"))
            .collect::<Vec<_>>();
            if !over.is_empty() {
                return refuse(format!(
                    "argon2id {} exceeds Cognito's caps",
                    over.join(", ")
                ));
            }
            Ok((ImportAlgorithm::Argon2id, h.to_phc()))
        }
        PasswordHash::Pbkdf2(h) => {
            if h.digest() != Pbkdf2Digest::Sha256 {
                return refuse(format!(
                    "{} (PBKDF2-HMAC-{}) is not importable; Cognito imports PBKDF2-SHA256 only",
                    hash.scheme(),
                    h.digest().as_str().to_ascii_uppercase()
                ));
            }
            if h.iterations() > caps::PBKDF2_SHA256_MAX_ITERATIONS {
                return refuse(format!(
                    "{} with {} iterations exceeds Cognito's cap of {}",
                    hash.scheme(),
                    h.iterations(),
                    caps::PBKDF2_SHA256_MAX_ITERATIONS
                ));
            }
            Ok((ImportAlgorithm::Pbkdf2Sha256, h.to_phc()))
        }
        PasswordHash::Scrypt(h) => {
            let n = 1u64 << h.log_n();
            let mut over = Vec::new();
            if n > caps::SCRYPT_MAX_N {
                over.push(format!("N={n} (cap {})", caps::SCRYPT_MAX_N));
            }
            if h.r() > caps::SCRYPT_MAX_R {
                over.push(format!("r={} (cap {})", h.r(), caps::SCRYPT_MAX_R));
            }
            if h.p() > caps::SCRYPT_MAX_P {
                over.push(format!("p={} (cap {})", h.p(), caps::SCRYPT_MAX_P));
            }
            if !over.is_empty() {
                return refuse(format!(
                    "{} {} exceeds Cognito's caps",
                    hash.scheme(),
                    over.join(", ")
                ));
            }
            Ok((ImportAlgorithm::Scrypt, h.to_phc()))
        }
        PasswordHash::FirebaseScrypt(_) => refuse(
            "firebase-scrypt is not an algorithm Cognito imports (its output is the project's \
             signer key encrypted with a scrypt-derived key)",
        ),
        PasswordHash::ShaCrypt(_)
        | PasswordHash::Md5Crypt(_)
        | PasswordHash::Phpass(_)
        | PasswordHash::DjangoLegacy(_) => refuse(format!(
            "{} is not an algorithm Cognito imports",
            hash.scheme()
        )),
    }
}

/// How a `password_hash` value is written for Cognito: the notation the preflight hash canary
/// proves on the real pool. [`Notation::default_for`] is the project's assumption (the table in
/// the module documentation); the others are the plausible alternatives the canary tries when
/// the default does not sign in.
///
/// Every notation is derived from the default string of the same hash (same salt, digest and
/// parameters), so a notation changes the text only, never what the KDF computes. Reference
/// strings for each notation come from passlib, argon2-cffi and hashlib
/// (`tests/fixtures/passwords/notations.py` → `notations.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Notation {
    /// bcrypt's modular crypt string as is (`$2a$`/`$2b$`/`$2y$`); the only bcrypt notation.
    Mcf,
    /// PHC string, standard base64 without padding; PBKDF2 with `l=<hash length>`.
    Phc,
    /// PBKDF2: PHC without the `l=` parameter (`$pbkdf2-sha256$i=<n>$<salt>$<hash>`).
    PhcNoLength,
    /// argon2id: PHC without the `v=19` field (`$argon2id$m=…,t=…,p=…$<salt>$<hash>`).
    PhcNoVersion,
    /// PHC layout, standard base64 with `=` padding.
    PhcPadded,
    /// PHC layout, URL-safe base64 (`-`, `_`) without padding.
    PhcUrlSafe,
    /// PHC layout, salt and hash in lowercase hex.
    PhcHex,
    /// PBKDF2: passlib's `$pbkdf2-sha256$<rounds>$<salt>$<hash>` in its adapted base64 (`.` for
    /// `+`, no padding).
    Passlib,
}

impl Notation {
    /// Every notation, in the order the canary tries them.
    pub const ALL: [Notation; 8] = [
        Notation::Mcf,
        Notation::Phc,
        Notation::PhcNoLength,
        Notation::PhcNoVersion,
        Notation::Passlib,
        Notation::PhcPadded,
        Notation::PhcUrlSafe,
        Notation::PhcHex,
    ];

    /// The name used on the command line, in the state file and by the emulator.
    pub fn as_str(self) -> &'static str {
        match self {
            Notation::Mcf => "mcf",
            Notation::Phc => "phc",
            Notation::PhcNoLength => "phc-no-length",
            Notation::PhcNoVersion => "phc-no-version",
            Notation::PhcPadded => "phc-padded",
            Notation::PhcUrlSafe => "phc-urlsafe",
            Notation::PhcHex => "phc-hex",
            Notation::Passlib => "passlib",
        }
    }

    /// The project's assumed notation for `alg` (what `run` writes unless told otherwise).
    pub fn default_for(alg: ImportAlgorithm) -> Notation {
        match alg {
            ImportAlgorithm::Bcrypt => Notation::Mcf,
            _ => Notation::Phc,
        }
    }

    /// Whether the notation can write hashes of `alg`.
    pub fn applies_to(self, alg: ImportAlgorithm) -> bool {
        match self {
            Notation::Mcf => alg == ImportAlgorithm::Bcrypt,
            Notation::PhcNoLength | Notation::Passlib => alg == ImportAlgorithm::Pbkdf2Sha256,
            Notation::PhcNoVersion => alg == ImportAlgorithm::Argon2id,
            Notation::Phc | Notation::PhcPadded | Notation::PhcUrlSafe | Notation::PhcHex => {
                alg != ImportAlgorithm::Bcrypt
            }
        }
    }

    /// The notations of `alg`, the default first: what the canary tries, in order.
    pub fn candidates(alg: ImportAlgorithm) -> Vec<Notation> {
        Notation::ALL
            .into_iter()
            .filter(|n| n.applies_to(alg))
            .collect()
    }

    /// Rewrites `default`, a hash of `alg` in [`Notation::default_for`] (as [`import`] writes
    /// it), into this notation. `None` when the notation does not apply to `alg` or `default` is
    /// not a string [`import`] writes.
    pub fn rewrite(self, alg: ImportAlgorithm, default: &str) -> Option<String> {
        use base64::Engine as _;
        if !self.applies_to(alg) {
            return None;
        }
        if self == Notation::default_for(alg) {
            return Some(default.to_owned());
        }
        // `$<id>[$v=19]$<params>$<salt>$<hash>`
        let fields: Vec<&str> = default.split('$').collect();
        let (id, version, params, salt, hash) = match fields.as_slice() {
            ["", id, v, p, s, h] if v.starts_with("v=") => (*id, Some(*v), *p, *s, *h),
            ["", id, p, s, h] => (*id, None, *p, *s, *h),
            _ => return None,
        };
        let std = base64::engine::general_purpose::STANDARD_NO_PAD;
        let salt = std.decode(salt).ok()?;
        let hash = std.decode(hash).ok()?;
        let phc = |params: &str, encode: &dyn Fn(&[u8]) -> String| {
            let version = version.map(|v| format!("${v}")).unwrap_or_default();
            format!(
                "${id}{version}${params}${}${}",
                encode(&salt),
                encode(&hash)
            )
        };
        Some(match self {
            Notation::Mcf | Notation::Phc => unreachable!("the defaults are returned above"),
            Notation::PhcNoLength => {
                let kept: Vec<&str> = params.split(',').filter(|p| !p.starts_with("l=")).collect();
                phc(&kept.join(","), &|b| std.encode(b))
            }
            Notation::PhcNoVersion => {
                format!("${id}${params}${}${}", std.encode(&salt), std.encode(&hash))
            }
            Notation::PhcPadded => phc(params, &|b| {
                base64::engine::general_purpose::STANDARD.encode(b)
            }),
            Notation::PhcUrlSafe => phc(params, &|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
            }),
            Notation::PhcHex => phc(params, &|b| {
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            }),
            Notation::Passlib => {
                let rounds = params.split(',').find_map(|p| p.strip_prefix("i="))?;
                let ab64 = |b: &[u8]| std.encode(b).replace('+', ".");
                format!("${id}${rounds}${}${}", ab64(&salt), ab64(&hash))
            }
        })
    }
}

impl fmt::Display for Notation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown notation name given to [`Notation::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown hash notation (expected mcf, phc, phc-no-length, phc-no-version, passlib, \
     phc-padded, phc-urlsafe or phc-hex)"
)]
pub struct ParseNotationError;

impl FromStr for Notation {
    type Err = ParseNotationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase().replace('_', "-");
        Notation::ALL
            .into_iter()
            .find(|n| n.as_str() == lower)
            .ok_or(ParseNotationError)
    }
}

/// Which notation to write for each algorithm: the defaults unless set (by a passed canary
/// recorded in the state file, or by `--hash-encoding`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notations {
    chosen: std::collections::BTreeMap<ImportAlgorithm, Notation>,
}

/// A bad `--hash-encoding ALG=NOTATION` value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotationsError {
    #[error("{0:?} is not ALGORITHM=NOTATION (e.g. PBKDF2_SHA256=passlib)")]
    Syntax(String),
    #[error("{given:?}: {source}")]
    Algorithm {
        given: String,
        source: ParseImportAlgorithmError,
    },
    #[error("{given:?}: {source}")]
    Notation {
        given: String,
        source: ParseNotationError,
    },
    #[error("the notation {notation} cannot write {algorithm} hashes (it can: {options})")]
    NotApplicable {
        algorithm: ImportAlgorithm,
        notation: Notation,
        options: String,
    },
}

impl Notations {
    /// Sets `alg`'s notation; refuses one that cannot write `alg`.
    pub fn set(&mut self, alg: ImportAlgorithm, notation: Notation) -> Result<(), NotationsError> {
        if !notation.applies_to(alg) {
            return Err(NotationsError::NotApplicable {
                algorithm: alg,
                notation,
                options: Notation::candidates(alg)
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.chosen.insert(alg, notation);
        Ok(())
    }

    /// Reads one `ALGORITHM=NOTATION` (e.g. `PBKDF2_SHA256=passlib`) and sets it.
    pub fn set_from_arg(&mut self, arg: &str) -> Result<(), NotationsError> {
        let (a, n) = arg
            .split_once('=')
            .ok_or_else(|| NotationsError::Syntax(arg.to_owned()))?;
        let alg = a.parse().map_err(|source| NotationsError::Algorithm {
            given: a.to_owned(),
            source,
        })?;
        let notation = n.parse().map_err(|source| NotationsError::Notation {
            given: n.to_owned(),
            source,
        })?;
        self.set(alg, notation)
    }

    /// The notation written for `alg`.
    pub fn get(&self, alg: ImportAlgorithm) -> Notation {
        self.chosen
            .get(&alg)
            .copied()
            .unwrap_or_else(|| Notation::default_for(alg))
    }

    /// Whether `alg`'s notation was set (else it is the default).
    pub fn is_set(&self, alg: ImportAlgorithm) -> bool {
        self.chosen.contains_key(&alg)
    }

    /// The notations set, by algorithm.
    pub fn iter(&self) -> impl Iterator<Item = (ImportAlgorithm, Notation)> + '_ {
        self.chosen.iter().map(|(a, n)| (*a, *n))
    }
}

/// [`import`], with the hash written in `notations`' notation for its algorithm.
pub(crate) fn import_with(
    hash: &PasswordHash,
    notations: &Notations,
) -> Result<(ImportAlgorithm, String), NotImportable> {
    let (alg, default) = import(hash)?;
    let notation = notations.get(alg);
    match notation.rewrite(alg, &default) {
        Some(s) => Ok((alg, s)),
        None => refuse(format!(
            "the {alg} hash cannot be written in the {notation} notation"
        )),
    }
}
