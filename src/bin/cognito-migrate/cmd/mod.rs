//! The subcommands, one file each, and the options they share.

mod args;
mod directory;
mod header;
mod mapping;
mod output;
mod plan;
mod preflight;
mod progress;
mod report;
mod retry;
mod run;
mod source_args;
mod status;
mod sync;

use clap::{Args, Subcommand};
use cognito_migrate::aws::{AwsOptions, Clients};
use cognito_migrate::migrate::CancelToken;
use cognito_migrate::state_store::{
    fetch_read_only, HeldState, ReadOnlyState, StateLocation, StateStoreError,
};

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

/// Takes the state for a command that writes it (`run`, `retry`), before anything else is done:
/// its lease (a local flock, or an `s3://` lease object, then the download), so that a second
/// writer is refused at once (exit 4). Says so when a lease left by a process that died is taken
/// over. End with [`release_state`].
pub async fn take_state(
    args: &args::StateArgs,
    command: &str,
    global: &GlobalArgs,
) -> anyhow::Result<HeldState> {
    let location = StateLocation::parse(&args.state)?;
    let options = args.options()?;
    let clients = match location.is_remote() {
        true => Some(global.clients().await?),
        false => None,
    };
    let held = HeldState::acquire(
        &location,
        command,
        clients.as_ref().map(|c| &c.s3),
        &options,
    )
    .await?;
    if let Some(dead) = held.taken_over() {
        match location.is_remote() {
            true => eprintln!(
                "--break-lock: taking over the expired lease on {location} left by {dead}"
            ),
            false => eprintln!(
                "taking over the lease on {location} left by {dead}: that process is gone"
            ),
        }
    }
    Ok(held)
}

/// Gives a held state back after the command's work (also after it failed): a remote state is
/// uploaded a last time and its lease deleted. An error of the work wins over one of the release,
/// unless the release says another process owns the state now (that is the cause, exit 4).
pub async fn release_state(held: HeldState, result: anyhow::Result<Exit>) -> anyhow::Result<Exit> {
    let location = held.location().to_string();
    match (result, held.release().await) {
        (Ok(exit), Ok(())) => Ok(exit),
        (Ok(_), Err(e)) => {
            Err(anyhow::Error::new(e).context(format!("saving the state to {location}")))
        }
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(r)) if r.is_busy() => {
            eprintln!("error: {}", cognito_migrate::display_chain(e.as_ref()));
            Err(r.into())
        }
        (Err(e), Err(r)) => {
            eprintln!(
                "error: saving the state to {location}: {}",
                cognito_migrate::display_chain(&r)
            );
            Err(e)
        }
    }
}

/// Gets a state for a command that only reads it (`status`, `report`): a local file as it is,
/// an `s3://` state downloaded as it was last uploaded (no lease taken).
pub async fn read_state(state: &str, global: &GlobalArgs) -> anyhow::Result<ReadOnlyState> {
    let location = StateLocation::parse(state)?;
    if let StateLocation::Local(path) = &location {
        if !path.exists() {
            return Err(crate::exit::ConfigError::new(format!(
                "no state file at {}",
                path.display()
            ))
            .into());
        }
    }
    let clients = match location.is_remote() {
        true => Some(global.clients().await?),
        false => None,
    };
    let state: Result<ReadOnlyState, StateStoreError> =
        fetch_read_only(&location, clients.as_ref().map(|c| &c.s3)).await;
    Ok(state?)
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
    Progress(progress::ProgressArgs),
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
            Command::Progress(args) => progress::run(args, global).await,
            Command::Retry(args) => retry::run(args, global).await,
            Command::Sync(args) => sync::run(args, global).await,
            Command::Directory(args) => directory::run(args, global).await,
        }
    }
}
