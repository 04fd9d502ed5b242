//! What one request is charged: the reservation made under the caller's quotas before the call,
//! settled from the provider's usage report, or from the text it produced when it reports none.
//!
//! A charge dropped without settling releases its reservation: a failed call costs nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use axum::response::Response;
use bytes::Bytes;
use switchboard_providers::chat::{ChatChunk, ChatResponse, Usage};

use crate::auth::Caller;
use crate::quota::{Estimate, KeyQuota, RateHeaders, Reservation};
use crate::routing::{Route, Target};
use crate::tokens;
use crate::usage::{Price, Spent};

/// A request's reservation and what it has produced so far.
pub struct Charge {
    reservation: Reservation,
    /// `provider/model` actually used.
    target: String,
    price: Price,
    /// Prompt tokens estimated before the call, when a limit needed them.
    prompt: Option<u64>,
    /// Counts the prompt after all, if no limit did before the call and the provider reports
    /// no usage.
    count_prompt: Option<Box<dyn FnOnce() -> u64 + Send>>,
    /// Output seen, counted only if the provider reports no usage.
    text: String,
    raw: Vec<Bytes>,
    /// The request's audit record, told what was spent.
    audit: Option<Arc<crate::audit::Record>>,
}

/// A request's charge worked out, its reservation still to make.
pub struct Planned<'a> {
    quota: &'a KeyQuota,
    estimate: Estimate,
    prompt: Option<u64>,
}

impl Charge {
    /// Works out what a request may use under the caller's quotas: `prompt()` tokens in and
    /// `output` out. `None` for an open gateway, which accounts nothing.
    /// Whichever target of `routes` (a route and its fallbacks) answers, the reservation covers
    /// the dearest of them: a fallback to a dearer model cannot take a key past its limits.
    pub fn plan<'a>(
        caller: &'a Caller,
        routes: &[Arc<Route>],
        prompt: impl FnOnce() -> u64,
        output: impl Fn(&Target) -> u64,
    ) -> Option<Planned<'a>> {
        let quota = caller.quota.as_deref()?;
        if !quota.needs_estimate() {
            return Some(Planned {
                quota,
                estimate: Estimate::default(),
                prompt: None,
            });
        }
        let prompt = prompt();
        let estimate = routes
            .iter()
            .flat_map(|route| &route.targets)
            .map(|target| {
                let output = output(target);
                let price = price_of(target, quota.has_budget());
                Estimate {
                    tokens: prompt + output,
                    cost: price.cost(prompt, output),
                }
            })
            .fold(Estimate::default(), |a, b| Estimate {
                tokens: a.tokens.max(b.tokens),
                cost: a.cost.max(b.cost),
            });
        Some(Planned {
            quota,
            estimate,
            prompt: Some(prompt),
        })
    }

    /// How to count the prompt if the provider reports no usage and no limit counted it before
    /// the call: only then is the work done.
    pub fn count_prompt_if_unreported(&mut self, count: impl FnOnce() -> u64 + Send + 'static) {
        if self.prompt.is_none() {
            self.count_prompt = Some(Box::new(count));
        }
    }

    /// Charges the target that answered, at its price.
    pub fn retarget(mut self, target: &Target) -> Charge {
        target.name().clone_into(&mut self.target);
        self.price = target.price.unwrap_or_default();
        self
    }

    /// The tokens headers of the reservation.
    pub fn headers(&self) -> &RateHeaders {
        &self.reservation.headers
    }

    /// Notes the output of a translated chunk.
    pub fn observe_chunk(&mut self, chunk: &ChatChunk) {
        for choice in &chunk.choices {
            let delta = &choice.delta;
            self.text.extend(delta.content.as_deref());
            self.text.extend(delta.refusal.as_deref());
            for call in delta.tool_calls.iter().flatten() {
                if let Some(function) = &call.function {
                    self.text.extend(function.name.as_deref());
                    self.text.extend(function.arguments.as_deref());
                }
            }
        }
    }

    /// Notes a provider's chunk passed through unparsed; parsed only if usage never comes.
    pub fn observe_verbatim(&mut self, data: &Bytes) {
        self.raw.push(data.clone());
    }

    /// Notes the output of a whole answer.
    pub fn observe_response(&mut self, response: &ChatResponse) {
        for choice in &response.choices {
            let message = &choice.message;
            self.text.extend(message.content.as_deref());
            self.text.extend(message.refusal.as_deref());
            for call in message.tool_calls.iter().flatten() {
                self.text.push_str(&call.function.name);
                self.text.push_str(&call.function.arguments);
            }
        }
    }

    /// Settles to the provider's usage, else to the output seen; with neither, the call produced
    /// nothing and the reservation is released.
    pub fn settle(mut self, usage: Option<&Usage>) {
        let (input, output) = match usage {
            Some(usage) => (usage.prompt_tokens, usage.completion_tokens),
            None => {
                for raw in std::mem::take(&mut self.raw) {
                    if let Ok(chunk) = serde_json::from_slice::<ChatChunk>(&raw) {
                        self.observe_chunk(&chunk);
                    }
                }
                if self.text.is_empty() {
                    return;
                }
                let counted = self.count_prompt.take().map(|count| count());
                (
                    self.prompt.or(counted).unwrap_or(0),
                    tokens::count(&self.text),
                )
            }
        };
        self.settle_tokens(input, output)
    }

    /// Settles to known token counts (embeddings report only input).
    pub fn settle_tokens(self, input: u64, output: u64) {
        let spent = Spent {
            input_tokens: input,
            output_tokens: output,
            cost: self.price.cost(input, output),
        };
        if let Some(record) = &self.audit {
            record.note(|line| {
                line.input_tokens = Some(input);
                line.output_tokens = Some(output);
                line.cost_usd = Some(crate::usage::usd(spent.cost));
            });
        }
        self.reservation.settle(&self.target, &spent);
    }
}

impl Planned<'_> {
    /// Reserves the charge, or answers the refusal (429; 503 when shared limits fail closed).
    pub async fn reserve(self) -> Result<Charge, Box<Response>> {
        Ok(Charge {
            reservation: self.quota.reserve(self.estimate).await?,
            target: String::new(),
            price: Price::default(),
            prompt: self.prompt,
            count_prompt: None,
            text: String::new(),
            raw: Vec::new(),
            audit: crate::audit::current(),
        })
    }
}

/// Reserves a request's charge and makes its provider `call`: the reservation first, or, for a
/// key with room to spare under shared limits (`KeyQuota::overlaps`), both at once, so Redis's
/// round trip hides behind the provider's. Either way the call's outcome is only returned once
/// the reservation admitted it: a refusal drops (cancels) the call and is answered instead.
pub async fn reserve_and_call<T>(
    planned: Option<Planned<'_>>,
    call: impl Future<Output = T>,
) -> Result<(Option<Charge>, T), Box<Response>> {
    let Some(planned) = planned else {
        return Ok((None, call.await));
    };
    if !planned.quota.overlaps(planned.estimate) {
        let charge = planned.reserve().await?;
        return Ok((Some(charge), call.await));
    }
    let reserve = planned.reserve();
    tokio::pin!(reserve, call);
    tokio::select! {
        // The call is polled first: the provider's request, the longer wait, goes out first.
        biased;
        answer = &mut call => Ok((Some(reserve.await?), answer)),
        charge = &mut reserve => {
            let charge = charge?;
            Ok((Some(charge), call.await))
        }
    }
}

fn price_of(target: &Target, budgeted: bool) -> Price {
    target.price.unwrap_or_else(|| {
        if budgeted {
            warn_unpriced(target.name());
        }
        Price::default()
    })
}

/// Says once per model that a budget cannot see what it costs.
fn warn_unpriced(model: &str) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if warned.insert(model.to_owned()) {
        tracing::warn!(
            model,
            "no price known for this model: budgets count it as free; set `pricing:` on its target"
        );
    }
}
