//! `cognito-migrate mapping init`, offline (`--pool-schema`) on the samples: the starting mapping
//! names the right fields, holds no value from the input, and `plan` accepts it.

use crate::common::{repo_root, run_cli, tempdir};

fn sample(p: &str) -> String {
    repo_root().join(p).display().to_string()
}

const ENV: &[(&str, String)] = &[];

#[test]
fn csv_sample_gets_a_mapping_that_plan_accepts() {
    let dir = tempdir("csv");
    let out = dir.join("mapping.toml");
    let schema = sample("samples/pool-schema.json");
    let input = sample("samples/csv/users.csv");
    let args = [
        "mapping",
        "init",
        "--pool-schema",
        &schema,
        "-i",
        &input,
        "-f",
        "csv",
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = run_cli(&args, ENV);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.is_empty(), "the mapping goes to --out");
    assert!(
        stderr.contains("5 attributes mapped from 11 fields"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    for line in [
        "username = \"username\"",
        "password = \"password_hash\"",
        "groups = \"roles\"",
        "enabled = { from = \"active\", transform = \"bool\" }",
        "email = { from = \"email\", transform = \"lowercase_email\" }",
        "given_name = \"first_name\"",
        "family_name = \"last_name\"",
        "phone_number = { from = \"phone\", transform = \"e164\" }",
        "\"custom:legacy_id\" = \"id\"",
        "#   created_at (100%), notes (18%)",
        "# email_verified = { transform = \"const\", value = \"true\" }",
        "# Attributes the pool requires: none",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let csv = std::fs::read_to_string(&input).unwrap();
    for value in ["alice", "example.com", "$2y$", "Nguyen", "+1 415"] {
        assert!(csv.contains(value));
        assert!(
            !text.contains(value) || value == "alice" && !text.contains("\"alice"),
            "{value} leaked into the mapping"
        );
    }

    // A second run does not overwrite the file unless told to.
    let (code, _, stderr) = run_cli(&args, ENV);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");

    // plan takes it as it is (the phone numbers need default_region: some are rejected for it).
    let plan_dir = dir.join("plan");
    let (code, stdout, stderr) = run_cli(
        &[
            "plan",
            "--pool-schema",
            &schema,
            "-i",
            &input,
            "-f",
            "csv",
            "--mapping",
            out.to_str().unwrap(),
            "--mode",
            "auto",
            "--out",
            plan_dir.to_str().unwrap(),
            "--json",
        ],
        ENV,
    );
    assert!(code == 0 || code == 1, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary["records"],
        serde_json::json!(12),
        "11 users and a malformed row: {summary}"
    );
    assert!(summary["routed"].as_u64().unwrap() >= 5, "{summary}");
}

#[test]
fn vendor_formats_keep_their_builtin_mapping_and_missing_required_attributes_are_flagged() {
    let dir = tempdir("vendor");
    let (code, stdout, stderr) = run_cli(
        &[
            "mapping",
            "init",
            "--pool-schema",
            &sample("samples/pool-schema.json"),
            "-i",
            &sample("samples/auth0/users.ndjson"),
            "-f",
            "auth0",
        ],
        ENV,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("# email comes from the built-in auth0 mapping (email)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# username: from the built-in auth0 mapping"),
        "{stdout}"
    );
    assert!(
        stdout.contains("password hashes: read by the auth0 reader"),
        "{stdout}"
    );
    assert!(!stdout.contains("\npassword = "), "{stdout}");

    // A pool that requires an attribute no field feeds: the line is there to fill in, exit 1.
    let mut schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("samples/pool-schema.json")).unwrap(),
    )
    .unwrap();
    schema["attributes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "custom:tier", "data_type": "string", "required": true, "mutable": true}));
    let path = dir.join("schema.json");
    std::fs::write(&path, schema.to_string()).unwrap();
    let (code, stdout, stderr) = run_cli(
        &[
            "mapping",
            "init",
            "--pool-schema",
            path.to_str().unwrap(),
            "-i",
            &sample("samples/csv/users.csv"),
            "-f",
            "csv",
        ],
        ENV,
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.contains("# \"custom:tier\" = \"FIELD\"   # REQUIRED by the pool"),
        "{stdout}"
    );
    assert!(stderr.contains("the pool requires custom:tier"), "{stderr}");
}
