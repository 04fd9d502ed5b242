//! `switchboard state import`: moves what the embedded data directory keeps (usage and spend,
//! context documents) into the Redis the replicas share, so a user can switch modes without
//! losing a month's spend or a document.
//!
//! Each key's usage is added once, each document only where Redis has none of its name: a second
//! run adds nothing.

use std::sync::Arc;

use crate::config::Config;
use crate::context::ContextStore;
use crate::quota::Shared;
use crate::state::StateError;
use crate::state::redis::{ConnectError, Redis, RedisFailure};
use crate::telemetry::Metrics;
use crate::usage::Ledger;

/// Why an import could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("state.redis is not set: there is nowhere to import to")]
    NoRedis,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("key {key:?}: {failure}")]
    Redis { key: String, failure: RedisFailure },
    #[error("context document {document}: {error}")]
    Context { document: String, error: String },
}

/// What happened to one key's usage.
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// A run before this one imported it.
    AlreadyThere,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    /// Each key's usage.
    pub keys: Vec<(String, Imported)>,
    /// Context documents copied, and those left alone because Redis had one of that name.
    pub documents: (usize, usize),
}

/// Copies the usage and the context documents in `state.data_dir` into `state.redis`. The data
/// directory is locked while it is read: a gateway running on it must be stopped first.
pub async fn all(config: &Config) -> Result<Report, ImportError> {
    let keys = usage(config).await?;
    let documents = context(config).await?;
    Ok(Report { keys, documents })
}

/// Copies the context documents, each unless Redis already has one of its name.
async fn context(config: &Config) -> Result<(usize, usize), ImportError> {
    let Some(settings) = &config.state.redis else {
        return Err(ImportError::NoRedis);
    };
    let local = ContextStore::open(&config.state.data_dir, config.mcp.max_document.0)?;
    let mut settings = settings.clone();
    settings.timeout.0 = settings.timeout.0.max(std::time::Duration::from_secs(10));
    let redis = Redis::new(&settings, Arc::new(Metrics::default()))?;
    let shared = ContextStore::shared(redis, &config.state.data_dir, config.mcp.max_document.0);
    let (mut added, mut present) = (0, 0);
    for (namespace, key, document) in local.snapshot() {
        match shared.import(&namespace, &key, &document).await {
            Ok(true) => added += 1,
            Ok(false) => present += 1,
            Err(error) => {
                return Err(ImportError::Context {
                    document: format!("{namespace}/{key}"),
                    error: error.to_string(),
                });
            }
        }
    }
    Ok((added, present))
}

/// Copies the usage in `state.data_dir` into `state.redis`, key by key.
async fn usage(config: &Config) -> Result<Vec<(String, Imported)>, ImportError> {
    let Some(settings) = &config.state.redis else {
        return Err(ImportError::NoRedis);
    };
    let names = config.keys.iter().map(|k| k.name.as_str());
    let ledger = Ledger::open(&config.state.data_dir, names)?;
    let metrics = Arc::new(Metrics::default());
    // Imports run once, by hand: a whole month in one script may take longer than a request may.
    let mut settings = settings.clone();
    settings.timeout.0 = settings.timeout.0.max(std::time::Duration::from_secs(10));
    let redis = Redis::new(&settings, metrics.clone())?;
    let shared = Shared::new(redis, &settings, config.state.on_redis_error, metrics, None)?;
    let mut accounts = ledger.accounts();
    accounts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut outcome = Vec::with_capacity(accounts.len());
    for (name, account) in accounts {
        let totals = account.lock().totals.clone();
        let added = shared
            .quota(&name)
            .import(&totals)
            .await
            .map_err(|failure| ImportError::Redis {
                key: name.to_owned(),
                failure,
            })?;
        let result = if added {
            Imported::Added
        } else {
            Imported::AlreadyThere
        };
        outcome.push((name.to_owned(), result));
    }
    Ok(outcome)
}
