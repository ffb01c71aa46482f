//! The AdminCreateUser side of a run: the writer fed from the spill file once the input has been
//! read whole, and the follow-ups (disable, groups) for users already in the pool.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::aws::Clients;
use crate::checkpoint::{Checkpoint, RecordSet, Run, RunId};
use crate::plan::route::Route;
use crate::progress::{Progress, Unit};
use crate::sink::admin_create::service::AdminService;
use crate::sink::admin_create::{
    self, spill, AdminCreateConfig, AdminCreateError, FollowupSummary,
};

use super::{view, CancelToken, MigrateError};

fn service(clients: &Clients, pool_id: &str, cfg: &AdminCreateConfig) -> Arc<AdminService> {
    Arc::new(AdminService::new(
        clients.cognito_without_sdk_retries(),
        pool_id,
        cfg.clone(),
    ))
}

/// Hands the users of a spill file to the AdminCreateUser writer and waits until each is
/// settled and recorded. Users already settled are left out (a resumed run), except in a retry
/// (`retry_all`), whose file holds just the users to write again. A cancelled `cancel` stops the
/// writer taking users; calls in flight finish and are recorded.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write_spilled(
    cfg: &AdminCreateConfig,
    clients: &Clients,
    pool_id: &str,
    cp: &Arc<Checkpoint>,
    run: &Run,
    path: &Path,
    retry_all: bool,
    progress: &Progress,
    cancel: &CancelToken,
) -> Result<(), MigrateError> {
    let skip = if retry_all {
        RecordSet::new()
    } else {
        cp.skip_set(run.id)?
    };
    let (feeder, pipeline) = admin_create::start(
        service(clients, pool_id, cfg),
        cp.clone(),
        run.id,
        cancel.subscribe(),
    )?;
    let snapshot = pipeline.progress();
    let task = progress.task(
        "admin-create",
        None,
        Unit::Users,
        &["created", "updated", "skipped", "failed"],
    );
    let shown = task.clone();
    let reporter = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            view::show_admin(&shown, &snapshot());
        }
    });
    let owned = path.to_path_buf();
    let fed = tokio::task::spawn_blocking(move || -> Result<(), MigrateError> {
        let users = spill::read(&owned).map_err(MigrateError::io("reading", &owned))?;
        for user in users {
            let user = user.map_err(MigrateError::io("reading", &owned))?;
            if skip.contains(user.position.record) {
                continue;
            }
            feeder.send_blocking(user, Route::AdminCreate.as_str())?;
        }
        Ok(())
    })
    .await;
    // Every user handed in is settled and recorded before returning, also when feeding failed.
    let finished = pipeline.finish().await;
    reporter.abort();
    // Cancelled, the writer stops taking users: its stages and the feeder then end `Closed`,
    // and what it did is recorded.
    let stopped = |e: MigrateError| match e {
        MigrateError::AdminCreate(AdminCreateError::Closed) if cancel.is_cancelled() => {
            MigrateError::Interrupted
        }
        e => e,
    };
    let snap = finished.map_err(|e| stopped(e.into()))?;
    view::show_admin(&task, &snap);
    task.finish("done");
    if snap.queued > 0 {
        progress.println(snap.line());
    }
    fed?.map_err(stopped)?;
    Ok(())
}

/// Disable / groups for users already in the pool whose follow-ups are not done (imported users
/// after their jobs; with `retry_failed` also users failed with `followup_failed`).
pub async fn apply_followups(
    cfg: &AdminCreateConfig,
    clients: &Clients,
    pool_id: &str,
    cp: Arc<Checkpoint>,
    run: RunId,
    retry_failed: bool,
) -> Result<FollowupSummary, MigrateError> {
    Ok(
        admin_create::apply_followups(service(clients, pool_id, cfg), cp, run, retry_failed)
            .await?,
    )
}
