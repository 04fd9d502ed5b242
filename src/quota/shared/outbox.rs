//! Settlements on their way to Redis: a bounded queue, journaled to disk first when they
//! charge, then written in batches (a reservation of the same key takes its own along, or the
//! writer takes what waited `LINGER`), and retried until Redis takes them. Nothing is dropped
//! unless the queue is full, and then it is logged and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::Script;
use tokio::sync::Notify;

use super::KeyNames;
use super::journal::{Record, SettlementJournal};
use crate::state::redis::{Redis, RedisFailure};
use crate::telemetry::Metrics;

static SETTLE: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("settle.lua")));

/// One request's outcome, to be written once.
pub struct Settlement {
    /// Its line in the settlements journal; 0 when it was not journaled (a release).
    pub seq: u64,
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

impl Settlement {
    fn record(&self) -> Record {
        Record {
            key: self.keys.name.clone(),
            id: self.id.clone(),
            leased: self.leased,
            model: self.model.clone(),
            day: self.day,
            input: self.input,
            output: self.output,
            cost: self.cost,
            tpm: self.tpm,
        }
    }
}

/// The queue and what it writes through.
pub struct Outbox {
    queue: Mutex<VecDeque<Settlement>>,
    capacity: usize,
    /// Taken from the queue and being written: a shutdown waits for these too.
    writing: AtomicUsize,
    wake: Notify,
    journal: Option<Arc<SettlementJournal>>,
    metrics: Arc<Metrics>,
}

/// Settlements written at once: concurrent calls on one multiplexed connection.
const BATCH: usize = 64;

/// How long a settlement waits for company (a reservation of its key on this replica, or
/// others to be written with it): its answer has ended, so this is the lag of the shared
/// figures, not of any request.
pub const LINGER: Duration = Duration::from_millis(2);

/// Settlements a reservation takes along: its own key's, so Redis frees the slot and returns
/// the unused tokens before it counts them.
const RIDERS: usize = 8;

impl Outbox {
    pub fn new(
        capacity: usize,
        metrics: Arc<Metrics>,
        journal: Option<Arc<SettlementJournal>>,
    ) -> Self {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            writing: AtomicUsize::new(0),
            wake: Notify::new(),
            journal,
            metrics,
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Settlement>> {
        // Pushes and pops only: a panic cannot leave the queue half-changed.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a settlement. One that charges is first written to the journal, so it is on this
    /// replica's disk before its answer ends.
    pub fn push(&self, mut settlement: Settlement) {
        if settlement.charge
            && settlement.seq == 0
            && let Some(journal) = &self.journal
        {
            settlement.seq = journal.record(settlement.record());
        }
        let mut queue = self.queue();
        if queue.len() >= self.capacity {
            drop(queue);
            self.give_up(settlement);
            return;
        }
        let first = queue.is_empty();
        queue.push_back(settlement);
        let waiting = queue.len();
        drop(queue);
        self.metrics
            .state
            .queued(waiting + self.writing.load(Ordering::Relaxed));
        if first {
            self.wake.notify_one();
        }
    }

    /// Queues again what the journal kept from before a restart.
    pub fn replay(&self, settlements: Vec<Settlement>) {
        if !settlements.is_empty() {
            tracing::info!(
                settlements = settlements.len(),
                "writing settlements this replica had not written to Redis before it stopped"
            );
        }
        for settlement in settlements {
            self.push(settlement);
        }
    }

    fn give_up(&self, settlement: Settlement) {
        tracing::error!(
            key = %settlement.keys.name,
            model = %settlement.model,
            input_tokens = settlement.input,
            output_tokens = settlement.output,
            cost_picodollars = settlement.cost,
            "settlement dropped: the queue for Redis is full (state.redis.max_queued_settlements)"
        );
        self.metrics.state.dropped();
        self.acked([settlement.seq]);
    }

    fn acked(&self, seqs: impl IntoIterator<Item = u64>) {
        if let Some(journal) = &self.journal {
            journal.acked(seqs);
        }
    }

    /// Settlements not yet written.
    pub fn pending(&self) -> usize {
        self.queue().len() + self.writing.load(Ordering::Relaxed)
    }

    /// Up to `most` settlements from the front of the queue (`key`'s only, if given); counted
    /// as being written until [`done`](Self::done).
    fn take(&self, most: usize, key: Option<&str>) -> Vec<Settlement> {
        let mut queue = self.queue();
        let taken: Vec<Settlement> = match key {
            None => {
                let n = most.min(queue.len());
                queue.drain(..n).collect()
            }
            Some(key) => {
                let mut taken = Vec::new();
                let mut i = 0;
                while i < queue.len() && taken.len() < most {
                    if queue[i].keys.name == key {
                        taken.extend(queue.remove(i));
                    } else {
                        i += 1;
                    }
                }
                taken
            }
        };
        self.writing.fetch_add(taken.len(), Ordering::Relaxed);
        taken
    }

    /// Ends the writing of `taken` settlements, queueing again at the front those Redis did not
    /// take.
    fn done(&self, taken: usize, failed: Vec<Settlement>) {
        let mut queue = self.queue();
        for settlement in failed.into_iter().rev() {
            queue.push_front(settlement);
        }
        self.writing.fetch_sub(taken, Ordering::Relaxed);
        let pending = queue.len() + self.writing.load(Ordering::Relaxed);
        drop(queue);
        self.metrics.state.queued(pending);
    }

    /// Writes `batch`, noting what Redis took; returns what it did not. With `note_now`, the
    /// acknowledgements are journaled at once; a reservation's riders leave theirs to the next
    /// line, written when that request settles (a restart in between writes a settlement that
    /// held no lease twice).
    async fn write(
        &self,
        redis: &Redis,
        batch: Vec<Settlement>,
        note_now: bool,
    ) -> Vec<Settlement> {
        let results = futures_util::future::join_all(batch.iter().map(|s| write(redis, s))).await;
        let mut failed = Vec::new();
        let mut acked = Vec::new();
        for (settlement, done) in batch.into_iter().zip(results) {
            if done {
                acked.push(settlement.seq);
            } else {
                failed.push(settlement);
            }
        }
        self.acked(acked);
        if note_now && let Some(journal) = &self.journal {
            journal.write_acks();
        }
        failed
    }

    /// The settlements of `key` waiting here, to be written with (and before) a reservation of
    /// the same key; the returned future writes them.
    pub fn riders<'a>(&'a self, redis: &'a Redis, key: &str) -> Option<impl Future<Output = ()>> {
        let riders = self.take(RIDERS, Some(key));
        if riders.is_empty() {
            // Nothing was taken, nothing to end.
            return None;
        }
        Some(async move {
            let taken = riders.len();
            let failed = self.write(redis, riders, false).await;
            self.done(taken, failed);
        })
    }

    /// Writes everything queued now, without lingering: so a report from this replica counts
    /// every answer it has given.
    pub async fn flush(&self, redis: &Redis) {
        loop {
            let batch = self.take(BATCH, None);
            if batch.is_empty() {
                return;
            }
            let taken = batch.len();
            let failed = self.write(redis, batch, true).await;
            let stuck = !failed.is_empty();
            self.done(taken, failed);
            if stuck {
                return;
            }
        }
    }

    /// Writes the queue to Redis for as long as the gateway runs.
    pub async fn run(&self, redis: Arc<Redis>) {
        let mut pause = Duration::from_millis(50);
        loop {
            if self.queue().is_empty() {
                self.wake.notified().await;
            }
            if self.queue().len() < BATCH {
                tokio::time::sleep(LINGER).await;
            }
            let batch = self.take(BATCH, None);
            if batch.is_empty() {
                continue;
            }
            let taken = batch.len();
            let failed = self.write(&redis, batch, true).await;
            let stuck = !failed.is_empty();
            self.done(taken, failed);
            if stuck {
                // Redis is away: the batch waits (and the queue fills) until it is back.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            } else {
                pause = Duration::from_millis(50);
            }
        }
    }
}

/// Whether the settlement is done with: written, or refused by Redis itself (a retry would be
/// refused again, and would hold up the whole queue).
async fn write(redis: &Redis, s: &Settlement) -> bool {
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
