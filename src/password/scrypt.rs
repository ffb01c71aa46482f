//! Standard scrypt (RFC 7914) password hashes: the PHC form passlib and the RustCrypto crates
//! write, `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>` (standard base64 without padding), and
//! Django's `scrypt$<N>$<salt>$<r>$<p>$<b64 hash>` ([`django`](super::django)). Firebase's
//! modified scrypt is a different function ([`firebase`](super::firebase)).

use std::fmt;

use super::encoding::{b64_decode, b64_nopad, b64_pad, parse_u32, phc_params};
use super::{ct_eq, HashError};

/// The notation a scrypt hash was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScryptFlavor {
    Phc,
    Django,
}

/// A scrypt hash (see the [module documentation](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct ScryptHash {
    flavor: ScryptFlavor,
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl ScryptHash {
    pub(crate) fn new(
        flavor: ScryptFlavor,
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    ) -> Result<Self, HashError> {
        let h = ScryptHash {
            flavor,
            log_n,
            r,
            p,
            salt,
            hash,
        };
        let scheme = h.scheme();
        if log_n == 0 || log_n > 40 {
            return Err(HashError::malformed(scheme, "N out of range"));
        }
        // The scrypt crate checks r·p < 2^30 (RFC 7914's bound on p) in 32 bits, which
        // overflows for hostile values (a panic in debug builds, a wrong answer in release).
        if u64::from(r) * u64::from(p) >= 1 << 30 {
            return Err(HashError::malformed(scheme, "parameters out of range"));
        }
        ::scrypt::Params::new(log_n, r, p)
            .map_err(|_| HashError::malformed(scheme, "parameters out of range"))?;
        if h.hash.len() < 8 {
            return Err(HashError::malformed(scheme, "hash shorter than 8 bytes"));
        }
        Ok(h)
    }

    /// Parses `$scrypt$ln=…,r=…,p=…$<salt>$<hash>`.
    pub(crate) fn parse_phc(s: &str) -> Result<Self, HashError> {
        const SCHEME: &str = "scrypt";
        let mut fields = s.split('$');
        let (Some(""), Some("scrypt"), Some(params), Some(salt), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(HashError::malformed(
                SCHEME,
                "expected $scrypt$ln=..,r=..,p=..$<salt>$<hash>",
            ));
        };
        let (mut ln, mut r, mut p) = (None, None, None);
        for (k, v) in phc_params(params, SCHEME)? {
            let slot = match k {
                "ln" => &mut ln,
                "r" => &mut r,
                "p" => &mut p,
                _ => return Err(HashError::malformed(SCHEME, "unknown parameter")),
            };
            if slot.is_some() {
                return Err(HashError::malformed(SCHEME, "repeated parameter"));
            }
            *slot = Some(parse_u32(v, SCHEME, "bad ln/r/p parameter")?);
        }
        let (Some(ln), Some(r), Some(p)) = (ln, r, p) else {
            return Err(HashError::malformed(SCHEME, "missing ln, r or p"));
        };
        let log_n = u8::try_from(ln).map_err(|_| HashError::malformed(SCHEME, "ln too large"))?;
        let salt = b64_decode(salt, SCHEME, "salt is not base64")?;
        let hash = b64_decode(hash, SCHEME, "hash is not base64")?;
        Self::new(ScryptFlavor::Phc, log_n, r, p, salt, hash)
    }

    /// log₂ of the CPU/memory cost N.
    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    /// Block size r.
    pub fn r(&self) -> u32 {
        self.r
    }

    /// Parallelism p.
    pub fn p(&self) -> u32 {
        self.p
    }

    pub(crate) fn scheme(&self) -> &'static str {
        match self.flavor {
            ScryptFlavor::Phc => "scrypt",
            ScryptFlavor::Django => "django-scrypt",
        }
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let Ok(params) = ::scrypt::Params::new(self.log_n, self.r, self.p) else {
            return false;
        };
        let mut out = vec![0u8; self.hash.len()];
        if ::scrypt::scrypt(password.as_bytes(), &self.salt, &params, &mut out).is_err() {
            return false;
        }
        ct_eq(&out, &self.hash)
    }

    /// `$scrypt$ln=…,r=…,p=…$<salt>$<hash>`.
    pub(crate) fn to_phc(&self) -> String {
        format!(
            "$scrypt$ln={},r={},p={}${}${}",
            self.log_n,
            self.r,
            self.p,
            b64_nopad(&self.salt),
            b64_nopad(&self.hash)
        )
    }

    pub(crate) fn encode(&self) -> String {
        match self.flavor {
            ScryptFlavor::Phc => self.to_phc(),
            ScryptFlavor::Django => format!(
                "scrypt${}${}${}${}${}",
                1u64 << self.log_n,
                String::from_utf8_lossy(&self.salt),
                self.r,
                self.p,
                b64_pad(&self.hash)
            ),
        }
    }
}

impl fmt::Debug for ScryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScryptHash")
            .field("scheme", &self.scheme())
            .field("ln", &self.log_n)
            .field("r", &self.r)
            .field("p", &self.p)
            .finish()
    }
}
