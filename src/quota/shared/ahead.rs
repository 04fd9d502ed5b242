//! A key's next reservation, made before its request arrives: far from every limit, the
//! reservation a request would wait for is already in Redis, and the round trip leaves its path.
//!
//! It is a whole reservation (one script, every limit, a lease), made when the request before it
//! was admitted, for a request as large as the largest of the last second. So what Redis admits
//! stays exact: the request that takes it was counted when it was made. Its entry in the
//! `requests_per_minute` window is dated [`AHEAD`] later, the latest its request may come, so no
//! 60 s window holds more than the limit. Unused for [`AHEAD`], or too small for the request that
//! finds it, it is given back as if never made: its hold, its slot and its rate entry.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Numbers every spare made by this process.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// The one reservation a key has made ahead on this replica, if any.
#[derive(Default)]
pub struct Ahead {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    spare: Option<Spare>,
    /// The largest request that asked for one, and when: the next one is made as large, so
    /// that requests of mixed sizes all fit. It is forgotten a second after it was seen.
    largest: Option<(Instant, Estimate)>,
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
    /// `estimate` less than [`AHEAD`] ago (it may still be on its way). One too small or stale
    /// is dropped, and so given back: the next is made for this request's size.
    pub fn take(&self, estimate: Estimate) -> Option<oneshot::Receiver<Outcome>> {
        let mut slot = self.lock();
        let largest = slot.largest();
        if largest.is_none_or(|size| !fits(estimate, size)) {
            slot.largest = Some((Instant::now(), larger(estimate, largest)));
        }
        let spare = slot.spare.take()?;
        if spare.made.elapsed() < AHEAD && fits(estimate, spare.estimate) {
            return Some(spare.outcome);
        }
        drop(slot);
        drop(spare);
        None
    }

    /// Whether no reservation waits here: only then is another made.
    pub fn is_empty(&self) -> bool {
        self.lock().spare.is_none()
    }

    /// What the next reservation ahead is made for, after a request like `estimate`: the
    /// largest request of the last second.
    pub fn size(&self, estimate: Estimate) -> Estimate {
        larger(estimate, self.lock().largest())
    }

    /// Makes room for a reservation ahead for a request like `estimate`; `None` if one is
    /// already there.
    pub fn open(&self, estimate: Estimate) -> Option<Ticket> {
        let mut slot = self.lock();
        if slot.spare.is_some() {
            return None;
        }
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let made = Instant::now();
        let (outcome, outcome_rx) = oneshot::channel();
        let (taken_tx, taken) = oneshot::channel();
        slot.spare = Some(Spare {
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
            .spare
            .as_ref()
            .is_some_and(|spare| spare.serial == ticket.serial)
        {
            let unused = slot.spare.take();
            drop(slot);
            drop(unused);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Slot {
    /// The largest request of the last second, if one asked.
    fn largest(&self) -> Option<Estimate> {
        let (seen, size) = self.largest?;
        (seen.elapsed() < AHEAD).then_some(size)
    }
}

/// Whether a request like `estimate` fits in a hold of `size`.
fn fits(estimate: Estimate, size: Estimate) -> bool {
    estimate.tokens <= size.tokens && estimate.cost <= size.cost
}

/// The larger of two sizes, each figure on its own.
fn larger(estimate: Estimate, other: Option<Estimate>) -> Estimate {
    let Some(other) = other else {
        return estimate;
    };
    Estimate {
        tokens: estimate.tokens.max(other.tokens),
        cost: estimate.cost.max(other.cost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(tokens: u64, cost: u64) -> Estimate {
        Estimate { tokens, cost }
    }

    /// A refusal: an outcome without a lease, so these tests need no Redis.
    fn refused() -> Outcome {
        Ok(Err(Box::default()))
    }

    #[test]
    fn a_request_takes_one_as_large_and_one_too_small_is_given_back_and_made_larger() {
        let ahead = Ahead::default();
        assert!(ahead.take(size(10, 5)).is_none(), "none made yet");
        let _first = ahead.open(ahead.size(size(10, 5))).unwrap();
        assert!(ahead.open(size(1, 1)).is_none(), "one at a time");
        assert!(ahead.take(size(8, 5)).is_some(), "a smaller request fits");
        assert!(ahead.is_empty());

        // The next is made for the largest request of the last second, whatever this one is.
        assert_eq!(ahead.size(size(1, 1)), size(10, 5));
        let _second = ahead.open(size(10, 5)).unwrap();
        assert!(ahead.take(size(20, 1)).is_none(), "too few tokens for it");
        assert!(ahead.is_empty(), "given back");
        assert_eq!(ahead.size(size(1, 1)), size(20, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn one_no_request_takes_within_a_second_is_given_back() {
        let ahead = Ahead::default();
        let ticket = ahead.open(size(1, 1)).unwrap();
        ahead.fill(ticket, refused()).await;
        assert!(ahead.is_empty());
        assert!(ahead.take(size(1, 1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_may_take_one_still_on_its_way() {
        let ahead = Ahead::default();
        let ticket = ahead.open(size(1, 1)).unwrap();
        let taken = ahead.take(size(1, 1)).unwrap();
        ahead.fill(ticket, refused()).await;
        assert!(matches!(taken.await, Ok(Ok(Err(_)))));
    }
}
