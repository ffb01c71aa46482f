//! The S3 side of a remote state: conditional puts, gets and deletes of the state object and of
//! its lease object `<key>.lock`, and the lease's JSON record.
//!
//! Every write is conditional, as S3 documents them:
//! - `PutObject` with `If-None-Match: *` writes only when no object has the key, else
//!   `412 PreconditionFailed`; with `If-Match: <ETag>` only when the current object has that ETag,
//!   else `412` (`404 NoSuchKey` when there is no object at all). Concurrent conditional writes to
//!   one key may answer `409 ConditionalRequestConflict`: retry.
//!   <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>,
//!   <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html>
//! - `DeleteObject` with `If-Match: <ETag>` deletes only that version of the object, else `412`
//!   (`404 NoSuchKey` when it is gone): supported on general purpose buckets since September 2025
//!   (before, on directory buckets only). A conditional delete with an ETag needs `s3:GetObject`
//!   as well as `s3:DeleteObject`.
//!   <https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html>
//!
//! A write whose answer was lost (a timeout, a dropped connection) is retried by the SDK, and the
//! retry then meets its own first attempt: `If-None-Match: *` or the old `If-Match` ETag fails
//! with 412 although the write happened. So every write carries a unique id in its metadata
//! (`x-amz-meta-cognito-migrate-write`), and a 412 is checked with `HeadObject`: when the object
//! holds our id, the write was ours and succeeded.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::StateStoreError;
use crate::lease::Holder;

/// The metadata key (without `x-amz-meta-`) that carries a write's id.
const WRITE_ID: &str = "cognito-migrate-write";

/// How often a `409 ConditionalRequestConflict` is retried.
const CONFLICT_RETRIES: u32 = 6;

/// What a write is conditional on.
#[derive(Clone, Debug)]
pub(super) enum Cond {
    /// `If-None-Match: *`: only if no object has the key.
    Absent,
    /// `If-Match: <ETag>`: only if the object has this ETag.
    Matches(String),
}

/// How a conditional write ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written {
    /// Written; the object's new ETag.
    Yes(String),
    /// The condition did not hold (412, or 404 for `If-Match` on a missing object).
    ConditionFailed,
}

/// An object's key in a bucket, with the client that reaches it.
#[derive(Clone, Debug)]
pub(super) struct S3Target {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn s3_error<E>(
    op: &'static str,
    bucket: &str,
    key: &str,
    e: &SdkError<E, HttpResponse>,
) -> StateStoreError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let message = match e {
        // S3's own answer: its code and message (the raw response is noise).
        SdkError::ServiceError(se) => format!(
            "{} (HTTP {}): {}",
            se.err().code().unwrap_or("error"),
            se.raw().status().as_u16(),
            se.err().message().unwrap_or("no message")
        ),
        other => format!("{}", DisplayErrorContext(other)),
    };
    StateStoreError::S3 {
        op,
        location: format!("s3://{bucket}/{key}"),
        message,
    }
}

/// A fresh id for one write.
pub(super) fn write_id() -> String {
    hex(&rand::random::<[u8; 16]>())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl S3Target {
    /// `PutObject` of `body` (made again for each attempt) under `cond`.
    pub async fn put(
        &self,
        key: &str,
        body: impl Fn() -> futures::future::BoxFuture<'static, Result<ByteStream, StateStoreError>>,
        content_type: &str,
        cond: &Cond,
    ) -> Result<Written, StateStoreError> {
        let id = write_id();
        let mut conflicts = 0;
        loop {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .metadata(WRITE_ID, &id)
                .body(body().await?);
            req = match cond {
                Cond::Absent => req.if_none_match("*"),
                Cond::Matches(etag) => req.if_match(etag),
            };
            match req.send().await {
                Ok(out) => {
                    let etag =
                        out.e_tag()
                            .map(str::to_string)
                            .ok_or_else(|| StateStoreError::S3 {
                                op: "PutObject",
                                location: format!("s3://{}/{key}", self.bucket),
                                message: "S3 answered without an ETag".into(),
                            })?;
                    return Ok(Written::Yes(etag));
                }
                Err(e) => {
                    let status = status_of(&e);
                    let code = e.code().map(str::to_string);
                    if status == Some(409) || code.as_deref() == Some("ConditionalRequestConflict")
                    {
                        conflicts += 1;
                        if conflicts <= CONFLICT_RETRIES {
                            tokio::time::sleep(Duration::from_millis(100 << conflicts.min(5)))
                                .await;
                            continue;
                        }
                    }
                    if status == Some(412)
                        || code.as_deref() == Some("PreconditionFailed")
                        || (matches!(cond, Cond::Matches(_))
                            && (status == Some(404) || code.as_deref() == Some("NoSuchKey")))
                    {
                        // Perhaps our own write, retried after its answer was lost.
                        return Ok(match self.head(key).await? {
                            Some((etag, Some(found))) if found == id => Written::Yes(etag),
                            _ => Written::ConditionFailed,
                        });
                    }
                    return Err(s3_error("PutObject", &self.bucket, key, &e));
                }
            }
        }
    }

    /// The object's ETag and write id, or `None` when there is no object.
    pub async fn head(
        &self,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>, StateStoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some((
                out.e_tag().unwrap_or_default().to_string(),
                out.metadata().and_then(|m| m.get(WRITE_ID)).cloned(),
            ))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error("HeadObject", &self.bucket, key, &e)),
        }
    }

    /// `GetObject`: the object's body stream and ETag, or `None` when there is no object.
    pub async fn get(&self, key: &str) -> Result<Option<(ByteStream, String)>, StateStoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                Ok(Some((out.body, etag)))
            }
            Err(e)
                if status_of(&e) == Some(404)
                    || matches!(e.as_service_error(), Some(se) if se.is_no_such_key()) =>
            {
                Ok(None)
            }
            Err(e) => Err(s3_error("GetObject", &self.bucket, key, &e)),
        }
    }

    /// A small object read whole (the lease record), with its ETag.
    pub async fn get_small(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StateStoreError> {
        let Some((body, etag)) = self.get(key).await? else {
            return Ok(None);
        };
        let bytes = body
            .collect()
            .await
            .map_err(|e| StateStoreError::S3 {
                op: "GetObject",
                location: format!("s3://{}/{key}", self.bucket),
                message: format!("{}", DisplayErrorContext(&e)),
            })?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag)))
    }

    /// `DeleteObject` with `If-Match: <etag>`: `Written::Yes("")` when deleted (or already gone),
    /// `ConditionFailed` when the object is another one now.
    pub async fn delete_if_match(&self, key: &str, etag: &str) -> Result<Written, StateStoreError> {
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(Written::Yes(String::new())),
            Err(e) if status_of(&e) == Some(404) => Ok(Written::Yes(String::new())),
            Err(e) if status_of(&e) == Some(412) || e.code() == Some("PreconditionFailed") => {
                Ok(Written::ConditionFailed)
            }
            Err(e) => Err(s3_error("DeleteObject", &self.bucket, key, &e)),
        }
    }
}

/// The lease object's content: who holds the state, until when. JSON, e.g.
/// `{"host":"ip-10-0-1-5","pid":7,"since_ms":…,"command":"sync","token":"…","renewed_ms":…,"expires_ms":…}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    /// Host, pid, command and when the lease was acquired (`since_ms`).
    #[serde(flatten)]
    pub holder: Holder,
    /// A random token naming this holding (a new one for each acquisition).
    pub token: String,
    /// When the holder last wrote the record, in milliseconds since the Unix epoch.
    pub renewed_ms: i64,
    /// When the lease ends unless renewed before, in milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

impl LeaseRecord {
    /// A new lease for this process running `command`, for `duration` from now.
    pub fn new(command: &str, duration: Duration) -> LeaseRecord {
        let holder = Holder::this_process(command);
        let now = holder.since_ms;
        LeaseRecord {
            holder,
            token: hex(&rand::random::<[u8; 16]>()),
            renewed_ms: now,
            expires_ms: now.saturating_add(duration_ms(duration)),
        }
    }

    /// The same holding, renewed now for `duration`.
    pub fn renewed(&self, now_ms: i64, duration: Duration) -> LeaseRecord {
        LeaseRecord {
            renewed_ms: now_ms,
            expires_ms: now_ms.saturating_add(duration_ms(duration)),
            ..self.clone()
        }
    }

    /// Whether the lease has ended at `now_ms` (the holder stopped renewing it).
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_ms
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).expect("a lease record serialises");
        v.push(b'\n');
        v
    }

    pub fn from_json(bytes: &[u8]) -> Result<LeaseRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An RFC 3339 UTC timestamp of a time in milliseconds since the Unix epoch.
pub fn rfc3339(ms: i64) -> String {
    Holder {
        host: String::new(),
        pid: 0,
        since_ms: ms,
        command: String::new(),
    }
    .since()
}
