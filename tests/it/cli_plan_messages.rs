//! `cognito-migrate plan` as a user runs it, for what it tells them: log lines written to a file
//! carry no ANSI colour codes, users with an unusable password hash are migrated without a
//! password and warned about (never the hash itself), and a group name Cognito refuses is a
//! rejection with its record, field and reason.

use crate::common::{repo_root, tempdir, CLI};
use std::path::Path;
use std::process::{Command, Stdio};

const USERS: &str = r#"{"id":"1","username":"ada","email":"ada@example.com","hash":"{SSHA}c2VjcmV0c2FsdHNlY3JldA==","roles":"staff"}
{"id":"2","username":"bob","email":"bob@example.com","hash":"!Qm4vT8zXk2LpR7sWn1YbC5dHf9JgA3eKu6iOo0","roles":"staff"}
{"id":"3","username":"cy","email":"cy@example.com","hash":"sha1$9jYg7SjjPvtt$7a75f31d83568c42ed517bd88866898c4628cf1b","roles":"Cluster Admins"}
"#;

const MAPPING: &str = r#"
username = "username"
password = "hash"
groups = "roles"
[attributes]
email = "email"
email_verified = { transform = "const", value = "true" }
"custom:legacy_id" = "id"
"#;

/// Runs `plan` with stderr to a file (not a terminal) and `NO_COLOR` unset.
fn plan(dir: &Path) -> (i32, String, String) {
    std::fs::write(dir.join("users.ndjson"), USERS).unwrap();
    std::fs::write(dir.join("mapping.toml"), MAPPING).unwrap();
    let stderr_path = dir.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let pool = repo_root().join("samples/pool-schema.json");
    let out = Command::new(CLI)
        .args(["plan", "--format", "ndjson", "--input"])
        .arg(dir.join("users.ndjson"))
        .arg("--mapping")
        .arg(dir.join("mapping.toml"))
        .arg("--pool-schema")
        .arg(&pool)
        .arg("--out")
        .arg(dir.join("plan"))
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::from(stderr))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(stderr_path).unwrap(),
    )
}

#[test]
fn plan_warns_without_colour_or_secrets_and_rejects_bad_group_names() {
    let dir = tempdir("plan");
    let (code, stdout, stderr) = plan(&dir);
    // Record 3's group name has a space: rejected, so exit 1.
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // The warning is there, and without escape codes.
    assert!(
        stderr.contains("WARN") && stderr.contains("cannot be used"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("\x1b["),
        "colour codes in a log file: {stderr:?}"
    );
    // Two users without a usable hash go in without a password; none of it shows the hash.
    assert!(stdout.contains("import:none"), "{stdout}");
    assert!(stdout.contains("no password (1): unrecognised"), "{stdout}");
    assert!(
        stdout.contains("no password (1): an unusable-password marker"),
        "{stdout}"
    );
    let rejects = std::fs::read_to_string(dir.join("plan/rejects.csv")).unwrap();
    assert!(
        rejects.contains("3,3,") && rejects.contains(",roles,invalid_group,"),
        "{rejects}"
    );
    for secret in ["c2VjcmV0", "Qm4vT8zX", "7a75f31d"] {
        for (what, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("rejects", &rejects),
        ] {
            assert!(!text.contains(secret), "{what} shows {secret}");
        }
    }
}

/// An `AspNetUsers` table exported as a generic CSV: `PasswordHash` holds bare base64 blobs. The
/// blobs are dotnet/aspnetcore's published `PasswordHasherTest.cs` vectors (also in
/// `tests/fixtures/passwords/vectors.json`): v3 HMAC-SHA256 10,000 iterations, v2, and v3
/// HMAC-SHA512; the last row's value is base64 of no ASP.NET layout.
const ASPNET_USERS: &str = "Id,UserName,Email,EmailConfirmed,PasswordHash
a1,ann,ann@example.com,True,AQAAAAEAACcQAAAAEAABAgMEBQYHCAkKCwwNDg+yWU7rLgUwPZb1Itsmra7cbxw2EFpwpVFIEtP+JIuUEw==
a2,ben,ben@example.com,True,AAABAgMEBQYHCAkKCwwNDg+ukCEMDf0yyQ29NYubggHIVY0sdEUfdyeM+E1LtH1uJg==
a3,cat,cat@example.com,True,AQAAAAIAAAAyAAAAEOMwvh3+FZxqkdMBz2ekgGhwQ4B6pZWND6zgESBuWiHw
a4,dan,dan@example.com,True,n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=
";

fn plan_aspnet(dir: &Path, scheme_line: &str) -> serde_json::Value {
    std::fs::write(dir.join("users.csv"), ASPNET_USERS).unwrap();
    let mapping = format!(
        "username = \"UserName\"\npassword = \"PasswordHash\"\n{scheme_line}\n[attributes]\n\
         email = \"Email\"\nemail_verified = {{ from = \"EmailConfirmed\", transform = \"bool\" }}\n\
         \"custom:legacy_id\" = \"Id\"\n"
    );
    std::fs::write(dir.join("mapping.toml"), mapping).unwrap();
    let pool = repo_root().join("samples/pool-schema.json");
    let out = Command::new(CLI)
        .args(["plan", "--format", "csv", "--json", "--input"])
        .arg(dir.join("users.csv"))
        .arg("--mapping")
        .arg(dir.join("mapping.toml"))
        .arg("--pool-schema")
        .arg(&pool)
        .arg("--out")
        .arg(dir.join("plan"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn aspnet_identity_blobs_in_a_generic_csv() {
    // Detected by their layout, and named by the mapping: the same routes either way.
    for (name, scheme_line) in [
        ("detected", ""),
        ("named", "password_scheme = \"aspnet-identity\""),
    ] {
        let dir = tempdir(name);
        let summary = plan_aspnet(&dir, scheme_line);
        let schemes = &summary["hash_schemes"];
        assert_eq!(
            schemes["aspnet-identity-v3"]["import:PBKDF2_SHA256"], 1,
            "{name}: {summary:#}"
        );
        assert_eq!(
            schemes["aspnet-identity-v3"]["trigger"], 1,
            "{name}: {summary:#}"
        );
        assert_eq!(
            schemes["aspnet-identity-v2"]["trigger"], 1,
            "{name}: {summary:#}"
        );
        let routes = &summary["routes"];
        match name {
            // Not an ASP.NET blob and no self-describing notation: migrated without a password.
            "detected" => {
                assert_eq!(routes["import:none"], 1, "{summary:#}");
                assert_eq!(summary["rejected"], 0, "{summary:#}");
            }
            // Named as ASP.NET but not one: it cannot be used either, and says why.
            _ => {
                assert_eq!(routes["import:none"], 1, "{summary:#}");
                let why = summary["unusable_hashes"].to_string();
                assert!(why.contains("aspnet-identity"), "{why}");
            }
        }
    }
}
