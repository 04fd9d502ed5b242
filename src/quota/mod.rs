//! Per-key quotas: request rates and concurrency at the door, then token rates, daily tokens and
//! dollar budgets reserved from an estimate before the call and settled to the reported usage.
//!
//! Kept in this process ([`local`]) or, with `state.redis`, in the Redis the replicas share
//! ([`shared`]); a reservation not settled is released when dropped, so a failed call costs nothing.

mod calendar;
mod headers;
mod local;
mod refusals;
mod requests;
pub mod shared;

use std::sync::{Arc, Mutex};

use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use headers::RateHeaders;
pub use requests::Admission;
pub use shared::Shared;

use crate::config::{LimitsConfig, OnRedisError};
use crate::error::ApiError;
use crate::state::redis::RedisFailure;
use crate::usage::{Account, Picodollars, Spent};
use local::{LocalHold, LocalQuota};
use shared::{Lease, SharedQuota};

/// What a request is expected to use: its prompt plus the output it may produce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub tokens: u64,
    pub cost: Picodollars,
}

/// Which door a request comes through: a model endpoint reserves after reading its body, so
/// with shared quotas its admission is made then, in the same round trip as the reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Model,
    Other,
}

/// The quotas of one key.
pub struct KeyQuota {
    limits: LimitsConfig,
    local: LocalQuota,
    shared: Option<Arc<SharedQuota>>,
    /// Whether the key has any limit: without one, shared mode asks Redis nothing up front.
    limited: bool,
    /// The outage during which this key last fell back to local limits, so the warning is
    /// logged once per outage.
    warned: Mutex<Option<Arc<str>>>,
}

impl KeyQuota {
    /// A key's quotas over its account; `shared` keeps them in Redis instead.
    pub fn new(
        limits: Option<&LimitsConfig>,
        account: Arc<Account>,
        shared: Option<&Arc<Shared>>,
    ) -> Self {
        let limits = limits.cloned().unwrap_or_default();
        let limited = limits.requests_per_minute.is_some()
            || limits.max_concurrent.is_some()
            || limits.tokens_per_minute.is_some()
            || limits.tokens_per_day.is_some()
            || limits.budget_usd.is_some();
        KeyQuota {
            local: LocalQuota::new(limits.clone(), account.clone()),
            shared: shared.map(|s| s.quota(account.name())),
            limits,
            limited,
            warned: Mutex::new(None),
        }
    }

    /// The limits this quota enforces.
    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    /// Admits one request under the request rate and concurrency, or answers 429 (503 when
    /// shared state is unreachable and limits fail closed).
    pub async fn admit(&self, door: Door) -> Result<Admission, Box<Response>> {
        let Some(shared) = &self.shared else {
            return self.local.admit();
        };
        if door == Door::Model || !self.limited {
            return Ok(Admission::unlimited());
        }
        match shared.reserve(&self.limits, Estimate::default()).await {
            Ok(Ok((lease, headers))) => Ok(Admission::leased(lease, headers)),
            Ok(Err(refused)) => Err(refused),
            Err(failure) => {
                self.fall_back(&failure)?;
                self.local.admit()
            }
        }
    }

    /// Whether reservations need an estimate: the key limits tokens or dollars.
    pub fn needs_estimate(&self) -> bool {
        let l = &self.limits;
        l.tokens_per_minute.is_some() || l.tokens_per_day.is_some() || l.budget_usd.is_some()
    }

    /// Whether the key limits dollars, so that a model without a price deserves a warning.
    pub fn has_budget(&self) -> bool {
        self.limits.budget_usd.is_some()
    }

    /// Whether a request like `estimate` may be sent to its provider while its reservation is
    /// made (shared quotas with room to spare, see `state.redis.overlap_headroom`); if so, its
    /// share of that room is taken. Local reservations cost no round trip: never.
    pub fn overlaps(&self, estimate: Estimate) -> bool {
        match &self.shared {
            Some(shared) if self.limited => shared.overlaps(estimate),
            _ => false,
        }
    }

    /// Reserves `estimate` under every token and dollar limit, or says which one refused it.
    /// With shared quotas this is also the request's admission (see [`Door`]).
    pub async fn reserve(&self, estimate: Estimate) -> Result<Reservation, Box<Response>> {
        let Some(shared) = &self.shared else {
            let (hold, headers) = self.local.reserve(estimate)?;
            return Ok(Reservation::new(Hold::Local { hold }, headers));
        };
        if !self.limited {
            return Ok(Reservation::new(
                Hold::Shared(shared.unleased()),
                RateHeaders::default(),
            ));
        }
        match shared.reserve(&self.limits, estimate).await {
            Ok(Ok((lease, headers))) => Ok(Reservation::new(Hold::Shared(lease), headers)),
            Ok(Err(refused)) => Err(refused),
            Err(failure) => {
                self.fall_back(&failure)?;
                let admission = self.local.admit()?;
                let (hold, mut headers) = self.local.reserve(estimate)?;
                headers.extend(admission.headers.clone());
                let fallback = Hold::Fallback {
                    hold,
                    settle_later: shared.unleased(),
                    _slot: admission,
                };
                Ok(Reservation::new(fallback, headers))
            }
        }
    }

    /// Counts a request answered from the cache (a request, no tokens), returning the headers to
    /// send. With shared quotas the hit is admitted here, as a model request is at its reservation.
    pub async fn record_hit(&self, model: &str) -> Result<RateHeaders, Box<Response>> {
        if self.shared.is_none() {
            self.local.record_hit(model);
            return Ok(self.local.token_headers());
        }
        let mut reservation = self.reserve(Estimate::default()).await?;
        let headers = std::mem::take(&mut reservation.headers);
        let free = Spent {
            input_tokens: 0,
            output_tokens: 0,
            cost: 0,
        };
        reservation.settle(model, &free);
        Ok(headers)
    }

    /// The tokens headers after a whole answer settled: what is left now. `None` with shared
    /// quotas, whose figures are those of the admission (asking again would cost a round trip).
    pub fn token_headers(&self) -> Option<RateHeaders> {
        match self.shared {
            None => Some(self.local.token_headers()),
            Some(_) => None,
        }
    }

    /// Usage and what is left of each limit, for `GET /admin/usage`.
    pub async fn report(&self) -> Result<Value, RedisFailure> {
        match &self.shared {
            None => Ok(self.local.report()),
            Some(shared) => shared.report(&self.limits).await,
        }
    }

    /// Redis failed: under `deny` the 503 to send; under `allow`, go on with local limits,
    /// saying so once per outage.
    fn fall_back(&self, failure: &RedisFailure) -> Result<(), Box<Response>> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let policy = shared.on_error();
        if policy == OnRedisError::Deny {
            let message = format!(
                "Shared state is unavailable, so limits cannot be checked (state.on_redis_error is deny): {failure}"
            );
            return Err(Box::new(
                ApiError::state_unavailable(message).into_response(),
            ));
        }
        let cause: Arc<str> = failure.to_string().into();
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let outage = shared.outage();
        if warned.is_none() || outage.as_ref() != warned.as_ref() {
            tracing::warn!(
                key = %shared.name(),
                %cause,
                "Redis is unreachable: this replica enforces the key's limits alone (state.on_redis_error is allow)"
            );
            *warned = outage.or(Some(cause));
        }
        Ok(())
    }
}

/// Where a reservation is held.
enum Hold {
    /// In this process.
    Local {
        hold: LocalHold,
    },
    /// In this process while Redis is away (`on_redis_error: allow`), with the admission it
    /// made here; the settlement still goes to Redis, queued until it is back.
    Fallback {
        hold: LocalHold,
        settle_later: Lease,
        _slot: Admission,
    },
    Shared(Lease),
}

/// Tokens and dollars held for one request until it settles or is dropped.
pub struct Reservation {
    hold: Hold,
    /// The rate headers as of the reservation.
    pub headers: RateHeaders,
}

impl Reservation {
    fn new(hold: Hold, headers: RateHeaders) -> Self {
        Reservation { hold, headers }
    }

    /// Charges what the request used to `model` (`provider/model`) and returns the rest. With
    /// shared quotas the settlement is journaled here before this returns, and reaches Redis
    /// from the queue.
    pub fn settle(self, model: &str, spent: &Spent) {
        match self.hold {
            Hold::Local { hold } => hold.settle(model, spent),
            Hold::Fallback {
                hold, settle_later, ..
            } => {
                hold.settle(model, spent);
                settle_later.settle(model, spent);
            }
            Hold::Shared(lease) => lease.settle(model, spent),
        }
    }
}
