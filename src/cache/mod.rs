//! The response cache: exact-match answers in a `moka` cache weighed by bytes, with concurrent
//! identical misses collapsed into one upstream call; with `state.redis`, over a second level
//! in Redis that every replica shares ([`remote`]).
//!
//! A lookup returns a hit, or a [`Fill`] that the request must complete with its answer; waiters
//! on the same key are released when the fill stores or is dropped, so none can hang.

mod control;
mod key;
pub mod remote;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::policy::EvictionPolicy;
use switchboard_providers::chat::{ChatRequest, ChatResponse, FinishReason};
use tokio::sync::watch;

pub use control::Directives;
pub use key::Key;

use crate::config::{CacheConfig, CacheScope};
use crate::state::redis::Redis;
use crate::telemetry::Metrics;
use remote::{Lock, Remote};

/// One stored answer.
pub struct CachedAnswer {
    pub response: ChatResponse,
    /// The answer as JSON, ready to send.
    pub json: Bytes,
    /// `provider/model` that produced it.
    pub target: String,
    /// When it was stored, by whichever replica; backdated for an answer read from Redis.
    stored: Instant,
}

impl CachedAnswer {
    /// Time since it was stored.
    pub fn age(&self) -> Duration {
        self.stored.elapsed()
    }
}

type Slot = watch::Receiver<Option<Arc<CachedAnswer>>>;

/// The longest a request waits for an identical one in flight before calling upstream itself.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The cache and the misses in flight.
pub struct ResponseCache {
    entries: Cache<Key, Arc<CachedAnswer>>,
    inflight: Mutex<HashMap<Key, Slot>>,
    scope: CacheScope,
    only_deterministic: bool,
    store_truncated: bool,
    ttl: Duration,
    remote: Option<Remote>,
    metrics: Arc<Metrics>,
}

/// What a lookup found.
pub enum Lookup {
    /// The request opted out, or is not cacheable under the configuration.
    Bypass,
    Hit(Arc<CachedAnswer>),
    /// Not cached: call upstream, then complete the fill.
    Miss(Fill),
}

/// A miss's promise to store its answer; dropping it without storing releases the waiters.
pub struct Fill {
    cache: Arc<ResponseCache>,
    key: Key,
    store: bool,
    leader: Option<watch::Sender<Option<Arc<CachedAnswer>>>>,
    /// The second level's generation, and the cross-replica lock this fill holds, if any.
    remote: (u64, Option<String>),
}

impl ResponseCache {
    /// Builds the cache from `cache:`, over Redis when the replicas share one.
    pub fn new(
        config: &CacheConfig,
        metrics: Arc<Metrics>,
        redis: Option<Arc<Redis>>,
    ) -> Arc<Self> {
        let listener_metrics = metrics.clone();
        let entries = Cache::builder()
            .max_capacity(config.max_size.0)
            .weigher(|_key: &Key, answer: &Arc<CachedAnswer>| weight(answer))
            .time_to_live(config.ttl.0)
            // Plain LRU: a fresh answer is always admitted, the oldest unused one goes first.
            .eviction_policy(EvictionPolicy::lru())
            .eviction_listener(move |_key, _value, cause| {
                let cause = match cause {
                    RemovalCause::Size => "size",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                listener_metrics.cache_eviction(cause);
            })
            .build();
        Arc::new(ResponseCache {
            entries,
            inflight: Mutex::new(HashMap::new()),
            scope: config.scope,
            only_deterministic: config.only_deterministic,
            store_truncated: config.store_truncated,
            ttl: config.ttl.0,
            remote: redis.map(|redis| Remote::new(redis, config.ttl.0)),
            metrics,
        })
    }

    /// Looks a request up for a caller (`key_name`) and a resolved model (`route`).
    pub async fn lookup(
        self: &Arc<Self>,
        key_name: Option<&str>,
        route: &str,
        request: &mut ChatRequest,
        headers: &HeaderMap,
    ) -> Lookup {
        let directives = Directives::from_headers(headers);
        let deterministic = request.temperature == Some(0.0) || request.seed.is_some();
        if directives.bypass() || (self.only_deterministic && !deterministic) {
            return self.counted(Lookup::Bypass);
        }
        let scope = match self.scope {
            CacheScope::Key => key_name.unwrap_or_default(),
            CacheScope::Global => "",
        };
        let Some(key) = key::of(scope, route, request) else {
            return self.counted(Lookup::Bypass);
        };
        let fresh = |answer: &Arc<CachedAnswer>| {
            answer.age() <= self.ttl && directives.max_age.is_none_or(|max| answer.age() <= max)
        };
        let generation = match &self.remote {
            Some(remote) => {
                let (generation, changed) = remote.generation().await;
                if changed {
                    // Another replica cleared the cache: so does this one's front.
                    self.entries.invalidate_all();
                }
                generation
            }
            None => 0,
        };
        if !directives.skip_lookup {
            if let Some(answer) = self.entries.get(&key).await.filter(fresh) {
                return self.counted(Lookup::Hit(answer));
            }
            if let Some(remote) = &self.remote
                && let Some(answer) = remote.get(&key, generation).await.filter(fresh)
            {
                self.entries.insert(key, answer.clone()).await;
                return self.counted(Lookup::Hit(answer));
            }
            // A streamed request does not wait for an identical one in flight: its client would
            // see nothing until the other's whole answer is done. It calls upstream itself.
            if !request.is_stream()
                && let Some(answer) = self.wait_for_inflight(&key).await.filter(fresh)
            {
                return self.counted(Lookup::Hit(answer));
            }
        }
        let mut fill = self.lead(key, !directives.skip_store);
        fill.remote.0 = generation;
        // Leading here, this replica asks the others whether one of them already calls upstream.
        if let Some(remote) = &self.remote
            && fill.leader.is_some()
        {
            match remote.lock(&key, generation, MAX_WAIT).await {
                Lock::Taken(token) => fill.remote.1 = Some(token),
                Lock::Held if !request.is_stream() && !directives.skip_lookup => {
                    if let Some(answer) = self.wait_for_remote(remote, &key, generation).await
                        && fresh(&answer)
                    {
                        fill.publish(answer.clone()).await;
                        return self.counted(Lookup::Hit(answer));
                    }
                }
                Lock::Held | Lock::Unknown => {}
            }
        }
        self.counted(Lookup::Miss(fill))
    }

    /// Waits for the replica holding the lock of `key` to store its answer; `None` if its lock
    /// goes away without one (it failed, or died and the lock expired) or [`MAX_WAIT`] passes.
    async fn wait_for_remote(
        &self,
        remote: &Remote,
        key: &Key,
        generation: u64,
    ) -> Option<Arc<CachedAnswer>> {
        let deadline = Instant::now() + MAX_WAIT;
        let mut pause = Duration::from_millis(5);
        while Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            if let Some(answer) = remote.get(key, generation).await {
                return Some(answer);
            }
            if !remote.locked(key, generation).await {
                return remote.get(key, generation).await;
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        }
        None
    }

    /// Waits for an identical miss already in flight; `None` if there is none, it failed, or it
    /// takes longer than [`MAX_WAIT`] (a leader whose client stopped reading must not hold
    /// others hostage).
    async fn wait_for_inflight(&self, key: &Key) -> Option<Arc<CachedAnswer>> {
        let mut slot = self.inflight.lock().ok()?.get(key).cloned()?;
        let answer = tokio::time::timeout(MAX_WAIT, slot.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?;
        answer.clone()
    }

    /// Registers this miss as the one that calls upstream, unless another already does.
    fn lead(self: &Arc<Self>, key: Key, store: bool) -> Fill {
        let leader = self.inflight.lock().ok().and_then(|mut inflight| {
            if inflight.contains_key(&key) {
                // Its leader failed or is too old for us: call upstream without leading.
                return None;
            }
            let (sender, receiver) = watch::channel(None);
            inflight.insert(key, receiver);
            Some(sender)
        });
        Fill {
            cache: self.clone(),
            key,
            store,
            leader,
            remote: (0, None),
        }
    }

    fn counted(&self, lookup: Lookup) -> Lookup {
        let outcome = match &lookup {
            Lookup::Bypass => "bypass",
            Lookup::Hit(_) => "hit",
            Lookup::Miss(_) => "miss",
        };
        self.metrics.cache_lookup(outcome);
        lookup
    }

    /// Empties the cache, every replica's when they share one.
    pub async fn clear(&self) {
        if let Some(remote) = &self.remote {
            remote.clear().await;
        }
        self.entries.invalidate_all();
        self.entries.run_pending_tasks().await;
        self.update_gauges();
    }

    /// Applies pending evictions and publishes the size to the metrics.
    pub async fn sync_metrics(&self) {
        self.entries.run_pending_tasks().await;
        self.update_gauges();
    }

    fn update_gauges(&self) {
        self.metrics
            .cache_size(self.entries.weighted_size(), self.entries.entry_count());
    }

    /// Whether an answer is complete enough to serve again.
    fn storable(&self, response: &ChatResponse) -> bool {
        !response.choices.is_empty()
            && response.choices.iter().all(|c| match &c.finish_reason {
                None => false,
                Some(FinishReason::Length) => self.store_truncated,
                Some(_) => true,
            })
    }
}

fn weight(answer: &CachedAnswer) -> u32 {
    // The JSON plus the parsed copy (about as large) plus bookkeeping.
    let bytes = answer
        .json
        .len()
        .saturating_mul(2)
        .saturating_add(answer.target.len() + 256);
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Fill {
    /// Stores a complete answer and hands it to the waiters. `json` is the encoded answer when
    /// the caller already has it.
    pub async fn store(mut self, response: ChatResponse, json: Option<Bytes>, target: &str) {
        if !self.store || !self.cache.storable(&response) {
            return;
        }
        let json = match json {
            Some(json) => json,
            None => match serde_json::to_vec(&response) {
                Ok(bytes) => Bytes::from(bytes),
                Err(_) => return,
            },
        };
        let answer = Arc::new(CachedAnswer {
            response,
            json,
            target: target.to_owned(),
            stored: Instant::now(),
        });
        if let Some(remote) = &self.cache.remote {
            remote.put(&self.key, self.remote.0, &answer).await;
            if let Some(token) = self.remote.1.take() {
                remote.unlock(&self.key, self.remote.0, &token).await;
            }
        }
        self.publish(answer).await;
    }

    /// Keeps an answer in this replica's front and hands it to the waiters here.
    async fn publish(&mut self, answer: Arc<CachedAnswer>) {
        self.cache.entries.insert(self.key, answer.clone()).await;
        if let Some(leader) = self.leader.take() {
            leader.send_replace(Some(answer));
            self.release(&leader);
        }
        self.cache.update_gauges();
    }

    fn release(&self, leader: &watch::Sender<Option<Arc<CachedAnswer>>>) {
        if let Ok(mut inflight) = self.cache.inflight.lock()
            && inflight
                .get(&self.key)
                .is_some_and(|slot| slot.same_channel(&leader.subscribe()))
        {
            inflight.remove(&self.key);
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        // A miss that failed, was cut, or whose client left: waiters see the sender close.
        if let Some(leader) = self.leader.take() {
            self.release(&leader);
        }
        // Other replicas stop waiting as soon as the lock goes, not when it expires.
        if let (Some(token), Ok(runtime)) =
            (self.remote.1.take(), tokio::runtime::Handle::try_current())
        {
            let (cache, key, generation) = (self.cache.clone(), self.key, self.remote.0);
            runtime.spawn(async move {
                if let Some(remote) = &cache.remote {
                    remote.unlock(&key, generation, &token).await;
                }
            });
        }
    }
}
