//! A key's next reservation, made before its request arrives: far from every limit, the
//! reservation a request would wait for is already in Redis, and the round trip leaves its path.
//!
//! It is a whole reservation (one script, every limit, a lease), made when the request before it
//! was admitted, for a request as large. So what Redis admits stays exact: the request that
//! takes it was counted when it was made. Its `requests_per_minute` entry is dated [`AHEAD`]
//! later, the latest its request may come, so no 60 s window holds more than the limit. Unused
//! for [`AHEAD`], it is given back as if never made: its hold, its slot and its rate entry.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::response::Response;
use tokio::sync::oneshot;

use super::Lease;
use crate::quota::{Estimate, RateHeaders};
use crate::state::redis::RedisFailure;

/// What a reservation answers: the outer error is Redis's, the inner one the refusal to send.
pub type Outcome = Result<Result<(Lease, RateHeaders), Box<Response>>, RedisFailure>;

/// How long a reservation made ahead waits for its request before it is given back. The same
/// second the figures it was made on vouch for (see `room`).
pub const AHEAD: Duration = Duration::from_secs(1);

/// The one reservation a key has made ahead on this replica, if any.
#[derive(Default)]
pub struct Ahead {
    slot: Mutex<Option<Spare>>,
}

struct Spare {
    /// Tells one spare from the next, so the task of an old one never drops a new one.
    serial: u64,
    estimate: Estimate,
    made: Instant,
    outcome: oneshot::Receiver<Outcome>,
    /// Dropped with the spare (taken or discarded), which ends its task's wait.
    _taken: oneshot::Sender<()>,
}

/// What the task making a spare needs: where to send it, and how to know it was taken.
pub struct Ticket {
    serial: u64,
    made: Instant,
    outcome: oneshot::Sender<Outcome>,
    taken: oneshot::Receiver<()>,
}

impl Ahead {
    /// The reservation made ahead, if one was made for a request at least as large as
    /// `estimate` less than [`AHEAD`] ago (it may still be on its way). A stale one is dropped,
    /// and so given back.
    pub fn take(&self, estimate: Estimate) -> Option<oneshot::Receiver<Outcome>> {
        let mut slot = self.lock();
        let spare = slot.as_ref()?;
        if spare.made.elapsed() >= AHEAD {
            let stale = slot.take();
            drop(slot);
            drop(stale);
            return None;
        }
        if estimate.tokens > spare.estimate.tokens || estimate.cost > spare.estimate.cost {
            return None;
        }
        slot.take().map(|spare| spare.outcome)
    }

    /// Whether no reservation waits here: only then is another made.
    pub fn is_empty(&self) -> bool {
        self.lock().is_none()
    }

    /// Makes room for a reservation ahead for a request like `estimate`; `None` if one is
    /// already there.
    pub fn open(&self, estimate: Estimate) -> Option<Ticket> {
        let mut slot = self.lock();
        if slot.is_some() {
            return None;
        }
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let made = Instant::now();
        let (outcome, outcome_rx) = oneshot::channel();
        let (taken_tx, taken) = oneshot::channel();
        *slot = Some(Spare {
            serial,
            estimate,
            made,
            outcome: outcome_rx,
            _taken: taken_tx,
        });
        Some(Ticket {
            serial,
            made,
            outcome,
            taken,
        })
    }

    /// Hands the reservation to the request that takes it, then waits for that request until
    /// [`AHEAD`] after it was begun; unused by then, it is dropped (its lease given back).
    pub async fn fill(&self, ticket: Ticket, outcome: Outcome) {
        if ticket.outcome.send(outcome).is_err() {
            // Dropped before it was ready: the outcome's lease was given back with it.
            return;
        }
        let wait = AHEAD.saturating_sub(ticket.made.elapsed());
        if tokio::time::timeout(wait, ticket.taken).await.is_ok() {
            return;
        }
        let mut slot = self.lock();
        if slot
            .as_ref()
            .is_some_and(|spare| spare.serial == ticket.serial)
        {
            let unused = slot.take();
            drop(slot);
            drop(unused);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Spare>> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
