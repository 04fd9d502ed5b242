//! Stored Responses API responses: each one a client asked to `store`, with the conversation
//! that led to it, for `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`.
//!
//! Kept for `state.responses_ttl` and for the key that created it alone: a file per response
//! under `state.data_dir/responses` (named by the id's SHA-256, so no id can escape the
//! directory), or a Redis key per response when replicas share state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_providers::chat::Message;

use crate::state::StateError;
use crate::state::redis::{Redis, RedisFailure};

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The name of the key that created it; empty on an open gateway.
    pub owner: String,
    /// Unix milliseconds after which it is gone.
    pub expires_ms: u64,
    /// The response object as the client received it.
    pub response: Value,
    /// The conversation a later response continues: history, input and this answer.
    pub conversation: Vec<Message>,
    /// How many bytes it took in the store, when read from it.
    #[serde(skip)]
    pub size: usize,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Redis(#[from] RedisFailure),
    #[error("a stored response cannot be read: {0}")]
    Corrupt(String),
}

enum Backend {
    /// Files under the data directory, which this store has locked.
    Disk {
        dir: PathBuf,
        _lock: std::fs::File,
    },
    Redis(Arc<Redis>),
    /// For `switchboard check`: never read or written.
    Unopened,
}

/// The stored responses.
pub struct StoredResponses {
    backend: Backend,
    ttl: Duration,
}

const LOCK: &str = "lock";

impl StoredResponses {
    /// The store under `data_dir`; responses past their TTL are removed now.
    pub fn open(data_dir: &Path, ttl: Duration) -> Result<Self, StateError> {
        let dir = data_dir.join("responses");
        let lock = crate::state::claim(&dir, LOCK)?;
        let store = StoredResponses {
            backend: Backend::Disk { dir, _lock: lock },
            ttl,
        };
        store.sweep();
        Ok(store)
    }

    /// The store kept in the Redis the replicas share.
    pub fn shared(redis: Arc<Redis>, ttl: Duration) -> Self {
        StoredResponses {
            backend: Backend::Redis(redis),
            ttl,
        }
    }

    /// A store that is never used: `switchboard check`.
    pub fn unopened(ttl: Duration) -> Self {
        StoredResponses {
            backend: Backend::Unopened,
            ttl,
        }
    }

    /// When a response stored now expires, in Unix milliseconds.
    pub fn expiry(&self) -> u64 {
        crate::clock::unix_millis() + u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// Keeps `stored` under `id`.
    pub async fn put(&self, id: &str, stored: &Stored) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(stored).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match &self.backend {
            Backend::Disk { dir, .. } => {
                let path = file(dir, id);
                blocking(move || write(&path, &bytes)).await
            }
            Backend::Redis(redis) => {
                let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX / 2);
                let mut command = redis::cmd("SET");
                command.arg(key(redis, id)).arg(bytes).arg("PX").arg(ttl_ms);
                redis.command::<()>("responses_put", &command).await?;
                Ok(())
            }
            Backend::Unopened => Ok(()),
        }
    }

    /// The response `id`, if it exists, has not expired, and `owner` created it.
    pub async fn get(&self, id: &str, owner: &str) -> Result<Option<Stored>, StoreError> {
        let bytes: Option<Vec<u8>> = match &self.backend {
            Backend::Disk { dir, .. } => {
                let path = file(dir, id);
                blocking(move || read(&path)).await?
            }
            Backend::Redis(redis) => {
                let mut command = redis::cmd("GET");
                command.arg(key(redis, id));
                redis.command("responses_get", &command).await?
            }
            Backend::Unopened => None,
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let mut stored: Stored =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        stored.size = bytes.len();
        if stored.expires_ms <= crate::clock::unix_millis() {
            self.remove(id).await?;
            return Ok(None);
        }
        Ok((stored.owner == owner).then_some(stored))
    }

    /// Removes the response `id` if `owner` created it; whether it did.
    pub async fn delete(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        if self.get(id, owner).await?.is_none() {
            return Ok(false);
        }
        self.remove(id).await?;
        Ok(true)
    }

    async fn remove(&self, id: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Disk { dir, .. } => {
                let path = file(dir, id);
                blocking(move || Ok(crate::state::remove_durably(&path)?)).await
            }
            Backend::Redis(redis) => {
                let mut command = redis::cmd("DEL");
                command.arg(key(redis, id));
                redis.command::<()>("responses_delete", &command).await?;
                Ok(())
            }
            Backend::Unopened => Ok(()),
        }
    }

    /// Removes every file past its TTL (Redis expires its keys itself). Run at start and then
    /// hourly, so the directory holds what a TTL allows and no more.
    pub fn sweep(&self) {
        let Backend::Disk { dir, .. } = &self.backend else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let now = crate::clock::unix_millis();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let expired = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Expiry>(&b).ok())
                .is_none_or(|e| e.expires_ms <= now);
            if expired {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Sweeps the directory every hour, for as long as the gateway runs.
    pub async fn sweep_hourly(self: Arc<Self>) {
        if !matches!(self.backend, Backend::Disk { .. }) {
            return;
        }
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        every.tick().await;
        loop {
            every.tick().await;
            let store = self.clone();
            let _ = tokio::task::spawn_blocking(move || store.sweep()).await;
        }
    }
}

/// Just the expiry of a stored file, read without its conversation.
#[derive(Deserialize)]
struct Expiry {
    expires_ms: u64,
}

fn file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{}.json", crate::digest::sha256_hex(id.as_bytes())))
}

fn key(redis: &Redis, id: &str) -> String {
    redis.key(id, "response")
}

/// A stored response is written whole (a temporary file renamed into place) but not synced:
/// losing the last responses to a power cut costs a client a `previous_response_id`, and an
/// fsync per request would cost every client latency.
fn write(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes).map_err(crate::state::io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(crate::state::io(path))?;
    Ok(())
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::state::io(path)(e).into()),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Corrupt(format!("the file task failed: {e}")))?
}
