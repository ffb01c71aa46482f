//! Argon2 (argon2id, argon2i, argon2d), the Password Hashing Competition winner, in its PHC
//! string form `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>` (standard base64
//! without padding; the legacy form without `v=` is version 0x10), in Django's
//! `argon2$argon2id$…` ([`django`](super::django)) and as Keycloak's `argon2` credential
//! ([`keycloak`](super::keycloak)). The computation is the `argon2` crate's.

use std::fmt;

use super::encoding::{b64_decode, b64_nopad, parse_u32, phc_params};
use super::{ct_eq, HashError};

/// The Argon2 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Argon2Variant {
    Argon2d,
    Argon2i,
    Argon2id,
}

impl Argon2Variant {
    /// `argon2d`, `argon2i`, `argon2id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Argon2Variant::Argon2d => "argon2d",
            Argon2Variant::Argon2i => "argon2i",
            Argon2Variant::Argon2id => "argon2id",
        }
    }

    fn algorithm(self) -> ::argon2::Algorithm {
        match self {
            Argon2Variant::Argon2d => ::argon2::Algorithm::Argon2d,
            Argon2Variant::Argon2i => ::argon2::Algorithm::Argon2i,
            Argon2Variant::Argon2id => ::argon2::Algorithm::Argon2id,
        }
    }
}

/// The notation an Argon2 hash was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Argon2Flavor {
    Phc,
    Django,
    Keycloak,
}

/// An Argon2 hash (see the [module documentation](self)).
#[derive(Clone, PartialEq, Eq)]
pub struct Argon2Hash {
    flavor: Argon2Flavor,
    variant: Argon2Variant,
    /// 0x10 or 0x13.
    version: u32,
    /// Whether the string carried `v=` (the legacy form has none).
    explicit_version: bool,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Argon2Hash {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        flavor: Argon2Flavor,
        variant: Argon2Variant,
        version: u32,
        explicit_version: bool,
        m_cost: u32,
        t_cost: u32,
        p_cost: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    ) -> Result<Self, HashError> {
        let h = Argon2Hash {
            flavor,
            variant,
            version,
            explicit_version,
            m_cost,
            t_cost,
            p_cost,
            salt,
            hash,
        };
        let scheme = h.scheme();
        if version != 0x10 && version != 0x13 {
            return Err(HashError::unsupported(scheme, format!("version {version}")));
        }
        ::argon2::Params::new(m_cost, t_cost, p_cost, Some(h.hash.len()))
            .map_err(|_| HashError::malformed(scheme, "parameters out of range"))?;
        if h.salt.len() < 8 {
            return Err(HashError::malformed(scheme, "salt shorter than 8 bytes"));
        }
        Ok(h)
    }

    /// Parses a PHC string `$argon2id$…`.
    pub(crate) fn parse_phc(s: &str) -> Result<Self, HashError> {
        Self::parse_phc_with(s, Argon2Flavor::Phc)
    }

    /// Parses a PHC string `$argon2id$…` that came in `flavor`'s notation.
    pub(crate) fn parse_phc_with(s: &str, flavor: Argon2Flavor) -> Result<Self, HashError> {
        let scheme = scheme_of(flavor, None);
        let fields: Vec<&str> = s.split('$').collect();
        let (ident, version_field, params, salt, hash) = match fields.as_slice() {
            ["", ident, v, params, salt, hash] if v.starts_with("v=") => {
                (*ident, Some(*v), *params, *salt, *hash)
            }
            ["", ident, params, salt, hash] => (*ident, None, *params, *salt, *hash),
            _ => {
                return Err(HashError::malformed(
                    scheme,
                    "expected $<variant>$v=<n>$<params>$<salt>$<hash>",
                ))
            }
        };
        let variant = match ident {
            "argon2id" => Argon2Variant::Argon2id,
            "argon2i" => Argon2Variant::Argon2i,
            "argon2d" => Argon2Variant::Argon2d,
            _ => return Err(HashError::malformed(scheme, "unknown variant")),
        };
        let scheme = scheme_of(flavor, Some(variant));
        let version = match version_field {
            Some(v) => parse_u32(
                v.strip_prefix("v=").unwrap_or_default(),
                scheme,
                "bad version",
            )?,
            None => 0x10,
        };
        let (mut m, mut t, mut p) = (None, None, None);
        for (k, v) in phc_params(params, scheme)? {
            let slot = match k {
                "m" => &mut m,
                "t" => &mut t,
                "p" => &mut p,
                "keyid" | "data" => {
                    return Err(HashError::unsupported(scheme, "keyid/data parameters"))
                }
                _ => return Err(HashError::malformed(scheme, "unknown parameter")),
            };
            if slot.is_some() {
                return Err(HashError::malformed(scheme, "repeated parameter"));
            }
            *slot = Some(parse_u32(v, scheme, "bad m/t/p parameter")?);
        }
        let (Some(m), Some(t), Some(p)) = (m, t, p) else {
            return Err(HashError::malformed(scheme, "missing m, t or p"));
        };
        let salt = b64_decode(salt, scheme, "salt is not base64")?;
        let hash = b64_decode(hash, scheme, "hash is not base64")?;
        Self::new(
            flavor,
            variant,
            version,
            version_field.is_some(),
            m,
            t,
            p,
            salt,
            hash,
        )
    }

    /// The variant.
    pub fn variant(&self) -> Argon2Variant {
        self.variant
    }

    /// The version: 0x13 (19) or 0x10 (16).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Memory in KiB (`m`).
    pub fn memory_kib(&self) -> u32 {
        self.m_cost
    }

    /// Passes (`t`).
    pub fn iterations(&self) -> u32 {
        self.t_cost
    }

    /// Lanes (`p`).
    pub fn parallelism(&self) -> u32 {
        self.p_cost
    }

    pub(crate) fn scheme(&self) -> &'static str {
        scheme_of(self.flavor, Some(self.variant))
    }

    pub(crate) fn verify(&self, password: &str) -> bool {
        let version = if self.version == 0x10 {
            ::argon2::Version::V0x10
        } else {
            ::argon2::Version::V0x13
        };
        let Ok(params) =
            ::argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(self.hash.len()))
        else {
            return false;
        };
        let ctx = ::argon2::Argon2::new(self.variant.algorithm(), version, params);
        let mut out = vec![0u8; self.hash.len()];
        if ctx
            .hash_password_into(password.as_bytes(), &self.salt, &mut out)
            .is_err()
        {
            return false;
        }
        ct_eq(&out, &self.hash)
    }

    /// The PHC string `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` (without `v=` for a legacy
    /// hash that had none).
    pub(crate) fn to_phc(&self) -> String {
        let version = if self.explicit_version {
            format!("$v={}", self.version)
        } else {
            String::new()
        };
        format!(
            "${}{version}$m={},t={},p={}${}${}",
            self.variant.as_str(),
            self.m_cost,
            self.t_cost,
            self.p_cost,
            b64_nopad(&self.salt),
            b64_nopad(&self.hash)
        )
    }

    pub(crate) fn encode(&self) -> String {
        match self.flavor {
            Argon2Flavor::Phc => self.to_phc(),
            Argon2Flavor::Django => format!("argon2{}", self.to_phc()),
            Argon2Flavor::Keycloak => super::keycloak::encode_argon2(self),
        }
    }
}

fn scheme_of(flavor: Argon2Flavor, variant: Option<Argon2Variant>) -> &'static str {
    match (flavor, variant) {
        (Argon2Flavor::Django, _) => "django-argon2",
        (Argon2Flavor::Keycloak, _) => "keycloak-argon2",
        (Argon2Flavor::Phc, Some(v)) => v.as_str(),
        (Argon2Flavor::Phc, None) => "argon2",
    }
}

impl fmt::Debug for Argon2Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hash")
            .field("scheme", &self.scheme())
            .field("variant", &self.variant.as_str())
            .field("version", &self.version)
            .field("m_kib", &self.m_cost)
            .field("t", &self.t_cost)
            .field("p", &self.p_cost)
            .finish()
    }
}
