//! Quotas the replicas share through Redis: one Lua script admits a request and reserves its
//! tokens and money under every limit of its key, in one round trip; settlements are journaled
//! on this replica's disk and written to Redis after the answer (see `outbox`).
//!
//! A request's hold is a lease with an expiry, renewed while it runs: a replica killed mid-request
//! frees its slots within `state.redis.lease`. Usage is keyed by the virtual key's name.

mod ahead;
mod journal;
mod leases;
mod outbox;
mod room;

pub use journal::unacknowledged;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use serde_json::{Value, json};

use super::Estimate;
use super::calendar::{Now, midnight};
use super::headers::RateHeaders;
use super::refusals::{self, period_name};
use crate::config::{LimitsConfig, OnRedisError, RedisConfig};
use crate::state::StateError;
use crate::state::redis::{Redis, RedisFailure};
use crate::telemetry::Metrics;
use crate::usage::{Spent, Totals, picodollars, usd};
use ahead::{AHEAD, Ahead, Outcome};
use journal::{Record, SettlementJournal};
use leases::Leases;
use outbox::{Outbox, Settlement};
use room::{Left, Room};

static RESERVE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(concat!(
        include_str!("settle_fn.lua"),
        include_str!("reserve.lua")
    ))
});
static REPORT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("report.lua")));
static IMPORT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("import.lua")));

/// What every key's shared quota uses: the Redis, the settlement queue, the lease renewals.
pub struct Shared {
    redis: Arc<Redis>,
    outbox: Outbox,
    journal: Option<Arc<SettlementJournal>>,
    leases: Leases,
    lease: Duration,
    on_error: OnRedisError,
    /// `state.redis.overlap_headroom`.
    headroom: u64,
    /// `state.redis.reserve_ahead`.
    ahead: bool,
}

impl Shared {
    /// With `data_dir` (a gateway, not a one-off command), settlements are journaled there
    /// before their answers end, and those a previous run left unwritten are queued again.
    pub fn new(
        redis: Arc<Redis>,
        config: &RedisConfig,
        on_error: OnRedisError,
        metrics: Arc<Metrics>,
        data_dir: Option<&Path>,
    ) -> Result<Arc<Self>, StateError> {
        let (journal, unwritten) = match data_dir {
            Some(dir) => {
                let (journal, unwritten) = SettlementJournal::open(dir)?;
                (Some(Arc::new(journal)), unwritten)
            }
            None => (None, Vec::new()),
        };
        let shared = Arc::new(Shared {
            redis,
            outbox: Outbox::new(
                config.max_queued_settlements,
                config.settlement_linger.0,
                metrics,
                journal.clone(),
            ),
            journal,
            leases: Leases::default(),
            lease: config.lease.0,
            on_error,
            headroom: config.overlap_headroom.into(),
            ahead: config.reserve_ahead,
        });
        let replayed = unwritten
            .into_iter()
            .map(|(seq, spent)| Settlement {
                seq,
                keys: shared.key_names(&spent.key),
                charge: true,
                unused: false,
                hold: None,
                spent,
            })
            .collect();
        shared.outbox.replay(replayed);
        Ok(shared)
    }

    /// Writes settlements, renews leases and keeps the journal for as long as the gateway runs.
    pub async fn run(self: Arc<Self>) {
        tokio::join!(
            self.outbox.run(self.redis.clone()),
            self.leases.renew(self.redis.clone(), self.lease),
            self.maintain_journal()
        );
    }

    /// Every second: acknowledgements written, the journal on the disk, folded when long.
    async fn maintain_journal(&self) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let journal = journal.clone();
            match tokio::task::spawn_blocking(move || journal.maintain()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "cannot keep the settlements journal"),
                Err(error) => tracing::error!(%error, "the settlements journal's upkeep failed"),
            }
        }
    }

    /// Writes every queued settlement, for at most `bound`: at shutdown. What Redis does not
    /// take stays in the journal, written at the next start.
    pub async fn drain(&self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        while self.outbox.pending() > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, self.outbox.flush(&self.redis)).await;
            if self.outbox.pending() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if let Some(journal) = self.journal.clone() {
            let _ = tokio::task::spawn_blocking(move || journal.maintain()).await;
        }
        let left = self.outbox.pending();
        if left > 0 {
            tracing::error!(
                settlements = left,
                "shutting down with settlements Redis has not taken: they stay in \
                 state.data_dir and are written when this replica starts again"
            );
        }
    }

    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    /// What limits do while Redis cannot be reached.
    pub fn on_error(&self) -> OnRedisError {
        self.on_error
    }

    /// The shared quota of the key `name`.
    pub fn quota(self: &Arc<Self>, name: &str) -> Arc<SharedQuota> {
        Arc::new(SharedQuota {
            shared: self.clone(),
            keys: self.key_names(name),
            room: Room::default(),
            ahead: Ahead::default(),
        })
    }

    /// The Redis keys of the virtual key `name`.
    fn key_names(&self, name: &str) -> Arc<KeyNames> {
        Arc::new(KeyNames::new(name, |suffix| self.redis.key(name, suffix)))
    }
}

/// The Redis keys of one virtual key, all under its hash tag.
pub struct KeyNames {
    pub name: String,
    /// Rate state and reserved totals.
    q: String,
    /// Lease ids by expiry.
    leases: Arc<str>,
    /// What each lease holds: `"tokens cost"`.
    held: String,
    /// The last minute's admissions, for `requests_per_minute`.
    rate: String,
    /// Tokens and money by day.
    days: String,
    /// Leases that expired unsettled, so a late settlement still counts once.
    gone: String,
    /// Lifetime usage by model.
    models: String,
}

impl KeyNames {
    /// The names of the virtual key `name`'s Redis keys, `key` making each from its suffix.
    fn new(name: &str, key: impl Fn(&str) -> String) -> Self {
        KeyNames {
            name: name.to_owned(),
            q: key("q"),
            leases: key("leases").into(),
            held: key("held"),
            rate: key("rate"),
            days: key("days"),
            gone: key("gone"),
            models: key("models"),
        }
    }
}

/// One key's quota in Redis.
pub struct SharedQuota {
    shared: Arc<Shared>,
    keys: Arc<KeyNames>,
    room: Room,
    ahead: Ahead,
}

impl SharedQuota {
    /// The virtual key's name.
    pub fn name(&self) -> &str {
        &self.keys.name
    }

    /// What limits do while Redis cannot be reached.
    pub fn on_error(&self) -> OnRedisError {
        self.shared.on_error
    }

    /// The cause of the current Redis outage, if any.
    pub fn outage(&self) -> Option<Arc<str>> {
        self.shared.redis.degraded()
    }

    /// Whether a request like `estimate` may have its reservation made alongside its provider
    /// call: the key's last reservation here, under a second ago, left room for
    /// `overlap_headroom` more under every limit, and Redis is not failing. If so, its share of
    /// that room is taken.
    pub fn overlaps(&self, estimate: Estimate) -> bool {
        self.shared.redis.degraded().is_none() && self.room.take(self.shared.headroom, estimate)
    }

    /// Admits a request and reserves `estimate` under every limit in one call, or takes the
    /// reservation made ahead for it (see `ahead`). The outer error is Redis's; the inner one
    /// the refusal to send.
    pub async fn reserve(self: &Arc<Self>, limits: &LimitsConfig, estimate: Estimate) -> Outcome {
        if self.shared.ahead
            && let Some(spare) = self.ahead.take(estimate)
            && let Ok(Ok(Ok((mut lease, headers)))) = spare.await
        {
            lease.unused = false;
            self.shared.redis.metrics().state.ahead(true);
            self.reserve_ahead(limits, estimate);
            return Ok(Ok((lease, headers)));
        }
        // None made, or refused or lost on its way: the figures may have moved, so ask now.
        let outcome = self.reserve_now(limits, estimate, Duration::ZERO).await;
        if matches!(outcome, Ok(Ok(_))) {
            self.reserve_ahead(limits, estimate);
        }
        outcome
    }

    /// With `reserve_ahead`, far from every limit (`overlap_headroom` more requests as large
    /// as the largest of the last second, as the last reservation here saw it) and with Redis
    /// well, makes the key's next reservation now, in the background, for the next request.
    fn reserve_ahead(self: &Arc<Self>, limits: &LimitsConfig, estimate: Estimate) {
        let shared = &self.shared;
        if !shared.ahead || shared.headroom == 0 {
            return;
        }
        if shared.redis.degraded().is_some() || !self.ahead.is_empty() {
            return;
        }
        let size = self.ahead.size(estimate);
        if !self.room.take(shared.headroom, size) {
            return;
        }
        let Some(ticket) = self.ahead.open(size) else {
            return;
        };
        let quota = self.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let outcome = quota.reserve_now(&limits, size, AHEAD).await;
            quota.ahead.fill(ticket, outcome).await;
        });
    }

    /// One reservation script: for a request now, or `ahead` of one (its rate entry dated that
    /// much later, its lease given back unused if no request takes it).
    async fn reserve_now(
        &self,
        limits: &LimitsConfig,
        estimate: Estimate,
        ahead: Duration,
    ) -> Outcome {
        let now = Now::current();
        let today = now.day();
        let budget = limits.budget_usd.as_ref();
        let first = budget.map_or(today, |b| now.period(b.period).0);
        let id = uuid::Uuid::new_v4().simple().to_string();
        let hold = (estimate.tokens, estimate.cost);
        let limit = |n: Option<u64>| n.unwrap_or(0);
        let (rpm, conc, tpm, tpd) = (
            limit(limits.requests_per_minute.map(|n| n.get().into())),
            limit(limits.max_concurrent.map(|n| n.get().into())),
            limit(limits.tokens_per_minute.map(|n| n.get().into())),
            limit(limits.tokens_per_day.map(|n| n.get())),
        );
        let mut invocation = RESERVE.prepare_invoke();
        invocation
            .key(&self.keys.q)
            .key(&*self.keys.leases)
            .key(&self.keys.held)
            .key(&self.keys.days)
            .key(&self.keys.gone)
            .key(&self.keys.rate)
            .key(&self.keys.models)
            .arg(&id)
            .arg(self.shared.lease.as_millis() as u64)
            .arg(rpm)
            .arg(conc)
            .arg(tpm)
            .arg(tpd)
            .arg(budget.map_or(0, |b| picodollars(b.amount)))
            .arg(first)
            .arg(today)
            .arg(estimate.tokens)
            .arg(estimate.cost)
            .arg(ahead.as_millis() as u64);
        // This key's settlements waiting here are applied first, by the same script: the slots
        // they free and the tokens they give back count for this request.
        let riders = match self.shared.redis.degraded() {
            None => self.shared.outbox.riders(&self.keys.name),
            Some(_) => Vec::new(),
        };
        invocation.arg(riders.len());
        for s in &riders {
            s.spent.push_args(&mut invocation);
            invocation.arg(s.flag());
            match s.hold {
                Some((tokens, cost)) => invocation.arg(format!("{tokens} {cost}")),
                None => invocation.arg(""),
            };
        }
        let op = if ahead.is_zero() {
            "reserve"
        } else {
            "reserve_ahead"
        };
        let outcome = self.shared.redis.script::<Vec<i64>>(op, &invocation).await;
        self.shared.outbox.rode(riders, outcome.is_ok());
        let verdict = match outcome {
            Ok(verdict) => verdict,
            Err(failure) => {
                // The script may have run before the answer was lost: give its hold back.
                if matches!(failure, RedisFailure::Timeout(_)) {
                    let mut lease = self.lease(id, Some(hold), tpm as u32);
                    lease.unused = !ahead.is_zero();
                    drop(lease);
                }
                self.room.forget();
                return Err(failure);
            }
        };
        let figure = |i: usize| verdict.get(i).copied().unwrap_or(0);
        let figure_u64 = |i: usize| u64::try_from(figure(i)).unwrap_or(0);
        let refusal = match (figure(0), budget) {
            (0, _) => None,
            (1, _) => Some(refusals::concurrency(conc as u32)),
            (2, _) => Some(refusals::rate(
                rpm as u32,
                Duration::from_millis(figure_u64(1)),
            )),
            (3, _) => Some(refusals::tokens_per_day(
                tpd,
                figure_u64(1),
                estimate.tokens,
                &now,
            )),
            (4, Some(budget)) => Some(refusals::budget(budget, figure_u64(1), estimate.cost, &now)),
            _ => Some(refusals::tokens_per_minute(
                tpm as u32,
                figure(1) as f64,
                estimate.tokens,
            )),
        };
        if let Some(refusal) = refusal {
            self.room.forget();
            return Ok(Err(refusal));
        }
        let bounded = |limit: u64, used: i64| {
            (limit > 0).then(|| limit.saturating_sub(u64::try_from(used).unwrap_or(u64::MAX)))
        };
        self.room.saw(Left {
            requests: (rpm > 0).then(|| figure_u64(1)),
            // Absent from an answer: no room known.
            slots: bounded(conc, verdict.get(5).copied().unwrap_or(i64::MAX)),
            minute_tokens: (tpm > 0).then(|| figure_u64(2)),
            day_tokens: bounded(tpd, figure(3)),
            money: bounded(budget.map_or(0, |b| picodollars(b.amount)), figure(4)),
        });
        let mut headers = RateHeaders::default();
        if rpm > 0 {
            refusals::push_requests(&mut headers, rpm as u32, figure(1).max(0) as u32);
        }
        if tpm > 0 {
            refusals::push_tokens(&mut headers, tpm as u32, figure(2) as f64);
        } else if tpd > 0 {
            refusals::push_daily(&mut headers, tpd, figure_u64(3), &now);
        }
        let mut lease = self.lease(id, Some(hold), tpm as u32);
        lease.unused = !ahead.is_zero();
        self.shared.leases.hold(&self.keys.leases, &lease.id);
        Ok(Ok((lease, headers)))
    }

    /// A hold without a lease, for a key with no limits: nothing to check, usage to record.
    pub fn unleased(&self) -> Lease {
        self.lease(uuid::Uuid::new_v4().simple().to_string(), None, 0)
    }

    /// `hold`: what the lease reserved; `None` for a hold without a lease.
    fn lease(&self, id: String, hold: Option<(u64, u64)>, tpm: u32) -> Lease {
        Lease {
            shared: self.shared.clone(),
            keys: self.keys.clone(),
            id,
            hold,
            tpm,
            open: true,
            unused: false,
        }
    }

    /// Adds usage kept in the embedded data directory to this key's, once: `Ok(false)` if it
    /// was imported before (a second run must not count a month twice).
    pub async fn import(&self, totals: &Totals) -> Result<bool, RedisFailure> {
        let mut invocation = IMPORT.prepare_invoke();
        invocation
            .key(&self.keys.days)
            .key(&self.keys.models)
            .key(self.shared.redis.key(&self.keys.name, "imported"))
            .key(&self.keys.q);
        for (day, usage) in &totals.days {
            invocation
                .arg("d")
                .arg(format!("t:{day}"))
                .arg(usage.tokens);
            invocation.arg("d").arg(format!("c:{day}")).arg(usage.cost);
        }
        for (model, usage) in &totals.models {
            for (kind, amount) in [
                ("r", usage.requests),
                ("i", usage.input_tokens),
                ("o", usage.output_tokens),
                ("c", usage.cost),
            ] {
                invocation
                    .arg("m")
                    .arg(format!("{kind}:{model}"))
                    .arg(amount);
            }
        }
        // A timeout must not leave the caller guessing: this is run by hand, give it time.
        Ok(self
            .shared
            .redis
            .script::<i64>("import", &invocation)
            .await?
            == 1)
    }

    /// Usage and what is left of each limit, for `GET /admin/usage`, from Redis.
    pub async fn report(&self, limits: &LimitsConfig) -> Result<Value, RedisFailure> {
        let now = Now::current();
        let today = now.day();
        let first = limits
            .budget_usd
            .as_ref()
            .map_or(today, |b| now.period(b.period).0);
        // Every answer this replica gave is counted, whatever still lingers in its queue.
        self.shared.outbox.flush(&self.shared.redis).await;
        let mut invocation = REPORT.prepare_invoke();
        invocation
            .key(&self.keys.q)
            .key(&*self.keys.leases)
            .key(&self.keys.days)
            .key(&self.keys.models)
            .key(&self.keys.rate)
            .arg(first)
            .arg(today);
        type Row = (
            Vec<String>,
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            String,
            String,
            f64,
        );
        let (
            models,
            tokens_today,
            spent,
            reserved_tokens,
            reserved_cost,
            in_flight,
            admitted,
            level,
            at,
            redis_now,
        ): Row = self
            .shared
            .redis
            .idempotent_script("report", &invocation)
            .await?;
        let mut figures = Figures::default();
        for pair in models.chunks_exact(2) {
            let (field, value) = (&pair[0], pair[1].parse::<u64>().unwrap_or(0));
            let Some((kind, model)) = field.split_once(':') else {
                continue;
            };
            let usage = figures.models.entry(model.to_owned()).or_default();
            match kind {
                "r" => usage.0 = value,
                "i" => usage.1 = value,
                "o" => usage.2 = value,
                _ => usage.3 = value,
            }
        }
        let mut out = serde_json::Map::new();
        if let Some(rpm) = limits.requests_per_minute {
            let left = u64::from(rpm.get()).saturating_sub(admitted);
            out.insert(
                "requests_per_minute".into(),
                json!({"limit": rpm, "remaining": left}),
            );
        }
        if let Some(limit) = limits.max_concurrent {
            out.insert(
                "max_concurrent".into(),
                json!({"limit": limit, "in_flight": in_flight}),
            );
        }
        if let Some(tpm) = limits.tokens_per_minute {
            let capacity = f64::from(tpm.get());
            let level = match (level.parse::<f64>(), at.parse::<f64>()) {
                (Ok(level), Ok(at)) => {
                    (level + (redis_now - at).max(0.0) * capacity / 60_000.0).min(capacity)
                }
                _ => capacity,
            };
            out.insert(
                "tokens_per_minute".into(),
                json!({"limit": tpm, "remaining": level.max(0.0) as u64}),
            );
        }
        if let Some(limit) = limits.tokens_per_day {
            out.insert(
                "tokens_per_day".into(),
                json!({
                    "limit": limit, "used": tokens_today, "reserved": reserved_tokens,
                    "remaining": limit.get().saturating_sub(tokens_today + reserved_tokens),
                    "resets_at": midnight(today + 1),
                }),
            );
        }
        if let Some(budget) = &limits.budget_usd {
            let (_, next) = now.period(budget.period);
            let amount = picodollars(budget.amount);
            out.insert(
                "budget_usd".into(),
                json!({
                    "amount": budget.amount, "period": period_name(budget.period),
                    "spent": usd(spent), "reserved": usd(reserved_cost),
                    "remaining": usd(amount.saturating_sub(spent + reserved_cost)),
                    "resets_at": midnight(next),
                }),
            );
        }
        Ok(figures.report(&self.keys.name, out))
    }
}

/// Lifetime usage by model: requests, input, output, cost.
#[derive(Default)]
struct Figures {
    models: BTreeMap<String, (u64, u64, u64, u64)>,
}

impl Figures {
    fn report(&self, name: &str, limits: serde_json::Map<String, Value>) -> Value {
        let models: serde_json::Map<String, Value> = self
            .models
            .iter()
            .map(|(model, u)| {
                (
                    model.clone(),
                    json!({
                        "requests": u.0, "input_tokens": u.1,
                        "output_tokens": u.2, "cost_usd": usd(u.3),
                    }),
                )
            })
            .collect();
        let sum = |f: fn(&(u64, u64, u64, u64)) -> u64| self.models.values().map(f).sum::<u64>();
        json!({
            "name": name,
            "requests": sum(|u| u.0),
            "input_tokens": sum(|u| u.1),
            "output_tokens": sum(|u| u.2),
            "cost_usd": usd(sum(|u| u.3)),
            "models": models,
            "limits": limits,
        })
    }
}

/// A request's hold in Redis; settled, or released when dropped.
pub struct Lease {
    shared: Arc<Shared>,
    keys: Arc<KeyNames>,
    id: String,
    /// The tokens and money its lease reserved; `None` for a key without limits, which took
    /// no lease.
    hold: Option<(u64, u64)>,
    tpm: u32,
    open: bool,
    /// Made ahead of a request (see `ahead`) and not taken by one yet: given back, it leaves
    /// the rate window too.
    unused: bool,
}

impl Lease {
    /// Settles what the request used of `model`: journaled now (before the answer ends), written
    /// to Redis from the queue.
    pub fn settle(mut self, model: &str, spent: &Spent) {
        self.open = false;
        if let Some(settlement) = self.settlement(model, spent, true) {
            self.shared.outbox.push(settlement);
        }
    }

    /// The settlement of this hold; `None` for a release of a hold that holds nothing.
    fn settlement(&self, model: &str, spent: &Spent, charge: bool) -> Option<Settlement> {
        let leased = self.hold.is_some();
        if leased {
            self.shared.leases.forget(&self.keys.leases, &self.id);
        } else if !charge {
            return None;
        }
        Some(Settlement {
            seq: 0,
            keys: self.keys.clone(),
            charge,
            unused: self.unused && !charge,
            hold: self.hold,
            spent: Record {
                key: self.keys.name.clone(),
                id: self.id.clone(),
                leased,
                model: model.to_owned(),
                day: Now::current().day(),
                input: spent.input_tokens,
                output: spent.output_tokens,
                cost: spent.cost,
                tpm: self.tpm,
            },
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.open {
            if self.unused {
                self.shared.redis.metrics().state.ahead(false);
            }
            let nothing = Spent {
                input_tokens: 0,
                output_tokens: 0,
                cost: 0,
            };
            if let Some(release) = self.settlement("", &nothing, false) {
                self.shared.outbox.push(release);
            }
        }
    }
}
