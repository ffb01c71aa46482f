//! The subcommands, one file each, and the options they share.

mod args;
mod directory;
mod header;
mod mapping;
mod output;
mod plan;
mod preflight;
mod report;
mod retry;
mod run;
mod source_args;
mod status;
mod sync;

use std::path::Path;

use clap::{Args, Subcommand};
use cognito_migrate::aws::{AwsOptions, Clients};
use cognito_migrate::lease::Lease;
use cognito_migrate::migrate::CancelToken;

use crate::exit::Exit;

/// Options every command accepts. Flags win over environment variables.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AWS region of the user pool (default: AWS_REGION or the profile's region).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// AWS profile to use (default: AWS_PROFILE or `default`).
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call to this endpoint, e.g. a local emulator: http://127.0.0.1:5005.
    /// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are honoured too.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// Logs on stderr at the level asked for; the AWS SDK, smithy, hyper, reqwest and rustls
    /// stay at INFO at most whatever the level ([`cognito_migrate::logging`]): below it they
    /// log presigned URLs and request bodies.
    pub fn init_logging(&self) {
        use tracing_subscriber::prelude::*;
        let default = match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(cognito_migrate::logging::stderr_colour())
            .with_target(false);
        let _ = tracing_subscriber::registry()
            .with(
                fmt.with_filter(cognito_migrate::logging::caps())
                    .with_filter(filter),
            )
            .try_init();
    }

    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            profile: self.profile.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: None,
        }
    }

    pub async fn clients(&self) -> anyhow::Result<Clients> {
        Ok(Clients::load(&self.aws_options()).await?)
    }
}

/// Takes the state's lease for a command that writes it (`run`, `retry`), before anything else
/// is done: a second writer is refused at once (exit 4). Says so when a lease left by a process
/// that died is taken over.
pub fn take_lease(state: &Path, command: &str) -> anyhow::Result<Lease> {
    let lease = Lease::acquire(state, command)?;
    if let Some(dead) = lease.taken_over() {
        eprintln!(
            "taking over the lease on {} left by {dead}: that process is gone",
            state.display()
        );
    }
    Ok(lease)
}

/// Waits for the first Ctrl-C (SIGINT) or SIGTERM (what ECS, Kubernetes and systemd send) and
/// returns its name; the CLI handles both alike. Never returns if neither can be listened for.
pub async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                r = tokio::signal::ctrl_c() => match r {
                    Ok(()) => "Ctrl-C",
                    Err(_) => { term.recv().await; "SIGTERM" }
                },
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    match tokio::signal::ctrl_c().await {
        Ok(()) => "Ctrl-C",
        Err(_) => std::future::pending().await,
    }
}

/// A cancellation token for a run, cancelled at the first Ctrl-C or SIGTERM (the run then stops
/// cleanly and records what it did: exit 3, the same command resumes); a second one quits at
/// once. Abort the returned listener when the run is over.
pub fn cancel_on_signals() -> (CancelToken, tokio::task::JoinHandle<()>) {
    let token = CancelToken::new();
    let cancel = token.clone();
    let listener = tokio::spawn(async move {
        let signal = interrupted().await;
        eprintln!(
            "interrupted ({signal}): finishing the calls in flight, stopping the running import job and recording them (Ctrl-C or SIGTERM again to quit at once)"
        );
        cancel.cancel();
        interrupted().await;
        std::process::exit(Exit::Fatal as i32);
    });
    (token, listener)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Preflight(preflight::PreflightArgs),
    Header(header::HeaderArgs),
    Plan(plan::PlanArgs),
    Mapping(mapping::MappingArgs),
    Run(run::RunArgs),
    Status(status::StatusArgs),
    Report(report::ReportArgs),
    Retry(retry::RetryArgs),
    Sync(sync::SyncArgs),
    Directory(directory::DirectoryArgs),
}

impl Command {
    pub async fn execute(&self, global: &GlobalArgs) -> anyhow::Result<Exit> {
        match self {
            Command::Preflight(args) => preflight::run(args, global).await,
            Command::Header(args) => header::run(args, global).await,
            Command::Plan(args) => plan::run(args, global).await,
            Command::Mapping(args) => mapping::run(args, global).await,
            Command::Run(args) => run::run(args, global).await,
            Command::Status(args) => status::run(args, global).await,
            Command::Report(args) => report::run(args, global).await,
            Command::Retry(args) => retry::run(args, global).await,
            Command::Sync(args) => sync::run(args, global).await,
            Command::Directory(args) => directory::run(args, global).await,
        }
    }
}
