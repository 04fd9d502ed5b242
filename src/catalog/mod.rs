//! The catalog at run time: every model's and tool's metadata and lifecycle (from the config,
//! a tool's own entry, and changes an admin made since), and the subscriptions keys ask for.
//!
//! Subscriptions and changes are kept through `state`: a file in the data directory, or Redis,
//! whose version every replica checks four times a second and before refusing a key (reading
//! the records again when it moved); the replica that writes applies at once.

mod book;
mod lifecycle;
mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

pub use book::{Book, Change, Decision, Subscription};
pub use lifecycle::{deprecated_suffix, headers, retired_message};
pub use store::StoreError;

use crate::config::{CatalogConfig, EntryMeta, Status, day_start};
use crate::state::StateError;
use crate::state::redis::Redis;
use crate::telemetry::Metrics;
use store::Store;

/// What a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Model,
    Tool,
}

/// `model:NAME` or `tool:NAME`: how an entry is named in URLs and subscriptions.
pub fn entry_id(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Model => format!("model:{name}"),
        Kind::Tool => format!("tool:{name}"),
    }
}

/// The kind and name an entry id spells, if it spells one.
pub fn parse_entry(id: &str) -> Option<(Kind, &str)> {
    let (kind, name) = id.split_once(':')?;
    let kind = match kind {
        "model" => Kind::Model,
        "tool" => Kind::Tool,
        _ => return None,
    };
    (!name.is_empty() && name.len() <= MAX_NAME).then_some((kind, name))
}

/// A subscription as stored in Redis or the data directory, by whoever wrote it.
pub fn subscription_record(text: &str) -> Option<Subscription> {
    serde_json::from_str(text).ok()
}

/// The longest entry name a request may name.
const MAX_NAME: usize = 256;
/// Requests one key may have waiting at once: a key cannot fill the book.
pub const MAX_PENDING_PER_KEY: usize = 20;
/// Subscriptions kept in all; past it, new requests are refused until some are decided.
pub const MAX_SUBSCRIPTIONS: usize = 10_000;
/// The longest note a request may carry.
pub const MAX_NOTE: usize = 1000;

/// An entry as a caller sees it now: its metadata, lifecycle changes applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub meta: EntryMeta,
    /// The change an admin made, when the lifecycle is not the config's.
    pub change: Option<Change>,
    /// Unix time it became deprecated, for the `Deprecation` header.
    pub deprecated_since: u64,
}

/// Why a catalog action was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no subscription {0}")]
    UnknownSubscription(u64),
    #[error("{0}")]
    Refused(String),
    #[error("the catalog's records cannot be kept: {0}")]
    Unavailable(#[from] StoreError),
}

pub struct Catalog {
    configured: ArcSwap<CatalogConfig>,
    book: ArcSwap<Book>,
    store: Store,
    /// Start of the UTC day the config was loaded: the `Deprecation` date of an entry the YAML
    /// deprecates without `deprecated_at`.
    loaded_day: std::sync::atomic::AtomicU64,
    /// One write at a time: each reads the book, changes it and keeps it.
    writing: tokio::sync::Mutex<()>,
    /// Calls of deprecated entries by entry and key, since start: who still depends on them.
    calls: Mutex<HashMap<(String, String), u64>>,
    metrics: Arc<Metrics>,
}

impl Catalog {
    /// The catalog kept in `data_dir`.
    pub fn open(
        config: &CatalogConfig,
        data_dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StateError> {
        std::fs::create_dir_all(data_dir).map_err(crate::state::io(data_dir))?;
        let path = data_dir.join(store::FILE);
        let book = Store::read_file(&path)?;
        Ok(Self::with(config, Store::File(path), book, metrics))
    }

    /// The catalog the replicas share through Redis; read by [`follow`](Self::follow).
    pub fn shared(config: &CatalogConfig, redis: Arc<Redis>, metrics: Arc<Metrics>) -> Self {
        Self::with(config, Store::Redis(redis), Book::default(), metrics)
    }

    /// A catalog that keeps nothing: `switchboard check`.
    pub fn unopened(config: &CatalogConfig, metrics: Arc<Metrics>) -> Self {
        Self::with(config, Store::Memory, Book::default(), metrics)
    }

    fn with(config: &CatalogConfig, store: Store, book: Book, metrics: Arc<Metrics>) -> Self {
        let catalog = Catalog {
            configured: ArcSwap::from_pointee(config.clone()),
            book: ArcSwap::from_pointee(book),
            store,
            loaded_day: Default::default(),
            writing: tokio::sync::Mutex::new(()),
            calls: Mutex::new(HashMap::new()),
            metrics,
        };
        catalog.configure(config);
        catalog
    }

    /// Takes a reloaded config's `catalog:`.
    pub fn configure(&self, config: &CatalogConfig) {
        self.configured.store(Arc::new(config.clone()));
        let now = crate::clock::unix_now();
        self.loaded_day
            .store(now - now % 86_400, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entry now: the config's metadata (or, when the config says nothing of it, what its
    /// own entry says: `origin`), with an admin's lifecycle change over it.
    pub fn describe(&self, kind: Kind, name: &str, origin: Option<&EntryMeta>) -> Described {
        let configured = self.configured.load();
        let from_config = match kind {
            Kind::Model => configured.models.get(name),
            Kind::Tool => configured.tools.get(name),
        };
        let mut meta = from_config.or(origin).cloned().unwrap_or_default();
        let book = self.book.load();
        let change = if book.changes.is_empty() {
            None
        } else {
            book.changes.get(&entry_id(kind, name)).cloned()
        };
        let mut since = meta
            .deprecated_at
            .as_deref()
            .and_then(day_start)
            .unwrap_or_else(|| self.loaded_day.load(std::sync::atomic::Ordering::Relaxed));
        if let Some(change) = &change {
            if change.status != meta.status && meta.deprecated_at.is_none() {
                since = change.at;
            }
            meta.status = change.status;
            meta.successor = change.successor.clone();
            meta.sunset = change.sunset.clone();
        }
        // From its sunset day on, a deprecated entry is retired: what the header promised.
        let sunset = meta.sunset.as_deref().and_then(day_start);
        if meta.status == Status::Deprecated
            && sunset.is_some_and(|at| at <= crate::clock::unix_now())
        {
            meta.status = Status::Retired;
        }
        Described {
            meta,
            change,
            deprecated_since: since,
        }
    }

    /// The entry, when it is not simply published: `None`, with nothing cloned, for one that
    /// its config, its own entry (`origin`) and any change all leave published. The request
    /// path asks this of every model and tool it serves.
    pub fn unpublished(
        &self,
        kind: Kind,
        name: &str,
        origin: Option<&EntryMeta>,
    ) -> Option<Described> {
        let configured = self.configured.load();
        let base = match kind {
            Kind::Model => configured.models.get(name),
            Kind::Tool => configured.tools.get(name),
        }
        .or(origin);
        let book = self.book.load();
        let changed = match book.changes.is_empty() {
            true => None,
            false => book.changes.get(&entry_id(kind, name)).map(|c| c.status),
        };
        // A sunset only retires what is deprecated already, so published stays published.
        let status = changed.or(base.map(|m| m.status)).unwrap_or_default();
        (status != Status::Published).then(|| self.describe(kind, name, origin))
    }

    /// Whether the key named `key` holds an approved subscription to `entry`.
    pub fn approved(&self, key: &str, entry: &str) -> bool {
        self.book.load().approved(key, entry)
    }

    /// Every subscription, newest first.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.book
            .load()
            .subscriptions
            .values()
            .rev()
            .cloned()
            .collect()
    }

    /// Records the request of `key` for `entry`, and whether it is new (an open one is
    /// answered again).
    pub async fn request(
        &self,
        key: &str,
        entry: &str,
        note: Option<String>,
    ) -> Result<(Subscription, bool), CatalogError> {
        let _writing = self.writing.lock().await;
        let book = self.book.load_full();
        if let Some(open) = book.open_request(key, entry) {
            return Ok((open.clone(), false));
        }
        if book.pending_of(key) >= MAX_PENDING_PER_KEY {
            return Err(CatalogError::Refused(format!(
                "The key '{key}' has {MAX_PENDING_PER_KEY} requests waiting; wait for a decision."
            )));
        }
        if book.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(CatalogError::Refused(
                "The catalog holds as many subscriptions as it keeps; ask an admin.".into(),
            ));
        }
        let subscription = Subscription {
            id: self.store.next_id(&book).await?,
            key: key.to_owned(),
            entry: entry.to_owned(),
            note: note.map(|n| n.chars().take(MAX_NOTE).collect()),
            status: Decision::Pending,
            requested_at: crate::clock::unix_now(),
            decided_by: None,
            decided_at: None,
        };
        Ok((self.keep(&book, subscription).await?, true))
    }

    /// Approves or rejects subscription `id` (deciding again is allowed: a rejection revokes
    /// an approval), recording who decided and when.
    pub async fn decide(
        &self,
        id: u64,
        decision: Decision,
        by: &str,
    ) -> Result<Subscription, CatalogError> {
        let _writing = self.writing.lock().await;
        self.refresh().await;
        let book = self.book.load_full();
        let mut subscription = book
            .subscriptions
            .get(&id)
            .cloned()
            .ok_or(CatalogError::UnknownSubscription(id))?;
        subscription.status = decision;
        subscription.decided_by = Some(by.to_owned());
        subscription.decided_at = Some(crate::clock::unix_now());
        self.keep(&book, subscription).await
    }

    async fn keep(
        &self,
        book: &Book,
        subscription: Subscription,
    ) -> Result<Subscription, CatalogError> {
        let mut next = book.clone();
        next.subscriptions
            .insert(subscription.id, subscription.clone());
        next.index();
        // Kept first: a record the store refused is not applied here either.
        self.store.put_subscription(&subscription, &next).await?;
        self.book.store(Arc::new(next));
        Ok(subscription)
    }

    /// Sets the lifecycle of `entry` at run time, over what the config says.
    pub async fn change(&self, entry: &str, change: Change) -> Result<Change, CatalogError> {
        let _writing = self.writing.lock().await;
        let mut next = Book::clone(&self.book.load());
        next.changes.insert(entry.to_owned(), change.clone());
        self.store.put_change(entry, &change, &next).await?;
        self.book.store(Arc::new(next));
        Ok(change)
    }

    /// Counts one call of a deprecated entry by `key`: in the metric and for the catalog's view.
    pub fn deprecated_call(&self, entry: &str, key: &str) {
        self.metrics.totals.deprecated_call(entry, key);
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by entries times keys, both from the config or the registry.
        *calls.entry((entry.to_owned(), key.to_owned())).or_default() += 1;
    }

    /// Calls of deprecated entries since start, by `(entry, key)`.
    pub fn deprecated_calls(&self) -> HashMap<(String, String), u64> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Before a key is refused an entry: whether the shared book changed since this replica
    /// last read it (read again if so), so a decision made on another replica is honoured at
    /// once. One small Redis read, on the refusal path only; `false` when nothing is shared.
    pub async fn changed_elsewhere(&self) -> bool {
        let Ok(version) = self.store.version().await else {
            return false;
        };
        if version == self.book.load().version {
            return false;
        }
        // A write in progress here applies its own result; reading under it could undo it.
        let _writing = self.writing.lock().await;
        self.refresh().await;
        true
    }

    /// Reads the shared book once; a failure keeps the last one read.
    async fn refresh(&self) {
        match self.store.load_shared().await {
            Ok(Some(book)) => self.book.store(Arc::new(book)),
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "the shared catalog could not be read"),
        }
    }

    /// Follows what every replica decides, for as long as the gateway runs (Redis only).
    pub async fn follow(self: Arc<Self>) {
        if !matches!(self.store, Store::Redis(_)) {
            return;
        }
        let mut every = tokio::time::interval(FOLLOW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // One small read; the book itself only when another replica wrote to it.
            self.changed_elsewhere().await;
        }
    }
}

/// How often a replica reads what the others decided.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    fn status(catalog: &Catalog, name: &str) -> Status {
        let unpublished = catalog.unpublished(Kind::Model, name, None);
        unpublished.map_or(Status::Published, |d| d.meta.status)
    }

    fn catalog(yaml: &str) -> Catalog {
        let config: CatalogConfig = serde_yaml_ng::from_str(yaml).unwrap();
        Catalog::unopened(&config, Arc::new(Metrics::default()))
    }

    #[test]
    fn entry_ids_name_a_kind_and_a_name() {
        assert_eq!(parse_entry("model:gpt-4o"), Some((Kind::Model, "gpt-4o")));
        assert_eq!(parse_entry("tool:a:b"), Some((Kind::Tool, "a:b")));
        for bad in ["gpt-4o", "model:", "prompt:x", ""] {
            assert_eq!(parse_entry(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_change_overrides_the_config_and_a_decision_grants_access() {
        let catalog = catalog(
            "models: { old: { status: deprecated, successor: new, deprecated_at: 2026-01-02 } }",
        );
        let old = catalog.describe(Kind::Model, "old", None);
        assert_eq!(old.meta.status, Status::Deprecated);
        assert_eq!(old.deprecated_since, 1_767_312_000);
        assert_eq!(status(&catalog, "new"), Status::Published);
        let change = Change {
            status: Status::Retired,
            successor: Some("new".into()),
            sunset: None,
            by: "admin".into(),
            at: 5,
        };
        catalog.change("model:old", change).await.unwrap();
        assert_eq!(status(&catalog, "old"), Status::Retired);

        let (asked, _) = catalog.request("dev", "model:new", None).await.unwrap();
        let (again, _) = catalog
            .request("dev", "model:new", Some("again".into()))
            .await
            .unwrap();
        assert_eq!(asked.id, again.id, "an open request is answered again");
        assert!(!catalog.approved("dev", "model:new"));
        let decided = catalog
            .decide(asked.id, Decision::Approved, "admin")
            .await
            .unwrap();
        assert_eq!(decided.decided_by.as_deref(), Some("admin"));
        assert!(catalog.approved("dev", "model:new"));
        catalog
            .decide(asked.id, Decision::Rejected, "admin")
            .await
            .unwrap();
        assert!(!catalog.approved("dev", "model:new"), "a rejection revokes");
        assert!(matches!(
            catalog.decide(99, Decision::Approved, "admin").await,
            Err(CatalogError::UnknownSubscription(99))
        ));
    }

    #[test]
    fn a_deprecated_entry_is_retired_from_its_sunset_day() {
        let catalog = catalog(
            "models: { past: { status: deprecated, sunset: 2020-01-01 }, later: { status: deprecated, sunset: 2999-01-01 } }",
        );
        assert_eq!(status(&catalog, "past"), Status::Retired);
        assert_eq!(status(&catalog, "later"), Status::Deprecated);
    }

    #[tokio::test]
    async fn one_key_cannot_fill_the_book() {
        let catalog = catalog("{}");
        for i in 0..MAX_PENDING_PER_KEY {
            catalog
                .request("dev", &format!("tool:t{i}"), None)
                .await
                .unwrap();
        }
        assert!(matches!(
            catalog.request("dev", "tool:more", None).await,
            Err(CatalogError::Refused(_))
        ));
        catalog.request("ops", "tool:more", None).await.unwrap();
    }

    #[tokio::test]
    async fn the_book_survives_a_restart_in_the_data_directory() {
        let dir = std::env::temp_dir().join(format!("catalog-{}", std::process::id()));
        let metrics = Arc::new(Metrics::default());
        let config = CatalogConfig::default();
        let catalog = Catalog::open(&config, &dir, metrics.clone()).unwrap();
        let (asked, _) = catalog.request("dev", "model:x", None).await.unwrap();
        catalog
            .decide(asked.id, Decision::Approved, "admin")
            .await
            .unwrap();
        drop(catalog);
        let reopened = Catalog::open(&config, &dir, metrics).unwrap();
        assert!(reopened.approved("dev", "model:x"));
        assert_eq!(
            reopened.subscriptions()[0].decided_by.as_deref(),
            Some("admin")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
