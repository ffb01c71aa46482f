//! `cognito-migrate`: the command-line tool. Glue only: settings are resolved here (flags > env),
//! the library does the work, and errors become exit codes.
//!
//! Exit codes: 0 all done; 1 done but some rows were rejected or failed; 2 usage or configuration
//! error (also a state file that is not a state, corrupt or unreadable); 3 fatal error (run the
//! same command again to resume); 4 the state is in use by another run, nothing was done; 5 not
//! finished, users are still pending (`status`; run the same `run` command to continue); 6
//! `sync --plan` found changes to make; 7 `sync` finished but held removals back (staged).

mod cmd;
mod exit;

use std::process::ExitCode;

use clap::Parser;

use crate::cmd::Command;
use crate::exit::Exit;

/// mimalloc: a plan allocates and frees a few dozen small strings per user; glibc's allocator
/// spent about a third of the time on that (see README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Move users from a legacy auth system into an Amazon Cognito user pool, and keep them in sync.
#[derive(Debug, Parser)]
#[command(name = "cognito-migrate", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: cmd::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(Exit::Usage as u8),
            };
        }
    };
    cli.global.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Fatal as u8);
        }
    };
    match runtime.block_on(cli.command.execute(&cli.global)) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(err) => {
            let (exit, hint) = exit::classify(&err);
            eprintln!("error: {}", cognito_migrate::display_chain(err.as_ref()));
            if let Some(hint) = hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit as u8)
        }
    }
}
