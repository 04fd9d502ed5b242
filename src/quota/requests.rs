//! Request limits of one key: a GCRA rate (`governor`) and a cap on requests in flight.
//!
//! The concurrency permit lives as long as the response body, streams included.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::headers::RateHeaders;
use super::refusals;
use super::shared::Lease;
use crate::config::LimitsConfig;

type Gcra = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// What governor last said was left, so reports can show it without spending a request.
struct Observed {
    since: Instant,
    /// `remaining << 32 | milliseconds since `since` at the observation`.
    packed: AtomicU64,
}

struct Rate {
    limit: NonZeroU32,
    gcra: Gcra,
    observed: Observed,
}

/// The request limits of one key.
pub struct RequestLimits {
    rate: Option<Rate>,
    concurrency: Option<(NonZeroU32, Arc<Semaphore>)>,
    clock: DefaultClock,
}

/// An admitted request: its headers, and the concurrency slot it holds.
pub struct Admission {
    pub headers: RateHeaders,
    slot: Slot,
}

/// The concurrency slot of an admitted request, in this process or in Redis.
enum Slot {
    None,
    Permit(OwnedSemaphorePermit),
    Lease(Lease),
}

impl Admission {
    /// The admission of a key without limits.
    pub fn unlimited() -> Self {
        Admission {
            headers: RateHeaders::default(),
            slot: Slot::None,
        }
    }

    /// An admission held in Redis: the lease is released when the answer is sent.
    pub fn leased(lease: Lease, headers: RateHeaders) -> Self {
        Admission {
            headers,
            slot: Slot::Lease(lease),
        }
    }

    /// Frees the concurrency slot now that the answer has started: for a stream that may stay
    /// open far longer than any request.
    pub fn release_on_answer(self, mut response: Response) -> Response {
        self.headers.apply(&mut response);
        response
    }

    /// Ties the concurrency slot to the response body, released when the body is done or dropped.
    pub fn hold_until_sent(self, mut response: Response) -> Response {
        self.headers.apply(&mut response);
        match self.slot {
            Slot::None => response,
            Slot::Permit(permit) => crate::held_body::hold_until_sent(response, permit),
            Slot::Lease(lease) => crate::held_body::hold_until_sent(response, lease),
        }
    }
}

impl RequestLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        let rate = config.requests_per_minute.map(|limit| Rate {
            limit,
            gcra: RateLimiter::direct(Quota::per_minute(limit))
                .with_middleware::<StateInformationMiddleware>(),
            observed: Observed {
                since: Instant::now(),
                packed: AtomicU64::new(u64::from(limit.get()) << 32),
            },
        });
        let concurrency = config
            .max_concurrent
            .map(|n| (n, Arc::new(Semaphore::new(n.get() as usize))));
        RequestLimits {
            rate,
            concurrency,
            clock: DefaultClock::default(),
        }
    }

    /// Admits a request or says which limit refused it and when to retry.
    pub fn admit(&self) -> Result<Admission, Box<Response>> {
        // The in-flight cap first: a request it turns away must not use up a slot of the rate.
        let slot = match &self.concurrency {
            None => Slot::None,
            Some((limit, semaphore)) => match semaphore.clone().try_acquire_owned() {
                Ok(permit) => Slot::Permit(permit),
                Err(_) => return Err(refusals::concurrency(limit.get())),
            },
        };
        let mut headers = RateHeaders::default();
        if let Some(rate) = &self.rate {
            let limit = rate.limit.get();
            match rate.gcra.check() {
                Ok(state) => {
                    let remaining = state.remaining_burst_capacity();
                    rate.observed.store(remaining);
                    refusals::push_requests(&mut headers, limit, remaining);
                }
                Err(not_until) => {
                    rate.observed.store(0);
                    return Err(refusals::rate(
                        limit,
                        not_until.wait_time_from(self.clock.now()),
                    ));
                }
            }
        }
        Ok(Admission { headers, slot })
    }

    /// Requests per minute: the limit and about how many are left now.
    pub fn rate_remaining(&self) -> Option<(u32, u32)> {
        let rate = self.rate.as_ref()?;
        Some((rate.limit.get(), rate.observed.now(rate.limit)))
    }

    /// Requests in flight: the limit and how many run now.
    pub fn in_flight(&self) -> Option<(u32, u32)> {
        let (limit, semaphore) = self.concurrency.as_ref()?;
        let free = semaphore.available_permits() as u32;
        Some((limit.get(), limit.get().saturating_sub(free)))
    }
}

impl Observed {
    fn store(&self, remaining: u32) {
        let ms = self.since.elapsed().as_millis() as u64 & 0xffff_ffff;
        self.packed
            .store(u64::from(remaining) << 32 | ms, Ordering::Relaxed);
    }

    /// What was left then, plus what GCRA has given back since: one request per 60 s / limit.
    fn now(&self, limit: NonZeroU32) -> u32 {
        let packed = self.packed.load(Ordering::Relaxed);
        let (remaining, at) = ((packed >> 32) as u32, packed & 0xffff_ffff);
        let now = self.since.elapsed().as_millis() as u64 & 0xffff_ffff;
        let elapsed = now.wrapping_sub(at) & 0xffff_ffff;
        let regained = elapsed * u64::from(limit.get()) / 60_000;
        (u64::from(remaining) + regained).min(u64::from(limit.get())) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;

    fn limits(rpm: Option<u32>, concurrent: Option<u32>) -> RequestLimits {
        RequestLimits::new(&LimitsConfig {
            requests_per_minute: rpm.and_then(NonZeroU32::new),
            max_concurrent: concurrent.and_then(NonZeroU32::new),
            ..LimitsConfig::default()
        })
    }

    fn header(response: &Response, name: &str) -> String {
        response.headers()[name].to_str().unwrap().to_owned()
    }

    #[test]
    fn rate_admits_exactly_the_limit_then_refuses_with_retry_after() {
        let key = limits(Some(3), None);
        let remaining: Vec<String> = (0..3)
            .map(|_| {
                let admission = key.admit().ok().unwrap();
                let mut response = Response::new(Body::empty());
                admission.headers.apply(&mut response);
                header(&response, "x-ratelimit-remaining-requests")
            })
            .collect();
        assert_eq!(remaining, ["2", "1", "0"]);
        assert_eq!(key.rate_remaining(), Some((3, 0)));
        let refused = key.admit().err().unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = header(&refused, "retry-after").parse().unwrap();
        assert!(
            (1..=20).contains(&retry),
            "one request frees up every 20 s: {retry}"
        );
        assert_eq!(header(&refused, "x-ratelimit-limit-requests"), "3");
    }

    #[test]
    fn concurrency_slots_return_when_the_body_is_dropped() {
        let key = limits(None, Some(1));
        let first = key.admit().ok().unwrap();
        let response = first.hold_until_sent(Response::new(Body::empty()));
        assert!(key.admit().is_err());
        assert_eq!(key.in_flight(), Some((1, 1)));
        drop(response);
        assert!(key.admit().is_ok());
    }

    /// A request the in-flight cap turns away has not used up a slot of the rate.
    #[test]
    fn a_request_refused_for_concurrency_costs_no_rate() {
        let key = limits(Some(2), Some(1));
        let held = key.admit().ok().unwrap();
        for _ in 0..3 {
            assert!(key.admit().is_err());
        }
        assert_eq!(key.rate_remaining(), Some((2, 1)));
        drop(held);
        assert!(
            key.admit().is_ok(),
            "the second slot of the rate is still there"
        );
    }
}
