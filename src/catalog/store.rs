//! Where the catalog's book is kept: a file in the data directory, Redis (which every replica
//! reads), or memory alone for a `check` that opens nothing.

use std::path::PathBuf;
use std::sync::Arc;

use super::book::{Book, Change, Subscription};
use crate::state::StateError;
use crate::state::redis::{Redis, RedisFailure};

/// The file the book is kept in, under `state.data_dir`.
pub const FILE: &str = "catalog.json";

pub(super) enum Store {
    Memory,
    File(PathBuf),
    Redis(Arc<Redis>),
}

/// Why the book could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    File(#[from] StateError),
    #[error("Redis: {0}")]
    Redis(#[from] RedisFailure),
    #[error("an unreadable catalog record: {0}")]
    Unreadable(String),
}

impl Store {
    /// The book in Redis; `None` for a store that is not shared.
    pub(super) async fn load_shared(&self) -> Result<Option<Book>, StoreError> {
        let Store::Redis(redis) = self else {
            return Ok(None);
        };
        // Read first: records written after it carry a later version, so nothing is missed.
        let version = self.version().await?;
        let all = |name: &str| {
            redis::cmd("HGETALL")
                .arg(redis.key("catalog", name))
                .clone()
        };
        let subscriptions: Vec<(String, String)> =
            redis.command("catalog_read", &all("subscriptions")).await?;
        let changes: Vec<(String, String)> = redis.command("catalog_read", &all("changes")).await?;
        let read = |e: serde_json::Error| StoreError::Unreadable(e.to_string());
        let subscriptions = subscriptions
            .iter()
            .map(|(_, body)| serde_json::from_str::<Subscription>(body).map_err(read))
            .collect::<Result<Vec<_>, _>>()?;
        let changes = changes
            .into_iter()
            .map(|(entry, body)| Ok((entry, serde_json::from_str(&body).map_err(read)?)))
            .collect::<Result<Vec<(String, Change)>, StoreError>>()?;
        let mut book = Book::of(subscriptions, changes);
        book.version = version;
        Ok(Some(book))
    }

    /// The count of writes to the shared book, which every write raises after it is made; 0
    /// for a store that is not shared.
    pub(super) async fn version(&self) -> Result<u64, StoreError> {
        let Store::Redis(redis) = self else {
            return Ok(0);
        };
        let get = redis::cmd("GET")
            .arg(redis.key("catalog", "version"))
            .clone();
        let version: Option<u64> = redis.command("catalog_read", &get).await?;
        Ok(version.unwrap_or(0))
    }

    /// Raises the version once a write is made.
    async fn written(redis: &Redis) -> Result<(), StoreError> {
        let incr = redis::cmd("INCR")
            .arg(redis.key("catalog", "version"))
            .clone();
        redis.command::<u64>("catalog_write", &incr).await?;
        Ok(())
    }

    /// The book in the data directory, as the last run left it (none: an empty book).
    pub(super) fn read_file(path: &std::path::Path) -> Result<Book, StateError> {
        let text = match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Book::default()),
            read => read.map_err(crate::state::io(path))?,
        };
        let mut book: Book =
            serde_json::from_slice(&text).map_err(|cause| StateError::Corrupt {
                path: path.to_owned(),
                what: "the catalog's subscriptions and changes",
                cause,
            })?;
        book.index();
        Ok(book)
    }

    /// A new subscription's id.
    pub(super) async fn next_id(&self, book: &Book) -> Result<u64, StoreError> {
        match self {
            Store::Redis(redis) => {
                let incr = redis::cmd("INCR").arg(redis.key("catalog", "next")).clone();
                Ok(redis.command("catalog_id", &incr).await?)
            }
            _ => Ok(book
                .subscriptions
                .keys()
                .next_back()
                .map_or(1, |last| last + 1)),
        }
    }

    /// Keeps `subscription`, whose new state `book` already holds.
    pub(super) async fn put_subscription(
        &self,
        subscription: &Subscription,
        book: &Book,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(redis) => {
                let body = serde_json::to_string(subscription)
                    .map_err(|e| StoreError::Unreadable(e.to_string()))?;
                let hset = redis::cmd("HSET")
                    .arg(redis.key("catalog", "subscriptions"))
                    .arg(subscription.id)
                    .arg(body)
                    .clone();
                redis.command::<i64>("catalog_write", &hset).await?;
                Self::written(redis).await
            }
            _ => self.write_whole(book).await,
        }
    }

    /// Keeps the change of `entry`, which `book` already holds.
    pub(super) async fn put_change(
        &self,
        entry: &str,
        change: &Change,
        book: &Book,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(redis) => {
                let body = serde_json::to_string(change)
                    .map_err(|e| StoreError::Unreadable(e.to_string()))?;
                let hset = redis::cmd("HSET")
                    .arg(redis.key("catalog", "changes"))
                    .arg(entry)
                    .arg(body)
                    .clone();
                redis.command::<i64>("catalog_write", &hset).await?;
                Self::written(redis).await
            }
            _ => self.write_whole(book).await,
        }
    }

    async fn write_whole(&self, book: &Book) -> Result<(), StoreError> {
        let Store::File(path) = self else {
            return Ok(());
        };
        let bytes =
            serde_json::to_vec_pretty(book).map_err(|e| StoreError::Unreadable(e.to_string()))?;
        let path = path.clone();
        // An fsync and a rename: off the runtime's threads.
        tokio::task::spawn_blocking(move || crate::state::write_durably(&path, &bytes))
            .await
            .map_err(|e| StoreError::Unreadable(e.to_string()))??;
        Ok(())
    }
}
