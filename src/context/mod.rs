//! The context store: namespaced JSON documents with versions (served as ETags), optional TTLs and
//! a size bound, kept in memory and persisted under `state.data_dir/context` (`disk`), or, with
//! `state.redis`, kept in the Redis every replica shares (`shared`).
//!
//! Every change is broadcast, so MCP sessions can tell subscribers. Writes are serialized, so the
//! files and the memory always agree on which version came last.

mod disk;
mod holdings;
mod names;
mod precondition;
mod shared;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

pub use crate::state::StateError;
pub use holdings::Author;
use holdings::Holdings;
pub use names::valid_name;
use names::{NAME_RULE, check_names};
pub use precondition::Precondition;
#[doc(hidden)]
pub use shared::parse_change;

/// One document as it is now.
#[derive(Debug, Clone)]
pub struct Document {
    /// Compact JSON text.
    pub json: Arc<str>,
    pub version: u64,
    /// Unix milliseconds after which the document is gone.
    pub expires_ms: Option<u64>,
    /// The key that last wrote it, which holds it against its bounds (`holdings`).
    pub owner: Option<Arc<str>>,
}

impl Document {
    /// The version as a strong HTTP entity tag.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    fn live(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }
}

/// A document was written or removed.
#[derive(Debug, Clone)]
pub struct Change {
    pub namespace: String,
    pub key: String,
    /// Whether the set of documents changed (one was created or removed), not only a content.
    pub listed: bool,
    /// Changes may have been missed (this replica was cut off from the others): any document
    /// may have changed.
    pub missed: bool,
}

impl Change {
    fn missed() -> Change {
        Change {
            namespace: String::new(),
            key: String::new(),
            listed: true,
            missed: true,
        }
    }
}

/// Why a context operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("invalid {field} {name:?}: {NAME_RULE}")]
    InvalidName { field: &'static str, name: String },
    #[error("no document {namespace}/{key}")]
    NotFound { namespace: String, key: String },
    #[error("the document {namespace}/{key} is at version {current:?}, not the one expected")]
    Stale {
        namespace: String,
        key: String,
        current: Option<u64>,
    },
    #[error("the document is {size} bytes, over the limit of {limit} bytes (mcp.max_document)")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "this key holds {limit} context documents, the most its limits.context_documents allows"
    )]
    TooManyDocuments { limit: u64 },
    #[error(
        "this write would take the key past the {limit} bytes of context its limits.context_bytes allows"
    )]
    OverBytes { limit: u64 },
    #[error("the context store cannot save: {0}")]
    Storage(#[from] StateError),
    #[error("the context store is unavailable: {0}")]
    Unavailable(crate::state::redis::RedisFailure),
}

/// One entry of a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub namespace: String,
    pub key: String,
    pub version: u64,
    pub size: usize,
}

type Id = (String, String);

/// The writer's state, behind the lock that serializes writes.
struct Writer {
    last_version: u64,
    holdings: Holdings,
    /// Taken on the first write when the directory did not exist at start.
    lock: Option<std::fs::File>,
}

/// The store, shared by the REST API and every MCP session.
pub struct ContextStore {
    /// With `state.redis`: where every document is; the fields below are then unused.
    shared: Option<shared::SharedDocuments>,
    documents: RwLock<BTreeMap<Id, Document>>,
    writer: tokio::sync::Mutex<Writer>,
    changes: broadcast::Sender<Change>,
    dir: PathBuf,
    max_document: usize,
}

/// How many changes a slow subscriber may fall behind before it hears of all of them at once.
const CHANGE_BACKLOG: usize = 1024;

impl ContextStore {
    /// Opens the store under `data_dir`, loading what an earlier run saved. The directory's
    /// lock is taken now, not at the first write: a second gateway on the same directory must
    /// fail at start, not answer every write with a 500 while it reports ready.
    pub fn open(data_dir: &Path, max_document: u64) -> Result<ContextStore, StateError> {
        let dir = data_dir.join("context");
        let mut documents = BTreeMap::new();
        let mut last_version = 0;
        let mut holdings = Holdings::default();
        let lock = {
            let lock = disk::claim(&dir)?;
            let now = unix_ms();
            for stored in disk::load(&dir)? {
                last_version = last_version.max(stored.version);
                let document = Document {
                    json: Arc::from(stored.value.get()),
                    version: stored.version,
                    expires_ms: stored.expires_ms,
                    owner: stored.owner.as_deref().map(Arc::from),
                };
                if document.live(now) {
                    holdings.add(&document);
                    documents.insert((stored.namespace, stored.key), document);
                } else {
                    disk::remove(&dir, &stored.namespace, &stored.key)?;
                }
            }
            Some(lock)
        };
        Ok(ContextStore {
            shared: None,
            documents: RwLock::new(documents),
            writer: tokio::sync::Mutex::new(Writer {
                last_version,
                holdings,
                lock,
            }),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            dir,
            max_document: usize::try_from(max_document).unwrap_or(usize::MAX),
        })
    }

    /// The store without its directory read or locked: for checking a config beside the
    /// gateway that uses the directory. It is never written to.
    pub fn unopened(data_dir: &Path, max_document: u64) -> ContextStore {
        ContextStore {
            shared: None,
            documents: RwLock::new(BTreeMap::new()),
            writer: tokio::sync::Mutex::new(Writer {
                last_version: 0,
                holdings: Holdings::default(),
                lock: None,
            }),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            dir: data_dir.join("context"),
            max_document: usize::try_from(max_document).unwrap_or(usize::MAX),
        }
    }

    /// The store kept in the Redis the replicas share; `data_dir` is neither read nor locked.
    pub fn shared(
        redis: Arc<crate::state::redis::Redis>,
        data_dir: &Path,
        max_document: u64,
    ) -> ContextStore {
        ContextStore {
            shared: Some(shared::SharedDocuments::new(redis)),
            ..ContextStore::unopened(data_dir, max_document)
        }
    }

    /// Every live document of this replica's own store, for `state import`.
    pub fn snapshot(&self) -> Vec<(String, String, Document)> {
        let now = unix_ms();
        self.read()
            .iter()
            .filter(|(_, doc)| doc.live(now))
            .map(|((ns, key), doc)| (ns.clone(), key.clone(), doc.clone()))
            .collect()
    }

    /// Adds a document as it is, owner and expiry kept, unless one is there: `state import`
    /// into the shared store. `Ok(false)` for one already there (or a store not shared).
    pub async fn import(
        &self,
        namespace: &str,
        key: &str,
        document: &Document,
    ) -> Result<bool, ContextError> {
        match &self.shared {
            Some(shared) => shared
                .import(namespace, key, document)
                .await
                .map_err(ContextError::Unavailable),
            None => Ok(false),
        }
    }

    pub fn max_document(&self) -> usize {
        self.max_document
    }

    /// Every change from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Id, Document>> {
        self.documents.read().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self, namespace: &str, key: &str) -> Option<Document> {
        let now = unix_ms();
        self.read()
            .get(&(namespace.to_owned(), key.to_owned()))
            .filter(|d| d.live(now))
            .cloned()
    }

    /// The document, if it exists and has not expired.
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Document, ContextError> {
        check_names(namespace, key)?;
        let current = match &self.shared {
            Some(shared) => shared.get(namespace, key).await?,
            None => self.current(namespace, key),
        };
        current.ok_or_else(|| ContextError::NotFound {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
        })
    }

    /// Writes `value` if `precondition` holds and the author's bounds allow, living `ttl` if
    /// given. Returns the new document and whether it was created rather than replaced.
    pub async fn put(
        &self,
        author: &Author<'_>,
        namespace: &str,
        key: &str,
        value: &Value,
        precondition: &Precondition,
        ttl: Option<Duration>,
    ) -> Result<(Document, bool), ContextError> {
        check_names(namespace, key)?;
        let json = value.to_string();
        if json.len() > self.max_document {
            return Err(ContextError::TooLarge {
                size: json.len(),
                limit: self.max_document,
            });
        }
        if let Some(shared) = &self.shared {
            return shared
                .put(author, namespace, key, json, precondition, ttl)
                .await;
        }
        let mut writer = self.writer.lock().await;
        let current = self.current(namespace, key);
        self.check(namespace, key, precondition, current.as_ref())?;
        writer
            .holdings
            .check(author, current.as_ref(), json.len())?;
        let now = unix_ms();
        // Microseconds since the epoch, never repeating: a version stays unique across deletes
        // and restarts, so a stale ETag can never match a newer document by accident.
        let version = (now.saturating_mul(1000)).max(writer.last_version + 1);
        let expires_ms = ttl.map(|t| now.saturating_add(t.as_millis() as u64));
        let value = RawValue::from_string(json).map_err(|cause| StateError::Corrupt {
            path: self.dir.clone(),
            what: "a context document",
            cause,
        })?;
        let stored = disk::Stored {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            version,
            expires_ms,
            owner: author.name.map(str::to_owned),
            value,
        };
        self.claim(&mut writer).await?;
        let dir = self.dir.clone();
        let stored = blocking(move || disk::write(&dir, &stored).map(|()| stored)).await?;
        writer.last_version = version;
        let document = Document {
            json: Arc::from(stored.value.get()),
            version,
            expires_ms,
            owner: author.name.map(Arc::from),
        };
        // Whatever was there, expired or not, is replaced.
        let replaced = self
            .documents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((stored.namespace, stored.key), document.clone());
        if let Some(replaced) = &replaced {
            writer.holdings.remove(replaced);
        }
        writer.holdings.add(&document);
        self.announce(namespace, key, current.is_none());
        Ok((document, current.is_none()))
    }

    /// Removes the document if it exists and `precondition` holds.
    pub async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: &Precondition,
    ) -> Result<(), ContextError> {
        check_names(namespace, key)?;
        if let Some(shared) = &self.shared {
            return shared.delete(namespace, key, precondition).await;
        }
        let mut writer = self.writer.lock().await;
        let Some(current) = self.current(namespace, key) else {
            return Err(ContextError::NotFound {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
            });
        };
        self.check(namespace, key, precondition, Some(&current))?;
        self.remove(&mut writer, namespace, key).await
    }

    fn check(
        &self,
        namespace: &str,
        key: &str,
        precondition: &Precondition,
        current: Option<&Document>,
    ) -> Result<(), ContextError> {
        if precondition.holds(current) {
            Ok(())
        } else {
            Err(ContextError::Stale {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                current: current.map(|d| d.version),
            })
        }
    }

    /// Removes a document's file and entry; the caller holds the writer lock.
    async fn remove(
        &self,
        writer: &mut Writer,
        namespace: &str,
        key: &str,
    ) -> Result<(), ContextError> {
        let (dir, ns, k) = (self.dir.clone(), namespace.to_owned(), key.to_owned());
        blocking(move || disk::remove(&dir, &ns, &k)).await?;
        let removed = self
            .documents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.to_owned(), key.to_owned()));
        if let Some(removed) = &removed {
            writer.holdings.remove(removed);
        }
        self.announce(namespace, key, true);
        Ok(())
    }

    async fn claim(&self, writer: &mut Writer) -> Result<(), StateError> {
        if writer.lock.is_none() {
            let dir = self.dir.clone();
            writer.lock = Some(blocking(move || disk::claim(&dir)).await?);
        }
        Ok(())
    }

    fn announce(&self, namespace: &str, key: &str, listed: bool) {
        // No receiver is no error: nobody is subscribed.
        let _ = self.changes.send(Change {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            listed,
            missed: false,
        });
    }

    /// Up to `limit` live documents after `after`, in (namespace, key) order, of the namespaces
    /// `visible` admits (only `namespace` when given). Also returns whether more follow.
    pub async fn list(
        &self,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<(Vec<Entry>, bool), ContextError> {
        if let Some(shared) = &self.shared {
            return shared.list(namespace, after, limit, visible).await;
        }
        Ok(self.list_here(namespace, after, limit, visible))
    }

    fn list_here(
        &self,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> (Vec<Entry>, bool) {
        use std::ops::Bound;
        let now = unix_ms();
        let start = match after {
            Some((ns, key)) => Bound::Excluded((ns.to_owned(), key.to_owned())),
            None => match namespace {
                Some(ns) => Bound::Included((ns.to_owned(), String::new())),
                None => Bound::Unbounded,
            },
        };
        let documents = self.read();
        let mut matching = documents
            .range((start, Bound::Unbounded))
            .take_while(|((ns, _), _)| namespace.is_none_or(|wanted| wanted == ns))
            .filter(|((ns, _), doc)| doc.live(now) && visible(ns))
            .map(|((ns, key), doc)| Entry {
                namespace: ns.clone(),
                key: key.clone(),
                version: doc.version,
                size: doc.json.len(),
            });
        let page: Vec<Entry> = matching.by_ref().take(limit).collect();
        let more = matching.next().is_some();
        (page, more)
    }

    /// Removes every expired document, telling subscribers; runs until the gateway stops. With
    /// Redis, also relays every replica's changes to this one's subscribers.
    pub async fn expire(self: Arc<Self>) {
        if let Some(shared) = &self.shared {
            tokio::join!(shared.expire(), shared.relay(self.changes.clone()));
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = unix_ms();
            let expired: Vec<Id> = self
                .read()
                .iter()
                .filter(|(_, doc)| !doc.live(now))
                .map(|(id, _)| id.clone())
                .collect();
            for (namespace, key) in expired {
                let mut writer = self.writer.lock().await;
                // A write may have renewed it since it was seen expired.
                let still_expired = self
                    .read()
                    .get(&(namespace.clone(), key.clone()))
                    .is_some_and(|doc| !doc.live(unix_ms()));
                if still_expired
                    && let Err(error) = self.remove(&mut writer, &namespace, &key).await
                {
                    tracing::error!(%error, "cannot remove an expired context document");
                }
            }
        }
    }
}

/// Runs file I/O off the async workers; a panicked task is reported as an I/O error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(StateError::Io {
            path: PathBuf::new(),
            cause: std::io::Error::other(e.to_string()),
        })
    })
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The longest TTL of a document or a registration: past it, a deadline could overflow the
/// clock, and nothing meant to expire should outlive a month unrenewed.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A TTL as written in config.yaml (`30s`, `10m`), longer than zero and at most [`MAX_TTL`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    match crate::config::parse_duration(text) {
        Ok(ttl) if ttl > MAX_TTL => Err(format!(
            "Invalid ttl {text:?}: at most {} days.",
            MAX_TTL.as_secs() / 86_400
        )),
        Ok(ttl) if !ttl.is_zero() => Ok(ttl),
        _ => Err(format!(
            "Invalid ttl {text:?}: write a duration such as 30s, 10m or 1h."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(name: &str, max: u64) -> (ContextStore, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("switchboard-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (ContextStore::open(&dir, max).unwrap(), dir)
    }

    #[tokio::test]
    async fn versions_guard_writes_and_survive_reopening() {
        let (store, dir) = store("versions", 1024);
        let mut changes = store.changes();
        let (first, created) = store
            .put(
                &Author::default(),
                "ns",
                "k",
                &json!({"a": 1}),
                &Precondition::None,
                None,
            )
            .await
            .unwrap();
        assert!(created);
        let stale = Precondition::Version(vec![first.version + 1]);
        let refused = store
            .put(&Author::default(), "ns", "k", &json!(2), &stale, None)
            .await;
        assert!(matches!(refused, Err(ContextError::Stale { .. })));
        let matching = Precondition::Version(vec![first.version]);
        let (second, created) = store
            .put(&Author::default(), "ns", "k", &json!(2), &matching, None)
            .await
            .unwrap();
        assert!(!created && second.version > first.version);
        let (creation, update) = (changes.recv().await.unwrap(), changes.recv().await.unwrap());
        assert_eq!((creation.key.as_str(), creation.listed), ("k", true));
        assert_eq!((update.key.as_str(), update.listed), ("k", false));
        drop(store);
        let reopened = ContextStore::open(&dir, 1024).unwrap();
        let doc = reopened.get("ns", "k").await.unwrap();
        assert_eq!((&*doc.json, doc.version), ("2", second.version));
        reopened
            .delete("ns", "k", &Precondition::None)
            .await
            .unwrap();
        assert!(matches!(
            reopened.get("ns", "k").await,
            Err(ContextError::NotFound { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn bad_names_oversized_documents_and_expired_ones_are_refused() {
        let (store, dir) = store("bounds", 8);
        let big = json!("0123456789");
        let anyone = Author::default();
        let too_big = store.put(&anyone, "ns", "k", &big, &Precondition::None, None);
        assert!(matches!(
            too_big.await,
            Err(ContextError::TooLarge { size: 12, limit: 8 })
        ));
        for (ns, key) in [("..", "k"), ("ns", "a/b"), ("", "k"), ("ns", "sp ace")] {
            let bad = store
                .put(
                    &Author::default(),
                    ns,
                    key,
                    &json!(1),
                    &Precondition::None,
                    None,
                )
                .await;
            assert!(
                matches!(bad, Err(ContextError::InvalidName { .. })),
                "{ns}/{key}"
            );
        }
        let ttl = Some(Duration::from_millis(1));
        store
            .put(
                &Author::default(),
                "ns",
                "k",
                &json!(1),
                &Precondition::None,
                ttl,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(store.get("ns", "k").await.is_err());
        assert!(
            !dir.join("context").read_dir().unwrap().any(|e| e
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "tmp"))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn listing_pages_through_visible_namespaces() {
        let (store, dir) = store("list", 1024);
        for (ns, key) in [("a", "1"), ("a", "2"), ("b", "1"), ("c", "1")] {
            store
                .put(
                    &Author::default(),
                    ns,
                    key,
                    &json!(1),
                    &Precondition::None,
                    None,
                )
                .await
                .unwrap();
        }
        let visible = |ns: &str| ns != "b";
        let (page, more) = store.list_here(None, None, 2, visible);
        assert!(more);
        let last = page.last().unwrap();
        let (rest, more) = store.list_here(None, Some((&last.namespace, &last.key)), 2, visible);
        assert!(!more);
        assert_eq!(
            rest.iter()
                .map(|e| e.namespace.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        let (only_a, _) = store.list_here(Some("a"), None, 10, |_| true);
        assert_eq!(only_a.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn preconditions_follow_the_headers() {
        assert_eq!(
            Precondition::from_headers(Some("*"), None),
            Precondition::Exists
        );
        assert_eq!(
            Precondition::from_headers(Some("\"5\", W/\"6\", \"x\""), None),
            Precondition::Version(vec![5])
        );
        assert_eq!(
            Precondition::from_headers(None, Some("*")),
            Precondition::Absent
        );
        assert_eq!(Precondition::from_headers(None, None), Precondition::None);
    }
}
