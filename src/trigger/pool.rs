//! [`UserDirectory`] over another Cognito user pool, for pool-to-pool moves.
//!
//! Passwords in a user pool cannot be exported, so the old pool itself checks them:
//! `AdminInitiateAuth` with `ADMIN_USER_PASSWORD_AUTH` (the old pool's app client must allow that
//! flow; with a client secret the `SECRET_HASH` is computed), then `AdminGetUser` and
//! `AdminListGroupsForUser` for the attributes and groups. A password-verified MFA challenge counts
//! as a right password (MFA settings do not move with the user); a temporary password
//! (`NEW_PASSWORD_REQUIRED`) does not — such users reset their password instead.
//!
//! Calls have tight timeouts and at most two attempts each: Cognito gives the whole trigger five
//! seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ChallengeNameType};
use aws_sdk_cognitoidentityprovider::Client;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::settings::PoolSettings;
use super::{DirectoryKind, DirectoryUnavailable, LegacyAccount, Refusal, UserDirectory, Verdict};

/// The old user pool as the trigger's user directory.
#[derive(Clone)]
pub struct PoolDirectory {
    client: Client,
    pool_id: String,
    client_id: String,
    client_secret: Option<String>,
    /// Whether the new pool generates usernames; `None`: as the old pool does.
    new_pool_generates_usernames: Option<bool>,
}

impl std::fmt::Debug for PoolDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolDirectory")
            .field("pool_id", &self.pool_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The error for logs. Service messages can quote what was sent (validation errors do), so the
/// user's names are cut out of them: logs never show a username.
fn unavailable<E, R>(operation: &str, e: &SdkError<E, R>, names: &[&str]) -> DirectoryUnavailable
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut message = match e.code() {
        Some(code) => format!(
            "{operation} on the legacy pool failed: {code}: {}",
            e.message().unwrap_or_default()
        ),
        None => format!(
            "{operation} on the legacy pool failed: {}",
            DisplayErrorContext(e)
        ),
    };
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        message = message.replace(name, "<user>");
    }
    DirectoryUnavailable(message)
}

impl PoolDirectory {
    /// A directory over `pool_id`, signing in through the app client `client_id`.
    pub fn new(
        client: Client,
        pool_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<String>,
    ) -> PoolDirectory {
        PoolDirectory {
            client,
            pool_id: pool_id.into(),
            client_id: client_id.into(),
            client_secret,
            new_pool_generates_usernames: None,
        }
    }

    /// Says whether the new pool generates usernames (email or phone number *as* username), which
    /// decides whether a `username` is answered; `None` (the default): as the old pool does.
    pub fn with_new_pool_generating_usernames(mut self, generates: Option<bool>) -> PoolDirectory {
        self.new_pool_generates_usernames = generates;
        self
    }

    /// Builds the Cognito client (credentials from the function's role; region from the settings,
    /// which default to the pool id's prefix) with the trigger's timeouts.
    pub async fn from_settings(settings: &PoolSettings) -> PoolDirectory {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_millis(1500))
                    .operation_timeout(Duration::from_millis(2000))
                    .build(),
            )
            .load()
            .await;
        PoolDirectory::new(
            Client::new(&sdk),
            settings.pool_id.clone(),
            settings.client_id.clone(),
            settings.client_secret.clone(),
        )
        .with_new_pool_generating_usernames(settings.new_pool_generates_usernames)
    }

    /// `SECRET_HASH`: base64(HMAC-SHA256(client secret, username + client id)).
    fn secret_hash(&self, username: &str) -> Option<String> {
        let secret = self.client_secret.as_ref()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(username.as_bytes());
        mac.update(self.client_id.as_bytes());
        Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// AdminGetUser + AdminListGroupsForUser; `None` if the old pool does not know `login`.
    async fn account(&self, login: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        let user = match self
            .client
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(login)
            .send()
            .await
        {
            Ok(u) => u,
            Err(e) if e.code() == Some("UserNotFoundException") => return Ok(None),
            Err(e) => return Err(unavailable("AdminGetUser", &e, &[login])),
        };
        let username = user.username().to_string();
        let attributes: BTreeMap<String, String> = user
            .user_attributes()
            .iter()
            .filter_map(|a| Some((a.name().to_string(), a.value()?.to_string())))
            .collect();
        let mut groups = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .admin_list_groups_for_user()
                .user_pool_id(&self.pool_id)
                .username(&username)
                .limit(60)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| unavailable("AdminListGroupsForUser", &e, &[login, &username]))?;
            groups.extend(
                page.groups()
                    .iter()
                    .filter_map(|g| g.group_name().map(str::to_string)),
            );
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        // The `username` answer, as the trigger module documents it (AWS: required when the user
        // signed in with an alias of a pool that has alias attributes; a pool with email or phone
        // *as* username generates the username itself). Whether the new pool generates usernames
        // is configured, or else taken to be as in the old pool, where such users are named by
        // their `sub`. A user of such an old pool who moves to a pool with aliases is named after
        // their old (generated) username: Cognito cannot name them after the email they typed.
        let old_pool_generated = attributes.get("sub").is_some_and(|s| *s == username);
        let generates = self
            .new_pool_generates_usernames
            .unwrap_or(old_pool_generated);
        let typed_username = username.to_lowercase() == login.trim().to_lowercase();
        let username_attribute = (!generates && !typed_username).then(|| username.clone());
        Ok(Some(LegacyAccount {
            username,
            username_attribute,
            attributes,
            enabled: user.enabled(),
            groups,
            scheme: None,
        }))
    }
}

impl UserDirectory for PoolDirectory {
    fn kind(&self) -> DirectoryKind {
        DirectoryKind::Pool
    }

    async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryUnavailable> {
        let mut request = self
            .client
            .admin_initiate_auth()
            .user_pool_id(&self.pool_id)
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", login)
            .auth_parameters("PASSWORD", password);
        if let Some(hash) = self.secret_hash(login) {
            request = request.auth_parameters("SECRET_HASH", hash);
        }
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) => {
                let refusal = match e.code() {
                    Some("NotAuthorizedException") => Refusal::WrongPassword,
                    Some("UserNotFoundException") => Refusal::UnknownUser,
                    Some("PasswordResetRequiredException") => {
                        Refusal::Other("password_reset_required")
                    }
                    Some("UserNotConfirmedException") => Refusal::Other("not_confirmed"),
                    _ => return Err(unavailable("AdminInitiateAuth", &e, &[login])),
                };
                return Ok(Verdict::Refused(refusal));
            }
        };
        if out.authentication_result().is_none() {
            match out.challenge_name() {
                Some(
                    ChallengeNameType::SmsMfa
                    | ChallengeNameType::SoftwareTokenMfa
                    | ChallengeNameType::MfaSetup
                    | ChallengeNameType::SelectMfaType
                    | ChallengeNameType::EmailOtp,
                ) => {}
                Some(ChallengeNameType::NewPasswordRequired) => {
                    return Ok(Verdict::Refused(Refusal::Other("temporary_password")))
                }
                _ => return Ok(Verdict::Refused(Refusal::Other("challenge_required"))),
            }
        }
        Ok(match self.account(login).await? {
            Some(a) => Verdict::Accepted(a),
            None => Verdict::Refused(Refusal::UnknownUser),
        })
    }

    async fn lookup(&self, login: &str) -> Result<Option<LegacyAccount>, DirectoryUnavailable> {
        self.account(login).await
    }
}
