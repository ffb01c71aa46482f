//! Every password hash parser against the properties of [`check::check_parsed`]: the reference
//! vectors as they are, mutated vectors (hash strings, Keycloak credentials, ASP.NET blobs,
//! Firebase hashes), hash-like strings built from every notation's prefix, arbitrary strings, and
//! mutated Firebase `hash_config`s.

use std::fmt;

use base64::Engine as _;
use cognito_migrate::record::RawPassword;
use proptest::prelude::*;

use super::check::{check_firebase_config, check_hash_text, check_raw_password};
use super::corpus::hash_seeds;
use super::mutate::{apply, mutation, Mutation};
use super::runner::run;

/// Password material to parse, with the salt and hash pieces no message may show.
#[derive(Clone)]
struct HashCase {
    raw: RawPassword,
    secrets: Vec<String>,
    origin: String,
}

impl fmt::Debug for HashCase {
    /// The material in full (`RawPassword`'s own `Debug` hides it): these are test vectors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let material = match &self.raw {
            RawPassword::Encoded(s) => format!("Encoded({s:?})"),
            RawPassword::AspNetIdentity(s) => format!("AspNetIdentity({s:?})"),
            RawPassword::Keycloak {
                secret_data,
                credential_data,
            } => format!("Keycloak({secret_data:?}, {credential_data:?})"),
            RawPassword::Firebase { hash, salt } => format!("Firebase({hash:?}, {salt:?})"),
        };
        write!(f, "{} from {}", material, self.origin)
    }
}

fn mutated_text(s: &str, mutations: &[Mutation]) -> String {
    let mut bytes = s.as_bytes().to_vec();
    for m in mutations {
        apply(&mut bytes, m);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A reference vector with a few mutations of one of its parts (for an ASP.NET blob, of its
/// decoded bytes half of the time, so that the parser sees more than base64 errors).
fn mutated_vector() -> impl Strategy<Value = HashCase> {
    let seeds = hash_seeds();
    (
        0..seeds.len(),
        proptest::collection::vec(mutation(), 1..6),
        any::<bool>(),
    )
        .prop_map(move |(i, mutations, flag)| {
            let (raw, secrets) = &seeds[i];
            let m = &mutations[..];
            let raw = match raw {
                RawPassword::Encoded(s) => RawPassword::Encoded(mutated_text(s, m)),
                RawPassword::AspNetIdentity(s) if flag => {
                    let engine = base64::engine::general_purpose::STANDARD;
                    let mut blob = engine.decode(s).unwrap_or_default();
                    for m in m {
                        apply(&mut blob, m);
                    }
                    RawPassword::AspNetIdentity(engine.encode(blob))
                }
                RawPassword::AspNetIdentity(s) => RawPassword::AspNetIdentity(mutated_text(s, m)),
                RawPassword::Keycloak {
                    secret_data,
                    credential_data,
                } => RawPassword::Keycloak {
                    secret_data: if flag {
                        mutated_text(secret_data, m)
                    } else {
                        secret_data.clone()
                    },
                    credential_data: if flag {
                        credential_data.clone()
                    } else {
                        mutated_text(credential_data, m)
                    },
                },
                RawPassword::Firebase { hash, salt } => RawPassword::Firebase {
                    hash: if flag {
                        mutated_text(hash, m)
                    } else {
                        hash.clone()
                    },
                    salt: if flag {
                        salt.clone()
                    } else {
                        mutated_text(salt, m)
                    },
                },
            };
            HashCase {
                raw,
                secrets: secrets.clone(),
                origin: format!("vector {i} with {} mutations", mutations.len()),
            }
        })
}

/// Every notation's prefix, for hash-like strings.
const PREFIXES: &[&str] = &[
    "$2a$",
    "$2b$",
    "$2y$",
    "$2x$",
    "$wp$2y$",
    "$argon2id$",
    "$argon2i$v=19$",
    "$argon2d$",
    "$pbkdf2$",
    "$pbkdf2-sha1$",
    "$pbkdf2-sha256$",
    "$pbkdf2-sha512$",
    "$scrypt$",
    "$5$",
    "$6$rounds=",
    "$1$",
    "$P$",
    "$H$",
    "$cm-firebase-scrypt$",
    "$cm-keycloak$",
    "$cm-aspnet$",
    "pbkdf2_sha256$",
    "pbkdf2_sha1$",
    "bcrypt_sha256$$2b$",
    "bcrypt$$2a$",
    "argon2$argon2id$",
    "scrypt$",
];

/// A notation's prefix followed by `$`-separated segments of parameter and base64 characters.
fn hash_like() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(PREFIXES),
        "([a-zA-Z0-9./+=,-]{0,30}\\$?){0,7}",
    )
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

#[test]
fn every_reference_vector_parses_and_keeps_the_properties() {
    for (raw, secrets) in hash_seeds() {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        check_raw_password(raw, &secrets).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
    }
}

#[test]
fn mutated_vectors_keep_the_parser_properties() {
    run("mutated hashes", 600, mutated_vector(), |case| {
        let secrets: Vec<&str> = case.secrets.iter().map(String::as_str).collect();
        check_raw_password(&case.raw, &secrets)
    });
}

#[test]
fn hash_like_strings_keep_the_parser_properties() {
    run("hash-like strings", 600, hash_like(), |s| {
        check_hash_text(&s, &[])
    });
}

#[test]
fn arbitrary_strings_keep_the_parser_properties() {
    run("arbitrary strings", 300, any::<String>(), |s| {
        check_hash_text(&s, &[])
    });
}

#[test]
fn mutated_firebase_configs_keep_the_parser_properties() {
    const CONFIG: &str = include_str!("../../../samples/firebase/hash_config.json");
    let strategy = proptest::collection::vec(mutation(), 0..6);
    run("firebase hash_config", 200, strategy, |mutations| {
        check_firebase_config(&mutated_text(CONFIG, &mutations))
    });
}
