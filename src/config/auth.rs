//! `auth:` of config.yaml: callers other than the YAML keys. `auth.jwt` accepts bearer JWTs of
//! an OAuth 2.1 authorization server, each mapped to a caller by its claims.

use serde::Deserialize;

use super::{ConfigError, LimitsConfig, Span};

/// `auth:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Absent: only the YAML keys are accepted.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

/// `auth.jwt`: tokens an authorization server signs, checked against its published keys.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry; also the authorization server clients are sent to.
    pub issuer: String,
    /// Where the issuer publishes its signing keys (a JWK Set).
    pub jwks_url: String,
    /// Every token's `aud` must name one of these.
    pub audiences: Vec<String>,
    /// Which claims say who the caller is and what it may use.
    #[serde(default)]
    pub claims: ClaimsConfig,
    /// Each caller's own limits, by its claim-derived name (as a key's `limits:`).
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// The scopes the protected-resource metadata lists.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// This gateway's URL as clients reach it (`https://gw.example.com`), for the metadata;
    /// absent, it is taken from each request's `Host`.
    #[serde(default)]
    pub resource: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: Span,
    /// How often the keys are fetched again (a token naming an unknown key fetches them at
    /// once, at most every 10 seconds).
    #[serde(default = "default_refresh")]
    pub refresh: Span,
}

/// `auth.jwt.claims`: the claim naming the caller and, for each kind of grant, the claim that
/// holds its globs (a list, or one space-separated string). A kind without a claim allows
/// everything; a token without a configured claim allows nothing of that kind.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    #[serde(default = "default_name_claim")]
    pub name: String,
    #[serde(default)]
    pub models: Option<String>,
    #[serde(default)]
    pub tools: Option<String>,
    #[serde(default)]
    pub prompts: Option<String>,
    #[serde(default)]
    pub resources: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        ClaimsConfig {
            name: default_name_claim(),
            models: None,
            tools: None,
            prompts: None,
            resources: None,
            context: None,
        }
    }
}

fn default_name_claim() -> String {
    "sub".to_owned()
}

fn default_leeway() -> Span {
    Span(std::time::Duration::from_secs(60))
}

fn default_refresh() -> Span {
    Span(std::time::Duration::from_secs(600))
}

/// The longest clock skew accepted: more would keep expired tokens alive.
const MAX_LEEWAY: std::time::Duration = std::time::Duration::from_secs(300);

pub(super) fn validate(auth: &AuthConfig, errors: &mut Vec<ConfigError>) {
    let Some(jwt) = &auth.jwt else { return };
    let mut fail = |field: &str, message: &str| {
        errors.push(ConfigError::new(format!("auth.jwt.{field}"), message));
    };
    if jwt.issuer.trim().is_empty() {
        fail("issuer", "must name the token issuer");
    }
    match reqwest::Url::parse(&jwt.jwks_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {}
        _ => fail("jwks_url", "must be an http:// or https:// URL"),
    }
    if jwt.audiences.iter().all(|a| a.trim().is_empty()) {
        // Without an audience any token of the issuer, meant for any service, would pass.
        fail("audiences", "must name at least one audience");
    }
    if jwt.claims.name.trim().is_empty() {
        fail("claims.name", "must name a claim");
    }
    if jwt.leeway.0 > MAX_LEEWAY {
        fail("leeway", "must be at most 5m");
    }
    if jwt.refresh.0 < std::time::Duration::from_secs(10) {
        fail("refresh", "must be at least 10s");
    }
    if let Some(resource) = &jwt.resource
        && !reqwest::Url::parse(resource).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        fail("resource", "must be an http:// or https:// URL");
    }
}
