//! Legacy password hashes: parse them, verify passwords against them, and turn them into what
//! Amazon Cognito can import.
//!
//! Two paths use this module:
//!
//! * the bulk import writes each user's hash into the import CSV's `password_hash` column when
//!   [`PasswordHash::cognito_import`] says Cognito can take it (bcrypt, argon2id, PBKDF2-SHA256,
//!   scrypt within Cognito's caps; see [`cognito`](self::cognito) for the encodings);
//! * the user-migration Lambda trigger keeps [`PasswordHash::encode`]'s string for every other
//!   user and checks the password the user types with [`PasswordHash::verify`] — after refusing
//!   parameters that would take seconds ([`PasswordHash::exceeds`] with a [`CostCap`]).
//!
//! [`PasswordHash`] has one variant per *algorithm family* (bcrypt, argon2, PBKDF2, scrypt,
//! Firebase's scrypt, SHA-crypt, MD5-crypt, phpass). Each payload remembers the notation it was
//! read from (PHC, passlib, Django, Keycloak, ASP.NET Identity, WordPress, …), so that
//! [`PasswordHash::scheme`] can name the source in reports and [`PasswordHash::encode`] writes the
//! same notation back (`parse(encode(h)) == h`). Notations with no self-describing string form get
//! a project notation starting with `$cm-`: `$cm-firebase-scrypt$r=…,m=…$<signer key>$<salt
//! separator>$<salt>$<hash>` (Firebase, whose hash needs the project's parameters),
//! `$cm-keycloak$<PHC string>` (Keycloak credentials) and `$cm-aspnet$<base64 blob>` (ASP.NET
//! Identity).
//!
//! Secrets stay out of logs: `Debug` prints the scheme and cost parameters only, and no
//! [`HashError`] message contains any part of a hash, salt or password.

mod argon2;
mod aspnet;
mod bcrypt;
pub mod cognito;
mod cost;
mod crypt;
mod des_crypt;
mod django;
mod django_legacy;
mod encoding;
mod firebase;
mod keycloak;
mod pbkdf2;
mod phpass;
mod scrypt;
mod wordpress;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::record::RawPassword;

pub use self::argon2::{Argon2Hash, Argon2Variant};
pub use self::bcrypt::{BcryptHash, BcryptVersion};
pub use self::cognito::{
    ImportAlgorithm, NotImportable, Notation, Notations, NotationsError, ParseImportAlgorithmError,
    ParseNotationError,
};
pub use self::cost::{CostCap, WorkEstimate};
pub use self::crypt::{Md5CryptHash, ShaCryptHash};
pub use self::django_legacy::DjangoLegacyHash;
pub use self::firebase::{FirebaseHashConfig, FirebaseScryptHash, HashConfigError};
pub use self::pbkdf2::{Pbkdf2Digest, Pbkdf2Hash};
pub use self::phpass::PhpassHash;
pub use self::scrypt::ScryptHash;

/// Why a password hash could not be read.
///
/// Messages name the scheme and what is wrong with it, never any part of the hash, the salt or
/// a password: they are safe to log and to put in reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The string is not in any notation this module knows.
    #[error("unrecognised password hash format")]
    UnknownFormat,
    /// The notation was recognised but the string is not well-formed.
    #[error("malformed {scheme} hash: {reason}")]
    Malformed {
        scheme: &'static str,
        reason: &'static str,
    },
    /// Well-formed, but uses something this module does not implement (a digest, a version…).
    /// `reason` holds only parameter names and numbers.
    #[error("unsupported {scheme} hash: {reason}")]
    Unsupported {
        scheme: &'static str,
        reason: String,
    },
    /// A Firebase scrypt hash was given without the project's `hash_config`.
    #[error(
        "a firebase-scrypt hash needs the project's hash_config \
         (signer key, salt separator, rounds, mem_cost)"
    )]
    MissingFirebaseConfig,
    /// The Firebase `hash_config` could not be read.
    #[error("invalid firebase hash_config: {0}")]
    FirebaseConfig(&'static str),
    /// A marker that stands for "no usable password" rather than a hash: Django's
    /// `set_unusable_password()` (`!` and 40 random characters), a locked `/etc/shadow`-style
    /// entry (`!…`, `*…`).
    #[error(
        "an unusable-password marker ({0}): the legacy system holds no password for this user"
    )]
    Unusable(&'static str),
}

impl HashError {
    pub(crate) fn malformed(scheme: &'static str, reason: &'static str) -> Self {
        HashError::Malformed { scheme, reason }
    }

    pub(crate) fn unsupported(scheme: &'static str, reason: impl Into<String>) -> Self {
        HashError::Unsupported {
            scheme,
            reason: reason.into(),
        }
    }

    /// Whether the fix is the tool's configuration (Firebase's `--hash-config`) rather than the
    /// record: such errors are not a property of one user's hash.
    pub fn needs_configuration(&self) -> bool {
        matches!(
            self,
            HashError::MissingFirebaseConfig | HashError::FirebaseConfig(_)
        )
    }
}

/// What parsing needs besides the hash itself.
#[derive(Clone, Default, Debug)]
pub struct HashContext {
    /// The Firebase project's password hash parameters; needed for [`RawPassword::Firebase`].
    pub firebase: Option<FirebaseHashConfig>,
}

/// A parsed legacy password hash. See the [module documentation](self).
///
/// `Debug` shows the scheme and cost parameters only.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordHash {
    /// bcrypt, including Django's `bcrypt$`/`bcrypt_sha256$` and WordPress 6.8's `$wp$`.
    Bcrypt(BcryptHash),
    /// argon2id / argon2i / argon2d: PHC, Django `argon2$`, Keycloak `argon2`.
    Argon2(Argon2Hash),
    /// PBKDF2-HMAC-SHA1/256/512: PHC, passlib, Django, Keycloak, ASP.NET Identity.
    Pbkdf2(Pbkdf2Hash),
    /// Standard scrypt: PHC/passlib `$scrypt$`, Django `scrypt$`.
    Scrypt(ScryptHash),
    /// Firebase Authentication's modified scrypt.
    FirebaseScrypt(FirebaseScryptHash),
    /// glibc SHA-crypt: `$5$` (SHA-256) and `$6$` (SHA-512).
    ShaCrypt(ShaCryptHash),
    /// MD5-crypt `$1$`.
    Md5Crypt(Md5CryptHash),
    /// phpass portable hashes `$P$` (WordPress before 6.8) and `$H$` (phpBB3).
    Phpass(PhpassHash),
    /// Django's legacy hashers: `sha1$`, `md5$`, unsalted MD5/SHA-1, `crypt$` (DES).
    DjangoLegacy(DjangoLegacyHash),
}

impl PasswordHash {
    /// Parses password material as a source exported it.
    ///
    /// [`RawPassword::Firebase`] needs `ctx.firebase`; everything else ignores `ctx`.
    pub fn from_raw(raw: &RawPassword, ctx: &HashContext) -> Result<Self, HashError> {
        match raw {
            RawPassword::Encoded(s) => Self::parse(s),
            RawPassword::Firebase { hash, salt } => {
                let config = ctx
                    .firebase
                    .as_ref()
                    .ok_or(HashError::MissingFirebaseConfig)?;
                FirebaseScryptHash::from_export(hash, salt, config).map(Self::FirebaseScrypt)
            }
            RawPassword::Keycloak {
                secret_data,
                credential_data,
            } => keycloak::from_credential(secret_data, credential_data),
            RawPassword::AspNetIdentity(blob) => aspnet::parse_blob(blob).map(Self::Pbkdf2),
        }
    }

    /// Parses any self-describing encoding: modular crypt (`$2b$…`, `$6$…`, `$1$…`, `$P$…`,
    /// `$wp$…`), PHC (`$argon2id$…`, `$pbkdf2-sha256$…`, `$scrypt$…`), passlib, Django
    /// (`pbkdf2_sha256$…`, `bcrypt_sha256$…`, `argon2$…`, `scrypt$…` and the legacy `sha1$…`,
    /// `md5$…`, `crypt$…` and bare unsalted MD5) and the project notations
    /// [`encode`](Self::encode) writes (`$cm-…`). Surrounding whitespace is ignored.
    ///
    /// A bare base64 string is read as an ASP.NET Identity `PasswordHash` when its bytes have
    /// that layout unambiguously (see [`aspnet`](self::aspnet)). Unusable-password markers
    /// (`!…`, `*…`) are [`HashError::Unusable`].
    pub fn parse(s: &str) -> Result<Self, HashError> {
        let s = s.trim();
        if s.starts_with('!') {
            return Err(HashError::Unusable("`!`"));
        }
        if s.starts_with('*') {
            return Err(HashError::Unusable("`*`"));
        }
        if let Some(rest) = s.strip_prefix("$cm-") {
            if rest.starts_with("firebase-scrypt$") {
                return FirebaseScryptHash::parse_project(s).map(Self::FirebaseScrypt);
            }
            if rest.starts_with("keycloak$") {
                return keycloak::parse_project(s);
            }
            if rest.starts_with("aspnet$") {
                return aspnet::parse_project(s).map(Self::Pbkdf2);
            }
            return Err(HashError::UnknownFormat);
        }
        if let Some(rest) = s.strip_prefix('$') {
            let ident = rest.split('$').next().unwrap_or_default();
            return match ident {
                "2a" | "2b" | "2x" | "2y" => BcryptHash::parse_plain(s).map(Self::Bcrypt),
                "wp" => wordpress::parse(s).map(Self::Bcrypt),
                "argon2id" | "argon2i" | "argon2d" => Argon2Hash::parse_phc(s).map(Self::Argon2),
                "pbkdf2" | "pbkdf2-sha1" | "pbkdf2-sha256" | "pbkdf2-sha512" => {
                    Pbkdf2Hash::parse_dollar(s).map(Self::Pbkdf2)
                }
                "scrypt" => ScryptHash::parse_phc(s).map(Self::Scrypt),
                "5" | "6" => ShaCryptHash::parse(s).map(Self::ShaCrypt),
                "1" => Md5CryptHash::parse(s).map(Self::Md5Crypt),
                "P" | "H" => PhpassHash::parse(s).map(Self::Phpass),
                _ => Err(HashError::UnknownFormat),
            };
        }
        match django::parse(s) {
            Err(HashError::UnknownFormat) => {
                aspnet::detect(s).map_or(Err(HashError::UnknownFormat), |h| Ok(Self::Pbkdf2(h)))
            }
            other => other,
        }
    }

    /// A stable short name of the scheme for reports, e.g. `bcrypt`, `argon2id`,
    /// `pbkdf2-sha256`, `django-pbkdf2-sha256`, `django-bcrypt-sha256`, `keycloak-argon2`,
    /// `aspnet-identity-v3`, `firebase-scrypt`, `sha512-crypt`, `md5-crypt`, `phpass`,
    /// `wordpress-bcrypt`.
    pub fn scheme(&self) -> &'static str {
        match self {
            PasswordHash::Bcrypt(h) => h.scheme(),
            PasswordHash::Argon2(h) => h.scheme(),
            PasswordHash::Pbkdf2(h) => h.scheme(),
            PasswordHash::Scrypt(h) => h.scheme(),
            PasswordHash::FirebaseScrypt(_) => "firebase-scrypt",
            PasswordHash::ShaCrypt(h) => h.scheme(),
            PasswordHash::Md5Crypt(_) => "md5-crypt",
            PasswordHash::Phpass(_) => "phpass",
            PasswordHash::DjangoLegacy(h) => h.scheme(),
        }
    }

    /// Whether `password` matches. The final comparison is constant-time.
    ///
    /// This runs the full hash function: check [`exceeds`](Self::exceeds) first where the
    /// parameters come from untrusted or unknown data.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            PasswordHash::Bcrypt(h) => h.verify(password),
            PasswordHash::Argon2(h) => h.verify(password),
            PasswordHash::Pbkdf2(h) => h.verify(password),
            PasswordHash::Scrypt(h) => h.verify(password),
            PasswordHash::FirebaseScrypt(h) => h.verify(password),
            PasswordHash::ShaCrypt(h) => h.verify(password),
            PasswordHash::Md5Crypt(h) => h.verify(password),
            PasswordHash::Phpass(h) => h.verify(password),
            PasswordHash::DjangoLegacy(h) => h.verify(password),
        }
    }

    /// The algorithm and the exact `password_hash` string for Cognito's import CSV, or why this
    /// hash cannot be imported. See [`cognito`](self::cognito).
    pub fn cognito_import(&self) -> Result<(ImportAlgorithm, String), NotImportable> {
        cognito::import(self)
    }

    /// [`cognito_import`](Self::cognito_import) in the notation `notations` gives the hash's
    /// algorithm (the one a passed preflight canary proved, or `--hash-encoding`).
    pub fn cognito_import_with(
        &self,
        notations: &Notations,
    ) -> Result<(ImportAlgorithm, String), NotImportable> {
        cognito::import_with(self, notations)
    }

    /// A lossless string form that [`parse`](Self::parse) reads back into an equal value; it
    /// keeps the source's notation, or a `$cm-…` project notation where the source has none
    /// (Firebase — the project's signer key and salt separator included —, Keycloak,
    /// ASP.NET Identity). It contains the hash and salt: store it like the original.
    pub fn encode(&self) -> String {
        match self {
            PasswordHash::Bcrypt(h) => h.encode(),
            PasswordHash::Argon2(h) => h.encode(),
            PasswordHash::Pbkdf2(h) => h.encode(),
            PasswordHash::Scrypt(h) => h.encode(),
            PasswordHash::FirebaseScrypt(h) => h.encode(),
            PasswordHash::ShaCrypt(h) => h.encode(),
            PasswordHash::Md5Crypt(h) => h.encode(),
            PasswordHash::Phpass(h) => h.encode(),
            PasswordHash::DjangoLegacy(h) => h.encode(),
        }
    }

    /// The cost parameters that decide how long [`verify`](Self::verify) takes.
    pub fn work_estimate(&self) -> WorkEstimate {
        match self {
            PasswordHash::Bcrypt(h) => WorkEstimate::Bcrypt { cost: h.cost() },
            PasswordHash::Argon2(h) => WorkEstimate::Argon2 {
                memory_kib: h.memory_kib(),
                iterations: h.iterations(),
                parallelism: h.parallelism(),
            },
            PasswordHash::Pbkdf2(h) => WorkEstimate::Pbkdf2 {
                iterations: h.iterations(),
                blocks: h.output_blocks(),
            },
            PasswordHash::Scrypt(h) => WorkEstimate::Scrypt {
                log_n: h.log_n(),
                r: h.r(),
                p: h.p(),
            },
            PasswordHash::FirebaseScrypt(h) => WorkEstimate::Scrypt {
                log_n: h.log_n(),
                r: h.r(),
                p: 1,
            },
            PasswordHash::ShaCrypt(h) => WorkEstimate::ShaCrypt { rounds: h.rounds() },
            PasswordHash::Md5Crypt(_) => WorkEstimate::Md5Crypt,
            PasswordHash::Phpass(h) => WorkEstimate::Phpass {
                log2_rounds: h.log2_rounds(),
            },
            PasswordHash::DjangoLegacy(_) => WorkEstimate::Digest,
        }
    }

    /// `Some(reason)` when verifying would exceed `cap` (e.g. `"bcrypt cost 15 exceeds the cap
    /// of 14"`); `None` when it is within. [`CostCap::default`] documents the default caps.
    pub fn exceeds(&self, cap: &CostCap) -> Option<String> {
        cap.check(&self.work_estimate())
    }
}

impl fmt::Display for PasswordHash {
    /// The scheme and its cost parameters, like `Debug`: never the hash or salt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.scheme(), self.work_estimate())
    }
}

impl std::str::FromStr for PasswordHash {
    type Err = HashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
