//! Console logins: a key exchanged for a session, a random id in an HttpOnly, SameSite=Strict
//! cookie (only its SHA-256 is stored: in memory, or in Redis for every replica), with the
//! CSRF token every form and fetch must carry, and the same-origin check on every POST.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use rand::Rng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::api::AppState;
use crate::auth::Caller;
use crate::digest::{sha256, to_hex};
use crate::state::redis::{Redis, RedisFailure};

/// The session cookie's name.
pub const COOKIE: &str = "switchboard_console";
/// Sessions held in memory at most (a login needs a valid key, so this bounds the keys' own).
const MAX_SESSIONS: u64 = 10_000;

/// What a login opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Client,
}

/// A session as stored: never the key, only its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub role: Role,
    /// Hex SHA-256 of the key that logged in.
    key_sha256: String,
    pub csrf: String,
    /// Unix seconds.
    expires: u64,
}

/// Who is signed in, checked against the keys of now: a key removed since ends its sessions.
pub enum Who {
    Admin,
    Client(Arc<Caller>),
}

/// A request's session, found and still valid.
pub struct Signed {
    pub session: Session,
    pub id: String,
    pub who: Who,
}

impl Signed {
    /// The name decisions are recorded under.
    pub fn name(&self) -> String {
        match &self.who {
            Who::Admin => "admin".to_owned(),
            Who::Client(caller) => caller.name.clone().unwrap_or_default(),
        }
    }
}

/// The sessions of this gateway (or of every replica, through Redis).
pub struct Sessions {
    memory: moka::sync::Cache<[u8; 32], Session>,
    redis: Option<Arc<Redis>>,
}

impl Sessions {
    pub fn new(redis: Option<Arc<Redis>>) -> Self {
        Sessions {
            memory: moka::sync::Cache::builder()
                .max_capacity(MAX_SESSIONS)
                .build(),
            redis,
        }
    }

    /// Opens a session for the key whose digest is `digest`; its id, for the cookie.
    pub async fn open(
        &self,
        role: Role,
        digest: &[u8; 32],
        ttl: Duration,
    ) -> Result<String, RedisFailure> {
        let id = to_hex(&rand::rng().random::<[u8; 32]>());
        let session = Session {
            role,
            key_sha256: to_hex(digest),
            csrf: to_hex(&rand::rng().random::<[u8; 32]>()),
            expires: crate::clock::unix_now() + ttl.as_secs().max(1),
        };
        let stored = sha256(id.as_bytes());
        match &self.redis {
            Some(redis) => {
                let body = serde_json::to_string(&session).unwrap_or_default();
                let set = redis::cmd("SET")
                    .arg(redis.key("console", &to_hex(&stored)))
                    .arg(body)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .clone();
                redis.command::<()>("console_session", &set).await?;
            }
            None => self.memory.insert(stored, session),
        }
        Ok(id)
    }

    /// The session with this id, unless it expired.
    async fn find(&self, id: &str) -> Option<Session> {
        let stored = sha256(id.as_bytes());
        let session = match &self.redis {
            Some(redis) => {
                let get = redis::cmd("GET")
                    .arg(redis.key("console", &to_hex(&stored)))
                    .clone();
                let body: Option<String> = redis.command("console_session", &get).await.ok()?;
                serde_json::from_str(&body?).ok()?
            }
            None => self.memory.get(&stored)?,
        };
        (session.expires > crate::clock::unix_now()).then_some(session)
    }

    /// Ends the session with this id.
    pub async fn close(&self, id: &str) {
        let stored = sha256(id.as_bytes());
        match &self.redis {
            Some(redis) => {
                let del = redis::cmd("DEL")
                    .arg(redis.key("console", &to_hex(&stored)))
                    .clone();
                if let Err(error) = redis.command::<i64>("console_session", &del).await {
                    tracing::warn!(%error, "a console session could not be ended in Redis");
                }
            }
            None => self.memory.invalidate(&stored),
        }
    }
}

/// The request's session, if its cookie names one whose key is still configured.
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<Signed> {
    let id = cookie(headers)?;
    let session = state.console.sessions.find(id).await?;
    let digest = crate::digest::parse_hex(&session.key_sha256)?;
    let who = match session.role {
        Role::Admin => {
            let admin = state.admin_key.as_ref()?;
            bool::from(admin.ct_eq(&digest)).then_some(Who::Admin)?
        }
        Role::Client => Who::Client(state.keys.by_digest(&digest)?),
    };
    Some(Signed {
        session,
        id: id.to_owned(),
        who,
    })
}

/// Which role a presented key logs in as, with its digest.
pub fn login_role(state: &AppState, key: &str) -> Option<(Role, [u8; 32])> {
    let digest = sha256(key.trim().as_bytes());
    if let Some(admin) = &state.admin_key
        && bool::from(admin.ct_eq(&digest))
    {
        return Some((Role::Admin, digest));
    }
    state
        .keys
        .by_digest(&digest)
        .map(|_| (Role::Client, digest))
}

/// The session id in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(cookie_in)
}

/// The session id in one `Cookie` line: 64 hex digits, or nothing.
pub fn cookie_in(line: &str) -> Option<&str> {
    line.split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` of a new session: `Secure` when the request came over TLS (as a proxy in
/// front says with `X-Forwarded-Proto`).
pub fn set_cookie(id: &str, ttl: Duration, headers: &HeaderMap) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{secure}",
        ttl.as_secs()
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that ends the session in the browser.
pub fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("switchboard_console=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0")
}

fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Whether a POST comes from the console's own pages: an `Origin` (or, without one, a
/// `Referer`) naming this host, or neither (a browser sends one on every cross-site POST).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let from = text(header::ORIGIN).or_else(|| text(header::REFERER));
    same_origin_of(text(header::HOST), from)
}

/// [`same_origin`] on the header values: `host` (the request's `Host`), `from` (its `Origin`
/// or `Referer`).
pub fn same_origin_of(host: Option<&str>, from: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    match from {
        None => true,
        Some(from) => {
            let rest = from
                .strip_prefix("http://")
                .or_else(|| from.strip_prefix("https://"));
            rest.is_some_and(|rest| rest.split('/').next() == Some(host))
        }
    }
}

/// Whether `offered` is the session's CSRF token, compared in constant time.
pub fn csrf_ok(session: &Session, offered: Option<&str>) -> bool {
    offered.is_some_and(|offered| {
        offered.len() == session.csrf.len()
            && bool::from(offered.as_bytes().ct_eq(session.csrf.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_nothing_else_passes() {
        let id = "ab".repeat(32);
        let line: &'static str = Box::leak(format!("a=1; {COOKIE}={id}; b=2").into_boxed_str());
        assert_eq!(cookie(&headers(&[("cookie", line)])), Some(id.as_str()));
        for bad in [
            "switchboard_console=short",
            "other=abab",
            "switchboard_console",
        ] {
            assert_eq!(cookie(&headers(&[("cookie", bad)])), None, "{bad}");
        }
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[
            host,
            ("referer", "http://127.0.0.1:8080.evil/x")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("referer", "https://127.0.0.1:8080/ui/admin")
        ])));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_tls() {
        let plain = set_cookie("id", Duration::from_secs(60), &HeaderMap::new());
        assert_eq!(
            plain,
            "switchboard_console=id; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=60"
        );
        let tls = set_cookie(
            "id",
            Duration::from_secs(60),
            &headers(&[("x-forwarded-proto", "https")]),
        );
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
    }
}
