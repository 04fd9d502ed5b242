//! How a request survives failing upstreams: tries over a model's targets with jittered
//! exponential backoff, then its fallbacks, each try through its instance's circuit breaker
//! (`upstream::breaker`).
//!
//! Only failures that are not the client's fault are retried; the first byte of a stream sent to
//! the client ends all retrying (the caller decides when a try has succeeded).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rand::Rng;

use crate::config::RetryConfig;
use crate::error::ApiError;
use crate::routing::{Route, Target};
use crate::telemetry::Metrics;
use crate::telemetry::traces::{self, Attribute, TraceContext};
use crate::upstream::Failure;
use crate::upstream::instances::InstanceLease;

/// The longest `Retry-After` waited out, as the OpenAI SDKs cap it; a target asking for more is
/// left alone for the rest of the request.
const RETRY_AFTER_LIMIT: Duration = Duration::from_secs(60);

/// The pause before try `n + 1` (n counts from 1): `backoff · 2ⁿ⁻¹` with full jitter, capped by
/// `max_backoff`; an upstream's `Retry-After` wins when it is longer (up to
/// [`RETRY_AFTER_LIMIT`] and the deadline: [`Plan::failed`] benches a target asking for more).
fn pause(policy: &RetryConfig, tries: u32, retry_after: Option<Duration>) -> Duration {
    let base = policy.backoff.0.saturating_mul(1 << (tries - 1).min(16));
    let capped = base.min(policy.max_backoff.0);
    let jittered = capped.mul_f64(rand::rng().random_range(0.5..=1.0));
    retry_after.map_or(jittered, |asked| asked.max(jittered))
}

/// The tries of one request: targets of `routes[0]`, then of each fallback, until one succeeds, a
/// failure is the client's, or the deadline passes. A retry prefers a target not tried yet.
///
/// The caller drives it: [`Plan::next`] gives a target and a lease, [`Plan::failed`] hears how a
/// try failed and waits out the backoff.
pub struct Plan<'r> {
    routes: &'r [Arc<Route>],
    deadline: Instant,
    metrics: &'r Metrics,
    route: usize,
    tries: u32,
    tried: Vec<usize>,
    /// Targets of the current route that asked, by `Retry-After`, for a pause past
    /// [`RETRY_AFTER_LIMIT`] or the deadline: not tried again for this request.
    benched: Vec<usize>,
    failures: Vec<String>,
    last: Option<Failure>,
    /// The shortest rate-limit hold among the targets passed over for one, the `Retry-After`
    /// of an answer that nothing else could give.
    held: Option<Duration>,
    /// `chat` or `embeddings`, as each try's span names it.
    operation: &'static str,
}

impl<'r> Plan<'r> {
    pub fn new(routes: &'r [Arc<Route>], deadline: Instant, metrics: &'r Metrics) -> Self {
        Plan {
            routes,
            deadline,
            metrics,
            route: 0,
            tries: 0,
            tried: Vec::new(),
            benched: Vec::new(),
            failures: Vec::new(),
            last: None,
            held: None,
            operation: "chat",
        }
    }

    /// Names the operation in the tries' spans (`chat` by default).
    pub fn operation(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }

    /// The span of the try about to run on `target` through `lease`, when traces are
    /// exported: the provider, the model, the address, and which try of the request it is.
    pub fn try_span(&self, target: &Target, lease: &InstanceLease) -> Option<TraceContext> {
        if !traces::enabled() {
            return None;
        }
        let url = lease.instance().url();
        let address = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| url.to_owned());
        let route = self.routes.get(self.route).map(|r| r.name.clone());
        traces::child(
            format!("{} {}", self.operation, target.model),
            traces::Kind::Client,
            vec![
                Attribute::new("gen_ai.operation.name", self.operation),
                Attribute::new("gen_ai.request.model", target.model.clone()),
                Attribute::new("gen_ai.provider.name", target.upstream.name.clone()),
                Attribute::new("server.address", address),
                Attribute::new("switchboard.try", i64::from(self.tries)),
                Attribute::new("switchboard.route", route.unwrap_or_default()),
            ],
        )
    }
}

/// `work` run in the try's span, when there is one, so that what it sends carries the span's
/// trace context.
pub fn in_span<F: Future>(
    span: Option<TraceContext>,
    work: F,
) -> futures_util::future::Either<traces::WithContextFuture<F>, F> {
    match span {
        Some(context) => {
            futures_util::future::Either::Left(traces::WithContext::with_context(work, context))
        }
        None => futures_util::future::Either::Right(work),
    }
}

/// Ends a try's span: ok, or failed with the error's code (or status) as `error.type`.
pub fn end_span<T>(span: Option<TraceContext>, outcome: &Result<T, Failure>) {
    let error = outcome.as_ref().err().map(|failure| {
        let error = &failure.error;
        let kind = error
            .code
            .clone()
            .unwrap_or_else(|| error.status.as_u16().to_string());
        (kind, error.message.clone())
    });
    traces::end(span, error);
}

impl<'r> Plan<'r> {
    /// The next target to try and a lease on one of its instances, or the error to answer with
    /// when nothing is left.
    pub fn next(&mut self) -> Result<(&'r Target, InstanceLease), ApiError> {
        while let Some(route) = self.routes.get(self.route) {
            let spent =
                self.tries >= route.retry.attempts.max(1) || Instant::now() >= self.deadline;
            let chosen = if spent {
                None
            } else {
                route.choose(&self.tried, &self.benched)
            };
            let Some((index, lease)) = chosen else {
                if !spent {
                    // Tries were left: the targets not tried were held off, which the answer
                    // names beside the failures.
                    for i in self.untried(route).collect::<Vec<_>>() {
                        let target = &route.targets[i];
                        let hold = target.held();
                        self.note_held(hold);
                        self.failures.push(held_off(target, hold));
                    }
                }
                self.route += 1;
                self.tries = 0;
                self.tried.clear();
                self.benched.clear();
                if self.route < self.routes.len() && Instant::now() < self.deadline {
                    self.metrics.fallback(&self.routes[0].label);
                }
                continue;
            };
            self.tries += 1;
            if self.tries > 1 {
                self.metrics.retry(&route.label);
            }
            self.tried.push(index);
            return Ok((&route.targets[index], lease));
        }
        Err(exhausted(
            &self.routes[0].name,
            &self.failures,
            self.last.as_ref(),
            self.held,
        ))
    }

    /// Hears of a failed try. A failure the client caused ends the plan with that error;
    /// otherwise the backoff is waited out when the same model has tries left.
    pub async fn failed(&mut self, target: &Target, failure: Failure) -> Result<(), ApiError> {
        if !failure.retryable {
            // The request's own fault, passed on to the client as it is.
            tracing::debug!(target = %target.name(), error = %failure.error.message, "refused");
            return Err(*failure.error);
        }
        // The client hears only the last word; the operator needs every try's cause. Messages
        // from upstream are scrubbed of credentials by now.
        tracing::warn!(
            target = %target.name(),
            status = failure.error.status.as_u16(),
            error = %failure.error.message,
            "try failed"
        );
        self.failures
            .push(format!("{}: {}", target.name(), failure.error.message));
        if failure.rate_limited() {
            // Every request leaves this model alone for the wait; another target can answer now.
            target
                .upstream
                .holds
                .hold(&target.model, failure.retry_after);
            self.note_held(target.held());
        }
        if let Some(route) = self.routes.get(self.route) {
            // A rate-limited target is held for every request: the next try goes elsewhere at
            // once if it can, else waits the hold out.
            let asked = if !failure.rate_limited() {
                failure.retry_after
            } else if self.another_choice(route) {
                None
            } else {
                target.held()
            };
            let asked_too_long = asked.is_some_and(|asked| {
                asked > RETRY_AFTER_LIMIT || Instant::now() + asked >= self.deadline
            });
            if asked_too_long {
                // Waiting would spend the request's time on one target while others, or the
                // fallbacks, could answer now; past the deadline it could not even help.
                if let Some(&index) = self.tried.last() {
                    self.benched.push(index);
                }
            } else if self.tries < route.retry.attempts {
                let wait = pause(&route.retry, self.tries, asked);
                let until = (Instant::now() + wait).min(self.deadline);
                tokio::time::sleep_until(until.into()).await;
            }
        }
        self.last = Some(failure);
        Ok(())
    }
}

impl Plan<'_> {
    /// Keeps the shortest hold seen, for the `Retry-After` of a 429.
    fn note_held(&mut self, hold: Option<Duration>) {
        if let Some(hold) = hold {
            self.held = Some(self.held.map_or(hold, |h| h.min(hold)));
        }
    }

    /// The targets of `route` neither tried nor benched.
    fn untried(&self, route: &Route) -> impl Iterator<Item = usize> + use<'_> {
        (0..route.targets.len()).filter(|i| !self.tried.contains(i) && !self.benched.contains(i))
    }

    /// Whether a target of `route` other than those tried could take a try now.
    fn another_choice(&self, route: &Route) -> bool {
        self.untried(route).any(|i| {
            route.targets[i].held().is_none() && route.targets[i].upstream.instances.available()
        })
    }
}

/// Tries the plan's targets in turn until one answers or the plan gives up: the one retry loop
/// of every model endpoint, evaluating to `Result<(answer, &Target), ApiError>`.
/// `first_answer!(plan, |target, lease| attempt)` runs the `attempt` future for each try.
///
/// A macro rather than a function taking an async callback: a handler's future must be `Send`,
/// which rustc cannot yet prove through a generic async callback that borrows (rust-lang/rust
/// issue 100013, "lifetime bound not satisfied").
macro_rules! first_answer {
    ($plan:expr, |$target:ident, $lease:ident| $attempt:expr) => {
        // A labelled block rather than an async one: no future of its own to size and move.
        'tries: {
            let mut plan = $plan;
            loop {
                let ($target, $lease) = match plan.next() {
                    Ok(next) => next,
                    Err(error) => break 'tries Err(error),
                };
                let span = plan.try_span($target, &$lease);
                let tried = $crate::resilience::in_span(span.clone(), $attempt).await;
                $crate::resilience::end_span(span, &tried);
                match tried {
                    Ok(answer) => break 'tries Ok((answer, $target)),
                    Err(failure) => {
                        if let Err(error) = plan.failed($target, failure).await {
                            break 'tries Err(error);
                        }
                    }
                }
            }
        }
    };
}
pub(crate) use first_answer;

/// Runs one try's work until `until`; past it, the try failed with a 504 saying `late`.
///
/// A combinator, not an `async fn`: an async fn keeps its argument's slot beside the timer that
/// took the work over, which doubled the size of every handler future (the request path copies
/// those futures whole, bench/README.md).
pub fn within<T>(
    until: Instant,
    late: impl FnOnce() -> String,
    work: impl Future<Output = Result<T, Failure>>,
) -> impl Future<Output = Result<T, Failure>> {
    tokio::time::timeout_at(until.into(), work)
        .map(|tried| tried.unwrap_or_else(|_| Err(Failure::timeout(late()))))
}

/// When a try's first token (its whole answer, unstreamed) must have come: `first_token` from
/// now, within the request's deadline.
pub fn first_token_due(first_token: Option<Duration>, deadline: Instant) -> Instant {
    first_token.map_or(deadline, |t| (Instant::now() + t).min(deadline))
}

/// Why a target with tries left was not tried.
fn held_off(target: &Target, hold: Option<Duration>) -> String {
    // Only discovery leaves an upstream with no instance at all.
    let why = if let Some(hold) = hold {
        format!(
            "rate limited by the provider (429) for another {:.1}s",
            hold.as_secs_f64()
        )
    } else if target.upstream.instances.all().is_empty() {
        "no instance: DNS discovery found no address".to_owned()
    } else {
        "no instance available: circuit breakers open".to_owned()
    };
    format!("{} ({why})", target.name())
}

/// Nothing left to try: 503 naming every failure, 504 when the last try timed out, 429 with
/// `Retry-After` when the provider rate limited the last try or held off every target.
fn exhausted(
    model: &str,
    failures: &[String],
    last: Option<&Failure>,
    held: Option<Duration>,
) -> ApiError {
    let what = if failures.is_empty() {
        "no target is configured".to_owned()
    } else {
        failures.join("; ")
    };
    let message = format!("Model '{model}' could not be served: {what}.");
    match last {
        Some(failure) if failure.timed_out => ApiError::gateway_timeout(message),
        Some(failure) if failure.rate_limited() => ApiError {
            retry_after: held,
            ..ApiError::upstream_rate_limited(message)
        },
        None if held.is_some() => ApiError {
            retry_after: held,
            ..ApiError::upstream_rate_limited(message)
        },
        _ => ApiError::service_unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;

    #[test]
    fn pauses_double_with_jitter_up_to_the_cap_and_honour_retry_after() {
        let policy = RetryConfig {
            attempts: 5,
            backoff: Span(Duration::from_millis(100)),
            max_backoff: Span(Duration::from_millis(300)),
        };
        for _ in 0..50 {
            let first = pause(&policy, 1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = pause(&policy, 3, None);
            assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
        }
        let asked = pause(&policy, 1, Some(Duration::from_secs(2)));
        assert_eq!(asked, Duration::from_secs(2));
    }
}
