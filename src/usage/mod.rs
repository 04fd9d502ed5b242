//! Usage and spend per key name: per-model totals and per-UTC-day tokens and cost, plus what
//! requests in flight have reserved. Usage belongs to the key's name; limits live elsewhere.
//!
//! Settled usage is written to the journal before memory changes, so a response the client saw
//! is never missing after a crash (see `journal`).

mod journal;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::state::StateError;
pub use journal::{LOCK_FILE, lines as journal_lines};
use journal::{Record, UsageJournal as Journal};

/// Money in picodollars (10⁻¹² USD): integral, so sums are exact and budgets admit exactly.
pub type Picodollars = u64;

/// Converts USD to picodollars, rounding to the nearest.
pub fn picodollars(usd: f64) -> Picodollars {
    (usd * 1e12).round().max(0.0) as Picodollars
}

/// Converts picodollars to USD for reports.
pub fn usd(pico: Picodollars) -> f64 {
    pico as f64 / 1e12
}

/// Prices of one model, per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pub input: Picodollars,
    pub output: Picodollars,
}

impl Price {
    /// From prices in USD per million tokens, as catalogs and price pages state them.
    pub fn per_million(input_usd: f64, output_usd: f64) -> Self {
        Price {
            input: picodollars(input_usd / 1e6),
            output: picodollars(output_usd / 1e6),
        }
    }

    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Picodollars {
        input_tokens
            .saturating_mul(self.input)
            .saturating_add(output_tokens.saturating_mul(self.output))
    }
}

/// One UTC day's consumption.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DayUsage {
    pub tokens: u64,
    pub cost: Picodollars,
}

/// What a key has used of one model, since the ledger began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Picodollars,
}

/// The persisted part of an account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// By day number (days since 1970-01-01, UTC). Only the last [`DAYS_KEPT`] are kept.
    pub days: BTreeMap<u32, DayUsage>,
    /// By `provider/model` actually used.
    pub models: BTreeMap<String, ModelUsage>,
}

/// The longest budget period is a month: 62 days cover it and the month before.
const DAYS_KEPT: u32 = 62;

impl Totals {
    fn apply(&mut self, record: &Record) {
        let day = self.days.entry(record.day).or_default();
        day.tokens = day.tokens.saturating_add(record.input + record.output);
        day.cost = day.cost.saturating_add(record.cost);
        let model = self.models.entry(record.model.clone()).or_default();
        model.requests += 1;
        model.input_tokens = model.input_tokens.saturating_add(record.input);
        model.output_tokens = model.output_tokens.saturating_add(record.output);
        model.cost = model.cost.saturating_add(record.cost);
        while let Some((&oldest, _)) = self.days.first_key_value() {
            if oldest + DAYS_KEPT > record.day {
                break;
            }
            self.days.pop_first();
        }
    }

    /// Tokens and cost over the days `from..=to`.
    pub fn between(&self, from: u32, to: u32) -> DayUsage {
        self.days
            .range(from..=to)
            .fold(DayUsage::default(), |sum, (_, day)| DayUsage {
                tokens: sum.tokens.saturating_add(day.tokens),
                cost: sum.cost.saturating_add(day.cost),
            })
    }
}

/// The token-per-minute bucket of a key: refills continuously up to its capacity.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Tokens available; negative after a request used more than it reserved.
    pub level: f64,
    pub updated: std::time::Instant,
}

/// An account's state, behind its lock.
#[derive(Debug, Default)]
pub struct AccountState {
    pub totals: Totals,
    /// Held by requests in flight, not yet settled.
    pub reserved_tokens: u64,
    pub reserved_cost: Picodollars,
    pub bucket: Option<Bucket>,
}

/// What one request used, once known.
#[derive(Debug, Clone, PartialEq)]
pub struct Spent {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Picodollars,
}

/// The usage of one key name.
pub struct Account {
    name: String,
    state: Mutex<AccountState>,
    journal: Option<Arc<Journal>>,
}

impl Account {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state, for checks and reservations that must see and change it at once.
    pub fn lock(&self) -> MutexGuard<'_, AccountState> {
        // A panic while holding the lock cannot leave counters half-written: every update is a
        // few additions. Recover the state rather than refuse every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a finished request against `model` on `day`, returning what it held. The journal
    /// line is written first, under the journal's lock, so snapshots never miss or repeat it.
    pub fn settle(&self, day: u32, model: &str, spent: &Spent, held: (u64, Picodollars)) {
        let record = Record {
            seq: 0,
            key: self.name.clone(),
            model: model.to_owned(),
            day,
            input: spent.input_tokens,
            output: spent.output_tokens,
            cost: spent.cost,
        };
        let apply = |record: &Record| {
            let mut state = self.lock();
            state.reserved_tokens = state.reserved_tokens.saturating_sub(held.0);
            state.reserved_cost = state.reserved_cost.saturating_sub(held.1);
            state.totals.apply(record);
        };
        match &self.journal {
            Some(journal) => journal.append(record, apply),
            None => apply(&record),
        }
    }

    /// Gives back what a request held without using it.
    pub fn release(&self, held: (u64, Picodollars)) {
        let mut state = self.lock();
        state.reserved_tokens = state.reserved_tokens.saturating_sub(held.0);
        state.reserved_cost = state.reserved_cost.saturating_sub(held.1);
    }
}

/// Every account, and the files that keep them.
pub struct Ledger {
    /// By key name; a reload that adds a key adds its account.
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    journal: Option<Arc<Journal>>,
}

impl Ledger {
    /// A ledger kept only in memory, for tests and benchmarks.
    pub fn in_memory<'a>(names: impl IntoIterator<Item = &'a str>) -> Ledger {
        let accounts = names
            .into_iter()
            .map(|name| (name.to_owned(), account(name, Totals::default(), None)))
            .collect();
        Ledger {
            accounts: RwLock::new(accounts),
            journal: None,
        }
    }

    /// Opens (or creates) the ledger under `dir`, replaying what an earlier run left, and
    /// compacts it. Accounts of names no longer configured are kept, not reported.
    pub fn open<'a>(
        dir: &Path,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Ledger, StateError> {
        let (journal, mut loaded) = journal::open(dir)?;
        let journal = Arc::new(journal);
        for name in names {
            loaded.entry(name.to_owned()).or_default();
        }
        let accounts = loaded
            .into_iter()
            .map(|(name, totals)| {
                let account = account(&name, totals, Some(journal.clone()));
                (name, account)
            })
            .collect();
        let ledger = Ledger {
            accounts: RwLock::new(accounts),
            journal: Some(journal),
        };
        ledger.compact()?;
        Ok(ledger)
    }

    /// The account of a key name, made (empty) when there is none yet: a reload's new key
    /// starts from nothing, and a name that comes back finds what it had spent.
    pub fn account(&self, name: &str) -> Arc<Account> {
        if let Some(account) = self.read().get(name) {
            return account.clone();
        }
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        accounts
            .entry(name.to_owned())
            .or_insert_with(|| account(name, Totals::default(), self.journal.clone()))
            .clone()
    }

    /// Every account, configured or left from an earlier config, by name.
    pub fn accounts(&self) -> Vec<(String, Arc<Account>)> {
        let accounts = self.read();
        accounts
            .iter()
            .map(|(n, a)| (n.clone(), a.clone()))
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Account>>> {
        self.accounts.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a snapshot of every account and empties the journal.
    pub fn compact(&self) -> Result<(), StateError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        journal.compact(|| {
            self.read()
                .iter()
                .map(|(name, account)| (name.clone(), account.lock().totals.clone()))
                .collect::<BTreeMap<_, _>>()
        })
    }

    /// Keeps the files healthy while the gateway runs: the journal reaches the disk every second
    /// and is folded into a snapshot once it grows. Runs until the ledger is dropped elsewhere.
    pub async fn maintain(self: Arc<Self>) {
        let Some(journal) = self.journal.clone() else {
            return;
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let ledger = self.clone();
            let journal = journal.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                if journal.wants_compaction() {
                    ledger.compact()
                } else {
                    journal.sync()
                }
            })
            .await;
            if let Ok(Err(error)) = outcome {
                tracing::error!(%error, "cannot write usage state");
            }
        }
    }
}

fn account(name: &str, totals: Totals, journal: Option<Arc<Journal>>) -> Arc<Account> {
    Arc::new(Account {
        name: name.to_owned(),
        state: Mutex::new(AccountState {
            totals,
            ..AccountState::default()
        }),
        journal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_in_picodollars() {
        let price = Price::per_million(0.15, 0.6);
        assert_eq!(
            price,
            Price {
                input: 150_000,
                output: 600_000
            }
        );
        assert_eq!(price.cost(1_000_000, 1_000_000), picodollars(0.75));
        assert_eq!(picodollars(0.18), 180_000_000_000);
    }

    #[test]
    fn settling_moves_the_hold_into_the_day_and_the_model() {
        let ledger = Ledger::in_memory(["a"]);
        let account = ledger.account("a");
        account.lock().reserved_tokens = 50;
        let spent = Spent {
            input_tokens: 10,
            output_tokens: 5,
            cost: 7,
        };
        account.settle(100, "p/m", &spent, (50, 0));
        let state = account.lock();
        assert_eq!(state.reserved_tokens, 0);
        assert_eq!(
            state.totals.between(100, 100),
            DayUsage {
                tokens: 15,
                cost: 7
            }
        );
        assert_eq!(state.totals.models["p/m"].requests, 1);
    }

    #[test]
    fn old_days_are_forgotten() {
        let mut totals = Totals::default();
        for day in [1, 2, 70] {
            totals.apply(&Record {
                seq: 0,
                key: "a".into(),
                model: "m".into(),
                day,
                input: 1,
                output: 0,
                cost: 0,
            });
        }
        assert_eq!(totals.days.keys().copied().collect::<Vec<_>>(), [70]);
        assert_eq!(totals.models["m"].requests, 3, "lifetime totals stay");
    }
}
