//! The provider table: which of the target pool's identity providers a vendor's federated
//! identity signs in through.
//!
//! Why it exists: exports name providers their own way (Auth0 `google-oauth2`, Firebase
//! `google.com`, a Keycloak alias, an Auth0 enterprise connection's name), while Cognito links an
//! identity to one of the pool's identity providers by *its* name (`Google`, `SignInWithApple`,
//! `Facebook`, `LoginWithAmazon` for the social ones, which Cognito names itself; any name for a
//! SAML or OIDC provider). The mapping file's `[providers]` table says which is which; the social
//! providers have defaults, enterprise connections are mapped by hand:
//!
//! ```toml
//! [providers]
//! "github.com" = "GitHub"        # an OIDC provider named GitHub in the pool
//! "acme-saml" = "AcmeSAML"
//! ```
//! A provider that is not in the table is unknown; `plan` also checks that every name on the right
//! exists in the pool (ListIdentityProviders), and `--unknown-provider` decides what happens to
//! users with an unknown one.

use std::collections::BTreeMap;

use crate::record::Identity;

/// The social providers' names in exports, and Cognito's name for each (the `ProviderName` of the
/// pool's `Google`, `SignInWithApple`, `Facebook` and `LoginWithAmazon` identity providers; the
/// API reference's `ProviderType` values). Cognito's own names map to themselves, so that users
/// from another pool keep theirs.
pub const DEFAULT_PROVIDERS: [(&str, &str); 15] = [
    ("google-oauth2", "Google"),
    ("google.com", "Google"),
    ("google", "Google"),
    ("Google", "Google"),
    ("apple", "SignInWithApple"),
    ("apple.com", "SignInWithApple"),
    ("SignInWithApple", "SignInWithApple"),
    ("facebook", "Facebook"),
    ("facebook.com", "Facebook"),
    ("Facebook", "Facebook"),
    ("amazon", "LoginWithAmazon"),
    ("amazon.com", "LoginWithAmazon"),
    ("login-with-amazon", "LoginWithAmazon"),
    ("loginwithamazon", "LoginWithAmazon"),
    ("LoginWithAmazon", "LoginWithAmazon"),
];

/// Cognito links at most this many federated identities to one user (AdminLinkProviderForUser,
/// API reference: "The maximum number of federated identities linked to a user is five").
pub const MAX_LINKED_IDENTITIES: usize = 5;

/// The table in force: the defaults with the mapping file's `[providers]` laid over them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderTable {
    map: BTreeMap<String, String>,
}

impl Default for ProviderTable {
    fn default() -> ProviderTable {
        ProviderTable::new(&BTreeMap::new())
    }
}

impl ProviderTable {
    /// The defaults with `table` (the mapping's `[providers]`) over them.
    pub fn new(table: &BTreeMap<String, String>) -> ProviderTable {
        let mut map: BTreeMap<String, String> = DEFAULT_PROVIDERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.extend(table.iter().map(|(k, v)| (k.clone(), v.clone())));
        ProviderTable { map }
    }

    /// The pool's provider name for a vendor's provider name, if the table has it.
    pub fn get(&self, vendor: &str) -> Option<&str> {
        self.map.get(vendor).map(String::as_str)
    }

    /// A user's identities as links: each with the pool provider the table names (or none).
    /// The same provider and id twice is kept once.
    pub fn links(&self, identities: &[Identity]) -> Vec<Link> {
        let mut out: Vec<Link> = Vec::with_capacity(identities.len());
        for i in identities {
            let link = Link {
                vendor: i.provider.clone(),
                provider: self.get(&i.provider).map(str::to_string),
                user_id: i.user_id.clone(),
            };
            if !out.iter().any(|l| {
                l.provider.is_some() && l.provider == link.provider && l.user_id == link.user_id
            }) {
                out.push(link);
            }
        }
        out
    }
}

/// One federated identity of a mapped user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The provider as the export names it.
    pub vendor: String,
    /// The pool's identity provider it maps to (`None`: not in the table).
    pub provider: Option<String>,
    /// The provider's id of the user (linked as `Cognito_Subject`).
    pub user_id: String,
}

impl Link {
    /// How the plan names this provider when it cannot be linked.
    pub fn label(&self) -> String {
        match &self.provider {
            Some(p) if *p != self.vendor => format!("{} → {p}", self.vendor),
            _ => self.vendor.clone(),
        }
    }
}

/// The identities linked to a native user, from its `identities` attribute: a JSON string holding
/// an array of `{"userId", "providerName", "providerType", "issuer", "primary", "dateCreated"}`
/// (Cognito's developer guide, "Linking federated users to an existing user profile"). The
/// provider is the old pool's identity provider name (`Google`, `SignInWithApple`, a SAML or OIDC
/// provider's name).
pub fn linked_identities(text: &str) -> Result<Vec<Identity>, String> {
    let list: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("the identities attribute is not a JSON array: {e}"))?;
    let mut out = Vec::new();
    for item in &list {
        let text_of = |k: &str| match item.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        match (text_of("providerName"), text_of("userId")) {
            (Some(p), Some(id)) if !p.is_empty() && !id.is_empty() => {
                out.push(Identity::new(p, id))
            }
            _ => {
                return Err(
                    "an entry of the identities attribute has no providerName or userId".into(),
                )
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_the_social_providers_and_the_file_adds_and_overrides() {
        let t = ProviderTable::default();
        assert_eq!(t.get("google-oauth2"), Some("Google"));
        assert_eq!(t.get("google.com"), Some("Google"));
        assert_eq!(t.get("apple.com"), Some("SignInWithApple"));
        assert_eq!(t.get("facebook"), Some("Facebook"));
        assert_eq!(t.get("amazon"), Some("LoginWithAmazon"));
        assert_eq!(t.get("github.com"), None);
        let file: BTreeMap<String, String> = [
            ("github.com".to_string(), "GitHub".to_string()),
            ("google.com".to_string(), "GoogleWorkspace".to_string()),
        ]
        .into();
        let t = ProviderTable::new(&file);
        assert_eq!(t.get("github.com"), Some("GitHub"));
        assert_eq!(t.get("google.com"), Some("GoogleWorkspace"));
        assert_eq!(t.get("google-oauth2"), Some("Google"));
    }

    #[test]
    fn links_name_the_pool_provider_and_drop_repeats() {
        let t = ProviderTable::default();
        let links = t.links(&[
            Identity::new("google.com", "1"),
            Identity::new("google-oauth2", "1"),
            Identity::new("github.com", "7"),
        ]);
        assert_eq!(links.len(), 2, "{links:?}");
        assert_eq!(links[0].provider.as_deref(), Some("Google"));
        assert_eq!(links[1].provider, None);
        assert_eq!(links[1].label(), "github.com");
        assert_eq!(links[0].label(), "google.com → Google");
    }
}
