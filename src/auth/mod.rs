//! Virtual keys and bearer JWTs: who is calling, and which models they may use.
//!
//! Keys are held only as SHA-256 digests. A presented key is hashed, looked up by digest, and the
//! digest is then compared in constant time, so neither the lookup nor the comparison leaks how
//! much of a guess was right. With `auth.jwt`, a presented JWT is verified instead (`jwt`).

mod jwks;
mod jwt;

pub use jwt::{JwtAuth, claim_globs, unverified_kid};

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use globset::{Glob, GlobSet, GlobSetBuilder};
use subtle::ConstantTimeEq;

use crate::catalog::{Catalog, Kind, entry_id};
use crate::config::{Grant, KeyConfig};
use crate::context::Author;
use crate::digest::{Digest32, parse_hex, sha256};
use crate::error::ApiError;
use crate::quota::{Admission, Door, KeyQuota, Shared};
use crate::usage::Ledger;

/// A caller the gateway recognised.
pub struct Caller {
    /// The key's name from config.yaml; usage is accounted to it. `None` for an open gateway.
    pub name: Option<String>,
    models: Option<GlobSet>,
    tools: Option<GlobSet>,
    prompts: Option<GlobSet>,
    resources: Option<GlobSet>,
    context: Option<GlobSet>,
    /// The key's quotas over its usage; `None` for an open gateway, which accounts nothing.
    /// Shared with the key of the same name and limits in the config before a reload, so
    /// requests in flight, rates and buckets carry over.
    pub quota: Option<Arc<KeyQuota>>,
    /// `limits.context_documents` and `limits.context_bytes`.
    context_bounds: (Option<u64>, Option<u64>),
    /// What the key may do on the admin surface.
    grants: Vec<Grant>,
    /// The start of every tool name the key registers; set exactly when it may register.
    pub tools_prefix: Option<String>,
    /// Where subscriptions approved at run time widen the key's globs.
    catalog: Option<Arc<Catalog>>,
}

impl Caller {
    /// Admits one request under the key's limits, or answers 429.
    pub async fn admit(&self, door: Door) -> Result<Admission, Box<axum::response::Response>> {
        match &self.quota {
            Some(quota) => quota.admit(door).await,
            None => Ok(Admission::unlimited()),
        }
    }

    /// This caller as the author of a context write, with its bounds.
    pub fn author(&self) -> Author<'_> {
        Author {
            name: self.name.as_deref(),
            max_documents: self.context_bounds.0,
            max_bytes: self.context_bounds.1,
        }
    }

    /// Whether this caller may use the model with this public name: its globs allow it, or an
    /// admin approved its subscription.
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|globs| globs.is_match(model))
            || self.subscribed(Kind::Model, model)
    }

    /// Whether this caller may list and call the MCP tool with this name.
    pub fn may_use_tool(&self, tool: &str) -> bool {
        self.tools.as_ref().is_none_or(|globs| globs.is_match(tool))
            || self.subscribed(Kind::Tool, tool)
    }

    /// Whether an approved subscription would reach this caller: a configured key's does.
    pub fn may_subscribe(&self) -> bool {
        self.catalog.is_some() && self.name.is_some()
    }

    /// Whether this caller's globs alone allow the entry (no subscription counted).
    pub fn globs_allow(&self, kind: Kind, name: &str) -> bool {
        let globs = match kind {
            Kind::Model => &self.models,
            Kind::Tool => &self.tools,
        };
        globs.as_ref().is_none_or(|globs| globs.is_match(name))
    }

    fn subscribed(&self, kind: Kind, name: &str) -> bool {
        match (&self.catalog, &self.name) {
            (Some(catalog), Some(key)) => catalog.approved(key, &entry_id(kind, name)),
            _ => false,
        }
    }

    /// Whether this caller may list and get the MCP prompt with this name.
    pub fn may_use_prompt(&self, prompt: &str) -> bool {
        self.prompts
            .as_ref()
            .is_none_or(|globs| globs.is_match(prompt))
    }

    /// Whether this caller may list, read and subscribe to the upstream MCP resource `uri` (or
    /// see the URI template `uri`).
    pub fn may_use_resource(&self, uri: &str) -> bool {
        self.resources
            .as_ref()
            .is_none_or(|globs| globs.is_match(uri))
    }

    /// Whether this caller holds an admin-surface grant.
    pub fn holds(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }

    /// Whether this caller may read and write the context namespace with this name.
    pub fn may_use_context(&self, namespace: &str) -> bool {
        self.context
            .as_ref()
            .is_none_or(|globs| globs.is_match(namespace))
    }
}

/// The configured keys, by digest.
pub struct KeyStore {
    keys: HashMap<Digest32, Arc<Caller>>,
    open: Arc<Caller>,
    /// In config order, for reports.
    ordered: Vec<Arc<Caller>>,
    /// With `auth.jwt`: the verifier of bearer JWTs.
    jwt: Option<Arc<JwtAuth>>,
}

/// Why a key could not be loaded. Validation catches these first; this guards direct use.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys[{index}]: {message}")]
    Invalid { index: usize, message: String },
}

impl KeyStore {
    /// Builds the store from `keys:`, each key accounting to its name in `ledger`, or in the
    /// Redis the replicas share when there is one. A key whose name and limits `previous` (the
    /// store before a reload) had keeps that key's quota.
    pub fn new(
        configs: &[KeyConfig],
        ledger: &Ledger,
        shared: Option<&Arc<Shared>>,
        previous: Option<&KeyStore>,
        catalog: Option<&Arc<Catalog>>,
    ) -> Result<Self, KeyError> {
        let mut keys = HashMap::with_capacity(configs.len());
        let mut ordered = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let invalid = |message: String| KeyError::Invalid { index, message };
            let digest = match (&config.key, &config.key_sha256) {
                (Some(key), _) => sha256(key.expose().as_bytes()),
                (None, Some(hex)) => parse_hex(hex)
                    .ok_or_else(|| invalid("key_sha256 is not 64 hex digits".into()))?,
                (None, None) => return Err(invalid("needs key or key_sha256".into())),
            };
            let globs = |list: &Option<Vec<String>>| match list {
                None => Ok(None),
                Some(globs) => glob_set(globs)
                    .map(Some)
                    .map_err(|e| invalid(e.to_string())),
            };
            let (models, tools, prompts, context) = (
                globs(&config.models)?,
                globs(&config.tools)?,
                globs(&config.prompts)?,
                globs(&config.context)?,
            );
            let resources = globs(&config.resources)?;
            let limits = config.limits.clone().unwrap_or_default();
            let kept = previous
                .and_then(|p| {
                    p.ordered
                        .iter()
                        .find(|c| c.name.as_ref() == Some(&config.name))
                })
                .and_then(|c| c.quota.clone())
                .filter(|quota| *quota.limits() == limits);
            let quota = kept.unwrap_or_else(|| {
                let account = ledger.account(&config.name);
                Arc::new(KeyQuota::new(config.limits.as_ref(), account, shared))
            });
            let caller = Arc::new(Caller {
                name: Some(config.name.clone()),
                models,
                tools,
                prompts,
                resources,
                context,
                quota: Some(quota),
                context_bounds: config.limits.as_ref().map_or((None, None), |l| {
                    (
                        l.context_documents.map(u64::from),
                        l.context_bytes.map(|s| s.0),
                    )
                }),
                grants: config.grants.clone(),
                tools_prefix: config.tools_prefix.clone(),
                catalog: catalog.cloned(),
            });
            ordered.push(caller.clone());
            keys.insert(digest, caller);
        }
        Ok(KeyStore {
            keys,
            open: Arc::new(Caller {
                name: None,
                models: None,
                tools: None,
                prompts: None,
                resources: None,
                context: None,
                quota: None,
                context_bounds: (None, None),
                grants: Vec::new(),
                tools_prefix: None,
                catalog: None,
            }),
            ordered,
            jwt: None,
        })
    }

    /// The store that also accepts the JWTs `jwt` verifies.
    pub fn with_jwt(mut self, jwt: Option<Arc<JwtAuth>>) -> KeyStore {
        self.jwt = jwt;
        self
    }

    /// The JWT verifier, if `auth.jwt` is configured.
    pub fn jwt(&self) -> Option<&Arc<JwtAuth>> {
        self.jwt.as_ref()
    }

    /// The configured keys, in config order.
    pub fn callers(&self) -> &[Arc<Caller>] {
        &self.ordered
    }

    /// Whether no key (and no JWT issuer) is configured, so anyone may call.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.jwt.is_none()
    }

    /// The configured key the request presents, if any: unlike [`authenticate`], an open
    /// gateway's anonymous caller is never the answer, since it holds no grant.
    ///
    /// [`authenticate`]: Self::authenticate
    /// A JWT's caller holds no grant, so only keys are looked at.
    pub fn presented(&self, headers: &HeaderMap) -> Option<Arc<Caller>> {
        if self.is_open() {
            return None;
        }
        let presented = bearer(headers).or_else(|| api_key(headers))?;
        self.key(presented).ok().inspect(noted)
    }

    /// The caller behind the request's `Authorization: Bearer` header, or its `x-api-key`
    /// header (what Anthropic's SDKs and Claude Code send): a configured key, or with
    /// `auth.jwt` a JWT of its issuer.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
        if self.is_open() {
            return Ok(self.open.clone());
        }
        let presented = bearer(headers)
            .or_else(|| api_key(headers))
            .ok_or_else(ApiError::invalid_api_key)?;
        let caller = match &self.jwt {
            Some(jwt) if jwt::looks_like_jwt(presented) => jwt
                .caller(presented)
                .await
                .map_err(|refused| ApiError::invalid_token(&refused.to_string()))?,
            _ => self.key(presented)?,
        };
        noted(&caller);
        Ok(caller)
    }

    /// The configured key whose SHA-256 is `digest`: a console session names its key so.
    pub fn by_digest(&self, digest: &Digest32) -> Option<Arc<Caller>> {
        self.keys.get(digest).cloned()
    }

    /// The configured key `presented` is.
    fn key(&self, presented: &str) -> Result<Arc<Caller>, ApiError> {
        let digest = sha256(presented.as_bytes());
        match self.keys.get_key_value(&digest) {
            Some((stored, caller)) if bool::from(stored.ct_eq(&digest)) => Ok(caller.clone()),
            _ => Err(ApiError::invalid_api_key()),
        }
    }
}

/// Names the caller on the request's span and in its audit line.
fn noted(caller: &Arc<Caller>) {
    tracing::Span::current().record("key", caller.name.as_deref());
    crate::audit::note(|line| line.key.clone_from(&caller.name));
}

/// Checks `Authorization: Bearer` against the admin key's digest, in constant time.
pub fn is_admin(headers: &HeaderMap, admin_digest: &Digest32) -> bool {
    bearer(headers).is_some_and(|key| bool::from(sha256(key.as_bytes()).ct_eq(admin_digest)))
}

/// Anthropic's key header.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("x-api-key")?.to_str().ok()?.trim();
    (!value.is_empty()).then_some(value)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compiles a list of globs into one matcher.
pub fn glob_set(globs: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(Glob::new(glob)?);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key(name: &str, key: Option<&str>, sha: Option<&str>, models: Option<&[&str]>) -> KeyConfig {
        KeyConfig {
            name: name.into(),
            key: key.map(Into::into),
            key_sha256: sha.map(Into::into),
            models: models.map(|m| m.iter().map(|s| s.to_string()).collect()),
            limits: None,
            tools: None,
            context: None,
            ..KeyConfig::default()
        }
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[tokio::test]
    async fn plain_and_hashed_keys_authenticate() {
        // sha256("hashed-key")
        let hex = "1e2b5a1b4c2b70d1e0d17b7ab7d1b3b6b88d4fc8d02d2bb1e0ad2c6b1e3a1a1f";
        let real_hex: String = sha256(b"hashed-key")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let store = KeyStore::new(
            &[
                key("a", Some("sk-a"), None, Some(&["fast", "openai/*"])),
                key("b", None, Some(&real_hex), None),
            ],
            &Ledger::in_memory(["a", "b"]),
            None,
            None,
            None,
        )
        .unwrap();
        let a = store.authenticate(&headers("Bearer sk-a")).await.unwrap();
        assert_eq!(a.name.as_deref(), Some("a"));
        assert!(a.may_use("fast") && a.may_use("openai/gpt-4.1") && !a.may_use("smart"));
        let b = store
            .authenticate(&headers("bearer hashed-key"))
            .await
            .unwrap();
        assert!(b.may_use("anything"));
        assert!(
            store
                .authenticate(&headers("Bearer sk-wrong"))
                .await
                .is_err()
        );
        assert!(
            store
                .authenticate(&headers(&format!("Bearer {hex}")))
                .await
                .is_err()
        );
        assert!(store.authenticate(&HeaderMap::new()).await.is_err());
        assert!(store.authenticate(&headers("Basic sk-a")).await.is_err());
    }

    #[tokio::test]
    async fn no_keys_means_open() {
        let store = KeyStore::new(&[], &Ledger::in_memory([]), None, None, None).unwrap();
        assert!(store.is_open());
        assert!(
            store
                .authenticate(&HeaderMap::new())
                .await
                .unwrap()
                .may_use("x")
        );
    }
}
