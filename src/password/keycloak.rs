//! Keycloak password credentials, as its database and realm exports hold them: two JSON strings,
//!
//! * `secretData`: `{"value": "<b64 hash>", "salt": "<b64 salt>", "additionalParameters": {}}`;
//! * `credentialData`: `{"hashIterations": 27500, "algorithm": "pbkdf2-sha256",
//!   "additionalParameters": {}}`.
//!
//! Algorithms (Keycloak's `PasswordHashProvider` ids): `pbkdf2` (HMAC-SHA1), `pbkdf2-sha256`,
//! `pbkdf2-sha512` — PBKDF2 over the UTF-8 password whose derived-key size is the stored value's
//! length (512 bits before Keycloak 24, 256 bits for today's `pbkdf2-sha256`; the optional NUL
//! padding of short passwords, `max-padding-length`, gives the same key, as HMAC pads keys with
//! zeros) — and `argon2`, whose `additionalParameters` hold lists of strings: `type` (`id`, `i`,
//! `d`), `version` (`1.3`, `1.0`), `memory` (KiB), `parallelism`, `hashLength`, with the passes in
//! `hashIterations` (or an `iterations` entry).
//!
//! Keycloak has no string notation for a credential, so `encode` writes `$cm-keycloak` followed
//! by the PHC string of the same function (`$cm-keycloak$pbkdf2-sha256$i=…,l=…$…$…`,
//! `$cm-keycloak$argon2id$v=19$…`), which [`parse_project`] reads back.

use serde_json::{Map, Value};

use super::argon2::{Argon2Flavor, Argon2Hash, Argon2Variant};
use super::encoding::{b64_decode, sanitize_name};
use super::pbkdf2::{Pbkdf2Digest, Pbkdf2Flavor, Pbkdf2Hash};
use super::{HashError, PasswordHash};

const SCHEME: &str = "keycloak";
const PROJECT_PREFIX: &str = "$cm-keycloak";

/// Parses a credential from its `secretData` and `credentialData` JSON strings.
pub(crate) fn from_credential(
    secret_data: &str,
    credential_data: &str,
) -> Result<PasswordHash, HashError> {
    let secret: Map<String, Value> = serde_json::from_str(secret_data)
        .map_err(|_| HashError::malformed(SCHEME, "secretData is not a JSON object"))?;
    let cred: Map<String, Value> = serde_json::from_str(credential_data)
        .map_err(|_| HashError::malformed(SCHEME, "credentialData is not a JSON object"))?;

    let value = secret
        .get("value")
        .and_then(Value::as_str)
        .ok_or(HashError::malformed(SCHEME, "secretData has no value"))?;
    let salt = secret
        .get("salt")
        .and_then(Value::as_str)
        .ok_or(HashError::malformed(SCHEME, "secretData has no salt"))?;
    let algorithm = cred
        .get("algorithm")
        .and_then(Value::as_str)
        .ok_or(HashError::malformed(
            SCHEME,
            "credentialData has no algorithm",
        ))?;
    let params = cred.get("additionalParameters").and_then(Value::as_object);
    let iterations = match cred.get("hashIterations") {
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(HashError::malformed(SCHEME, "bad hashIterations"))?,
        ),
        None => None,
    };

    let digest = match algorithm {
        "pbkdf2" => Some(Pbkdf2Digest::Sha1),
        "pbkdf2-sha256" => Some(Pbkdf2Digest::Sha256),
        "pbkdf2-sha512" => Some(Pbkdf2Digest::Sha512),
        "argon2" => None,
        other => {
            return Err(HashError::unsupported(
                SCHEME,
                format!("algorithm {}", sanitize_name(other)),
            ))
        }
    };
    let salt = b64_decode(salt, SCHEME, "salt is not base64")?;
    let value = b64_decode(value, SCHEME, "value is not base64")?;

    if let Some(digest) = digest {
        let iterations = iterations.ok_or(HashError::malformed(SCHEME, "no hashIterations"))?;
        return Pbkdf2Hash::new(Pbkdf2Flavor::Keycloak, digest, iterations, salt, value)
            .map(PasswordHash::Pbkdf2);
    }

    const A2: &str = "keycloak-argon2";
    let param = |key: &str| -> Option<String> {
        match params?.get(key)? {
            Value::Array(items) => items.first().and_then(scalar),
            other => scalar(other),
        }
    };
    let number = |key: &str, what: &'static str| -> Result<Option<u32>, HashError> {
        param(key)
            .map(|s| super::encoding::parse_u32(s.trim(), A2, what))
            .transpose()
    };
    let variant = match param("type").as_deref().unwrap_or("id") {
        "id" => Argon2Variant::Argon2id,
        "i" => Argon2Variant::Argon2i,
        "d" => Argon2Variant::Argon2d,
        other => {
            return Err(HashError::unsupported(
                A2,
                format!("type {}", sanitize_name(other)),
            ))
        }
    };
    let version = match param("version").as_deref().unwrap_or("1.3") {
        "1.3" => 0x13,
        "1.0" => 0x10,
        other => {
            return Err(HashError::unsupported(
                A2,
                format!("version {}", sanitize_name(other)),
            ))
        }
    };
    let memory = number("memory", "bad memory")?.unwrap_or(7168);
    let parallelism = number("parallelism", "bad parallelism")?.unwrap_or(1);
    let passes = match iterations {
        Some(t) if t > 0 => t,
        _ => number("iterations", "bad iterations")?
            .ok_or(HashError::malformed(A2, "no iteration count"))?,
    };
    if let Some(len) = number("hashLength", "bad hashLength")? {
        if usize::try_from(len).ok() != Some(value.len()) {
            return Err(HashError::malformed(
                A2,
                "hashLength does not match the value",
            ));
        }
    }
    Argon2Hash::new(
        Argon2Flavor::Keycloak,
        variant,
        version,
        true,
        memory,
        passes,
        parallelism,
        salt,
        value,
    )
    .map(PasswordHash::Argon2)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses the project notation `$cm-keycloak$<PHC string>`.
pub(crate) fn parse_project(s: &str) -> Result<PasswordHash, HashError> {
    let phc = s
        .strip_prefix(PROJECT_PREFIX)
        .filter(|rest| rest.starts_with('$'))
        .ok_or(HashError::UnknownFormat)?;
    let ident = phc.split('$').nth(1).unwrap_or_default();
    if ident.starts_with("argon2") {
        return Argon2Hash::parse_phc_with(phc, Argon2Flavor::Keycloak).map(PasswordHash::Argon2);
    }
    if ident.starts_with("pbkdf2") {
        let h = Pbkdf2Hash::parse_dollar(phc)?;
        return Pbkdf2Hash::new(
            Pbkdf2Flavor::Keycloak,
            h.digest(),
            h.iterations(),
            h.salt().to_vec(),
            h.hash().to_vec(),
        )
        .map(PasswordHash::Pbkdf2);
    }
    Err(HashError::UnknownFormat)
}

pub(crate) fn encode_pbkdf2(h: &Pbkdf2Hash) -> String {
    format!("{PROJECT_PREFIX}{}", h.to_phc())
}

pub(crate) fn encode_argon2(h: &Argon2Hash) -> String {
    format!("{PROJECT_PREFIX}{}", h.to_phc())
}
