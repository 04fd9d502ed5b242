//! Settlements on their way to Redis: a bounded queue, journaled to disk first when they
//! charge, then applied by the next reservation of their key on this replica (inside its
//! script), or written in batches by the writer once they have waited
//! `state.redis.settlement_linger`, and retried until Redis takes them. Nothing is dropped unless
//! the queue is full, and then it is logged and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::Script;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::KeyNames;
use super::journal::{Record, SettlementJournal};
use crate::state::redis::{Redis, RedisFailure};
use crate::telemetry::Metrics;

static SETTLE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(concat!(
        include_str!("settle_fn.lua"),
        include_str!("settle.lua")
    ))
});

/// One request's outcome, to be written once.
pub struct Settlement {
    /// Its line in the settlements journal; 0 when it was not journaled (a release).
    pub seq: u64,
    pub keys: Arc<KeyNames>,
    /// Charge a request (a settlement), or only give the hold back (a release).
    pub charge: bool,
    /// A release of a reservation made ahead that no request took: it leaves the rate window.
    pub unused: bool,
    /// The tokens and money its lease reserved, when this replica made the reservation (not
    /// for one replayed from the journal): a reservation taking it along need not read it.
    pub hold: Option<(u64, u64)>,
    /// The lease (or a fresh id: without one, a retry after a lost answer may count twice), the
    /// model, the day, the tokens and the cost: what the journal keeps.
    pub spent: Record,
}

impl Settlement {
    /// What the scripts do with it: 1 charge, 0 release, 2 release one never used.
    pub fn flag(&self) -> u8 {
        match (self.charge, self.unused) {
            (true, _) => 1,
            (false, false) => 0,
            (false, true) => 2,
        }
    }
}

/// The queue and what it writes through.
pub struct Outbox {
    /// Settlements with the time they were queued.
    queue: Mutex<VecDeque<(Instant, Settlement)>>,
    capacity: usize,
    /// How long a settlement waits for a reservation of its key on this replica to take it
    /// along before the writer sends it (with whatever else waited as long): its answer has
    /// ended, so this is the lag of the shared figures, not of any request.
    linger: Duration,
    /// Taken from the queue and being written: a shutdown waits for these too.
    writing: AtomicUsize,
    wake: Notify,
    journal: Option<Arc<SettlementJournal>>,
    metrics: Arc<Metrics>,
}

/// Settlements written at once: concurrent calls on one multiplexed connection.
const BATCH: usize = 64;

/// Settlements a reservation applies before it counts: its own key's, so the slots they free
/// and the tokens they give back count for it.
const RIDERS: usize = 8;

impl Outbox {
    pub fn new(
        capacity: usize,
        linger: Duration,
        metrics: Arc<Metrics>,
        journal: Option<Arc<SettlementJournal>>,
    ) -> Self {
        Outbox {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            linger,
            writing: AtomicUsize::new(0),
            wake: Notify::new(),
            journal,
            metrics,
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<(Instant, Settlement)>> {
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
            settlement.seq = journal.record(settlement.spent.clone());
        }
        let mut queue = self.queue();
        if queue.len() >= self.capacity {
            drop(queue);
            self.give_up(settlement);
            return;
        }
        let first = queue.is_empty();
        queue.push_back((Instant::now(), settlement));
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
            model = %settlement.spent.model,
            input_tokens = settlement.spent.input,
            output_tokens = settlement.spent.output,
            cost_picodollars = settlement.spent.cost,
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

    /// Up to `most` settlements that `pick` wants among the first `scan` of the queue, stopping
    /// at the first queued after `before`; counted as being written until [`done`](Self::done).
    fn take(
        &self,
        most: usize,
        scan: usize,
        before: Instant,
        pick: impl Fn(&Settlement) -> bool,
    ) -> Vec<Settlement> {
        let mut queue = self.queue();
        let mut taken = Vec::new();
        let mut i = 0;
        while taken.len() < most
            && taken.len() + i < scan
            && let Some((queued, settlement)) = queue.get(i)
            && *queued <= before
        {
            if pick(settlement) {
                taken.extend(queue.remove(i).map(|(_, s)| s));
            } else {
                i += 1;
            }
        }
        self.writing.fetch_add(taken.len(), Ordering::Relaxed);
        taken
    }

    /// Ends the writing of `taken` settlements, queueing again at the front those Redis did not
    /// take.
    fn done(&self, taken: usize, failed: Vec<Settlement>) {
        let mut queue = self.queue();
        // Due at once: the writer's backoff paces the retries.
        let due = Instant::now()
            .checked_sub(self.linger)
            .unwrap_or_else(Instant::now);
        for settlement in failed.into_iter().rev() {
            queue.push_front((due, settlement));
        }
        self.writing.fetch_sub(taken, Ordering::Relaxed);
        let pending = queue.len() + self.writing.load(Ordering::Relaxed);
        drop(queue);
        self.metrics.state.queued(pending);
    }

    /// Writes `batch` (taken from the queue), journaling at once what Redis took (settlements
    /// of keys without leases would count twice if a restart wrote them again) and queueing
    /// again what it did not; whether Redis took all of it. Riders' acknowledgements wait for
    /// the next line instead: they all held leases.
    async fn send(&self, redis: &Redis, batch: Vec<Settlement>) -> bool {
        let taken = batch.len();
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
        if let Some(journal) = &self.journal {
            journal.write_acks();
        }
        let all = failed.is_empty();
        self.done(taken, failed);
        all
    }

    /// The settlements of `key`'s leases waiting here, for its next reservation to apply first;
    /// [`rode`](Self::rode) ends the ride.
    pub fn riders(&self, key: &str) -> Vec<Settlement> {
        // The front of the queue only: a reservation never walks a backlog.
        self.take(RIDERS, BATCH, Instant::now(), |s| {
            s.spent.leased && s.keys.name == key
        })
    }

    /// Ends a ride: with `applied`, the reservation's script ran, and applied them (each once);
    /// otherwise they go back to the queue.
    pub fn rode(&self, riders: Vec<Settlement>, applied: bool) {
        if riders.is_empty() {
            return;
        }
        let taken = riders.len();
        if applied {
            self.acked(riders.iter().map(|s| s.seq));
            self.done(taken, Vec::new());
        } else {
            self.done(taken, riders);
        }
    }

    /// Writes everything queued now, without lingering: so a report from this replica counts
    /// every answer it has given.
    pub async fn flush(&self, redis: &Redis) {
        loop {
            let batch = self.take(BATCH, BATCH, Instant::now(), |_| true);
            if batch.is_empty() || !self.send(redis, batch).await {
                return;
            }
        }
    }

    /// Writes the queue to Redis for as long as the gateway runs: what waited `linger` (and
    /// everything, once a whole batch waits).
    pub async fn run(&self, redis: Arc<Redis>) {
        let mut pause = Duration::from_millis(50);
        loop {
            let (oldest, full) = {
                let queue = self.queue();
                (
                    queue.front().map(|(queued, _)| *queued),
                    queue.len() >= BATCH,
                )
            };
            let Some(oldest) = oldest else {
                self.wake.notified().await;
                continue;
            };
            if !full {
                tokio::time::sleep_until(oldest + self.linger).await;
            }
            let now = Instant::now();
            let due = if full {
                now
            } else {
                now.checked_sub(self.linger).unwrap_or(now)
            };
            let batch = self.take(BATCH, BATCH, due, |_| true);
            if batch.is_empty() {
                continue;
            }
            if !self.send(&redis, batch).await {
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
        .key(&k.rate);
    s.spent.push_args(&mut invocation);
    invocation
        .arg(s.spent.tpm)
        .arg(s.flag())
        .arg(u8::from(s.spent.leased));
    match redis.idempotent_script::<i64>("settle", &invocation).await {
        Ok(_) => true,
        Err(RedisFailure::Refused(_)) => {
            let model = &s.spent.model;
            tracing::error!(key = %k.name, %model, "settlement dropped: Redis refused it");
            redis.metrics().state.dropped();
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(keys: &Arc<KeyNames>, id: &str) -> Settlement {
        Settlement {
            seq: 0,
            keys: keys.clone(),
            charge: false,
            unused: false,
            hold: Some((1, 1)),
            spent: Record {
                key: keys.name.clone(),
                id: id.to_owned(),
                leased: true,
                model: "m".to_owned(),
                day: 1,
                input: 0,
                output: 0,
                cost: 0,
                tpm: 0,
            },
        }
    }

    fn keys(name: &str) -> Arc<KeyNames> {
        Arc::new(KeyNames::new(name, |suffix| format!("{name}:{suffix}")))
    }

    #[test]
    fn a_reservation_takes_its_own_keys_settlements_only() {
        let outbox = Outbox::new(
            1_000,
            Duration::from_secs(60),
            Arc::new(Metrics::default()),
            None,
        );
        let (a, b) = (keys("a"), keys("b"));
        outbox.push(settlement(&a, "1"));
        outbox.push(settlement(&b, "2"));
        let riders = outbox.riders("a");
        assert_eq!(riders.len(), 1);
        assert_eq!(riders[0].spent.id, "1");
        outbox.rode(riders, true);
        assert_eq!(outbox.pending(), 1);
    }
}
