//! Registrations the replicas share (tools, upstream instances): named entries with a TTL in one
//! Redis hash, and the loop by which each replica follows them into its own registry.
//!
//! A replica reads the hash four times a second and applies what changed: an entry new or
//! renewed is registered for what is left of its TTL, one removed everywhere is removed here.
//! Entries expire by their TTL on every replica alike; while Redis is away the last known list
//! keeps serving until then.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::{Redis, RedisFailure};

/// Writes an entry (`<expires ms>\n<body>`) for its TTL, by Redis's clock. KEYS: 1 the hash.
/// ARGV: 1 name, 2 TTL in ms, 3 body. Returns 1 when it renewed a live entry, 0 when it added.
static PUT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local before = redis.call('HGET', KEYS[1], ARGV[1])
local at = before and tonumber(string.match(before, '^(%d+)\n'))
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', now + tonumber(ARGV[2])) .. '\n' .. ARGV[3])
if at and at > now then return 1 end
return 0
",
    )
});

/// Every live entry, with Redis's clock. KEYS: 1 the hash.
static LIVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {tostring(now)}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+)\n'))
  if at and at > now then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  elseif at then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
",
    )
});

/// An entry as stored (`<expires ms>\n<body>`), seen at `now` (Redis ms); `None` for a value
/// not written by [`SharedRegistrations::put`].
pub fn entry(name: &str, stored: &str, now: u64) -> Option<Entry> {
    let (at, body) = stored.split_once('\n')?;
    let at: u64 = at.parse().ok()?;
    Some(Entry {
        name: name.to_owned(),
        body: body.to_owned(),
        remaining: Duration::from_millis(at.saturating_sub(now)),
        expires_ms: at,
    })
}

/// How often a replica reads the shared entries: changes reach it within this.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// One kind of shared registration.
pub struct SharedRegistrations {
    redis: Arc<Redis>,
    hash: String,
}

/// A live entry as one replica sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub body: String,
    pub remaining: Duration,
    /// When it expires, by Redis's clock: a renewal moves it.
    expires_ms: u64,
}

impl SharedRegistrations {
    /// The registrations of `kind` (`tools`, `instances`).
    pub fn new(redis: Arc<Redis>, kind: &str) -> Self {
        let hash = redis.key("registrations", kind);
        SharedRegistrations { redis, hash }
    }

    /// Adds or renews `name` for `ttl`: `true` when a live entry was renewed. Redis says so, not
    /// this replica's registry, which its own poll may already have filled with this very write.
    pub async fn put(&self, name: &str, body: &str, ttl: Duration) -> Result<bool, RedisFailure> {
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(&self.hash)
            .arg(name)
            .arg(ttl.as_millis() as u64)
            .arg(body);
        self.redis
            .idempotent_script::<i64>("registration_put", &invocation)
            .await
            .map(|renewed| renewed == 1)
    }

    /// Removes `name` everywhere; `false` if no replica had it.
    pub async fn remove(&self, name: &str) -> Result<bool, RedisFailure> {
        self.redis
            .command::<i64>(
                "registration_remove",
                redis::cmd("HDEL").arg(&self.hash).arg(name),
            )
            .await
            .map(|removed| removed > 0)
    }

    /// Every live entry.
    pub async fn live(&self) -> Result<Vec<Entry>, RedisFailure> {
        let mut invocation = LIVE.prepare_invoke();
        invocation.key(&self.hash);
        let flat: Vec<String> = self
            .redis
            .idempotent_script("registration_live", &invocation)
            .await?;
        let now: u64 = flat.first().and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok(flat[1.min(flat.len())..]
            .chunks_exact(2)
            .filter_map(|pair| entry(&pair[0], &pair[1], now))
            .collect())
    }

    /// Follows the shared entries until the gateway stops: `added` for each entry new or
    /// written again (renewed) since the last read, `removed` for each name gone from Redis.
    pub async fn follow(&self, added: impl Fn(&Entry), removed: impl Fn(&str)) {
        // Name to the expiry last applied: an entry not written since is not applied again.
        let mut known: HashMap<String, u64> = HashMap::new();
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Redis away: the last known entries serve until their TTL.
            let Ok(entries) = self.live().await else {
                continue;
            };
            let mut seen = HashMap::with_capacity(entries.len());
            for entry in &entries {
                if known.get(&entry.name) != Some(&entry.expires_ms) {
                    added(entry);
                }
                seen.insert(entry.name.clone(), entry.expires_ms);
            }
            for name in known.keys().filter(|name| !seen.contains_key(*name)) {
                removed(name);
            }
            known = seen;
        }
    }
}
