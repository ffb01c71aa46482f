//! `cognito-migrate directory`: build and inspect the directory file that the user-migration
//! trigger (`cognito-migrate-trigger`) reads. Glue only: the library's `directory` module does the
//! work; this file resolves options, opens the source and the state file, and prints summaries.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use cognito_migrate::checkpoint::{fingerprint_file, Checkpoint, Outcome, RecordSet};
use cognito_migrate::directory::{self, DirectoryFile, DirectoryWriter, Selection, SignIn};
use cognito_migrate::password::CostCap;
use cognito_migrate::plan::route::{Mode, Router, UnimportablePolicy};
use cognito_migrate::plan::RejectsFile;
use cognito_migrate::pool::PoolSchema;

use super::source_args::{PoolArgs, SourceArgs};
use super::GlobalArgs;
use crate::exit::{ConfigError, Exit};

/// Build or inspect the directory file of the user-migration trigger.
#[derive(Debug, Args)]
pub struct DirectoryArgs {
    #[command(subcommand)]
    pub command: DirectoryCommand,
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    // Boxed: the source options make it far larger than `Info`.
    Build(Box<BuildArgs>),
    Info(InfoArgs),
}

/// Build the directory file the migration trigger reads: every user mapped and validated as
/// `plan` does, with lookup keys, attributes and the legacy password hash (SQLite, mode 0600).
///
/// Users whose hash Cognito's import keeps do not need to be in it: --only-unimported leaves
/// them out, using the run's state file (--state) or, without one, the same routing as `plan`
/// (--mode). Rejected records go to a CSV next to the file (position, field, reason; never a
/// password or hash). Exit code 1 when some records were rejected.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cognito-migrate directory build -i users.json -f firebase --hash-config hash_config.json \\
      --pool-id us-east-1_AbCdEf123 --out directory.db
  cognito-migrate directory build -i users.csv -f csv --mapping mapping.toml \\
      --pool-schema pool.json --only-unimported --state migration.db --out directory.db
  aws s3 cp directory.db s3://my-bucket/cognito-migrate/directory.db")]
pub struct BuildArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// The directory file to write (replaced atomically when the build succeeds).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Leave out users whose password hash is imported with them.
    #[arg(long)]
    pub only_unimported: bool,
    /// The migration's state file: users it records as imported with their hash are left out.
    #[arg(long, value_name = "DB", requires = "only_unimported")]
    pub state: Option<PathBuf>,
    /// Without --state: the mode the migration runs in, which decides who is imported with a hash.
    #[arg(long, value_enum, default_value = "import-job")]
    pub mode: Mode,
    /// Where to list rejected records (default: the output file's name + `.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Print a directory file's metadata (pool, sign-in settings, user count, checksum).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cognito-migrate directory info directory.db --verify")]
pub struct InfoArgs {
    /// The directory file.
    pub file: PathBuf,
    /// Also recompute the content checksum (reads every row).
    #[arg(long)]
    pub verify: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &DirectoryArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match &args.command {
        DirectoryCommand::Build(b) => build(b, global).await,
        DirectoryCommand::Info(i) => info(i),
    }
}

/// The records a run's checkpoint records as imported with their password hash.
fn imported_records(
    state: &Path,
    source: &SourceArgs,
    schema: &PoolSchema,
) -> anyhow::Result<RecordSet> {
    if !state.exists() {
        return Err(ConfigError::new(format!("the state file {} does not exist", state.display()))
            .with_hint("pass the --state file of the migration run, or leave --state out to decide by routing (--mode)")
            .into());
    }
    let cp = Checkpoint::open_read_only(state)?;
    let run = cp.current_run()?.ok_or_else(|| {
        ConfigError::new(format!("the state file {} records no run", state.display()))
    })?;
    if run.spec.input_format != source.format.name() {
        return Err(ConfigError::new(format!(
            "the run in {} read format {}, not {}",
            state.display(),
            run.spec.input_format,
            source.format
        ))
        .into());
    }
    if source.input != "-" && !source.input.starts_with("s3://") {
        let fingerprint = fingerprint_file(&source.input)
            .with_context(|| format!("reading --input {}", source.input))?;
        if fingerprint != run.spec.input_fingerprint {
            return Err(ConfigError::new(format!(
                "--input {} is not the input of the run in {} (its content differs), so records \
                 would not line up",
                source.input,
                state.display()
            ))
            .into());
        }
    }
    if run.spec.pool_id != schema.pool_id {
        tracing::warn!(
            "the run in {} migrated into pool {}, the directory is built for pool {}",
            state.display(),
            run.spec.pool_id,
            schema.pool_id
        );
    }
    let mut set = RecordSet::new();
    for user in cp.users_with_outcome(run.id, Outcome::Imported) {
        let user = user?;
        if user.route.starts_with("import:") && user.route != "import:none" {
            set.insert(user.record);
        }
    }
    Ok(set)
}

async fn build(args: &BuildArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let schema = args.pool.schema(global).await?;
    let mut mapper = args.source.mapper(&schema)?;
    let ctx = args.source.hash_context()?;
    let selection = match (args.only_unimported, &args.state) {
        (false, _) => Selection::All,
        (true, Some(state)) => Selection::NotInSet(imported_records(state, &args.source, &schema)?),
        (true, None) => Selection::NotImportedWithHash(Router::new(
            args.mode,
            UnimportablePolicy::Trigger,
            ctx.clone(),
            &schema,
        )),
    };
    let mut source = args.source.open()?;
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        let mut p = args.out.clone().into_os_string();
        p.push(".rejects.csv");
        PathBuf::from(p)
    });
    let mut rejects = RejectsFile::create(&rejects_path)
        .with_context(|| format!("creating {}", rejects_path.display()))?;
    let writer = DirectoryWriter::create(&args.out, &schema.pool_id, SignIn::of_pool(&schema))?;
    let (summary, rejects) = tokio::task::spawn_blocking(move || {
        let mut first = Vec::new();
        let result = directory::build(
            source.as_mut(),
            &mut mapper,
            &ctx,
            &selection,
            &CostCap::default(),
            writer,
            &mut |r| {
                if first.len() < 10 {
                    first.push(r.to_string());
                }
                rejects.write(r)
            },
        );
        for line in first {
            eprintln!("rejected: {line}");
        }
        (result, rejects)
    })
    .await?;
    let summary = summary.context("building the directory")?;
    rejects
        .finish()
        .with_context(|| format!("writing {}", rejects_path.display()))?;
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        summary.write_table(&mut out)?;
        writeln!(
            out,
            "wrote {} ({} rejected)",
            rejects_path.display(),
            summary.rejected
        )?;
    }
    Ok(if summary.rejected > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}

fn info(args: &InfoArgs) -> anyhow::Result<Exit> {
    let file = DirectoryFile::open(&args.file).map_err(|e| ConfigError::new(e.to_string()))?;
    if args.verify {
        file.verify_checksum()?;
    }
    let meta = file.meta();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, meta)?;
        writeln!(out)?;
    } else {
        let s = &meta.sign_in;
        let mut keys = vec!["username"];
        if s.email {
            keys.push("email");
        }
        if s.phone {
            keys.push("phone_number");
        }
        if s.preferred_username {
            keys.push("preferred_username");
        }
        writeln!(out, "file           {}", args.file.display())?;
        writeln!(out, "format version {}", meta.format_version)?;
        writeln!(out, "pool           {}", meta.pool_id)?;
        writeln!(out, "users          {}", meta.user_count)?;
        writeln!(out, "sign-in keys   {}", keys.join(", "))?;
        writeln!(
            out,
            "usernames      {}{}",
            if s.case_sensitive {
                "case-sensitive"
            } else {
                "case-insensitive"
            },
            if s.username_attributes {
                ", email/phone as username"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "built at       {} (Unix time) by {}",
            meta.built_at, meta.built_by
        )?;
        writeln!(
            out,
            "checksum       {}{}",
            meta.checksum,
            if args.verify { " (verified)" } else { "" }
        )?;
    }
    Ok(Exit::Ok)
}
