//! The leases this replica holds in Redis, renewed while their requests run: a replica that
//! dies stops renewing, and its slots and reservations come back within one lease time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::Script;

use crate::state::redis::Redis;

static RENEW: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("renew.lua")));

/// Lease ids by the key of the sorted set they live in.
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<Arc<str>, HashSet<String>>>,
}

/// Ids renewed per call: a bounded script however many requests one key has in flight.
const PER_CALL: usize = 512;

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashSet<String>>> {
        // Inserts and removals only: a panic cannot leave the map half-written.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hold(&self, set: &Arc<str>, id: &str) {
        self.lock()
            .entry(set.clone())
            .or_default()
            .insert(id.to_owned());
    }

    pub fn forget(&self, set: &Arc<str>, id: &str) {
        let mut held = self.lock();
        if let Some(ids) = held.get_mut(set) {
            ids.remove(id);
            if ids.is_empty() {
                held.remove(set);
            }
        }
    }

    /// Renews every held lease three times per lease, for as long as the gateway runs.
    pub async fn renew(&self, redis: Arc<Redis>, lease: Duration) {
        let mut tick = tokio::time::interval(lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snapshot: Vec<(Arc<str>, Vec<String>)> = self
                .lock()
                .iter()
                .map(|(set, ids)| (set.clone(), ids.iter().cloned().collect()))
                .collect();
            for (set, ids) in snapshot {
                for chunk in ids.chunks(PER_CALL) {
                    let mut invocation = RENEW.prepare_invoke();
                    invocation.key(&*set).arg(lease.as_millis() as u64);
                    for id in chunk {
                        invocation.arg(id);
                    }
                    // A failed renewal is retried at the next tick; the lease outlives two.
                    let _ = redis.idempotent_script::<i64>("renew", &invocation).await;
                }
            }
        }
    }
}
