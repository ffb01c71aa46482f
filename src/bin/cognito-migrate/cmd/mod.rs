//! The subcommands, one file each, and the options they share.

mod directory;
mod header;
mod mapping;
mod plan;
mod preflight;
mod report;
mod retry;
mod run;
mod source_args;
mod status;

use clap::{Args, Subcommand};
use cognito_migrate::aws::{AwsOptions, Clients};

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
    pub fn init_logging(&self) {
        let default = match self.verbose {
            0 => "warn",
            1 => "info,aws_config=warn,aws_smithy_runtime=warn",
            _ => "debug,hyper=info,aws_smithy_runtime=info",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
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
            Command::Directory(args) => directory::run(args, global).await,
        }
    }
}
