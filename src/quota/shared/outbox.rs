//! Settlements on their way to Redis: a bounded queue and the one task that writes it, in
//! concurrent batches, retrying a batch until Redis takes it. Nothing is dropped unless the
//! queue is full, and then it is logged and counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use tokio::sync::mpsc;

use super::KeyNames;
use crate::state::redis::{Redis, RedisFailure};
use crate::telemetry::Metrics;

static SETTLE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("settle.lua")));

/// One request's outcome, to be written once.
pub struct Settlement {
    pub keys: Arc<KeyNames>,
    /// The lease the request held, or a fresh id when it held none.
    pub id: String,
    /// Whether the request held a lease; without one, a retry after a lost answer may count
    /// twice (keys with no limits skip the lease and its round trip).
    pub leased: bool,
    pub model: String,
    pub day: u32,
    pub input: u64,
    pub output: u64,
    pub cost: u64,
    pub tpm: u32,
    /// Charge a request (a settlement), or only give the hold back (a release).
    pub charge: bool,
}

/// The queue and its writer's end.
pub struct Outbox {
    sender: mpsc::Sender<Settlement>,
    /// Queued or being written: what a shutdown waits for.
    pending: AtomicUsize,
    receiver: Mutex<Option<mpsc::Receiver<Settlement>>>,
    metrics: Arc<Metrics>,
}

/// Settlements written at once: concurrent calls on one multiplexed connection.
const BATCH: usize = 64;

impl Outbox {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        Outbox {
            sender,
            pending: AtomicUsize::new(0),
            receiver: Mutex::new(Some(receiver)),
            metrics,
        }
    }

    /// Queues a settlement to be written by the outbox's task.
    pub fn push(&self, settlement: Settlement) {
        match self.sender.try_send(settlement) {
            Ok(()) => {
                let pending = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
                self.metrics.state.queued(pending);
            }
            Err(error) => {
                let settlement = error.into_inner();
                tracing::error!(
                    key = %settlement.keys.name,
                    model = %settlement.model,
                    input_tokens = settlement.input,
                    output_tokens = settlement.output,
                    cost_picodollars = settlement.cost,
                    "settlement dropped: the queue for Redis is full (state.redis.max_queued_settlements)"
                );
                self.metrics.state.dropped();
            }
        }
    }

    /// Settlements not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Writes the queue to Redis for as long as the gateway runs.
    pub async fn run(&self, redis: Arc<Redis>) {
        let receiver = self.receiver.lock().ok().and_then(|mut r| r.take());
        let Some(mut receiver) = receiver else {
            return;
        };
        let mut batch = Vec::with_capacity(BATCH);
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            let taken = batch.len();
            let mut pause = Duration::from_millis(50);
            loop {
                batch = write_all(&redis, std::mem::take(&mut batch)).await;
                if batch.is_empty() {
                    break;
                }
                // Redis is away: the batch waits (and the queue fills) until it is back.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            let pending = self.pending.fetch_sub(taken, Ordering::Relaxed) - taken;
            self.metrics.state.queued(pending);
        }
    }
}

/// Writes a batch; returns what Redis did not take.
async fn write_all(redis: &Redis, batch: Vec<Settlement>) -> Vec<Settlement> {
    let results = futures_util::future::join_all(batch.iter().map(|s| write(redis, s))).await;
    batch
        .into_iter()
        .zip(results)
        .filter_map(|(settlement, done)| (!done).then_some(settlement))
        .collect()
}

/// Whether the settlement is done with: written, or refused by Redis itself (a retry would be
/// refused again, and would hold up the whole queue).
pub async fn write(redis: &Redis, s: &Settlement) -> bool {
    let k = &s.keys;
    let mut invocation = SETTLE.prepare_invoke();
    invocation
        .key(&k.q)
        .key(&*k.leases)
        .key(&k.held)
        .key(&k.days)
        .key(&k.gone)
        .key(&k.models)
        .arg(&s.id)
        .arg(&s.model)
        .arg(s.day)
        .arg(s.input)
        .arg(s.output)
        .arg(s.cost)
        .arg(s.tpm)
        .arg(u8::from(s.charge))
        .arg(u8::from(s.leased));
    match redis.idempotent_script::<i64>("settle", &invocation).await {
        Ok(_) => true,
        Err(RedisFailure::Refused(_)) => {
            tracing::error!(key = %k.name, model = %s.model, "settlement dropped: Redis refused it");
            redis.metrics().state.dropped();
            true
        }
        Err(_) => false,
    }
}
