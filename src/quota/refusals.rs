//! The 429 answers of every limit, in OpenAI's words and headers: one place, so a refusal reads
//! the same whether the figures came from this process or from the Redis the replicas share.

use std::time::Duration;

use axum::response::Response;

use super::calendar::{Now, midnight};
use super::headers::{RateHeaders, Unit, openai_duration, rejection};
use crate::config::{BudgetConfig, BudgetPeriod};
use crate::error::ApiError;
use crate::usage::{Picodollars, usd};

/// Refused: as many requests as `max_concurrent` are in flight.
pub fn concurrency(limit: u32) -> Box<Response> {
    let message = format!(
        "Rate limit reached: max_concurrent is {limit} requests in flight for this key. Try again when one finishes."
    );
    Box::new(rejection(
        ApiError::rate_limited(message),
        Some(Duration::from_secs(1)),
        &RateHeaders::default(),
    ))
}

/// Refused by `requests_per_minute`, with a slot free again in `wait`.
pub fn rate(limit: u32, wait: Duration) -> Box<Response> {
    let mut headers = RateHeaders::default();
    push_requests(&mut headers, limit, 0);
    let message = format!(
        "Rate limit reached: requests_per_minute is {limit} for this key. Try again in {}.",
        openai_duration(wait)
    );
    Box::new(rejection(
        ApiError::rate_limited(message),
        Some(wait),
        &headers,
    ))
}

/// The requests trio: `remaining` left, one regained every `60 s / limit`.
pub fn push_requests(headers: &mut RateHeaders, limit: u32, remaining: u32) {
    let per_request = Duration::from_secs(60) / limit.max(1);
    let reset = per_request * (limit - remaining.min(limit));
    headers.push(Unit::Requests, limit.into(), remaining.into(), reset);
}

/// Refused by `tokens_per_day`: too large for any day, or the day's tokens are used or reserved.
pub fn tokens_per_day(limit: u64, used: u64, estimate: u64, now: &Now) -> Box<Response> {
    if estimate > limit {
        let message = format!(
            "Request too large: it may use {estimate} tokens (prompt plus max_tokens) and tokens_per_day is {limit} for this key. Lower max_tokens or shorten the prompt."
        );
        return Box::new(rejection(
            ApiError::tokens_limited(message),
            None,
            &RateHeaders::default(),
        ));
    }
    let today = now.day();
    let message = format!(
        "You exceeded your daily token quota: tokens_per_day is {limit} for this key, {used} are used or reserved today and this request may use {estimate}. It resets at {}.",
        midnight(today + 1)
    );
    let wait = Duration::from_secs(now.until(today + 1));
    Box::new(rejection(
        ApiError::insufficient_quota(message),
        Some(wait),
        &RateHeaders::default(),
    ))
}

/// Refused by `budget_usd`: too dear for any period, or the period's money is spent or reserved.
pub fn budget(
    budget: &BudgetConfig,
    spent: Picodollars,
    cost: Picodollars,
    now: &Now,
) -> Box<Response> {
    let period = period_name(budget.period);
    if cost > crate::usage::picodollars(budget.amount) {
        let message = format!(
            "Request too large: it may cost ${:.6} and budget_usd is ${} per {period} for this key. Lower max_tokens or shorten the prompt.",
            usd(cost),
            budget.amount,
        );
        return Box::new(rejection(
            ApiError::rate_limited(message),
            None,
            &RateHeaders::default(),
        ));
    }
    let (_, next) = now.period(budget.period);
    let message = format!(
        "You exceeded your budget: budget_usd is ${} per {period} for this key, ${:.6} is spent or reserved and this request may cost ${:.6}. It resets at {}.",
        budget.amount,
        usd(spent),
        usd(cost),
        midnight(next)
    );
    let wait = Duration::from_secs(now.until(next));
    Box::new(rejection(
        ApiError::insufficient_quota(message),
        Some(wait),
        &RateHeaders::default(),
    ))
}

/// Refused by `tokens_per_minute`: larger than a minute's tokens, or `level` are left now.
pub fn tokens_per_minute(tpm: u32, level: f64, estimate: u64) -> Box<Response> {
    let capacity = f64::from(tpm);
    let needed = estimate as f64;
    let mut headers = RateHeaders::default();
    push_tokens(&mut headers, tpm, level);
    let (message, wait) = if needed > capacity {
        (
            format!(
                "Request too large: it may use {estimate} tokens (prompt plus max_tokens) and tokens_per_minute is {tpm} for this key. Lower max_tokens or shorten the prompt."
            ),
            None,
        )
    } else {
        let wait = Duration::from_secs_f64((needed - level) * 60.0 / capacity);
        (
            format!(
                "Rate limit reached: tokens_per_minute is {tpm} for this key; {} are left and this request may use {estimate}. Try again in {}.",
                level.max(0.0) as u64,
                openai_duration(wait)
            ),
            Some(wait),
        )
    };
    Box::new(rejection(ApiError::tokens_limited(message), wait, &headers))
}

/// The tokens trio of a per-minute bucket at `level`.
pub fn push_tokens(headers: &mut RateHeaders, tpm: u32, level: f64) {
    let capacity = f64::from(tpm);
    let reset = Duration::from_secs_f64(((capacity - level) * 60.0 / capacity).max(0.0));
    headers.push(Unit::Tokens, tpm.into(), level.max(0.0) as u64, reset);
}

/// The tokens trio of a daily allowance with `used` tokens used or reserved.
pub fn push_daily(headers: &mut RateHeaders, limit: u64, used: u64, now: &Now) {
    let reset = Duration::from_secs(now.until(now.day() + 1));
    headers.push(Unit::Tokens, limit, limit.saturating_sub(used), reset);
}

pub fn period_name(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Day => "day",
        BudgetPeriod::Week => "week",
        BudgetPeriod::Month => "month",
    }
}
