//! The response cache's second level: answers kept in the Redis the replicas share, with their
//! TTL, and a short lock per key so identical misses on several replicas make one upstream call.
//!
//! Redis away or slow: a lookup is a miss, a store stores nothing, a lock is not waited for.
//! `clear` bumps a generation number that every key includes; replicas read it within a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::Script;
use switchboard_providers::chat::ChatResponse;

use super::{CachedAnswer, Key};
use crate::digest::to_hex;
use crate::state::redis::Redis;

/// Compare-and-delete: only the holder of a lock releases it.
static UNLOCK: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// How often the generation is read again: a clear reaches other replicas within this.
const GENERATION_EVERY: Duration = Duration::from_secs(1);

/// The first byte of every stored entry's format, so a later format is never misread.
const FORMAT: &[u8] = b"sb1\n";

pub struct Remote {
    redis: Arc<Redis>,
    ttl: Duration,
    generation: Mutex<(u64, Option<Instant>)>,
}

/// What trying the cross-replica lock gave.
pub enum Lock {
    /// Ours: call upstream, then store and release it.
    Taken(String),
    /// Another replica calls upstream for this key.
    Held,
    /// Redis did not answer: call upstream without a lock.
    Unknown,
}

impl Remote {
    pub fn new(redis: Arc<Redis>, ttl: Duration) -> Self {
        Remote {
            redis,
            ttl,
            generation: Mutex::new((0, None)),
        }
    }

    /// The stored answer for `key`, if Redis has one and answers in time.
    pub async fn get(&self, key: &Key, generation: u64) -> Option<Arc<CachedAnswer>> {
        let name = self.entry(key, generation);
        let stored: Option<Vec<u8>> = self
            .redis
            .command("cache_get", redis::cmd("GET").arg(&name))
            .await
            .ok()?;
        let (stored_ms, target, json) = decode(&stored?)?;
        let response: ChatResponse = serde_json::from_slice(&json).ok()?;
        let age = Duration::from_millis(crate::clock::unix_millis().saturating_sub(stored_ms));
        if age > self.ttl {
            return None;
        }
        Some(Arc::new(CachedAnswer {
            response,
            json,
            target,
            stored: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        }))
    }

    /// Stores an answer for the cache's TTL; a failure stores nothing.
    pub async fn put(&self, key: &Key, generation: u64, answer: &CachedAnswer) {
        let name = self.entry(key, generation);
        let stored_ms = crate::clock::unix_millis().saturating_sub(answer.age().as_millis() as u64);
        let bytes = encode(stored_ms, &answer.target, &answer.json);
        let ttl = self.ttl.as_millis().max(1) as u64;
        let _ = self
            .redis
            .command::<()>(
                "cache_put",
                redis::cmd("SET").arg(&name).arg(bytes).arg("PX").arg(ttl),
            )
            .await;
    }

    /// Tries to become the one replica that calls upstream for `key`, for at most `hold`.
    pub async fn lock(&self, key: &Key, generation: u64, hold: Duration) -> Lock {
        let name = self.lock_name(key, generation);
        let token = uuid::Uuid::new_v4().simple().to_string();
        let set = redis::cmd("SET")
            .arg(&name)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(hold.as_millis() as u64)
            .clone();
        match self
            .redis
            .command::<Option<String>>("cache_lock", &set)
            .await
        {
            Ok(Some(_)) => Lock::Taken(token),
            Ok(None) => Lock::Held,
            Err(_) => Lock::Unknown,
        }
    }

    /// Whether another replica still holds the lock of `key` (`false` if Redis cannot say).
    pub async fn locked(&self, key: &Key, generation: u64) -> bool {
        let name = self.lock_name(key, generation);
        self.redis
            .command::<bool>("cache_lock", redis::cmd("EXISTS").arg(&name))
            .await
            .unwrap_or(false)
    }

    /// Releases a lock taken with [`lock`](Self::lock).
    pub async fn unlock(&self, key: &Key, generation: u64, token: &str) {
        let name = self.lock_name(key, generation);
        let mut invocation = UNLOCK.prepare_invoke();
        invocation.key(&name).arg(token);
        let _ = self
            .redis
            .idempotent_script::<i64>("cache_lock", &invocation)
            .await;
    }

    /// Empties the cache of every replica: keys of the next generation are all misses.
    pub async fn clear(&self) {
        let name = self.redis.key("cache", "generation");
        if let Ok(next) = self
            .redis
            .command::<u64>("cache_clear", redis::cmd("INCR").arg(&name))
            .await
        {
            *self.generation.lock().unwrap_or_else(|e| e.into_inner()) =
                (next, Some(Instant::now()));
        }
    }

    fn entry(&self, key: &Key, generation: u64) -> String {
        self.redis
            .key(&to_hex(key), &format!("answer:{generation}"))
    }

    fn lock_name(&self, key: &Key, generation: u64) -> String {
        self.redis.key(&to_hex(key), &format!("lock:{generation}"))
    }

    /// The generation keys are written under, read again at most once per
    /// [`GENERATION_EVERY`], and whether it changed since (another replica cleared the cache).
    pub async fn generation(&self) -> (u64, bool) {
        let (known, read) = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        if read.is_some_and(|at| at.elapsed() < GENERATION_EVERY) {
            return (known, false);
        }
        let name = self.redis.key("cache", "generation");
        let fresh = self
            .redis
            .command::<Option<u64>>("cache_generation", redis::cmd("GET").arg(&name))
            .await;
        // Unreadable: keep the last known one, and try again a second later.
        let value = fresh.map(Option::unwrap_or_default).unwrap_or(known);
        *self.generation.lock().unwrap_or_else(|e| e.into_inner()) = (value, Some(Instant::now()));
        (value, read.is_some() && value != known)
    }
}

/// `sb1\n<stored unix ms>\n<target>\n<answer JSON>`.
fn encode(stored_ms: u64, target: &str, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FORMAT.len() + 24 + target.len() + json.len());
    out.extend_from_slice(FORMAT);
    out.extend_from_slice(stored_ms.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(target.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(json);
    out
}

/// Reads an entry back; `None` for anything not written by [`encode`] (another format, another
/// tenant's bytes under our prefix, a torn value).
pub fn decode(bytes: &[u8]) -> Option<(u64, String, Bytes)> {
    let rest = bytes.strip_prefix(FORMAT)?;
    let (stored, rest) = split_line(rest)?;
    let (target, json) = split_line(rest)?;
    let stored = std::str::from_utf8(stored).ok()?.parse().ok()?;
    let target = std::str::from_utf8(target).ok()?.to_owned();
    Some((stored, target, Bytes::copy_from_slice(json)))
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = memchr::memchr(b'\n', bytes)?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_as_written_and_nothing_else_reads() {
        let bytes = encode(1_700_000_000_123, "openai/gpt-4o", br#"{"id":"x"}"#);
        let (stored, target, json) = decode(&bytes).unwrap();
        assert_eq!(stored, 1_700_000_000_123);
        assert_eq!(target, "openai/gpt-4o");
        assert_eq!(&json[..], br#"{"id":"x"}"#);
        for bad in [&b""[..], b"sb2\n1\nt\n{}", b"sb1\nsoon\nt\n{}", b"sb1\n12"] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
