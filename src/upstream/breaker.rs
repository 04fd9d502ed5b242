//! The circuit breaker of one upstream instance: closed until `failures` tries fail within
//! `window`, then open for `cooldown`, then half-open for exactly one probe request.
//!
//! The probe is a real client request; its outcome closes the breaker or opens it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    /// Times of recent failures, oldest first.
    Closed(VecDeque<Instant>),
    Open {
        until: Instant,
    },
    HalfOpen {
        probing: bool,
    },
}

/// A breaker.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    window: Duration,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Leave to send one try through a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The breaker is closed.
    Normal,
    /// The one probe of a half-open breaker.
    Probe,
}

impl Breaker {
    pub fn new(config: &BreakerConfig) -> Self {
        Breaker {
            failures: config.failures.max(1),
            window: config.window.0,
            cooldown: config.cooldown.0,
            inner: Mutex::new(Inner::Closed(VecDeque::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state as a report would show it.
    pub fn state(&self) -> State {
        match &*self.lock() {
            Inner::Closed(_) => State::Closed,
            Inner::Open { until } if Instant::now() >= *until => State::HalfOpen,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Whether a try could pass now, without claiming it.
    pub fn available(&self) -> bool {
        match &*self.lock() {
            Inner::Closed(_) => true,
            Inner::Open { until } => Instant::now() >= *until,
            Inner::HalfOpen { probing } => !probing,
        }
    }

    /// Claims leave for one try: always when closed; once, as the probe, after the cooldown.
    pub fn pass(&self) -> Option<Pass> {
        let mut inner = self.lock();
        match &mut *inner {
            Inner::Closed(_) => Some(Pass::Normal),
            Inner::Open { until } if Instant::now() >= *until => {
                *inner = Inner::HalfOpen { probing: true };
                Some(Pass::Probe)
            }
            Inner::Open { .. } => None,
            Inner::HalfOpen { probing } if !*probing => {
                *probing = true;
                Some(Pass::Probe)
            }
            Inner::HalfOpen { .. } => None,
        }
    }

    /// Records the outcome of a try that passed.
    pub fn record(&self, pass: Pass, success: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        match (&mut *inner, pass, success) {
            (Inner::HalfOpen { .. }, Pass::Probe, true) => *inner = Inner::Closed(VecDeque::new()),
            (Inner::HalfOpen { .. }, Pass::Probe, false) => {
                *inner = Inner::Open {
                    until: now + self.cooldown,
                }
            }
            (Inner::Closed(failures), _, false) => {
                failures.push_back(now);
                while failures
                    .front()
                    .is_some_and(|&t| now.duration_since(t) > self.window)
                {
                    failures.pop_front();
                }
                if failures.len() >= self.failures as usize {
                    *inner = Inner::Open {
                        until: now + self.cooldown,
                    };
                }
            }
            // Successes while closed, and late outcomes of tries sent before the state changed.
            _ => {}
        }
    }

    /// A probe whose request ended without an outcome (the client left): another may probe.
    pub fn abandon(&self, pass: Pass) {
        if pass == Pass::Probe
            && let Inner::HalfOpen { probing } = &mut *self.lock()
        {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;

    fn breaker(cooldown_ms: u64) -> Breaker {
        Breaker::new(&BreakerConfig {
            failures: 3,
            window: Span(Duration::from_secs(30)),
            cooldown: Span(Duration::from_millis(cooldown_ms)),
        })
    }

    #[test]
    fn opens_after_n_failures_then_lets_exactly_one_probe_through() {
        let b = breaker(0);
        for _ in 0..2 {
            let pass = b.pass().unwrap();
            b.record(pass, false);
        }
        assert_eq!(b.state(), State::Closed);
        b.record(Pass::Normal, false);
        // The cooldown is zero: the breaker is half-open at once, and admits one probe only.
        assert_eq!(b.pass(), Some(Pass::Probe));
        assert_eq!(b.pass(), None, "one probe at a time");
        b.record(Pass::Probe, true);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.pass(), Some(Pass::Normal));
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_an_abandoned_one_frees_the_slot() {
        let b = breaker(60_000);
        for _ in 0..3 {
            b.record(Pass::Normal, false);
        }
        assert_eq!(b.state(), State::Open);
        assert!(!b.available() && b.pass().is_none());
        let b = breaker(0);
        for _ in 0..3 {
            b.record(Pass::Normal, false);
        }
        let probe = b.pass().unwrap();
        b.abandon(probe);
        assert_eq!(b.pass(), Some(Pass::Probe));
        b.record(Pass::Probe, false);
        assert!(matches!(*b.lock(), Inner::Open { .. }));
    }
}
