//! Quotas kept in this process: every check and reservation of a key happens under its
//! account's lock, so concurrent requests can never together exceed a limit.
//!
//! The embedded mode's quotas, and the fallback of `on_redis_error: allow` while Redis is away.

use std::sync::Arc;
use std::time::Instant;

use axum::response::Response;
use serde_json::{Value, json};

use super::Estimate;
use super::calendar::{Now, midnight};
use super::headers::RateHeaders;
use super::refusals::{self, period_name};
use super::requests::{Admission, RequestLimits};
use crate::config::LimitsConfig;
use crate::usage::{Account, AccountState, Bucket, Spent, picodollars, usd};

/// The quotas of one key, over the usage of its account.
pub struct LocalQuota {
    limits: LimitsConfig,
    requests: RequestLimits,
    account: Arc<Account>,
}

impl LocalQuota {
    pub fn new(limits: LimitsConfig, account: Arc<Account>) -> Self {
        LocalQuota {
            requests: RequestLimits::new(&limits),
            limits,
            account,
        }
    }

    /// Admits one request under the request rate and concurrency, or answers 429.
    pub fn admit(&self) -> Result<Admission, Box<Response>> {
        self.requests.admit()
    }

    /// Reserves `estimate` under every token and dollar limit, or says which one refused it.
    pub fn reserve(&self, estimate: Estimate) -> Result<(LocalHold, RateHeaders), Box<Response>> {
        let now = Now::current();
        let mut state = self.account.lock();
        let mut headers = RateHeaders::default();
        self.allowance(&state, &now, estimate)?;
        if let Some(tpm) = self.limits.tokens_per_minute {
            let bucket = refilled(&mut state, tpm.get());
            let needed = estimate.tokens as f64;
            if needed > f64::from(tpm.get()) || bucket.level < needed {
                return Err(refusals::tokens_per_minute(
                    tpm.get(),
                    bucket.level,
                    estimate.tokens,
                ));
            }
            bucket.level -= needed;
            refusals::push_tokens(&mut headers, tpm.get(), bucket.level);
        } else {
            self.daily_headers(&state, &now, estimate.tokens, &mut headers);
        }
        state.reserved_tokens += estimate.tokens;
        state.reserved_cost += estimate.cost;
        let hold = LocalHold {
            account: self.account.clone(),
            held: estimate,
            tpm: self.limits.tokens_per_minute.map(|t| t.get()),
            open: true,
        };
        Ok((hold, headers))
    }

    /// Counts a request answered from the cache: a request, and no tokens.
    pub fn record_hit(&self, model: &str) {
        let free = Spent {
            input_tokens: 0,
            output_tokens: 0,
            cost: 0,
        };
        self.account
            .settle(Now::current().day(), model, &free, (0, 0));
    }

    /// The tokens headers as they stand, for answers that reserve nothing (cache hits).
    pub fn token_headers(&self) -> RateHeaders {
        let mut headers = RateHeaders::default();
        let mut state = self.account.lock();
        if let Some(tpm) = self.limits.tokens_per_minute {
            let level = refilled(&mut state, tpm.get()).level;
            refusals::push_tokens(&mut headers, tpm.get(), level);
        } else {
            self.daily_headers(&state, &Now::current(), 0, &mut headers);
        }
        headers
    }

    /// A refusal by the daily tokens or the budget.
    fn allowance(
        &self,
        state: &AccountState,
        now: &Now,
        estimate: Estimate,
    ) -> Result<(), Box<Response>> {
        let today = now.day();
        if let Some(limit) = self.limits.tokens_per_day {
            let used = state.totals.between(today, today).tokens + state.reserved_tokens;
            if estimate.tokens > limit.get() || used + estimate.tokens > limit.get() {
                return Err(refusals::tokens_per_day(
                    limit.get(),
                    used,
                    estimate.tokens,
                    now,
                ));
            }
        }
        if let Some(budget) = &self.limits.budget_usd {
            let (first, _) = now.period(budget.period);
            let spent = state.totals.between(first, today).cost + state.reserved_cost;
            let amount = picodollars(budget.amount);
            if estimate.cost > amount || spent + estimate.cost > amount {
                return Err(refusals::budget(budget, spent, estimate.cost, now));
            }
        }
        Ok(())
    }

    /// Without a per-minute limit, the daily one fills the tokens headers.
    fn daily_headers(
        &self,
        state: &AccountState,
        now: &Now,
        extra: u64,
        headers: &mut RateHeaders,
    ) {
        if let Some(limit) = self.limits.tokens_per_day {
            let today = now.day();
            let used = state.totals.between(today, today).tokens + state.reserved_tokens + extra;
            refusals::push_daily(headers, limit.get(), used, now);
        }
    }

    /// Usage and what is left of each limit, for `GET /admin/usage`.
    pub fn report(&self) -> Value {
        let now = Now::current();
        let today = now.day();
        let mut state = self.account.lock();
        let mut limits = serde_json::Map::new();
        if let Some((limit, remaining)) = self.requests.rate_remaining() {
            limits.insert(
                "requests_per_minute".into(),
                json!({"limit": limit, "remaining": remaining}),
            );
        }
        if let Some((limit, in_flight)) = self.requests.in_flight() {
            limits.insert(
                "max_concurrent".into(),
                json!({"limit": limit, "in_flight": in_flight}),
            );
        }
        if let Some(tpm) = self.limits.tokens_per_minute {
            let level = refilled(&mut state, tpm.get()).level;
            limits.insert(
                "tokens_per_minute".into(),
                json!({"limit": tpm, "remaining": level.max(0.0) as u64}),
            );
        }
        if let Some(limit) = self.limits.tokens_per_day {
            let used = state.totals.between(today, today).tokens;
            limits.insert(
                "tokens_per_day".into(),
                json!({
                    "limit": limit, "used": used, "reserved": state.reserved_tokens,
                    "remaining": limit.get().saturating_sub(used + state.reserved_tokens),
                    "resets_at": midnight(today + 1),
                }),
            );
        }
        if let Some(budget) = self.limits.budget_usd {
            let (first, next) = now.period(budget.period);
            let spent = state.totals.between(first, today).cost;
            let amount = picodollars(budget.amount);
            limits.insert(
                "budget_usd".into(),
                json!({
                    "amount": budget.amount, "period": period_name(budget.period),
                    "spent": usd(spent), "reserved": usd(state.reserved_cost),
                    "remaining": usd(amount.saturating_sub(spent + state.reserved_cost)),
                    "resets_at": midnight(next),
                }),
            );
        }
        let models: serde_json::Map<String, Value> = state
            .totals
            .models
            .iter()
            .map(|(model, u)| {
                (
                    model.clone(),
                    json!({
                        "requests": u.requests, "input_tokens": u.input_tokens,
                        "output_tokens": u.output_tokens, "cost_usd": usd(u.cost),
                    }),
                )
            })
            .collect();
        let sum = |f: fn(&crate::usage::ModelUsage) -> u64| {
            state.totals.models.values().map(f).sum::<u64>()
        };
        json!({
            "name": self.account.name(),
            "requests": sum(|u| u.requests),
            "input_tokens": sum(|u| u.input_tokens),
            "output_tokens": sum(|u| u.output_tokens),
            "cost_usd": usd(sum(|u| u.cost)),
            "models": models,
            "limits": limits,
        })
    }
}

/// The key's per-minute bucket, refilled for the time since it was last touched.
fn refilled(state: &mut AccountState, tpm: u32) -> &mut Bucket {
    let now = Instant::now();
    let capacity = f64::from(tpm);
    let bucket = state.bucket.get_or_insert(Bucket {
        level: capacity,
        updated: now,
    });
    let elapsed = now.duration_since(bucket.updated).as_secs_f64();
    bucket.level = (bucket.level + elapsed * capacity / 60.0).min(capacity);
    bucket.updated = now;
    bucket
}

/// Tokens and dollars held in this process for one request until it settles or is dropped.
pub struct LocalHold {
    account: Arc<Account>,
    held: Estimate,
    /// The per-minute limit the bucket was charged under.
    tpm: Option<u32>,
    open: bool,
}

impl LocalHold {
    /// Charges what the request used to `model` (`provider/model`) and returns the rest.
    pub fn settle(mut self, model: &str, spent: &Spent) {
        self.open = false;
        let used = spent.input_tokens + spent.output_tokens;
        self.refund_bucket(self.held.tokens as f64 - used as f64);
        self.account.settle(
            Now::current().day(),
            model,
            spent,
            (self.held.tokens, self.held.cost),
        );
    }

    fn refund_bucket(&self, tokens: f64) {
        if let Some(tpm) = self.tpm {
            let mut state = self.account.lock();
            let bucket = refilled(&mut state, tpm);
            bucket.level = (bucket.level + tokens).min(f64::from(tpm));
        }
    }
}

impl Drop for LocalHold {
    fn drop(&mut self) {
        if self.open {
            self.refund_bucket(self.held.tokens as f64);
            self.account.release((self.held.tokens, self.held.cost));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BudgetConfig, BudgetPeriod};
    use crate::usage::{Ledger, Picodollars};
    use axum::http::StatusCode;
    use std::num::{NonZeroU32, NonZeroU64};

    fn quota(limits: LimitsConfig) -> (LocalQuota, Arc<Account>) {
        let account = Ledger::in_memory(["k"]).account("k");
        (LocalQuota::new(limits, account.clone()), account)
    }

    fn spent(tokens: u64, cost: Picodollars) -> Spent {
        Spent {
            input_tokens: tokens,
            output_tokens: 0,
            cost,
        }
    }

    fn code(response: &Response) -> StatusCode {
        response.status()
    }

    #[test]
    fn daily_tokens_admit_exactly_and_settle_to_actual_usage() {
        let (quota, account) = quota(LimitsConfig {
            tokens_per_day: NonZeroU64::new(100),
            ..Default::default()
        });
        let estimate = Estimate {
            tokens: 40,
            cost: 0,
        };
        let a = quota.reserve(estimate).ok().unwrap().0;
        let b = quota.reserve(estimate).ok().unwrap().0;
        let refused = quota.reserve(estimate).err().unwrap();
        assert_eq!(code(&refused), StatusCode::TOO_MANY_REQUESTS);
        a.settle("p/m", &spent(10, 0));
        drop(b); // failed upstream: released
        assert_eq!(account.lock().reserved_tokens, 0);
        let today = Now::current().day();
        assert_eq!(account.lock().totals.between(today, today).tokens, 10);
        // 10 used: two more reservations of 40 fit, a third does not.
        let _c = quota.reserve(estimate).ok().unwrap().0;
        let _d = quota.reserve(estimate).ok().unwrap().0;
        assert!(quota.reserve(estimate).is_err());
    }

    #[test]
    fn budget_refusal_is_insufficient_quota_until_the_period_resets() {
        let (quota, _) = quota(LimitsConfig {
            budget_usd: Some(BudgetConfig {
                amount: 0.18,
                period: BudgetPeriod::Month,
            }),
            ..Default::default()
        });
        let call = Estimate {
            tokens: 18,
            cost: picodollars(0.018),
        };
        for _ in 0..10 {
            quota
                .reserve(call)
                .ok()
                .unwrap()
                .0
                .settle("p/m", &spent(18, call.cost));
        }
        let refused = quota.reserve(call).err().unwrap();
        let retry: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=31 * 86_400).contains(&retry), "{retry}");
        assert_eq!(quota.report()["limits"]["budget_usd"]["remaining"], 0.0);
        assert_eq!(quota.report()["requests"], 10);
    }

    #[test]
    fn tokens_per_minute_reports_headers_and_refunds_unused_tokens() {
        let (quota, _) = quota(LimitsConfig {
            tokens_per_minute: NonZeroU32::new(1000),
            ..Default::default()
        });
        let (r, headers) = quota
            .reserve(Estimate {
                tokens: 600,
                cost: 0,
            })
            .ok()
            .unwrap();
        let mut response = Response::new(axum::body::Body::empty());
        headers.apply(&mut response);
        assert_eq!(response.headers()["x-ratelimit-remaining-tokens"], "400");
        assert_eq!(response.headers()["x-ratelimit-limit-tokens"], "1000");
        assert!(
            quota
                .reserve(Estimate {
                    tokens: 600,
                    cost: 0
                })
                .is_err()
        );
        r.settle("p/m", &spent(100, 0));
        assert!(
            quota
                .reserve(Estimate {
                    tokens: 600,
                    cost: 0
                })
                .is_ok(),
            "500 unused came back"
        );
        let too_large = quota
            .reserve(Estimate {
                tokens: 5000,
                cost: 0,
            })
            .err()
            .unwrap();
        assert_eq!(code(&too_large), StatusCode::TOO_MANY_REQUESTS);
    }
}
