//! Notifications of calls in flight, by what each call is known by upstream (a progress token,
//! a request id): those heard before its caller says where they go are kept, a few, then each
//! goes straight there, until the caller's claim is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use super::lock;

/// Notifications kept for a call whose caller has not yet said where they go.
const EARLY: usize = 16;

/// Calls expected before unclaimed entries (of calls whose send failed) are dropped: far more
/// than the calls one connection runs at once.
const EXPECTED: usize = 4096;

pub struct Expected<K, N, To>(Mutex<HashMap<K, Route<N, To>>>);

enum Route<N, To> {
    Early(Vec<N>),
    To(To),
}

impl<K, N, To> Default for Expected<K, N, To> {
    fn default() -> Self {
        Expected(Mutex::default())
    }
}

impl<K: Eq + Hash + Clone, N, To> Expected<K, N, To> {
    /// Keeps what is heard of `key` until [`route`](Self::route) says where it goes.
    pub fn expect(&self, key: K) {
        let mut calls = lock(&self.0);
        if calls.len() >= EXPECTED {
            calls.retain(|_, route| matches!(route, Route::To(_)));
        }
        calls.entry(key).or_insert(Route::Early(Vec::new()));
    }

    /// Sends what was heard of `key` already, and from now on all of it, to `to` (or nowhere),
    /// through `deliver`, under the lock, so nothing overtakes what came first.
    pub fn route(&self, key: K, to: Option<To>, deliver: impl Fn(&To, N)) -> Claim<'_, K, N, To> {
        let mut calls = lock(&self.0);
        let early = match calls.remove(&key) {
            Some(Route::Early(early)) => early,
            _ => Vec::new(),
        };
        if let Some(to) = to {
            for notification in early {
                deliver(&to, notification);
            }
            calls.insert(key.clone(), Route::To(to));
        }
        Claim { calls: self, key }
    }

    /// Where `notification` of `key` goes: delivered, kept for its caller, or dropped.
    pub fn heard(&self, key: &K, notification: N, deliver: impl FnOnce(&To, N)) {
        match lock(&self.0).get_mut(key) {
            Some(Route::Early(early)) if early.len() < EARLY => early.push(notification),
            Some(Route::To(to)) => deliver(to, notification),
            _ => {}
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.0).len()
    }
}

/// A call's claim on its notifications; they stop going anywhere when it is dropped.
pub struct Claim<'a, K: Eq + Hash, N, To> {
    calls: &'a Expected<K, N, To>,
    key: K,
}

impl<K: Eq + Hash, N, To> Drop for Claim<'_, K, N, To> {
    fn drop(&mut self) {
        lock(&self.calls.0).remove(&self.key);
    }
}
