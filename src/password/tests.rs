//! Tests of the password module against the reference vectors in
//! `tests/fixtures/passwords/vectors.json` (made by `generate.py` with Django, passlib, bcrypt,
//! argon2-cffi, hashlib and published examples — never by this crate), plus malformed input,
//! redaction and cost caps.

use std::str::FromStr;

use serde_json::Value;

use super::*;

const VECTORS: &str = include_str!("../../tests/fixtures/passwords/vectors.json");

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The vector's raw input and the context it needs.
fn raw_of(v: &Value) -> (RawPassword, HashContext) {
    let raw = &v["raw"];
    let mut ctx = HashContext::default();
    let rp = match s(raw, "kind") {
        "encoded" => RawPassword::Encoded(s(raw, "value").to_owned()),
        "aspnet" => RawPassword::AspNetIdentity(s(raw, "value").to_owned()),
        "keycloak" => RawPassword::Keycloak {
            secret_data: s(raw, "secret_data").to_owned(),
            credential_data: s(raw, "credential_data").to_owned(),
        },
        "firebase" => {
            let cfg = serde_json::to_string(&raw["hash_config"]).expect("config serializes");
            ctx.firebase = Some(FirebaseHashConfig::from_json(&cfg).expect("valid hash_config"));
            RawPassword::Firebase {
                hash: s(raw, "hash").to_owned(),
                salt: s(raw, "salt").to_owned(),
            }
        }
        other => panic!("unknown raw kind {other}"),
    };
    (rp, ctx)
}

/// Substrings of the raw material that must never show in Debug/Display/error output: every
/// base64-ish run of 8 or more characters (salts, hashes, keys).
fn secret_fragments(v: &Value) -> Vec<String> {
    let raw = &v["raw"];
    let mut text = String::new();
    for key in ["value", "hash", "salt", "secret_data"] {
        text.push_str(s(raw, key));
        text.push(' ');
    }
    if let Some(cfg) = raw.get("hash_config") {
        text.push_str(s(cfg, "base64_signer_key"));
    }
    let mut out: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/.=".contains(c)))
        .map(|f| f.trim_end_matches('='))
        .filter(|f| f.len() >= 10)
        .filter(|f| !f.chars().all(|c| c.is_ascii_digit()))
        .filter(|f| {
            ![
                "secret_data",
                "additionalParameters",
                "hashIterations",
                "credential_data",
            ]
            .contains(f)
        })
        .map(str::to_owned)
        .collect();
    out.push(s(v, "password").to_owned());
    out
}

fn check_vector(v: &Value) -> Result<(), String> {
    let scheme = s(v, "scheme");
    let (raw, ctx) = raw_of(v);
    let h = PasswordHash::from_raw(&raw, &ctx).map_err(|e| format!("parse failed: {e}"))?;
    if h.scheme() != scheme {
        return Err(format!("scheme {} != expected {scheme}", h.scheme()));
    }
    let password = s(v, "password");
    let wrong = s(v, "wrong_password");
    let do_verify = v["verify"].as_bool().unwrap_or(true);

    if do_verify {
        if let Some(reason) = h.exceeds(&CostCap::default()) {
            return Err(format!(
                "within-cap vector exceeds the default cap: {reason}"
            ));
        }
        if !h.verify(password) {
            return Err("password did not verify".into());
        }
        if h.verify(wrong) {
            return Err("wrong password verified".into());
        }
    }

    match (&v["importable"], h.cognito_import()) {
        (Value::Null, Err(e)) => {
            let want = s(v, "cognito_reason").to_ascii_lowercase();
            if !e.reason.to_ascii_lowercase().contains(&want) {
                return Err(format!("refusal {:?} lacks {want:?}", e.reason));
            }
        }
        (Value::Null, Ok((alg, _))) => return Err(format!("importable as {alg}, expected not")),
        (exp, Ok((alg, value))) => {
            if alg.as_str() != s(exp, "algorithm") || value != s(exp, "value") {
                return Err(format!(
                    "import {alg} {value} != expected {} {}",
                    s(exp, "algorithm"),
                    s(exp, "value")
                ));
            }
            if ImportAlgorithm::from_str(s(exp, "algorithm")) != Ok(alg) {
                return Err("ImportAlgorithm::from_str disagrees".into());
            }
        }
        (_, Err(e)) => return Err(format!("not importable: {}", e.reason)),
    }

    let encoded = h.encode();
    let back = PasswordHash::parse(&encoded).map_err(|e| format!("encode() not parseable: {e}"))?;
    if back != h {
        return Err(format!("parse(encode()) differs: {back:?} vs {h:?}"));
    }
    if back.encode() != encoded {
        return Err("encode() not stable".into());
    }
    // Equality already shows the round trip; re-verify only where it is cheap.
    let cheap = CostCap {
        bcrypt_max_cost: 8,
        pbkdf2_max_iterations: 100_000,
        max_memory_kib: 8 * 1024,
        ..CostCap::default()
    };
    if do_verify && h.exceeds(&cheap).is_none() && !back.verify(password) {
        return Err("round-tripped hash does not verify".into());
    }
    if let RawPassword::Encoded(original) = &raw {
        // Self-describing notations are written back exactly (modulo base64 padding).
        if encoded.trim_end_matches('=') != original.trim_end_matches('=') {
            return Err(format!("encode() {encoded} != input {original}"));
        }
    }

    let shown = format!("{h:?} {h} {back:?}");
    for fragment in secret_fragments(v) {
        if !fragment.is_empty() && shown.contains(&fragment) {
            return Err(format!("Debug/Display shows secret material: {shown}"));
        }
    }
    if !shown.contains(h.scheme()) {
        return Err(format!("Debug/Display lacks the scheme: {shown}"));
    }
    Ok(())
}

#[test]
fn reference_vectors() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).expect("vectors.json parses");
    assert!(vectors.len() >= 100, "only {} vectors", vectors.len());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = vectors.len().div_ceil(threads);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = vectors
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|v| {
                            check_vector(v).err().map(|e| {
                                format!("{} [{}] {}: {e}", s(v, "scheme"), s(v, "source"), {
                                    let raw = &v["raw"];
                                    s(raw, "value").chars().take(24).collect::<String>()
                                })
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("vector thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_family_has_two_vectors_and_a_wrong_password() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).expect("vectors.json parses");
    let count = |prefix: &str| {
        vectors
            .iter()
            .filter(|v| s(v, "scheme").starts_with(prefix))
            .count()
    };
    for family in [
        "bcrypt",
        "argon2id",
        "argon2i",
        "argon2d",
        "pbkdf2-sha256",
        "pbkdf2-sha512",
        "pbkdf2-sha1",
        "django-pbkdf2-sha256",
        "django-pbkdf2-sha1",
        "django-bcrypt-sha256",
        "django-bcrypt",
        "django-argon2",
        "django-scrypt",
        "keycloak-pbkdf2-sha256",
        "keycloak-pbkdf2-sha512",
        "keycloak-argon2",
        "aspnet-identity-v2",
        "aspnet-identity-v3",
        "scrypt",
        "firebase-scrypt",
        "sha512-crypt",
        "sha256-crypt",
        "md5-crypt",
        "phpass",
        "wordpress-bcrypt",
        "django-sha1",
        "django-md5",
        "django-unsalted-sha1",
        "django-unsalted-md5",
        "django-crypt",
    ] {
        assert!(count(family) >= 2, "{family}: fewer than 2 vectors");
    }
    assert!(
        vectors
            .iter()
            .filter(|v| s(v, "scheme") == "keycloak-pbkdf2")
            .count()
            >= 2
    );
    for v in &vectors {
        assert_ne!(s(v, "password"), s(v, "wrong_password"));
    }
}

/// Malformed inputs give a `HashError` whose message shows none of the input.
#[test]
fn malformed_inputs_are_errors_without_secrets() {
    const SECRET: &str = "S3cr3tSaltAndHashMaterialXYZ";
    let cases: Vec<String> = vec![
        String::new(),
        "   ".into(),
        SECRET.into(),
        format!("${SECRET}$"),
        format!("$2b$04${SECRET}"),
        format!("$2b$99${SECRET}abcdefghijklmnopqrstuvwxyzabcdef"),
        format!("$2b$4$${SECRET}abcdefghijklmnopqrstuvwxyzabcdefgh"),
        format!("$2z$04${SECRET}abcdefghijklmnopqrstuvwxyzabcdefgh"),
        format!("$wp$2y$04${SECRET}"),
        format!("$argon2id$v=19$m=256,t=2,p=1${SECRET}"),
        format!("$argon2id$v=19$m=256,t=2${SECRET}${SECRET}"),
        format!("$argon2id$v=19$m=4,t=2,p=1${SECRET}${SECRET}"),
        format!("$argon2id$v=18$m=256,t=2,p=1${SECRET}${SECRET}"),
        format!("$argon2id$v=19$m=256,t=2,p=1,keyid=AAAA${SECRET}${SECRET}"),
        format!("$argon2x$v=19$m=256,t=2,p=1${SECRET}${SECRET}"),
        format!("$pbkdf2-sha256$i=1000,l=32${SECRET}$!!{SECRET}"),
        format!("$pbkdf2-sha256$i=1000,l=31${SECRET}${SECRET}AAAAAAAAAAAAAAAAAAAAAAA"),
        format!("$pbkdf2-sha256$i=0${SECRET}${SECRET}"),
        format!("$pbkdf2-sha256$x=1${SECRET}${SECRET}"),
        format!("$pbkdf2-sha256$1000${SECRET}+${SECRET}"),
        format!("$pbkdf2-sha256$1000${SECRET}$AAAA"),
        format!("$pbkdf2-md5$i=1${SECRET}${SECRET}"),
        format!("$scrypt$ln=0,r=8,p=1${SECRET}${SECRET}"),
        format!("$scrypt$ln=4,r=8${SECRET}${SECRET}"),
        format!("$scrypt$ln=4,r=0,p=1${SECRET}${SECRET}"),
        format!("$6$rounds=abc${SECRET}$x"),
        format!("$6${SECRET}$tooshort"),
        format!("$5$rounds=5000${SECRET}{SECRET}${SECRET}"),
        format!("$1${SECRET}$abc"),
        format!("$P$Z{SECRET}"),
        format!("$P$!{SECRET}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        format!("$H$B{SECRET}"),
        format!("pbkdf2_sha256$abc${SECRET}${SECRET}"),
        format!("pbkdf2_sha256$1000${SECRET}"),
        format!("pbkdf2_sha256$1000${SECRET}$!!!{SECRET}"),
        format!("pbkdf2_sha512$1000${SECRET}${SECRET}"),
        format!("bcrypt_sha256${SECRET}"),
        format!("bcrypt_sha256$$2b$04${SECRET}"),
        format!("argon2$argon2id${SECRET}"),
        format!("scrypt$1000${SECRET}$8$1${SECRET}"),
        format!("scrypt$1024${SECRET}$8${SECRET}"),
        format!("md5${SECRET}$abc"),
        format!("$cm-firebase-scrypt$r=8,m=14${SECRET}"),
        format!("$cm-firebase-scrypt$r=9,m=14${SECRET}$Bw${SECRET}${SECRET}"),
        format!("$cm-keycloak$bogus${SECRET}"),
        format!("$cm-aspnet${SECRET}"),
        format!("$cm-unknown${SECRET}"),
    ];
    for input in &cases {
        let err = match PasswordHash::parse(input) {
            Ok(h) => panic!("{input:?} parsed as {h:?}"),
            Err(e) => e,
        };
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(SECRET),
            "{input:?}: error shows input: {shown}"
        );
        assert!(
            !shown.contains("S3cr3t"),
            "{input:?}: error shows input: {shown}"
        );
    }

    let raw_cases = vec![
        RawPassword::AspNetIdentity(SECRET.into()),
        RawPassword::AspNetIdentity(String::new()),
        RawPassword::AspNetIdentity("AgAAAA==".into()),
        RawPassword::Keycloak {
            secret_data: format!("{{\"value\":\"{SECRET}\""),
            credential_data: "{}".into(),
        },
        RawPassword::Keycloak {
            secret_data: format!("{{\"value\":\"{SECRET}\",\"salt\":\"{SECRET}\"}}"),
            credential_data: "{\"algorithm\":\"pbkdf2-sha384\",\"hashIterations\":1}".into(),
        },
        RawPassword::Keycloak {
            secret_data: format!("{{\"value\":\"{SECRET}!\",\"salt\":\"{SECRET}\"}}"),
            credential_data: "{\"algorithm\":\"pbkdf2-sha256\",\"hashIterations\":1}".into(),
        },
        RawPassword::Keycloak {
            secret_data:
                "{\"value\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"salt\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"
                    .into(),
            credential_data: "{\"algorithm\":\"pbkdf2-sha256\"}".into(),
        },
        RawPassword::Keycloak {
            secret_data:
                "{\"value\":\"AAAAAAAAAAAAAAAAAAAAAA==\",\"salt\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"
                    .into(),
            credential_data: format!(
                "{{\"algorithm\":\"argon2\",\"hashIterations\":2,\"additionalParameters\":\
                 {{\"type\":[\"x\"],\"memory\":[\"{SECRET}\"]}}}}"
            ),
        },
        RawPassword::Firebase {
            hash: SECRET.into(),
            salt: SECRET.into(),
        },
    ];
    let ctx = HashContext {
        firebase: Some(FirebaseHashConfig {
            signer_key: vec![7; 64],
            salt_separator: vec![7],
            rounds: 8,
            mem_cost: 14,
        }),
    };
    for raw in &raw_cases {
        let err = match PasswordHash::from_raw(raw, &ctx) {
            Ok(h) => panic!("{raw:?} parsed as {h:?}"),
            Err(e) => e,
        };
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("S3cr3t"), "error shows input: {shown}");
    }
}

#[test]
fn keycloak_unknown_algorithm_names_it_sanitized() {
    let raw = RawPassword::Keycloak {
        secret_data: "{\"value\":\"AAAAAAAAAAA=\",\"salt\":\"AAAAAAAAAAA=\"}".into(),
        credential_data: "{\"algorithm\":\"pbkdf2-sha384 <x>\",\"hashIterations\":1}".into(),
    };
    let err = PasswordHash::from_raw(&raw, &HashContext::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported keycloak hash: algorithm pbkdf2-sha384x"
    );
}

#[test]
fn firebase_needs_its_config() {
    let raw = RawPassword::Firebase {
        hash: "AAAA".into(),
        salt: "AAAA".into(),
    };
    assert_eq!(
        PasswordHash::from_raw(&raw, &HashContext::default()),
        Err(HashError::MissingFirebaseConfig)
    );
}

#[test]
fn firebase_config_json() {
    let c = FirebaseHashConfig::from_json(
        r#"{"algorithm":"SCRYPT","base64_signer_key":"jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}"#,
    )
    .unwrap();
    assert_eq!(
        (c.rounds, c.mem_cost, c.salt_separator.as_slice()),
        (8, 14, &[7u8][..])
    );
    assert_eq!(c.signer_key.len(), 64);
    let shown = format!(
        "{c:?} {:?}",
        HashContext {
            firebase: Some(c.clone())
        }
    );
    assert!(
        !shown.contains("jxspr8") && !shown.contains("143"),
        "{shown}"
    );
    let camel = FirebaseHashConfig::from_json(
        r#"{"signerKey":"AAAAAAAAAAA=","saltSeparator":"","rounds":1,"memCost":1}"#,
    )
    .unwrap();
    assert_eq!(camel.salt_separator, Vec::<u8>::new());
    for bad in [
        "not json",
        r#"{"algorithm":"BCRYPT","base64_signer_key":"AA==","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}"#,
        r#"{"base64_signer_key":"AA==","base64_salt_separator":"Bw==","rounds":9,"mem_cost":14}"#,
        r#"{"base64_signer_key":"AA==","base64_salt_separator":"Bw==","rounds":8,"mem_cost":15}"#,
        r#"{"base64_signer_key":"S3cr3t!!","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}"#,
        r#"{"base64_signer_key":"","base64_salt_separator":"Bw==","rounds":8,"mem_cost":14}"#,
    ] {
        let err = FirebaseHashConfig::from_json(bad).unwrap_err();
        assert!(!err.to_string().contains("S3cr3t"));
    }
}

/// The failure cases of ASP.NET Core's own PasswordHasherTest: each is rejected at parse time or
/// fails to verify "my password".
#[test]
fn aspnet_published_failure_cases() {
    for blob in [
        "AAABAgMEBQYHCAkKCwwNDg+uAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALtH1uJg==",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggE=",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJgAAAAAAAAAAAAA=",
        "AQAAAAAAAAD6AAAAEAhftMyfTJyAAAAAAAAAAAAAAAAAAAih5WsjXaR3PA9M",
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4A=",
        "AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHwAAAAAAAAAAAA",
    ] {
        let raw = RawPassword::AspNetIdentity(blob.into());
        if let Ok(h) = PasswordHash::from_raw(&raw, &HashContext::default()) {
            assert!(!h.verify("my password"), "{blob} verified");
        }
    }
}

#[test]
fn bcrypt_2x_fails_closed_for_8bit_passwords() {
    // A $2a$ hash of "ünï" relabelled $2x$: crypt_blowfish's bug would compute something else,
    // so verification must not claim a match.
    let h = PasswordHash::parse("$2a$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i")
        .unwrap();
    let x = PasswordHash::parse("$2x$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i")
        .unwrap();
    assert!(h.verify("correct horse") && x.verify("correct horse"));
    assert!(!x.verify("ünï"));
}

#[test]
fn sha_crypt_rounds_below_1000_are_computed_as_1000() {
    let a = PasswordHash::parse(
        "$6$rounds=10$saltsalt$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    )
    .unwrap();
    assert_eq!(a.work_estimate(), WorkEstimate::ShaCrypt { rounds: 1000 });
    assert!(a.encode().starts_with("$6$rounds=10$"));
}

#[test]
fn cost_caps() {
    const BCRYPT_BODY: &str = "Xv2nvmkdhrh0L4kLKlxsS.wfN8Vq1HzfBBk1CtXgg5XRMgqnlfZ4C";
    let cap = CostCap::default();
    let salt = "AAAAAAAAAAAAAAAAAAAAAA";
    let hash32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let over = [
        format!("$2b$15${BCRYPT_BODY}"),
        format!("$argon2id$v=19$m=1048576,t=2,p=1${salt}${hash32}"),
        format!("$argon2id$v=19$m=1024,t=11,p=1${salt}${hash32}"),
        format!("$argon2id$v=19$m=1024,t=1,p=17${salt}${hash32}"),
        format!("$scrypt$ln=20,r=8,p=1${salt}${hash32}"),
        format!("$scrypt$ln=14,r=8,p=17${salt}${hash32}"),
        format!("$scrypt$ln=17,r=8,p=16${salt}${hash32}"),
        format!("$pbkdf2-sha256$i=2000001,l=32${salt}${hash32}"),
        format!("$pbkdf2-sha256$i=1000001,l=64${salt}${hash32}{hash32}"),
        "$6$rounds=1000001$salt$xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            .to_owned(),
        "$P$Jabcdefgh0123456789012345678901".to_owned(),
    ];
    for s in &over {
        let h = PasswordHash::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let reason = h
            .exceeds(&cap)
            .unwrap_or_else(|| panic!("{s} within the cap"));
        assert!(!reason.contains(salt), "{reason}");
    }
    let within = [
        format!("$2b$14${BCRYPT_BODY}"),
        format!("$argon2id$v=19$m=262144,t=10,p=16${salt}${hash32}"),
        format!("$scrypt$ln=18,r=8,p=4${salt}${hash32}"),
        format!("$pbkdf2-sha256$i=1000000,l=64${salt}${hash32}{hash32}"),
        "$P$Habcdefgh0123456789012345678901".to_owned(),
        "$1$saltsalt$0123456789012345678901".to_owned(),
    ];
    for s in &within {
        let h = PasswordHash::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(h.exceeds(&cap), None, "{s}");
    }
    let bcrypt15 = PasswordHash::parse(&over[0]).unwrap();
    assert_eq!(
        bcrypt15.exceeds(&cap).as_deref(),
        Some("bcrypt cost 15 exceeds the cap of 14")
    );
    assert_eq!(bcrypt15.to_string(), "bcrypt (cost 15)");
}

#[test]
fn import_algorithm_names() {
    for a in ImportAlgorithm::ALL {
        assert_eq!(ImportAlgorithm::from_str(a.as_str()), Ok(a));
        assert_eq!(a.to_string(), a.as_str());
        let sdk = aws_sdk_cognitoidentityprovider::types::PasswordHashingAlgorithmType::from(a);
        assert_eq!(sdk.as_str(), a.as_str());
    }
    assert_eq!(
        ImportAlgorithm::from_str("pbkdf2-sha256"),
        Ok(ImportAlgorithm::Pbkdf2Sha256)
    );
    assert!(ImportAlgorithm::from_str("MD5").is_err());
    let mut sorted = ImportAlgorithm::ALL;
    sorted.sort();
    assert_eq!(sorted.len(), 4);
}

#[test]
fn parse_trims_and_from_str_agrees() {
    let s = " $2b$04$t/ab7kONqOqKnhfETA.iaevpqlwAedghEw96rFjx//jN58SGV8O.i\n";
    let a = PasswordHash::parse(s).unwrap();
    let b: PasswordHash = s.trim().parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.scheme(), "bcrypt");
}

/// ASP.NET Identity blobs are recognised in a bare column value (no `password_scheme` named)
/// when their layout is unambiguous, and then verify like the explicit scheme.
#[test]
fn aspnet_blobs_are_detected_without_a_scheme() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).expect("vectors.json parses");
    let mut seen = 0;
    for v in vectors.iter().filter(|v| s(&v["raw"], "kind") == "aspnet") {
        let blob = s(&v["raw"], "value");
        let explicit = PasswordHash::from_raw(
            &RawPassword::AspNetIdentity(blob.into()),
            &HashContext::default(),
        )
        .unwrap();
        let detected =
            PasswordHash::parse(blob).unwrap_or_else(|e| panic!("{}: {e}", s(v, "source")));
        assert_eq!(detected, explicit, "{}", s(v, "source"));
        assert_eq!(detected.scheme(), s(v, "scheme"));
        seen += 1;
    }
    assert!(seen >= 10, "{seen} aspnet vectors");
    // Base64 that does not have the layout stays unknown: a SHA-256 digest, a truncated v3 blob,
    // a v2 marker with the wrong length, unpadded base64.
    for not_aspnet in [
        "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
        "AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+y",
        "AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1u",
        "ANXrDknc7fGPpigibZXXZFMX4aoqz44JveK6jQuwY3eH/UyPhvr5xTPeGYEckLxz9A",
    ] {
        assert_eq!(
            PasswordHash::parse(not_aspnet),
            Err(HashError::UnknownFormat),
            "{not_aspnet}"
        );
    }
}

/// Unusable-password markers are told apart from unknown formats, and the message shows none
/// of the marker's random part.
#[test]
fn unusable_markers() {
    for (marker, which) in [
        ("!", "`!`"),
        ("!Xq3sKd0vPzY2LmNoPqRsTuVwXyZaBcDeFgHiJkLmN", "`!`"),
        ("!$6$saltsalt$lockedhash", "`!`"),
        ("*", "`*`"),
        ("*LK*", "`*`"),
    ] {
        let e = PasswordHash::parse(marker).unwrap_err();
        assert_eq!(e, HashError::Unusable(which), "{marker}");
        assert!(!e.needs_configuration());
        let shown = e.to_string();
        assert!(shown.contains("no password"), "{shown}");
        assert!(
            !shown.contains("Xq3sKd0v") && !shown.contains("saltsalt"),
            "{shown}"
        );
    }
    assert!(HashError::MissingFirebaseConfig.needs_configuration());
    assert!(!HashError::UnknownFormat.needs_configuration());
}

/// Near misses of Django's legacy notations are errors that name the scheme, not wrong answers.
#[test]
fn django_legacy_malformed() {
    for (bad, scheme) in [
        (
            "sha1$salt$7A75F31D83568C42ED517BD88866898C4628CF1B",
            "django-sha1",
        ),
        ("sha1$salt$7a75f31d", "django-sha1"),
        (
            "md5$$0123456789abcdef0123456789abcde",
            "django-unsalted-md5",
        ),
        ("crypt$$abcdefgh", "django-crypt"),
        ("crypt$zz$abiQ6Ep3EYTHc", "django-crypt"),
        ("crypt$$$1$saltsalt$abcdefghijklmnopqrstuv", "django-crypt"),
    ] {
        let e = PasswordHash::parse(bad).unwrap_err();
        assert!(e.to_string().contains(scheme), "{bad}: {e}");
    }
    // 32 hex characters with an upper-case letter: Django would never verify it.
    assert_eq!(
        PasswordHash::parse("0123456789ABCDEF0123456789abcdef"),
        Err(HashError::UnknownFormat)
    );
}

/// Every notation of `Notation` against the strings passlib, argon2-cffi, bcrypt and hashlib
/// wrote (`tests/fixtures/passwords/notations.py` → `notations.json`).
#[test]
fn notations_match_the_reference_libraries() {
    let data: Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/passwords/notations.json"
    ))
    .unwrap();
    let password = s(&data, "password");
    let mut checked = 0;
    for v in data["vectors"].as_array().unwrap() {
        let alg = ImportAlgorithm::from_str(s(v, "algorithm")).unwrap();
        let h = PasswordHash::parse(s(v, "input")).unwrap();
        assert!(h.verify(password), "{alg}");
        let expected = v["notations"].as_object().unwrap();
        let names: Vec<&str> = Notation::candidates(alg)
            .iter()
            .map(|n| n.as_str())
            .collect();
        let mut want: Vec<&str> = expected.keys().map(String::as_str).collect();
        want.sort();
        let mut got = names.clone();
        got.sort();
        assert_eq!(got, want, "{alg}: the notations of the algorithm");
        assert_eq!(
            names[0],
            Notation::default_for(alg).as_str(),
            "the default is tried first"
        );
        for (name, text) in expected {
            let notation = Notation::from_str(name).unwrap();
            let mut chosen = Notations::default();
            chosen.set(alg, notation).unwrap();
            let (a, out) = h.cognito_import_with(&chosen).unwrap();
            assert_eq!(a, alg);
            assert_eq!(&out, text.as_str().unwrap(), "{alg} {name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn hash_encoding_arguments_are_checked() {
    let mut n = Notations::default();
    n.set_from_arg("pbkdf2_sha256=passlib").unwrap();
    n.set_from_arg("SCRYPT=phc-hex").unwrap();
    assert_eq!(n.get(ImportAlgorithm::Pbkdf2Sha256), Notation::Passlib);
    assert_eq!(n.get(ImportAlgorithm::Scrypt), Notation::PhcHex);
    assert_eq!(n.get(ImportAlgorithm::Bcrypt), Notation::Mcf);
    assert!(!n.is_set(ImportAlgorithm::Bcrypt));
    assert!(matches!(
        n.set_from_arg("BCRYPT=passlib"),
        Err(NotationsError::NotApplicable { .. })
    ));
    assert!(matches!(
        n.set_from_arg("BCRYPT"),
        Err(NotationsError::Syntax(_))
    ));
    assert!(matches!(
        n.set_from_arg("MD5=phc"),
        Err(NotationsError::Algorithm { .. })
    ));
    assert!(matches!(
        n.set_from_arg("SCRYPT=base32"),
        Err(NotationsError::Notation { .. })
    ));
    for notation in Notation::ALL {
        assert_eq!(Notation::from_str(notation.as_str()), Ok(notation));
    }
}
