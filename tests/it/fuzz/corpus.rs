//! The seed corpus: the sample exports in `samples/` and the source fixtures in
//! `tests/fixtures/sources/` (each with the format it is an export of), and the reference hashes
//! of `tests/fixtures/passwords/vectors.json` (made by Django, passlib, bcrypt, argon2-cffi and
//! hashlib, see its `generate.py`). Read from the files at run time, so that a sample or vector
//! added later is fuzzed too. `scripts/fuzz` copies the same files into the libFuzzer corpus.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cognito_migrate::record::RawPassword;
use cognito_migrate::source::Format;

/// One seed input of a reader.
#[derive(Debug)]
pub struct Seed {
    /// The file, relative to the crate.
    pub name: String,
    pub format: Format,
    pub bytes: Vec<u8>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The format of a sample by its directory (`samples/<format>/`) or, for fixtures, its name.
fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?;
    if name == "hash_config.json" || name.ends_with(".toml") {
        return None;
    }
    let dir = path.parent()?.file_name()?.to_str()?;
    if let Ok(format) = dir.parse::<Format>() {
        return Some(format);
    }
    if dir == "samples" {
        // Not an export (e.g. the pool schema).
        return None;
    }
    if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.contains(".ndjson") || name.contains(".jsonl") {
        Some(Format::Ndjson)
    } else if name.ends_with(".json") {
        Some(Format::Json)
    } else {
        None
    }
}

/// Every seed of the readers, in a stable order.
pub fn seeds() -> &'static [Seed] {
    static SEEDS: OnceLock<Vec<Seed>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = root();
        let mut paths = Vec::new();
        for dir in ["samples", "tests/fixtures/sources"] {
            collect(&root.join(dir), &mut paths);
        }
        paths.sort();
        let seeds: Vec<Seed> = paths
            .into_iter()
            .filter_map(|path| {
                let format = format_of(&path)?;
                let bytes = std::fs::read(&path).ok()?;
                let name = path.strip_prefix(&root).ok()?.display().to_string();
                Some(Seed {
                    name,
                    format,
                    bytes,
                })
            })
            .collect();
        assert!(seeds.len() >= 10, "the seed corpus is missing: {seeds:?}");
        seeds
    })
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The raw password material of every reference vector, with its salt and hash pieces (which no
/// message may show).
pub fn hash_seeds() -> &'static [(RawPassword, Vec<String>)] {
    static HASHES: OnceLock<Vec<(RawPassword, Vec<String>)>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("tests/fixtures/passwords/vectors.json"))
            .expect("the password vectors");
        let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).expect("vectors JSON");
        let seeds: Vec<(RawPassword, Vec<String>)> = vectors
            .iter()
            .filter_map(|v| {
                let raw = &v["raw"];
                let s = |k: &str| raw[k].as_str().unwrap_or_default().to_string();
                let material = match raw["kind"].as_str()? {
                    "encoded" => RawPassword::Encoded(s("value")),
                    "aspnet" => RawPassword::AspNetIdentity(s("value")),
                    "keycloak" => RawPassword::Keycloak {
                        secret_data: s("secret_data"),
                        credential_data: s("credential_data"),
                    },
                    // Firebase vectors carry their own project configuration; the checks use
                    // the sample project's, so only the material's shape is seeded.
                    "firebase" => RawPassword::Firebase {
                        hash: s("hash"),
                        salt: s("salt"),
                    },
                    _ => return None,
                };
                let secrets = [s("value"), s("secret_data"), s("hash"), s("salt")]
                    .iter()
                    .flat_map(|t| super::check::secret_runs(t))
                    .collect();
                Some((material, secrets))
            })
            .collect();
        assert!(seeds.len() >= 20, "too few password vectors");
        seeds
    })
}
