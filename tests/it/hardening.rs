//! Issue #14's hardening findings 2, 3, 4 and 8, end to end against the emulator: nothing is
//! written from an input that cannot be read to its end, report cells are neutralised against
//! spreadsheet formulas, no log level shows a secret, and control characters never reach the
//! pool or an import file.

use std::path::Path;

use crate::common::{
    auth0_export, create_pool, gzip, pool_users, run_args, run_cli, string_attribute, tempdir,
    verified_email_pool, Emulator, ROLE_ARN,
};
use aws_sdk_cognitoidentityprovider::types::VerifiedAttributeType;
use serde_json::Value;

fn admin_create_calls(emu: &Emulator) -> u64 {
    emu.stats()["operations"]["AdminCreateUser"]["calls"]
        .as_u64()
        .unwrap_or(0)
}

/// Every file name under `dir` (none if it does not exist).
fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `plan` and `run --mode admin-create` on a broken `input` (exit 2, the message names the
/// position, no AdminCreateUser call, no import file left), then on the fixed file with the same
/// state and out directory: it goes through. Returns the fixed run's stderr.
async fn broken_then_fixed(
    name: &str,
    format: &str,
    broken: &[u8],
    fixed: &[u8],
    file: &str,
    extra: &[&str],
) -> (i32, String) {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = verified_email_pool(&c, "hardening").await;
    let dir = tempdir(name);
    let input = dir.join(file);
    let state = dir.join("state.db");
    let out = dir.join("plan");
    std::fs::write(&input, broken).unwrap();
    let (input_s, state_s, out_s) = (
        input.to_str().unwrap(),
        state.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    let mut plan = vec![
        "plan",
        "-i",
        input_s,
        "-f",
        format,
        "--pool-id",
        &pool,
        "--out",
        out_s,
    ];
    plan.extend(extra);
    let (code, stdout, stderr) = run_cli(&plan, &emu.cli_env());
    assert_eq!(code, 2, "plan on a broken input; stderr: {stderr}");
    assert!(stderr.contains("record "), "names the position: {stderr}");
    assert!(stdout.is_empty(), "no summary: {stdout}");
    assert_eq!(files_in(&out), Vec::<String>::new(), "plan left files");

    let mut run = run_args(input_s, format, &pool, state_s, "admin-create");
    run.extend(["--rate", "500"]);
    run.extend(extra);
    for attempt in 0..2 {
        let (code, _stdout, stderr) = run_cli(&run, &emu.cli_env());
        assert_eq!(
            code, 2,
            "run #{attempt} on a broken input; stderr: {stderr}"
        );
        assert!(stderr.contains("record "), "names the position: {stderr}");
        assert!(
            stderr.contains("nothing was written to the pool"),
            "{stderr}"
        );
        assert_eq!(admin_create_calls(&emu), 0, "stderr: {stderr}");
        assert_eq!(pool_users(&c, &pool).await.len(), 0);
    }
    let work = dir.join("state.db.files");
    assert!(
        !files_in(&work).iter().any(|f| f.ends_with(".csv")
            || f.ends_with(".partial")
            || f.starts_with(".admin-create")),
        "{:?}",
        files_in(&work)
    );

    // The same state and out directory take the fixed file. (A spill file another run left
    // behind, e.g. one killed before it wrote its users, is removed by the next run.)
    std::fs::write(&input, fixed).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join(".admin-create-0badc0de.ndjson"), "{}\n").unwrap();
    let (code, _stdout, stderr) = run_cli(&plan, &emu.cli_env());
    assert!(code == 0 || code == 1, "plan on the fixed input: {stderr}");
    assert!(
        files_in(&out).iter().any(|f| f.ends_with(".csv")),
        "{:?}",
        files_in(&out)
    );
    assert!(
        !files_in(&out).iter().any(|f| f.ends_with(".partial")),
        "{:?}",
        files_in(&out)
    );
    let (code, _stdout, stderr) = run_cli(&run, &emu.cli_env());
    assert!(
        code == 0 || code == 1,
        "run on the fixed input, same state: {code}; stderr: {stderr}"
    );
    let (_, status) = emu.status(&state);
    let created = status["created"].as_u64().unwrap();
    assert!(created > 0, "{status}");
    assert_eq!(status["pending"].as_u64(), Some(0), "{status}");
    assert_eq!(
        pool_users(&c, &pool).await.len() as u64,
        created,
        "{status}"
    );
    assert_eq!(admin_create_calls(&emu), created, "{status}");
    assert!(
        !files_in(&work)
            .iter()
            .any(|f| f.starts_with(".admin-create")),
        "spill files are removed once the run is complete: {:?}",
        files_in(&work)
    );
    (code, stderr)
}

/// Finding 2: a Firebase JSON export cut short.
#[tokio::test]
async fn a_truncated_firebase_export_writes_nothing_and_the_fixed_file_runs_with_the_same_state() {
    let sample = crate::common::repo_root().join("samples/firebase/users.json");
    let hash_config = crate::common::repo_root().join("samples/firebase/hash_config.json");
    let full = std::fs::read(&sample).unwrap();
    let broken = &full[..full.len() * 3 / 4];
    broken_then_fixed(
        "trunc-firebase",
        "firebase",
        broken,
        &full,
        "users.json",
        &["--hash-config", hash_config.to_str().unwrap()],
    )
    .await;
}

/// Finding 2: a gzip-compressed NDJSON export whose compressed stream ends early.
#[tokio::test]
async fn a_truncated_gz_export_writes_nothing_and_the_fixed_file_runs_with_the_same_state() {
    let full = gzip(&auth0_export(600));
    let broken = &full[..full.len() / 2];
    let (code, stderr) =
        broken_then_fixed("trunc-gz", "auth0", broken, &full, "users.ndjson.gz", &[]).await;
    assert_eq!(code, 0, "{stderr}");
}

/// A CSV input with its mapping file, written into a test's directory.
struct CsvInput {
    dir: std::path::PathBuf,
    input: String,
    mapping: String,
}

impl CsvInput {
    fn write(dir: &Path, csv: &str, mapping: &str) -> CsvInput {
        let input = dir.join("users.csv");
        std::fs::write(&input, csv).unwrap();
        let mapping_path = dir.join("mapping.toml");
        std::fs::write(&mapping_path, mapping).unwrap();
        CsvInput {
            dir: dir.to_path_buf(),
            input: input.to_str().unwrap().to_string(),
            mapping: mapping_path.to_str().unwrap().to_string(),
        }
    }

    /// `plan` into `<dir>/plan`: (exit code, stderr).
    fn plan(&self, emu: &Emulator, pool: &str) -> (i32, String) {
        let out = self.dir.join("plan");
        let (code, _stdout, stderr) = run_cli(
            &[
                "plan",
                "-i",
                &self.input,
                "-f",
                "csv",
                "--mapping",
                &self.mapping,
                "--pool-id",
                pool,
                "--out",
                out.to_str().unwrap(),
            ],
            &emu.cli_env(),
        );
        (code, stderr)
    }

    /// `run --mode admin-create` with the state `<dir>/state.db`: (exit code, stderr).
    fn run_admin_create(&self, emu: &Emulator, pool: &str) -> (i32, String) {
        let state = self.dir.join("state.db");
        let mut run = run_args(
            &self.input,
            "csv",
            pool,
            state.to_str().unwrap(),
            "admin-create",
        );
        run.extend(["--mapping", &self.mapping]);
        let (code, _stdout, stderr) = run_cli(&run, &emu.cli_env());
        (code, stderr)
    }
}

/// The rows of a CSV report (header left out), and its text.
fn read_report(path: &Path) -> (Vec<csv::StringRecord>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let rows = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect();
    (rows, text)
}

/// Finding 8: a NUL inside a CSV name field is rejected with its position and field; it reaches
/// neither an import file nor AdminCreateUser.
#[tokio::test]
async fn a_nul_in_a_name_is_rejected_and_never_reaches_an_import_file_or_admin_create_user() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = verified_email_pool(&c, "hardening").await;
    let dir = tempdir("nul");
    let case = CsvInput::write(
        &dir,
        "username,email,verified,name\nada,ada@example.com,true,Ada\0Lovelace\nbob,bob@example.com,true,Bob\n",
        "username = \"username\"\n[attributes]\nemail = \"email\"\nname = \"name\"\n\
         email_verified = { from = \"verified\", transform = \"bool\" }\n",
    );
    let (code, stderr) = case.plan(&emu, &pool);
    assert_eq!(code, 1, "{stderr}");
    let out = dir.join("plan");
    let (rows, rejects) = read_report(&out.join("rejects.csv"));
    assert_eq!(rows.len(), 1, "{rejects}");
    assert_eq!(
        (&rows[0][0], &rows[0][1], &rows[0][3], &rows[0][4]),
        ("1", "2", "name", "control_character"),
        "{rejects}"
    );
    assert!(rows[0][5].contains("U+0000 at character 4"), "{rejects}");
    for f in files_in(&out).iter().filter(|f| f.starts_with("import-")) {
        let text = std::fs::read(out.join(f)).unwrap();
        assert!(!text.contains(&0u8), "{f} holds a NUL");
        assert!(!String::from_utf8_lossy(&text).contains("ada@"), "{f}");
    }

    let (code, stderr) = case.run_admin_create(&emu, &pool);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(admin_create_calls(&emu), 1, "only bob is created");
    let users = c.list_users().user_pool_id(&pool).send().await.unwrap();
    let names: Vec<&str> = users.users().iter().filter_map(|u| u.username()).collect();
    assert_eq!(names, ["bob"]);
    let (_, status) = emu.status(&dir.join("state.db"));
    assert_eq!(status["rejected"].as_u64(), Some(1), "{status}");
}

/// Finding 3: `rejects.csv` and `report --failed` neutralise cells a spreadsheet would run;
/// the import CSV keeps the same values exact.
#[tokio::test]
async fn report_cells_are_neutralised_and_import_files_stay_exact() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let pool = verified_email_pool(&c, "hardening").await;
    let dir = tempdir("formula");
    let field = r#"=HYPERLINK("http://evil.example","x")"#;
    // A CSV header cell with a quote in it is written quoted, its quotes doubled.
    let header_cell = format!("\"{}\"", field.replace('"', "\"\""));
    let case = CsvInput::write(
        &dir,
        &format!(
            "username,email,verified,nick,roles,{header_cell}\n\
             =1+1@example.com,one@example.com,true,=SUM(1),nosuchgroup,ok\n\
             carol,carol@example.com,true,-carol,,bad\u{1}value\n"
        ),
        &format!(
            "username = \"username\"\ngroups = \"roles\"\n[attributes]\nemail = \"email\"\n\
             email_verified = {{ from = \"verified\", transform = \"bool\" }}\n\
             nickname = \"nick\"\nname = '{field}'\n"
        ),
    );
    let (code, stderr) = case.plan(&emu, &pool);
    assert_eq!(code, 1, "{stderr}");
    let out = dir.join("plan");
    let (rows, rejects) = read_report(&out.join("rejects.csv"));
    assert_eq!(rows.len(), 1, "{rejects}");
    assert_eq!(&rows[0][3], format!("'{field}"), "{rejects}");
    assert_eq!(&rows[0][4], "control_character");
    // The import file is data for Cognito: the same values, exactly.
    let import = std::fs::read_to_string(out.join("import-nohash-0001.csv")).unwrap();
    let row = import.lines().nth(1).unwrap();
    assert!(row.split(',').any(|v| v == "=SUM(1)"), "{import}");
    assert!(row.split(',').any(|v| v == "=1+1@example.com"), "{import}");
    assert!(!import.contains("'="), "{import}");

    // The first user is created but its group does not exist: failed (followup_failed).
    let (code, stderr) = case.run_admin_create(&emu, &pool);
    assert_eq!(code, 1, "{stderr}");
    let failed = dir.join("failed.csv");
    let (code, _stdout, stderr) =
        crate::common::report_failed(&dir.join("state.db"), &failed, &emu.cli_env());
    assert_eq!(code, 1, "{stderr}");
    let (rows, report) = read_report(&failed);
    let one = rows
        .iter()
        .find(|r| r[0] == *"1")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(&one[3], "'=1+1@example.com", "{report}");
    assert_eq!(&one[6], "followup_failed", "{report}");
    for cell in rows.iter().flat_map(|r| r.iter()) {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?} in {report}"
        );
    }
}

/// Finding 4: whole import-job runs at `RUST_LOG=trace` and `-vvv` log no presigned URL or
/// signature, no password hash and no password. Inputs: the Auth0 sample (bcrypt) and the CSV
/// sample (bcrypt, argon2id PHC, …), whose hashes are of the known passwords listed in
/// samples/README.md; both go through import jobs with their hashes.
#[tokio::test]
async fn an_import_job_run_at_trace_logs_no_secret() {
    let emu = Emulator::start();
    let c = emu.cognito().await;
    let root = crate::common::repo_root();
    let auth0 = root.join("samples/auth0/users.ndjson");
    let csv_sample = root.join("samples/csv/users.csv");
    // The CSV sample's mapping, with every email taken as verified so that its users are
    // importable with their hashes (Cognito's rule for import jobs).
    let mapping_dir = tempdir("trace-mapping");
    let csv_mapping = mapping_dir.join("mapping.toml");
    std::fs::write(
        &csv_mapping,
        std::fs::read_to_string(root.join("samples/csv/mapping.toml")).unwrap()
            + "email_verified = { transform = \"const\", value = \"true\" }\n",
    )
    .unwrap();
    let mut hashes: Vec<String> = std::fs::read_to_string(&auth0)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|u| u["passwordHash"].as_str().map(str::to_string))
        .collect();
    let mut rd = csv::Reader::from_path(&csv_sample).unwrap();
    let column = rd
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "password_hash");
    let column = column.unwrap();
    hashes.extend(
        rd.records()
            .filter_map(Result::ok)
            .filter_map(|r| r.get(column).map(str::to_string))
            .filter(|h| h.len() > 20),
    );
    assert!(
        hashes.iter().any(|h| h.starts_with("$argon2id$")),
        "{hashes:?}"
    );
    assert!(hashes.iter().any(|h| h.starts_with("$2b$")), "{hashes:?}");

    let mut logged = String::new();
    for (name, input, format, mapping) in [
        ("trace-auth0", &auth0, "auth0", None),
        ("trace-csv", &csv_sample, "csv", Some(&csv_mapping)),
    ] {
        // The CSV sample's mapping names two custom attributes.
        let pool = create_pool(
            c.create_user_pool()
                .pool_name(name)
                .auto_verified_attributes(VerifiedAttributeType::Email)
                .schema(string_attribute("legacy_id").build())
                .schema(string_attribute("signup_date").build()),
        )
        .await;
        let state_dir = tempdir(name);
        let state = state_dir.join("state.db");
        let mut args = run_args(
            input.to_str().unwrap(),
            format,
            &pool,
            state.to_str().unwrap(),
            "import-job",
        );
        args.extend(["--role-arn", ROLE_ARN, "-vvv"]);
        if let Some(m) = mapping {
            args.extend(["--mapping", m.to_str().unwrap()]);
        }
        let mut env = emu.cli_env();
        env.push(("RUST_LOG", "trace".into()));
        env.push(("COGNITO_MIGRATE_POLL_MAX_SECONDS", "0.2".into()));
        let (code, stdout, stderr) = run_cli(&args, &env);
        assert_eq!(
            code, 1,
            "the samples have rejected records; stderr: {stderr}"
        );
        let (_, status) = emu.status(&state);
        assert!(status["imported"].as_u64().unwrap() > 0, "{status}");
        // Not an empty log: the SDK's INFO lines and the run's own are there.
        assert!(stderr.lines().count() > 10, "{stderr}");
        logged.push_str(&stdout);
        logged.push_str(&stderr);
    }
    let (_, jobs) = emu.get_json("/_emulator/import_jobs");
    assert!(
        jobs.to_string().contains("ARGON2ID"),
        "an argon2id job ran: {jobs}"
    );

    let mut secrets: Vec<String> = vec![
        "X-Amz-Signature".into(),
        "x-amz-signature".into(),
        "X-Amz-Credential".into(),
        // The emulator's presigned upload path.
        "/_import_upload/".into(),
        "$2b$".into(),
        "$2y$".into(),
        "$argon2".into(),
    ];
    for h in &hashes {
        secrets.push(h.clone());
        // The part after the scheme alone too (a hash re-encoded for the import file).
        secrets.push(h[h.len() / 2..].to_string());
    }
    for password in [
        "Blue-Kettle-42",
        "hunter2-but-longer",
        "Tr0ub4dor&3",
        "Judy#Secure9",
        "Sesame-0pen!",
    ] {
        secrets.push(password.into());
    }
    for s in &secrets {
        assert!(
            !logged.contains(s.as_str()),
            "the log holds {s:?}: {}",
            logged
                .lines()
                .find(|l| l.contains(s.as_str()))
                .unwrap_or_default()
        );
    }
}
