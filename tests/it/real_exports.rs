//! The corpus of real exports (tests/fixtures/real/, provenance in each SOURCE.md): `plan` on
//! each file, as a user would run it, must route and reject exactly what a person reading the
//! file would expect — counts per route, and each rejection's record, field and reason.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::{tempdir, CLI};

const POOL: &str = "samples/pool-schema.json";

struct Plan {
    exit: i32,
    routes: BTreeMap<String, u64>,
    /// (record, field, reason) of each row of rejects.csv.
    rejects: Vec<(u64, String, String)>,
    warnings: Vec<String>,
    /// The rows of every import file (`import-*.csv`), by column name, in file name order.
    imported: Vec<BTreeMap<String, String>>,
    /// Federated identities to link, per pool identity provider.
    links: BTreeMap<String, u64>,
    /// Identities that will not be linked, per provider.
    unknown_providers: BTreeMap<String, u64>,
}

fn plan(args: &[&str]) -> Plan {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tempdir("real-exports");
    let output = Command::new(CLI)
        .current_dir(root)
        .args(["plan", "--pool-schema", POOL, "--json", "--out"])
        .arg(&out)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {stderr}"));
    let routes = serde_json::from_value(summary["routes"].clone()).unwrap();
    let warnings = serde_json::from_value(summary["warnings"].clone()).unwrap();
    let links = serde_json::from_value(summary["links"].clone()).unwrap();
    let unknown_providers = serde_json::from_value(summary["unknown_providers"].clone()).unwrap();
    let mut rejects = Vec::new();
    let mut csv = csv::Reader::from_path(out.join("rejects.csv")).unwrap();
    for row in csv.records() {
        let row = row.unwrap();
        rejects.push((
            row[0].parse().unwrap(),
            row[3].to_string(),
            row[4].to_string(),
        ));
    }
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("import-")
        })
        .collect();
    files.sort();
    let mut imported = Vec::new();
    for f in files {
        // Cognito's CSV writes a comma inside a value as `\,`: such rows have more fields
        // than the header and are not needed here.
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&f)
            .unwrap();
        let header = csv.headers().unwrap().clone();
        for row in csv.records() {
            let row = row.unwrap();
            if row.len() != header.len() {
                continue;
            }
            imported.push(
                header
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    Plan {
        exit: output.status.code().unwrap(),
        routes,
        rejects,
        warnings,
        imported,
        links,
        unknown_providers,
    }
}

fn routes(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn rejects(rows: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
    rows.iter()
        .map(|(r, f, why)| (*r, f.to_string(), why.to_string()))
        .collect()
}

/// firebase-tools' CSV in each of its six layouts (rows written by each version's own row
/// function). The sample pool auto-verifies email, so an import job needs a verified email:
/// the spec's users 0, 1, 6 and phone-user, comma-user and claims-user (emailVerified false)
/// are rejected `not_verifiable` with the hint to use --mode auto; scrypt-user (Firebase
/// scrypt, not importable) goes to the trigger; google-user (no password, a Google identity)
/// takes the `federated` route: created without a password and linked to Google. Before v6.11 comma-user's unquoted "Lee, Bob" shifts the columns: that row is
/// rejected as malformed instead of being read with its columns shifted.
#[test]
fn firebase_csv_of_every_firebase_tools_layout() {
    for (version, shifted) in [
        ("v3.3", true),
        ("v3.12", true),
        ("v4.1", true),
        ("v7.12", false),
        ("v8.13", false),
        ("v15.19", false),
    ] {
        let file = format!("tests/fixtures/real/firebase/firebase-tools-{version}.csv");
        let p = plan(&[
            "-i",
            &file,
            "-f",
            "firebase",
            "--hash-config",
            "tests/fixtures/real/firebase/hash_config.txt",
        ]);
        assert_eq!(p.exit, 1, "{version}");
        assert_eq!(
            p.routes,
            routes(&[("federated", 1), ("trigger", 1)]),
            "{version}"
        );
        assert_eq!(p.links, routes(&[("Google", 1)]), "{version}");
        let seven = if shifted {
            (7, "record", "malformed_record")
        } else {
            (7, "email_verified", "not_verifiable")
        };
        let expected = rejects(&[
            (1, "email_verified", "not_verifiable"),
            (2, "email_verified", "not_verifiable"),
            (3, "email_verified", "not_verifiable"),
            (5, "email_verified", "not_verifiable"),
            seven,
            (8, "email_verified", "not_verifiable"),
        ]);
        assert_eq!(p.rejects, expected, "{version}");
        let noted = p.warnings.iter().any(|w| w.contains("column layout"));
        assert_eq!(
            noted,
            shifted || version == "v7.12",
            "{version}: {:?}",
            p.warnings
        );
    }
}

/// The JSON export of the same accounts (firebase-tools' own transUserJson and file framing)
/// routes and rejects the same users as its CSV.
#[test]
fn firebase_json_export_matches_its_csv() {
    let run = |file: &str| {
        plan(&[
            "-i",
            file,
            "-f",
            "firebase",
            "--hash-config",
            "tests/fixtures/real/firebase/hash_config.txt",
        ])
    };
    let json = run("tests/fixtures/real/firebase/firebase-tools-v15.19.json");
    let csv = run("tests/fixtures/real/firebase/firebase-tools-v15.19.csv");
    assert_eq!(json.routes, routes(&[("federated", 1), ("trigger", 1)]));
    assert_eq!(json.links, routes(&[("Google", 1)]));
    assert_eq!(
        (json.exit, &json.routes, &json.rejects),
        (csv.exit, &csv.routes, &csv.rejects)
    );
    assert_eq!(json.imported, csv.imported);
}

/// Auth0's user export joined with the password-hash export (the format of Auth0's support
/// article): the two database users get their bcrypt hash (the verified one imported as
/// BCRYPT, the unverified one left to the trigger since an import job cannot create it), the
/// Google user has no hash record and takes the `federated` route (created without a password,
/// linked to Google); the hash record of a
/// user not in the export is reported.
#[test]
fn auth0_user_export_with_its_password_hash_export() {
    let p = plan(&[
        "-i",
        "tests/fixtures/real/auth0/users-export.ndjson",
        "-f",
        "auth0",
        "--hashes",
        "tests/fixtures/real/auth0/password-hashes.ndjson",
    ]);
    assert_eq!(p.exit, 0);
    assert_eq!(
        p.routes,
        routes(&[("import:BCRYPT", 1), ("federated", 1), ("trigger", 1)])
    );
    assert_eq!(p.links, routes(&[("Google", 1)]));
    assert!(p.rejects.is_empty());
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("1 user(s) have no password record"));
    assert!(p.warnings[1].contains("match no user of the input"));
    // Auth0's `locale` reaches Cognito's `locale`; the joined hash is in the BCRYPT file.
    let by_user = |p: &Plan, user: &str| {
        p.imported
            .iter()
            .find(|r| r["cognito:username"] == user)
            .cloned()
            .unwrap_or_else(|| panic!("{user} not imported"))
    };
    let euclid = by_user(&p, "auth0|euclid");
    assert_eq!(euclid["locale"], "en");
    assert!(euclid["password_hash"].starts_with("$2b$10$"));
    // Without --hashes the same users have no passwords at all.
    let alone = plan(&[
        "-i",
        "tests/fixtures/real/auth0/users-export.ndjson",
        "-f",
        "auth0",
    ]);
    assert_eq!(
        alone.routes,
        routes(&[("federated", 1), ("import:none", 1)])
    );
    assert_eq!(
        alone.rejects,
        rejects(&[(1, "email_verified", "not_verifiable")])
    );
}

/// Management API user objects (`GET /api/v2/users/{id}`, as an open-source app's test
/// fixtures hold them) read as a JSON array: both users are unverified and have no password, so
/// an import job cannot create them (rejected with the hint) and `--mode auto` creates them with
/// AdminCreateUser.
#[test]
fn auth0_management_api_users() {
    let file = "tests/fixtures/real/auth0/management-api-users.json";
    let p = plan(&["-i", file, "-f", "auth0"]);
    assert_eq!((p.exit, p.routes), (1, routes(&[])));
    assert_eq!(
        p.rejects,
        rejects(&[
            (1, "email_verified", "not_verifiable"),
            (2, "email_verified", "not_verifiable")
        ])
    );
    let p = plan(&["-i", file, "-f", "auth0", "--mode", "auto"]);
    assert_eq!((p.exit, p.routes), (0, routes(&[("admin-create", 2)])));
    assert!(p.rejects.is_empty());
}

/// The Keycloak warning about skipped service accounts names a flag that exists, and the flag
/// reads them (the project's sample realm export, which has one).
#[test]
fn keycloak_service_accounts_flag_is_the_one_the_warning_names() {
    let file = "samples/keycloak/realm-export.json";
    let p = plan(&["-i", file, "-f", "keycloak"]);
    let warning = p
        .warnings
        .iter()
        .find(|w| w.contains("service-account"))
        .expect("a warning");
    assert!(warning.contains("--include-service-accounts"), "{warning}");
    let with = plan(&["-i", file, "-f", "keycloak", "--include-service-accounts"]);
    assert!(with.warnings.iter().all(|w| !w.contains("service-account")));
    let total = |p: &Plan| p.routes.values().sum::<u64>() + p.rejects.len() as u64;
    assert_eq!(total(&with), total(&p) + 1);
}

/// Keycloak's own exports of its migration-test realms (1.9.8, 3.4.3, 4.8.3: hashes in the
/// credential's `hashedSaltedValue`): every password user goes to the trigger (PBKDF2 with
/// Keycloak's parameters is not importable); master-test-user has neither password nor email.
#[test]
fn keycloak_exports_of_keycloak_1_3_and_4() {
    let dir = "tests/fixtures/real/keycloak";
    let p = plan(&[
        "-i",
        &format!("{dir}/migration-realm-1.9.8.Final-master-users.json"),
        "-f",
        "keycloak",
    ]);
    assert_eq!((p.exit, p.routes), (1, routes(&[("trigger", 1)])));
    assert_eq!(
        p.rejects,
        rejects(&[(2, "email_verified", "not_verifiable")])
    );
    for file in [
        "migration-realm-3.4.3.Final-users.json",
        "migration-realm-4.8.3.Final-users.json",
    ] {
        let p = plan(&["-i", &format!("{dir}/{file}"), "-f", "keycloak"]);
        assert_eq!((p.exit, p.routes), (0, routes(&[("trigger", 2)])), "{file}");
        assert!(p.rejects.is_empty(), "{file}");
    }
}

/// Keycloak's model-test realm: `mySocialUser` signs in only through the realm's identity
/// providers `facebook1`, `twitter1` and `google1`. With a `[providers]` table for two of them it
/// takes the `federated` route, two identities are to be linked and `twitter1` is counted as not
/// linkable; the clear-text-credential users have no password (AdminCreateUser in auto mode);
/// the service account is skipped.
#[test]
fn keycloak_federated_identities() {
    let dir = tempdir("keycloak-providers");
    let mapping = dir.join("mapping.toml");
    std::fs::write(
        &mapping,
        "[providers]\nfacebook1 = \"Facebook\"\ngoogle1 = \"Google\"\n",
    )
    .unwrap();
    let p = plan(&[
        "-i",
        "tests/fixtures/real/keycloak/testrealm-users.json",
        "-f",
        "keycloak",
        "--mode",
        "auto",
        "--mapping",
        mapping.to_str().unwrap(),
    ]);
    assert_eq!(p.exit, 0, "{:?}", p.rejects);
    assert_eq!(p.routes, routes(&[("admin-create", 3), ("federated", 1)]));
    assert_eq!(p.links, routes(&[("Facebook", 1), ("Google", 1)]));
    assert_eq!(p.unknown_providers, routes(&[("twitter1", 1)]));
}

/// Django's own test fixtures. regular.json: a pbkdf2_sha256 user, to the trigger.
/// authtestdata.json: Django's legacy `sha1$` hashes, an empty password, `$` and `foo$bar`.
/// The `sha1$` users go to the trigger (Django's legacy hashers are verified there); the empty
/// password and the unusable `$` / `foo$bar` hashes leave users without a password, who can only
/// reset it through a verified contact: Django has no verified flag, so they are rejected as
/// `not_verifiable` (never for their hash).
#[test]
fn django_auth_test_fixtures() {
    let p = plan(&[
        "-i",
        "tests/fixtures/real/django/regular.json",
        "-f",
        "django",
    ]);
    assert_eq!((p.exit, p.routes), (0, routes(&[("trigger", 1)])));
    assert!(p.rejects.is_empty());
    let p = plan(&[
        "-i",
        "tests/fixtures/real/django/authtestdata.json",
        "-f",
        "django",
    ]);
    assert_eq!((p.exit, p.routes), (1, routes(&[("trigger", 3)])));
    assert_eq!(
        p.rejects,
        rejects(&[
            (4, "email_verified", "not_verifiable"),
            (5, "email_verified", "not_verifiable"),
            (6, "email_verified", "not_verifiable"),
        ])
    );
    // Three users sharing one email: the second and third are duplicates whatever their hash.
    let p = plan(&[
        "-i",
        "tests/fixtures/real/django/testdata.json",
        "-f",
        "django",
    ]);
    assert_eq!((p.exit, p.routes), (1, routes(&[("trigger", 1)])));
    assert_eq!(
        p.rejects,
        rejects(&[
            (2, "email", "duplicate_email"),
            (3, "email", "duplicate_email"),
        ])
    );
}

/// `--firebase-layout` through the CLI: the right layout reads the file as detection does; a
/// wrong one rejects every row, saying why, instead of reading shifted columns.
#[test]
fn firebase_layout_flag() {
    let file = "tests/fixtures/real/firebase/firebase-tools-v4.1.csv";
    let cfg = "tests/fixtures/real/firebase/hash_config.txt";
    let auto = plan(&["-i", file, "-f", "firebase", "--hash-config", cfg]);
    let chosen = plan(&[
        "-i",
        file,
        "-f",
        "firebase",
        "--hash-config",
        cfg,
        "--firebase-layout",
        "v4.1",
    ]);
    assert_eq!(
        (&chosen.routes, &chosen.rejects),
        (&auto.routes, &auto.rejects)
    );
    let wrong = plan(&[
        "-i",
        file,
        "-f",
        "firebase",
        "--hash-config",
        cfg,
        "--firebase-layout",
        "v8.13",
    ]);
    assert_eq!((wrong.exit, wrong.routes), (1, routes(&[])));
    // 27 fields where v8.13 has 28 columns (and a trailing comma); the shifted comma-user row
    // has 28, and its column 26 holds a time where v8.13 has the phone number.
    let expected: Vec<(u64, String, String)> = (1..=8)
        .map(|r| {
            let field = if r == 7 { "phoneNumber" } else { "record" };
            (r, field.to_string(), "malformed_record".to_string())
        })
        .collect();
    assert_eq!(wrong.rejects, expected);
}

/// A --hash-config the CLI cannot use stops before anything is read (exit 2), naming the key.
#[test]
fn hash_config_error_names_the_key() {
    let dir = tempdir("hash-config");
    let cfg = dir.join("hash_config.txt");
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/real/firebase/hash_config.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::fs::write(&cfg, text.replace("  rounds: 8,\n", "")).unwrap();
    let output = Command::new(CLI)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["plan", "--pool-schema", POOL, "--out"])
        .arg(dir.join("out"))
        .args([
            "-i",
            "tests/fixtures/real/firebase/firebase-tools-v8.13.csv",
            "-f",
            "firebase",
            "--hash-config",
        ])
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing key `rounds`"), "{stderr}");
    assert!(!stderr.contains("jxspr8"), "{stderr}");
}
