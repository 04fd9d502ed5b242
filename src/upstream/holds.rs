//! Rate-limit holds: a provider that answered 429 for a model is left alone for that model until
//! its `Retry-After` has passed, by every request, while its other models and instances serve on.
//!
//! A 429 says one tenant is over its quota, not that the instance is sick, so it never reaches
//! the circuit breaker (which would shut the instance for every model and key).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a model is held when its 429 names no `Retry-After`.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// The longest hold: a provider asking for more is asked again after it.
pub const MAX_HOLD: Duration = Duration::from_secs(3600);

/// The models of one provider that are held, and until when.
#[derive(Default)]
pub struct Holds {
    until: Mutex<HashMap<String, Instant>>,
    /// Entries in `until`: with none, a lookup is one atomic load and no lock.
    entries: AtomicUsize,
}

impl Holds {
    /// Holds `model` for `wait` (the 429's `Retry-After`, else [`DEFAULT_HOLD`]), at most
    /// [`MAX_HOLD`]; a longer hold already in place stays.
    pub fn hold(&self, model: &str, wait: Option<Duration>) {
        let until = Instant::now() + wait.unwrap_or(DEFAULT_HOLD).min(MAX_HOLD);
        let mut held = self.lock();
        let entry = held.entry(model.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
        self.entries.store(held.len(), Ordering::Relaxed);
    }

    /// How long `model` is still held, if it is.
    pub fn remaining(&self, model: &str) -> Option<Duration> {
        if self.entries.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = Instant::now();
        let mut held = self.lock();
        held.retain(|_, until| *until > now);
        self.entries.store(held.len(), Ordering::Relaxed);
        held.get(model).map(|until| *until - now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A map of instants cannot be left half-updated by a panic.
        self.until.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_covers_its_model_only_and_ends() {
        let holds = Holds::default();
        assert_eq!(holds.remaining("a"), None);
        holds.hold("a", Some(Duration::from_secs(30)));
        let left = holds.remaining("a").unwrap();
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        assert_eq!(holds.remaining("b"), None);
        // A shorter hold does not cut a longer one short.
        holds.hold("a", Some(Duration::from_secs(1)));
        assert!(holds.remaining("a").unwrap() > Duration::from_secs(29));
        holds.hold("b", Some(Duration::ZERO));
        assert_eq!(holds.remaining("b"), None);
    }

    #[test]
    fn no_retry_after_holds_a_second_and_a_huge_one_an_hour() {
        let holds = Holds::default();
        holds.hold("a", None);
        assert!(holds.remaining("a").unwrap() <= DEFAULT_HOLD);
        holds.hold("b", Some(Duration::from_secs(u64::MAX / 4)));
        assert!(holds.remaining("b").unwrap() <= MAX_HOLD);
    }
}
