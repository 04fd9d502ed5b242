//! An issuer's signing keys (its JWK Set), fetched over HTTP and kept by key id: fetched again
//! every `refresh`, and at once (at most every 10 seconds) when a token names a key not held,
//! so a rotated key is picked up without letting made-up key ids hammer the issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// The largest JWK Set read; an issuer publishes a handful of keys.
const MAX_BODY: usize = 1024 * 1024;
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two fetches for an unknown key id.
const MIN_REFETCH: Duration = Duration::from_secs(10);

/// A usable key: what it verifies and with which algorithm.
#[derive(Clone)]
pub struct Key {
    pub decoding: DecodingKey,
    pub algorithm: Algorithm,
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the token names a key ({0}) the issuer does not publish")]
    Unknown(String),
    #[error("the issuer's keys could not be fetched: {0}")]
    Fetch(String),
}

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    refresh: Duration,
    held: std::sync::RwLock<Held>,
    /// Taken to fetch: requests waiting on it find the keys the fetch brought.
    fetching: Mutex<()>,
}

#[derive(Default, Clone)]
struct Held {
    keys: Arc<HashMap<String, Key>>,
    fetched: Option<Instant>,
}

impl Jwks {
    pub fn new(url: &str, client: reqwest::Client, refresh: Duration) -> Jwks {
        Jwks {
            url: url.to_owned(),
            client,
            refresh,
            held: std::sync::RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    fn held(&self) -> Held {
        self.held.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether `held` must be fetched again before answering for `kid`.
    fn due(&self, held: &Held, kid: &str) -> bool {
        let age = held.fetched.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age >= self.refresh);
        stale || (!held.keys.contains_key(kid) && age.is_none_or(|age| age >= MIN_REFETCH))
    }

    /// The key `kid` names, fetching the set first when it is stale or lacks that key.
    pub async fn key(&self, kid: &str) -> Result<Key, KeysError> {
        let mut held = self.held();
        if self.due(&held, kid) {
            let _fetching = self.fetching.lock().await;
            held = self.held();
            if self.due(&held, kid) {
                held = self.refetched(held).await?;
            }
        }
        let found = held.keys.get(kid).cloned();
        found.ok_or_else(|| KeysError::Unknown(kid.to_owned()))
    }

    async fn refetched(&self, mut held: Held) -> Result<Held, KeysError> {
        match self.fetch().await {
            Ok(keys) => held.keys = Arc::new(keys),
            // The keys held still verify while the issuer is away.
            Err(error) if !held.keys.is_empty() => {
                tracing::warn!(url = %self.url, %error, "JWKS not refreshed; keeping the keys held");
            }
            Err(error) => return Err(error),
        }
        held.fetched = Some(Instant::now());
        *self.held.write().unwrap_or_else(|e| e.into_inner()) = held.clone();
        Ok(held)
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, KeysError> {
        let failed = |e: &dyn std::fmt::Display| KeysError::Fetch(e.to_string());
        let request = self.client.get(&self.url).timeout(FETCH_TIMEOUT);
        let mut response = request.send().await.map_err(|e| failed(&e))?;
        if !response.status().is_success() {
            return Err(failed(&format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(failed(&"the key set is larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| failed(&e))?;
        Ok(usable(&set.keys))
    }
}

/// The keys of `jwks` that have an id and an accepted algorithm (RS256, ES256 on P-256,
/// EdDSA on Ed25519); shared secrets (`oct`) never, so a public key cannot be used as one.
pub fn usable(jwks: &[Jwk]) -> HashMap<String, Key> {
    let mut keys = HashMap::new();
    for jwk in jwks {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            _ => continue,
        };
        if let Ok(decoding) = DecodingKey::from_jwk(jwk) {
            keys.insert(
                kid.clone(),
                Key {
                    decoding,
                    algorithm,
                },
            );
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_keys_with_ids_and_accepted_curves_are_kept() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]}))
        .unwrap();
        let keys = usable(&set.keys);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["ed"].algorithm, Algorithm::EdDSA);
    }
}
