//! Bearer JWTs of an OAuth 2.1 authorization server (`auth.jwt`): the signature checked against
//! the issuer's published keys (RS256, ES256, EdDSA), `iss`, `aud`, `exp` and `nbf` checked, and
//! the claims mapped to a caller with the globs and limits a YAML key has.
//!
//! Each caller is named by its claim (`jwt:{sub}`), so each user has a quota of their own that
//! every token of theirs shares.

use std::sync::Arc;
use std::time::Duration;

use globset::GlobSet;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::{Map, Value};

use super::Caller;
use super::jwks::{Jwks, KeysError};
use crate::config::{ClaimsConfig, JwtConfig};
use crate::digest::Digest32;
use crate::quota::{KeyQuota, Shared};
use crate::usage::Ledger;

/// Callers (and quotas) kept at once; the least recently seen go first.
const KEPT: u64 = 100_000;
/// How long an unseen caller is kept.
const KEPT_IDLE: Duration = Duration::from_secs(3600);
/// The longest a verified token is trusted without verifying it again (a key the issuer
/// withdrew stops working within this, even for a token that has not expired).
const VERIFIED_FOR: Duration = Duration::from_secs(300);
/// The prefix of every JWT caller's name, so none can take a YAML key's name.
pub const NAME_PREFIX: &str = "jwt:";

/// Why a token was refused; said to the client.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("it is not a JWT signed with RS256, ES256 or EdDSA and naming its key (kid)")]
    Shape,
    #[error("{0}")]
    Keys(#[from] KeysError),
    #[error("its signature does not verify")]
    Signature,
    #[error("it has expired")]
    Expired,
    #[error("it is not valid yet (nbf)")]
    NotYet,
    #[error("it was issued by another issuer")]
    Issuer,
    #[error("it was not issued for this gateway (aud)")]
    Audience,
    #[error("it lacks the claim {0:?}")]
    Claim(String),
    #[error("its claim {0:?} holds an invalid glob")]
    Glob(String),
}

pub struct JwtAuth {
    config: JwtConfig,
    jwks: Jwks,
    /// Callers by the name and the grants their token carries.
    callers: moka::sync::Cache<String, Arc<Caller>>,
    /// Each name's quota, shared by every token of that name.
    quotas: moka::sync::Cache<String, Arc<KeyQuota>>,
    /// Tokens already verified, by their SHA-256: their caller and `exp`.
    verified: moka::sync::Cache<Digest32, (Arc<Caller>, u64)>,
    ledger: Arc<Ledger>,
    shared: Option<Arc<Shared>>,
}

impl JwtAuth {
    pub fn new(
        config: &JwtConfig,
        client: reqwest::Client,
        ledger: Arc<Ledger>,
        shared: Option<Arc<Shared>>,
    ) -> JwtAuth {
        JwtAuth {
            config: config.clone(),
            jwks: Jwks::new(&config.jwks_url, client, config.refresh.0),
            callers: kept(),
            quotas: kept(),
            verified: moka::sync::Cache::builder()
                .max_capacity(KEPT)
                .time_to_live(VERIFIED_FOR)
                .build(),
            ledger,
            shared,
        }
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The caller `token` stands for, once it proved valid.
    pub async fn caller(&self, token: &str) -> Result<Arc<Caller>, JwtError> {
        // A signature verified once is not verified again (RS256 costs ~70 µs a request): the
        // token stands for its caller until its `exp`, and at most `VERIFIED_FOR`.
        let digest = crate::digest::sha256(token.as_bytes());
        if let Some((caller, expires)) = self.verified.get(&digest)
            && crate::clock::unix_now() < expires
        {
            return Ok(caller);
        }
        let (caller, expires) = self.verify(token).await?;
        self.verified.insert(digest, (caller.clone(), expires));
        Ok(caller)
    }

    /// Verifies `token` whole; its caller and when it expires (Unix seconds).
    async fn verify(&self, token: &str) -> Result<(Arc<Caller>, u64), JwtError> {
        let header = decode_header(token).map_err(|_| JwtError::Shape)?;
        let kid = header.kid.ok_or(JwtError::Shape)?;
        let key = self.jwks.key(&kid).await?;
        if header.alg != key.algorithm {
            return Err(JwtError::Shape);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.leeway = self.config.leeway.0.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|error| refusal(error.kind()))?
            .claims;
        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        Ok((self.caller_of(&claims)?, expires))
    }

    fn caller_of(&self, claims: &Map<String, Value>) -> Result<Arc<Caller>, JwtError> {
        let mapping = &self.config.claims;
        let who = claims.get(&mapping.name).and_then(Value::as_str);
        let who = who.filter(|w| !w.is_empty());
        let name = format!(
            "{NAME_PREFIX}{}",
            who.ok_or_else(|| JwtError::Claim(mapping.name.clone()))?
        );
        let grants = Grants::of(mapping, claims);
        let cache_key = format!("{name}\n{}", grants.key());
        if let Some(caller) = self.callers.get(&cache_key) {
            return Ok(caller);
        }
        let quota = self.quotas.get_with(name.clone(), || {
            let account = self.ledger.account(&name);
            Arc::new(KeyQuota::new(
                self.config.limits.as_ref(),
                account,
                self.shared.as_ref(),
            ))
        });
        let caller = Arc::new(Caller {
            name: Some(name),
            models: grants.globs(&mapping.models, 0)?,
            tools: grants.globs(&mapping.tools, 1)?,
            prompts: grants.globs(&mapping.prompts, 2)?,
            resources: grants.globs(&mapping.resources, 3)?,
            context: grants.globs(&mapping.context, 4)?,
            quota: Some(quota),
            context_bounds: self.config.limits.as_ref().map_or((None, None), |l| {
                (
                    l.context_documents.map(u64::from),
                    l.context_bytes.map(|s| s.0),
                )
            }),
            grants: Vec::new(),
            tools_prefix: None,
            // A JWT's subject changes name with its claims; subscriptions are for keys.
            catalog: None,
        });
        self.callers.insert(cache_key, caller.clone());
        Ok(caller)
    }
}

fn kept<T: Clone + Send + Sync + 'static>() -> moka::sync::Cache<String, T> {
    moka::sync::Cache::builder()
        .max_capacity(KEPT)
        .time_to_idle(KEPT_IDLE)
        .build()
}

/// What a token's claims grant, kind by kind (models, tools, prompts, resources, context):
/// `None` where no claim is configured.
struct Grants([Option<Vec<String>>; 5]);

impl Grants {
    fn of(mapping: &ClaimsConfig, claims: &Map<String, Value>) -> Grants {
        let kinds = [
            &mapping.models,
            &mapping.tools,
            &mapping.prompts,
            &mapping.resources,
            &mapping.context,
        ];
        // A configured claim the token lacks grants nothing of that kind.
        Grants(kinds.map(|claim| claim.as_ref().map(|claim| listed(claims.get(claim)))))
    }

    fn key(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    fn globs(&self, claim: &Option<String>, kind: usize) -> Result<Option<GlobSet>, JwtError> {
        let Some(globs) = &self.0[kind] else {
            return Ok(None);
        };
        let failed = || JwtError::Glob(claim.clone().unwrap_or_default());
        super::glob_set(globs).map(Some).map_err(|_| failed())
    }
}

/// A claim's globs: a list of strings, or one space-separated string (as OAuth's `scope`).
fn listed(claim: Option<&Value>) -> Vec<String> {
    match claim {
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => {
            let texts = items.iter().filter_map(Value::as_str);
            texts.map(str::to_owned).collect()
        }
        _ => Vec::new(),
    }
}

fn refusal(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYet,
        ErrorKind::InvalidIssuer => JwtError::Issuer,
        ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => JwtError::Claim(claim.clone()),
        ErrorKind::InvalidSignature => JwtError::Signature,
        _ => JwtError::Shape,
    }
}

/// Whether a presented credential is a JWT rather than a key: three base64url parts, the first
/// a JSON object.
pub fn looks_like_jwt(presented: &str) -> bool {
    presented.starts_with("eyJ") && presented.bytes().filter(|&b| b == b'.').count() == 2
}

/// What a token tells before it is verified: its key id, if it has the shape of a JWT (for the
/// fuzz target; verification reads the same header).
pub fn unverified_kid(token: &str) -> Option<String> {
    if !looks_like_jwt(token) {
        return None;
    }
    decode_header(token).ok()?.kid
}

/// A claim's globs compiled (for the fuzz target): how many, or `None` when one is invalid.
pub fn claim_globs(claim: &Value) -> Option<usize> {
    let globs = listed(Some(claim));
    super::glob_set(&globs).ok().map(|_| globs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_globs_from_lists_or_scope_strings_and_a_missing_claim_grants_nothing() {
        let mapping = ClaimsConfig {
            tools: Some("tools".into()),
            models: Some("scope".into()),
            context: Some("ctx".into()),
            ..ClaimsConfig::default()
        };
        let claims = serde_json::json!({"tools": ["get_*", 7], "scope": "gpt-* mock"});
        let grants = Grants::of(&mapping, claims.as_object().unwrap());
        assert_eq!(grants.0[0], Some(vec!["gpt-*".into(), "mock".into()]));
        assert_eq!(grants.0[1], Some(vec!["get_*".into()]));
        assert_eq!(grants.0[2], None, "no claim configured: everything");
        assert_eq!(grants.0[4], Some(vec![]), "configured, absent: nothing");
    }

    #[test]
    fn a_jwt_is_told_from_a_key() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(!looks_like_jwt("sk-live-abc"));
        assert!(!looks_like_jwt("eyJ.only-one-dot"));
    }
}
