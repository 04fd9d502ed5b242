//! `state:` of config.yaml: where state that must survive a restart is kept, and the Redis that
//! replicas share. Its fields are a contract with users; the runtime side lives in `state`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Secret, Span};

/// `state:`: where state that must survive a restart (usage and spend) is kept.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// A directory the gateway creates if needed and owns.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Present: replicas share quotas, spend and the response cache through this Redis.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// What limits do while Redis cannot be reached.
    #[serde(default)]
    pub on_redis_error: OnRedisError,
    /// How long a stored Responses API response (and its conversation) is kept.
    #[serde(default = "default_responses_ttl")]
    pub responses_ttl: Span,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            data_dir: default_data_dir(),
            redis: None,
            on_redis_error: OnRedisError::default(),
            responses_ttl: default_responses_ttl(),
        }
    }
}

/// `state.redis`: the Redis (or Redis Cluster) the replicas share.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` (TLS), with `user:password@` if needed, or `redis+unix:///path`
    /// (`unix:///path`) for a Redis on the same host; a list is the seed nodes of a Redis
    /// Cluster (TCP only). Secret: the URL may carry a password.
    pub url: RedisUrls,
    /// Prepended to every key, so several gateways (or other tenants) can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// The longest any Redis call may take; past it the call counts as a Redis failure.
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// How long a request slot or reservation held by a replica that died stays taken.
    #[serde(default = "default_lease")]
    pub lease: Span,
    /// Settlements kept in memory while Redis is unreachable; beyond, they are logged and
    /// counted as dropped.
    #[serde(default = "default_queue")]
    pub max_queued_settlements: usize,
    /// How long a finished request's settlement may wait to be written with others (or with
    /// its key's next reservation on this replica): the lag of the shared figures behind an
    /// answer, traded for fewer Redis round trips. Journaled on disk meanwhile.
    #[serde(default = "default_linger")]
    pub settlement_linger: Span,
    /// A key with room for at least this many more requests under every limit, as of this
    /// replica's last reservation for it (under a second old), has its next reservation made
    /// alongside the provider call instead of before it; the answer still waits for it. 0: the
    /// reservation always comes first.
    #[serde(default = "default_headroom")]
    pub overlap_headroom: u32,
    /// Under the same condition, a key's next reservation is made as soon as a request is
    /// admitted, so that the next request finds it made; one no request takes within a second
    /// is given back. false: each request's reservation is made when it arrives.
    #[serde(default = "default_reserve_ahead")]
    pub reserve_ahead: bool,
}

/// One Redis, or the seed nodes of a cluster.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum RedisUrls {
    One(Secret),
    Cluster(Vec<Secret>),
}

impl RedisUrls {
    /// Every URL, one for a single Redis.
    pub fn all(&self) -> &[Secret] {
        match self {
            RedisUrls::One(url) => std::slice::from_ref(url),
            RedisUrls::Cluster(urls) => urls,
        }
    }

    /// Whether these are the seed nodes of a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisUrls::Cluster(_))
    }
}

/// `state.on_redis_error`: what the limits do while Redis is unreachable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Limits fail closed: 503 naming the cause.
    #[default]
    Deny,
    /// Each replica admits on the key's limits, enforced locally.
    Allow,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}

/// OpenAI keeps stored responses for 30 days.
fn default_responses_ttl() -> Span {
    Span(Duration::from_secs(30 * 24 * 3600))
}

fn default_key_prefix() -> String {
    "switchboard:".to_owned()
}

fn default_timeout() -> Span {
    Span(Duration::from_millis(50))
}

fn default_lease() -> Span {
    Span(Duration::from_secs(30))
}

fn default_queue() -> usize {
    100_000
}

fn default_headroom() -> u32 {
    100
}

fn default_reserve_ahead() -> bool {
    true
}

fn default_linger() -> Span {
    Span(Duration::from_millis(3))
}

/// The longest `settlement_linger`: the shared figures may trail an answer by this much.
const MAX_LINGER: Duration = Duration::from_secs(10);

/// The shortest lease: a slot is renewed three times per lease, and each renewal is a call.
const MIN_LEASE: Duration = Duration::from_secs(1);

/// What a schema cannot say about `state.redis`.
pub fn validate(state: &StateConfig, errors: &mut Vec<ConfigError>) {
    if state.responses_ttl.0.is_zero() {
        errors.push(ConfigError::new(
            "state.responses_ttl",
            "must be longer than 0 (send store: false not to keep a response)",
        ));
    }
    let Some(redis) = &state.redis else {
        return;
    };
    let urls = redis.url.all();
    if urls.is_empty() {
        errors.push(ConfigError::new(
            "state.redis.url",
            "needs at least one URL",
        ));
    }
    for (index, url) in urls.iter().enumerate() {
        let path = match redis.url {
            RedisUrls::One(_) => "state.redis.url".to_owned(),
            RedisUrls::Cluster(_) => format!("state.redis.url[{index}]"),
        };
        let cluster = matches!(redis.url, RedisUrls::Cluster(_));
        if let Err(message) = check_url(url.expose(), cluster) {
            errors.push(ConfigError::new(&path, message));
        }
    }
    if redis.timeout.0.is_zero() {
        errors.push(ConfigError::new(
            "state.redis.timeout",
            "must be longer than 0",
        ));
    }
    if redis.lease.0 < MIN_LEASE {
        errors.push(ConfigError::new("state.redis.lease", "must be at least 1s"));
    }
    if redis.settlement_linger.0 > MAX_LINGER {
        errors.push(ConfigError::new(
            "state.redis.settlement_linger",
            "must be at most 10s (the shared figures trail every answer by up to this much)",
        ));
    }
    if redis.max_queued_settlements == 0 {
        errors.push(ConfigError::new(
            "state.redis.max_queued_settlements",
            "must be larger than 0",
        ));
    }
}

/// Checks one URL without ever quoting it: it may hold a password.
fn check_url(url: &str, cluster: bool) -> Result<(), &'static str> {
    if url.is_empty() {
        return Err("is empty (is the environment variable set?)");
    }
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("redis" | "rediss") => {}
        // Cluster nodes tell each other (and the client) where they are by TCP address.
        Some("redis+unix" | "unix") if cluster => {
            return Err("a cluster's nodes are reached by redis:// or rediss://, not a socket");
        }
        Some("redis+unix" | "unix") => {}
        _ => return Err("must start with redis://, rediss:// or redis+unix://"),
    }
    redis::IntoConnectionInfo::into_connection_info(url)
        .map(drop)
        .map_err(|_| "is not a valid Redis URL")
}
