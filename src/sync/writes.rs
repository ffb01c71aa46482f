//! REPLACED BY `sink::user_changes` AT MERGE. A small sequential stand-in with exactly the agreed
//! API of the per-user change writer (engineer "apply"), so that the sync engine and its tests run
//! before that writer is on main: one call at a time, paced at the lower of the two rates, with
//! the one retry decision (`crate::retry::classify`) and exponential backoff. The real writer adds
//! per-category adaptive limiters and concurrency; the engine does not change.
//!
//! Every op is safe to send twice (AdminUpdateUserAttributes with the same values, Disable,
//! Enable, AddToGroup, RemoveFromGroup are idempotent; a Delete of a user already gone is
//! `AlreadyDone`), which is why an op in doubt after a crash is simply sent again.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use tokio::sync::{mpsc, watch};

use crate::retry::{classify, Backoff};

/// One change to one user.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: i64,
    pub username: String,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    UpdateAttributes(Vec<(String, String)>),
    DeleteAttributes(Vec<String>),
    Disable,
    Enable,
    Delete,
    AddToGroup(String),
    RemoveFromGroup(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    AlreadyDone,
    UserNotFound,
    Failed { code: String, message: String },
}

pub trait ChangeObserver: Send + Sync {
    fn started(&self, id: i64);
    fn finished(&self, id: i64, outcome: &ChangeOutcome);
}

#[derive(Clone, Debug)]
pub struct UserChangesConfig {
    pub update_rate: f64,
    pub resource_update_rate: f64,
    pub concurrency: usize,
}

impl Default for UserChangesConfig {
    fn default() -> Self {
        UserChangesConfig {
            update_rate: 25.0,
            resource_update_rate: 25.0,
            concurrency: 16,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyStats {
    pub done: u64,
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UserChangesError {
    #[error("cancelled")]
    Cancelled,
}

const ATTEMPTS: u32 = 6;

/// Applies the changes received, in order, until the channel closes or `cancel` turns true.
pub async fn apply(
    client: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    config: &UserChangesConfig,
    mut changes: mpsc::Receiver<Change>,
    observer: &dyn ChangeObserver,
    cancel: watch::Receiver<bool>,
) -> Result<ApplyStats, UserChangesError> {
    let rate = config.update_rate.min(config.resource_update_rate).max(0.1);
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut stats = ApplyStats::default();
    let mut next = tokio::time::Instant::now();
    while let Some(change) = changes.recv().await {
        if *cancel.borrow() {
            return Err(UserChangesError::Cancelled);
        }
        observer.started(change.id);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut attempt = 0;
        let outcome = loop {
            tokio::time::sleep_until(next).await;
            next = tokio::time::Instant::now() + gap;
            attempt += 1;
            match send(client, pool_id, &change).await {
                Ok(()) => break ChangeOutcome::Done,
                Err(e) => {
                    if e.code.as_deref() == Some("UserNotFoundException") {
                        break match change.action {
                            Action::Delete => ChangeOutcome::AlreadyDone,
                            _ => ChangeOutcome::UserNotFound,
                        };
                    }
                    if e.retriable && attempt < ATTEMPTS && !*cancel.borrow() {
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                    break ChangeOutcome::Failed {
                        code: e.code.unwrap_or_else(|| "Error".into()),
                        message: e.message,
                    };
                }
            }
        };
        match outcome {
            ChangeOutcome::Failed { .. } => stats.failed += 1,
            _ => stats.done += 1,
        }
        observer.finished(change.id, &outcome);
    }
    Ok(stats)
}

struct CallError {
    code: Option<String>,
    message: String,
    retriable: bool,
}

fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, HttpResponse>,
) -> CallError {
    CallError {
        code: e.code().map(str::to_string),
        message: e
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| crate::display_chain(&e)),
        retriable: classify(&e).is_retriable(),
    }
}

async fn send(
    c: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    ch: &Change,
) -> Result<(), CallError> {
    let u = ch.username.as_str();
    match &ch.action {
        Action::UpdateAttributes(attrs) => {
            let list = attrs
                .iter()
                .map(|(n, v)| AttributeType::builder().name(n).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CallError {
                    code: Some("InvalidParameterException".into()),
                    message: e.to_string(),
                    retriable: false,
                })?;
            c.admin_update_user_attributes()
                .user_pool_id(pool)
                .username(u)
                .set_user_attributes(Some(list))
                .send()
                .await
                .map(|_| ())
                .map_err(call_error)
        }
        Action::DeleteAttributes(names) => c
            .admin_delete_user_attributes()
            .user_pool_id(pool)
            .username(u)
            .set_user_attribute_names(Some(names.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
        Action::Disable => c
            .admin_disable_user()
            .user_pool_id(pool)
            .username(u)
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
        Action::Enable => c
            .admin_enable_user()
            .user_pool_id(pool)
            .username(u)
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
        Action::Delete => c
            .admin_delete_user()
            .user_pool_id(pool)
            .username(u)
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
        Action::AddToGroup(g) => c
            .admin_add_user_to_group()
            .user_pool_id(pool)
            .username(u)
            .group_name(g)
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
        Action::RemoveFromGroup(g) => c
            .admin_remove_user_from_group()
            .user_pool_id(pool)
            .username(u)
            .group_name(g)
            .send()
            .await
            .map(|_| ())
            .map_err(call_error),
    }
}
