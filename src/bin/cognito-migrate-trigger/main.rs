//! `cognito-migrate-trigger`: the Amazon Cognito user-migration Lambda trigger.
//!
//! Glue only (the work is in `cognito_migrate::trigger`): read the configuration from the
//! environment, build the user directory once per cold start — open a local directory file and
//! check it against its checksum, download one from S3 and check it, or set up the client of the
//! old user pool —, then hand every event, as raw JSON checked by the handler, to the handler
//! through `lambda_runtime::run`. An error before that is reported to the Runtime API's
//! `/runtime/init/error` and ends the process; a local file that fails its check is served
//! (every sign-in answered `LegacyDirectoryUnavailable`, the failure logged once).
//!
//! Logging: plain lines on stderr (CloudWatch adds the time), except the one JSON line per
//! invocation and the one of a failed start (`cognito_migrate::trigger::log`), written bare so
//! that CloudWatch Logs metric filters can match them. The levels of the Lambda runtime and
//! the AWS SDK are capped at INFO whatever `RUST_LOG` says, because at TRACE they log raw events
//! and request bodies, which hold passwords.

use std::time::Instant;

use cognito_migrate::aws::{AwsOptions, Clients};
use cognito_migrate::logging::JsonLines;
use cognito_migrate::trigger::{
    report_init_error, AttributeRules, CheckedDirectory, DirectoryKind, DirectorySource,
    FileDirectory, Handler, InitError, InitFailedLine, LogDigest, PoolDirectory, RawEvent,
    TriggerSettings, UserDirectory, INIT_FAILED_EVENT, INVOCATION_TARGET, INVOCATION_VERSION,
};
use lambda_runtime::{service_fn, LambdaEvent};
use tracing_subscriber::prelude::*;

fn init_logging() {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let caps = cognito_migrate::logging::caps();
    let format = tracing_subscriber::fmt::format()
        .with_ansi(false)
        .without_time()
        .with_target(false);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(JsonLines::new(format, &[INVOCATION_TARGET]));
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(caps).with_filter(env))
        .try_init();
}

async fn serve<D: UserDirectory + 'static>(handler: Handler<D>) -> anyhow::Result<()> {
    // One handler for the life of the execution environment.
    let handler: &'static Handler<D> = Box::leak(Box::new(handler));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RawEvent>| {
        handler.handle_raw(event.payload)
    }))
    .await
    .map_err(|e| anyhow::anyhow!("the Lambda runtime stopped: {e}"))
}

/// Reports `error` to the Runtime API (a failure to do so is logged) and hands it back for
/// `main` to print.
async fn init_failed(error: InitError) -> anyhow::Error {
    // The one JSON line of a failed start, for the template's metric filters (docs/trigger.md).
    let line = InitFailedLine {
        event: INIT_FAILED_EVENT,
        version: INVOCATION_VERSION,
        error_type: error.error_type(),
        detail: &error.to_string(),
    }
    .to_json();
    tracing::error!(target: INVOCATION_TARGET, "{line}");
    if let Err(e) = report_init_error(&error).await {
        tracing::warn!("{e}");
    }
    anyhow::Error::new(error)
}

async fn run() -> anyhow::Result<()> {
    let settings = match TriggerSettings::from_env() {
        Ok(s) => s,
        Err(e) => return Err(init_failed(e.into()).await),
    };
    let digest = match &settings.log_key {
        Some(key) => LogDigest::with_key(key.as_bytes()),
        None => LogDigest::random(),
    };
    let rules = AttributeRules::new(settings.attributes.clone());
    match &settings.source {
        DirectorySource::File(path) => {
            let started = Instant::now();
            let directory = match FileDirectory::open_checked(path, settings.cost_cap) {
                Ok(d) => d,
                Err(e) => return Err(init_failed(InitError::Directory(e)).await),
            };
            let ms = started.elapsed().as_millis() as u64;
            match &directory {
                CheckedDirectory::Intact(d) => {
                    let meta = d.file().meta();
                    tracing::info!(
                        users = meta.user_count,
                        pool = %meta.pool_id,
                        built_at = meta.built_at,
                        ms,
                        "directory file opened and verified"
                    );
                }
                CheckedDirectory::Damaged(e) => tracing::error!(
                    ms,
                    "{e}: every sign-in is answered LegacyDirectoryUnavailable"
                ),
            }
            serve(Handler::new(directory, rules, digest)).await
        }
        DirectorySource::S3 { bucket, key } => {
            let started = Instant::now();
            let clients = match Clients::load(&AwsOptions::default()).await {
                Ok(c) => c,
                Err(e) => return Err(init_failed(InitError::Aws(e)).await),
            };
            let directory = match FileDirectory::fetch(
                &clients.s3,
                bucket,
                key,
                &settings.download_dir,
                settings.verify_download,
                settings.cost_cap,
            )
            .await
            {
                Ok(d) => d,
                Err(e) => return Err(init_failed(InitError::Download(e)).await),
            };
            let meta = directory.file().meta();
            tracing::info!(
                users = meta.user_count,
                pool = %meta.pool_id,
                verified = settings.verify_download,
                ms = started.elapsed().as_millis() as u64,
                "directory file downloaded"
            );
            serve(Handler::new(directory, rules, digest).with_directory_kind(DirectoryKind::S3))
                .await
        }
        DirectorySource::Pool(pool) => {
            tracing::info!(legacy_pool = %pool.pool_id, region = %pool.region, "using the legacy user pool");
            serve(Handler::new(
                PoolDirectory::from_settings(pool).await,
                rules,
                digest,
            ))
            .await
        }
    }
}

fn main() -> std::process::ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
