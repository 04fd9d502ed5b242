//! The instances of one upstream (its configured base URL, the addresses DNS discovery found, or
//! services registered at run time) and what the balancer needs to know of each: its breaker,
//! requests in flight, moving-average latency and recent errors.
//!
//! A [`InstanceLease`] is one try on one instance: it counts as in flight until dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use switchboard_providers::Endpoint;

use super::Failure;
use super::breaker::{Breaker, Pass, State};
use crate::config::BreakerConfig;

/// Errors kept per instance for `/admin/upstreams`.
const RECENT_ERRORS: usize = 5;
/// Weight of the newest sample in the latency average.
const EWMA_ALPHA: f64 = 0.3;

/// Where an instance came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Config,
    Dns,
    /// Registered through the admin API; gone at `expires` unless renewed.
    Registered {
        expires: Instant,
    },
}

/// `url` without userinfo and query.
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            // Only a URL that cannot have userinfo refuses these; it has none to hide.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => "(unparsable url)".to_owned(),
    }
}

/// One address of an upstream.
pub struct Instance {
    pub endpoint: Endpoint,
    /// The address as metrics and the admin API show it.
    shown: String,
    origin: Mutex<Origin>,
    breaker: Breaker,
    in_flight: AtomicU32,
    /// Microseconds; 0 until the first success.
    ewma_micros: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    recent: Mutex<VecDeque<(u64, String)>>,
    /// For a registered instance, the key that registered it (`None`: the admin key).
    owner: Option<String>,
}

impl Instance {
    fn new(endpoint: Endpoint, origin: Origin, breaker: &BreakerConfig) -> Arc<Self> {
        Self::owned(endpoint, origin, breaker, None)
    }

    fn owned(
        endpoint: Endpoint,
        origin: Origin,
        breaker: &BreakerConfig,
        owner: Option<&str>,
    ) -> Arc<Self> {
        Arc::new(Instance {
            owner: owner.map(str::to_owned),
            shown: shown(&endpoint.base_url),
            endpoint,
            origin: Mutex::new(origin),
            breaker: Breaker::new(breaker),
            in_flight: AtomicU32::new(0),
            ewma_micros: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
        })
    }

    pub fn url(&self) -> &str {
        &self.endpoint.base_url
    }

    /// The address without userinfo or query, where a credential may sit: `/metrics` is
    /// unauthenticated, and no secret belongs in the admin API either.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// The key that registered it; `None` for the admin key, and for configured and
    /// discovered instances.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    pub fn origin(&self) -> Origin {
        *self.origin.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn breaker_state(&self) -> State {
        self.breaker.state()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Moving average of time to first token; `None` before any success.
    pub fn latency(&self) -> Option<Duration> {
        match self.ewma_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn counts(&self) -> (u64, u64) {
        (
            self.successes.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Recent errors as (unix seconds, message), oldest first.
    pub fn recent_errors(&self) -> Vec<(u64, String)> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.iter().cloned().collect()
    }

    pub fn available(&self) -> bool {
        self.breaker.available()
    }

    fn record_latency(&self, latency: Duration) {
        let sample = latency.as_micros().max(1) as f64;
        let old = self.ewma_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old as f64 * (1.0 - EWMA_ALPHA) + sample * EWMA_ALPHA
        };
        self.ewma_micros.store(new as u64, Ordering::Relaxed);
    }

    /// Keeps a try's error among the last [`RECENT_ERRORS`], for `/admin/upstreams`.
    fn note_error(&self, message: &str) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT_ERRORS {
            recent.pop_front();
        }
        recent.push_back((crate::clock::unix_now(), message.to_owned()));
    }
}

/// The instances of one upstream, replaced as a whole when discovery or registration changes them.
pub struct Instances {
    list: RwLock<Arc<[Arc<Instance>]>>,
    breaker: BreakerConfig,
}

impl Instances {
    /// One instance at the configured endpoint.
    pub fn fixed(endpoint: Endpoint, breaker: BreakerConfig) -> Self {
        let instance = Instance::new(endpoint, Origin::Config, &breaker);
        Instances {
            list: RwLock::new(Arc::from(vec![instance])),
            breaker,
        }
    }

    /// No instance until discovery or registration adds some.
    pub fn empty(breaker: BreakerConfig) -> Self {
        Instances {
            list: RwLock::new(Arc::from(Vec::new())),
            breaker,
        }
    }

    /// The live instances: registrations past their TTL are dropped as they are noticed.
    pub fn all(&self) -> Arc<[Arc<Instance>]> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner()).clone();
        let now = Instant::now();
        let lapsed = |i: &Arc<Instance>| matches!(i.origin(), Origin::Registered { expires } if expires <= now);
        if list.iter().any(lapsed) {
            self.expire(now);
            return self.list.read().unwrap_or_else(|e| e.into_inner()).clone();
        }
        list
    }

    fn replace(&self, list: Vec<Arc<Instance>>) {
        *self.list.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(list);
    }

    /// Whether some instance would take a try now.
    pub fn available(&self) -> bool {
        self.all().iter().any(|i| i.available())
    }

    /// Fewest requests in flight among the instances that would take a try.
    pub fn least_in_flight(&self) -> Option<u32> {
        self.all()
            .iter()
            .filter(|i| i.available())
            .map(|i| i.in_flight())
            .min()
    }

    /// Best latency among the available instances; unknown counts as best, to learn it.
    pub fn best_latency(&self) -> Option<Duration> {
        self.all()
            .iter()
            .filter(|i| i.available())
            .map(|i| i.latency().unwrap_or_default())
            .min()
    }

    /// Leases the least busy available instance for one try; ties are broken at random so that
    /// idle instances share the load.
    pub fn lease(&self) -> Option<InstanceLease> {
        let all = self.all();
        let mut candidates: Vec<&Arc<Instance>> = all.iter().filter(|i| i.available()).collect();
        candidates.shuffle(&mut rand::rng());
        candidates.sort_by_key(|i| i.in_flight());
        candidates.into_iter().find_map(|instance| {
            let pass = instance.breaker.pass()?;
            instance.in_flight.fetch_add(1, Ordering::Relaxed);
            Some(InstanceLease {
                instance: instance.clone(),
                pass,
                started: Instant::now(),
                settled: false,
            })
        })
    }

    /// Makes the DNS answer the instance list, keeping the history of addresses that stay.
    pub fn set_discovered(&self, endpoints: Vec<Endpoint>) {
        let current = self.all();
        let mut next: Vec<Arc<Instance>> = current
            .iter()
            .filter(|i| i.origin() != Origin::Dns)
            .cloned()
            .collect();
        for endpoint in endpoints {
            let kept = current
                .iter()
                .find(|i| i.origin() == Origin::Dns && i.url() == endpoint.base_url);
            next.push(match kept {
                Some(instance) => instance.clone(),
                None => Instance::new(endpoint, Origin::Dns, &self.breaker),
            });
        }
        self.replace(next);
    }

    /// Whether `owner` (`None`: the admin key) may renew or remove the instance registered at
    /// `url`: a key changes only what it registered; the admin key changes anything.
    pub fn may_change(&self, url: &str, owner: Option<&str>) -> bool {
        let Some(key) = owner else {
            return true;
        };
        self.all()
            .iter()
            .find(|i| i.url() == url && matches!(i.origin(), Origin::Registered { .. }))
            .is_none_or(|i| i.owner() == Some(key))
    }

    /// Adds an instance registered at run time by `owner`, or renews it (its owner stays); it
    /// lapses after `ttl`.
    pub fn register(&self, endpoint: Endpoint, ttl: Duration, owner: Option<&str>) {
        // Callers bound the TTL; a deadline past the clock's range never expires rather than
        // panicking.
        let now = Instant::now();
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        let current = self.all();
        if let Some(existing) = current.iter().find(|i| i.url() == endpoint.base_url) {
            let mut origin = existing.origin.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*origin, Origin::Registered { .. }) {
                *origin = Origin::Registered { expires };
            }
            return;
        }
        let mut next = current.to_vec();
        next.push(Instance::owned(
            endpoint,
            Origin::Registered { expires },
            &self.breaker,
            owner,
        ));
        self.replace(next);
    }

    /// Removes the instance registered at `url`; configured and discovered instances stay.
    /// Whether one went.
    pub fn unregister(&self, url: &str) -> bool {
        let current = self.all();
        let next: Vec<Arc<Instance>> = current
            .iter()
            .filter(|i| !(i.url() == url && matches!(i.origin(), Origin::Registered { .. })))
            .cloned()
            .collect();
        let removed = next.len() < current.len();
        if removed {
            self.replace(next);
        }
        removed
    }

    /// Drops registered instances whose time ran out; says whether any went.
    pub fn expire(&self, now: Instant) -> bool {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let current = list.clone();
        let live: Vec<Arc<Instance>> = current
            .iter()
            .filter(|i| !matches!(i.origin(), Origin::Registered { expires } if expires <= now))
            .cloned()
            .collect();
        let changed = live.len() != current.len();
        if changed {
            *list = Arc::from(live);
        }
        changed
    }
}

/// One try on one instance.
pub struct InstanceLease {
    instance: Arc<Instance>,
    pass: Pass,
    started: Instant,
    settled: bool,
}

impl InstanceLease {
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// The try got its first token: the breaker hears of a success and the latency is kept. The
    /// lease stays in flight until dropped, so a stream counts as busy to its end.
    pub fn succeed(&mut self) {
        if !self.settled {
            self.settled = true;
            self.instance.breaker.record(self.pass, true);
            self.instance.record_latency(self.started.elapsed());
            self.instance.successes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tells the breaker how a try went. A failure the client caused says nothing about the
    /// instance's health and counts as a success; a 429 says one tenant is over its quota and
    /// counts as neither (the model is held instead, `upstream::holds`).
    pub fn settle<T>(&mut self, outcome: &Result<T, Failure>) {
        match outcome {
            Err(failure) if failure.rate_limited() => self.rate_limited(&failure.error.message),
            Err(failure) if failure.retryable => self.fail(&failure.error.message),
            _ => self.succeed(),
        }
    }

    /// The provider answered 429: shown among the recent errors, not counted by the breaker.
    fn rate_limited(&mut self, message: &str) {
        if !self.settled {
            self.settled = true;
            self.instance.breaker.abandon(self.pass);
            self.instance.note_error(message);
        }
    }

    /// The try failed; the breaker counts it.
    pub fn fail(&mut self, message: &str) {
        if !self.settled {
            self.settled = true;
            self.instance.breaker.record(self.pass, false);
            self.instance.failures.fetch_add(1, Ordering::Relaxed);
            self.instance.note_error(message);
        }
    }
}

impl Drop for InstanceLease {
    fn drop(&mut self) {
        self.instance.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.settled {
            self.instance.breaker.abandon(self.pass);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint {
            base_url: url.into(),
            ..Endpoint::default()
        }
    }

    fn breaker() -> BreakerConfig {
        BreakerConfig {
            failures: 1,
            window: Span(Duration::from_secs(30)),
            cooldown: Span(Duration::from_secs(60)),
        }
    }

    #[test]
    fn leases_go_to_the_least_busy_healthy_instance() {
        let instances = Instances::empty(breaker());
        instances.set_discovered(vec![endpoint("http://a"), endpoint("http://b")]);
        let first = instances.lease().unwrap();
        let second = instances.lease().unwrap();
        assert_ne!(first.instance().url(), second.instance().url());
        let mut failing = first;
        failing.fail("boom");
        let failed_url = failing.instance().url().to_owned();
        drop(failing);
        drop(second);
        for _ in 0..3 {
            assert_ne!(instances.lease().unwrap().instance().url(), failed_url);
        }
    }

    #[test]
    fn discovery_keeps_known_addresses_and_registration_lapses() {
        let instances = Instances::empty(breaker());
        instances.set_discovered(vec![endpoint("http://a")]);
        let a = instances.all()[0].clone();
        instances.set_discovered(vec![endpoint("http://a"), endpoint("http://b")]);
        assert!(Arc::ptr_eq(&a, &instances.all()[0]), "history kept");
        instances.set_discovered(Vec::new());
        assert!(instances.all().is_empty(), "no records, no instances");
        instances.register(endpoint("http://c"), Duration::from_millis(0), None);
        assert!(instances.expire(Instant::now()));
        assert!(instances.lease().is_none());
    }
}
