//! The Cognito calls of the AdminCreateUser writer, each behind its quota category's limiter and
//! the writer's one retry decision ([`super::retry`]).
//!
//! Every call goes through [`AdminService::call`]: wait for the category's limiter, send, and on
//! failure either retry (throttling slows the limiter down; transient failures back off with
//! jitter) or give up with a [`CallError`] that says whether an earlier attempt may have taken
//! effect. Nothing here sends or reports a password: AdminCreateUser is called without
//! `TemporaryPassword` (Cognito generates one), and error messages are Cognito's own.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_cognitoidentityprovider::config::http::HttpResponse;
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, DeliveryMediumType, MessageActionType, ProviderUserIdentifierType,
};
use aws_sdk_cognitoidentityprovider::Client;

use super::config::AdminCreateConfig;
use super::limiter::{AdaptiveLimiter, Category};
use super::retry::{classify, maybe_applied, Backoff, Verdict};

/// A call that failed for good (permanent error, or retries used up), with the writer's
/// classification `C` of its last failure: this writer's [`Verdict`]; the user-changes writer's
/// [`crate::sink::user_changes::retry::Decision`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{operation}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct CallError<C = Verdict> {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub class: C,
    /// Some attempt may have reached Cognito and taken effect (no answer, or a 5xx).
    pub maybe_applied: bool,
}

impl<C> CallError<C> {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The error of `operation` from the SDK's error `e` (Cognito's code and message; without a
    /// message, the whole cause).
    pub fn from_sdk<E>(
        operation: &'static str,
        e: &SdkError<E, HttpResponse>,
        class: C,
        applied: bool,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        CallError {
            operation,
            code: e.code().map(str::to_string),
            message: e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| DisplayErrorContext(e).to_string()),
            class,
            maybe_applied: applied,
        }
    }
}

/// A user as the pool holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUser {
    /// The user's username in the pool: in a pool whose usernames are email addresses or phone
    /// numbers, the id Cognito generated (what AdminLinkProviderForUser's `DestinationUser` takes).
    pub username: String,
    pub attributes: BTreeMap<String, String>,
    pub enabled: bool,
    pub status: Option<String>,
}

impl RemoteUser {
    /// The (provider, provider's user id) identities linked to the user, from its `identities`
    /// attribute (none if it has none or it cannot be read).
    pub fn linked(&self) -> Vec<(String, String)> {
        self.attributes
            .get("identities")
            .and_then(|t| crate::mapping::providers::linked_identities(t).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.provider, i.user_id))
            .collect()
    }
}

/// The limiters, one per quota category.
pub struct Limiters {
    pub creation: AdaptiveLimiter,
    pub update: AdaptiveLimiter,
    pub resource_update: AdaptiveLimiter,
    pub read: AdaptiveLimiter,
    pub pool_resource_update: AdaptiveLimiter,
}

impl Limiters {
    pub fn new(cfg: &AdminCreateConfig) -> Limiters {
        let r = &cfg.rates;
        let f = cfg.min_rate_fraction;
        Limiters {
            creation: AdaptiveLimiter::new(Category::UserCreation, r.user_creation, f),
            update: AdaptiveLimiter::new(Category::UserUpdate, r.user_update, f),
            resource_update: AdaptiveLimiter::new(
                Category::UserResourceUpdate,
                r.user_resource_update,
                f,
            ),
            read: AdaptiveLimiter::new(Category::UserRead, r.user_read, f),
            pool_resource_update: AdaptiveLimiter::new(
                Category::UserPoolResourceUpdate,
                r.pool_resource_update,
                f,
            ),
        }
    }

    pub fn all(&self) -> [&AdaptiveLimiter; 5] {
        [
            &self.creation,
            &self.update,
            &self.resource_update,
            &self.read,
            &self.pool_resource_update,
        ]
    }

    /// Calls throttled by Cognito, all categories.
    pub fn throttled(&self) -> u64 {
        self.all().iter().map(|l| l.throttled()).sum()
    }
}

/// The Cognito side of the writer. Its client must not retry by itself
/// ([`crate::aws::Clients::cognito_without_sdk_retries`]).
pub struct AdminService {
    client: Client,
    pool_id: String,
    pub limiters: Limiters,
    cfg: AdminCreateConfig,
    retries: AtomicU64,
}

/// The attributes AdminCreateUser takes for a user: everything mapped except `cognito:` pseudo
/// attributes (`cognito:mfa_enabled` is not a user attribute).
pub fn user_attributes(attributes: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    attributes
        .iter()
        .filter(|(k, _)| !k.starts_with("cognito:"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn attribute_types(attrs: &[(&str, &str)]) -> Vec<AttributeType> {
    attrs
        .iter()
        .filter_map(|(k, v)| AttributeType::builder().name(*k).value(*v).build().ok())
        .collect()
}

impl AdminService {
    pub fn new(client: Client, pool_id: impl Into<String>, cfg: AdminCreateConfig) -> AdminService {
        AdminService {
            limiters: Limiters::new(&cfg),
            client,
            pool_id: pool_id.into(),
            cfg,
            retries: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &AdminCreateConfig {
        &self.cfg
    }

    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// Attempts repeated after a throttled or transient failure, all calls.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// One call with the writer's retry policy.
    async fn call<T, E, F, Fut>(
        &self,
        limiter: &AdaptiveLimiter,
        operation: &'static str,
        mut f: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut backoff = Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max);
        let (mut transient, mut throttled) = (0u32, 0u32);
        let mut applied = false;
        loop {
            let ticket = limiter.acquire().await;
            let e = match f().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            applied |= maybe_applied(&e);
            let verdict = classify(&e);
            if !verdict.is_retriable() {
                return Err(CallError::from_sdk(operation, &e, verdict, applied));
            }
            let (tries, max) = if verdict == Verdict::Throttled {
                limiter.on_throttle(&ticket);
                (&mut throttled, self.cfg.max_throttled_attempts)
            } else {
                (&mut transient, self.cfg.max_attempts)
            };
            *tries += 1;
            if *tries >= max {
                return Err(CallError::from_sdk(operation, &e, verdict, applied));
            }
            tracing::debug!("{operation}: {}; retrying", DisplayErrorContext(&e));
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// AdminCreateUser: `MessageAction=SUPPRESS` unless inviting, no temporary password (Cognito
    /// generates one; the user is FORCE_CHANGE_PASSWORD). Gives the username the pool gave the
    /// user (in an email- or phone-as-username pool a generated id, not `username`).
    pub async fn create_user(
        &self,
        username: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Option<String>, CallError> {
        let attrs = attribute_types(&user_attributes(attributes));
        let has_email = attributes.contains_key("email");
        let has_phone = attributes.contains_key("phone_number");
        self.call(&self.limiters.creation, "AdminCreateUser", || {
            let mut req = self
                .client
                .admin_create_user()
                .user_pool_id(&self.pool_id)
                .username(username)
                .set_user_attributes(Some(attrs.clone()));
            if self.cfg.invite {
                if has_email {
                    req = req.desired_delivery_mediums(DeliveryMediumType::Email);
                }
                if has_phone {
                    req = req.desired_delivery_mediums(DeliveryMediumType::Sms);
                }
            } else {
                req = req.message_action(MessageActionType::Suppress);
            }
            if self.cfg.force_alias_creation {
                req = req.force_alias_creation(true);
            }
            req.send()
        })
        .await
        .map(|out| out.user().and_then(|u| u.username()).map(str::to_string))
    }

    /// AdminGetUser; `None` when there is no such user.
    pub async fn get_user(&self, username: &str) -> Result<Option<RemoteUser>, CallError> {
        let r = self
            .call(&self.limiters.read, "AdminGetUser", || {
                self.client
                    .admin_get_user()
                    .user_pool_id(&self.pool_id)
                    .username(username)
                    .send()
            })
            .await;
        match r {
            Ok(out) => Ok(Some(RemoteUser {
                username: out.username().to_string(),
                attributes: out
                    .user_attributes()
                    .iter()
                    .map(|a| {
                        (
                            a.name().to_string(),
                            a.value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
                enabled: out.enabled(),
                status: out.user_status().map(|s| s.as_str().to_string()),
            })),
            Err(e) if e.is("UserNotFoundException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// AdminUpdateUserAttributes with these (name, value) pairs.
    pub async fn update_attributes(
        &self,
        username: &str,
        attrs: &[(&str, &str)],
    ) -> Result<(), CallError> {
        let attrs = attribute_types(attrs);
        self.call(&self.limiters.update, "AdminUpdateUserAttributes", || {
            self.client
                .admin_update_user_attributes()
                .user_pool_id(&self.pool_id)
                .username(username)
                .set_user_attributes(Some(attrs.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    /// AdminDisableUser (idempotent).
    pub async fn disable_user(&self, username: &str) -> Result<(), CallError> {
        self.call(&self.limiters.update, "AdminDisableUser", || {
            self.client
                .admin_disable_user()
                .user_pool_id(&self.pool_id)
                .username(username)
                .send()
        })
        .await
        .map(|_| ())
    }

    /// AdminAddUserToGroup (idempotent). A missing group is `ResourceNotFoundException`.
    pub async fn add_to_group(&self, username: &str, group: &str) -> Result<(), CallError> {
        self.call(
            &self.limiters.resource_update,
            "AdminAddUserToGroup",
            || {
                self.client
                    .admin_add_user_to_group()
                    .user_pool_id(&self.pool_id)
                    .username(username)
                    .group_name(group)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    /// AdminLinkProviderForUser: links the identity `user_id` of the pool's identity provider
    /// `provider` to the native user `username` (the username in the pool, not an alias: the API
    /// reference says the `DestinationUser`'s value "should be the username in the user pool"), so that the user's first sign-in through that
    /// provider lands on this user instead of creating a new one (`Google_…`).
    ///
    /// As the API reference says: `DestinationUser` is the native user (`ProviderName` `Cognito`,
    /// `ProviderAttributeValue` its username; its attribute name is ignored); `SourceUser` is the
    /// federated identity, for social providers with `ProviderAttributeName` `Cognito_Subject`
    /// and the provider's id of the user (Google's `sub`, Facebook's `id`, Amazon's `user_id`;
    /// the same works for SAML/OIDC providers whose subject is the id). The source user must not
    /// exist in the pool yet (it must not have signed in before), a user takes at most five
    /// linked identities, and every attribute of the destination user must be mutable. Quota
    /// category: UserUpdate (the quotas page's list of user-update operations), like
    /// AdminDisableUser.
    pub async fn link_provider(
        &self,
        username: &str,
        provider: &str,
        user_id: &str,
    ) -> Result<(), CallError> {
        let destination = ProviderUserIdentifierType::builder()
            .provider_name("Cognito")
            .provider_attribute_value(username)
            .build();
        let source = ProviderUserIdentifierType::builder()
            .provider_name(provider)
            .provider_attribute_name("Cognito_Subject")
            .provider_attribute_value(user_id)
            .build();
        self.call(&self.limiters.update, "AdminLinkProviderForUser", || {
            self.client
                .admin_link_provider_for_user()
                .user_pool_id(&self.pool_id)
                .destination_user(destination.clone())
                .source_user(source.clone())
                .send()
        })
        .await
        .map(|_| ())
    }

    /// CreateGroup; a group that exists already (`GroupExistsException`) is fine.
    pub async fn create_group(&self, group: &str) -> Result<(), CallError> {
        let r = self
            .call(&self.limiters.pool_resource_update, "CreateGroup", || {
                self.client
                    .create_group()
                    .user_pool_id(&self.pool_id)
                    .group_name(group)
                    .send()
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is("GroupExistsException") => Ok(()),
            Err(e) => Err(e),
        }
    }
}
