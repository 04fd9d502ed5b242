//! Stored Responses API responses: each one a client asked to `store`, with the conversation
//! that led to it, for `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`.
//!
//! Kept for `state.responses_ttl` and for the key that created it alone: a file per response
//! under `state.data_dir/responses` (named by the id's SHA-256, so no id can escape the
//! directory), or a Redis key per response when replicas share state.

mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_providers::NativeEvent;
use switchboard_providers::chat::{ChatResponse, Message};
use switchboard_providers::responses;

use crate::state::StateError;
use crate::state::redis::{Redis, RedisFailure};
use writer::Writer;

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
    /// The provider that was sent the client's body as written and wrote this response: it
    /// keeps the response too, so a follow-up can go to it as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// How many bytes it took in the store, when read from it.
    #[serde(skip)]
    pub size: usize,
}

/// Where a Responses API response is kept once complete, with the conversation before it.
pub struct Keep {
    store: Arc<StoredResponses>,
    /// The key's name; empty on an open gateway.
    owner: String,
    conversation: Vec<Message>,
    /// See [`Stored::upstream`].
    upstream: Option<String>,
    /// The data of the last `response.completed` (or `.incomplete`) event of a stream the
    /// provider wrote itself.
    heard: Option<String>,
}

/// The events that end a response which completed, whole or cut short.
const ENDINGS: [&str; 2] = ["response.completed", "response.incomplete"];

#[derive(Deserialize)]
struct Ending {
    response: Value,
}

impl Keep {
    /// Keeps a response of `owner`'s, continuing `conversation` (history and input).
    pub fn new(store: Arc<StoredResponses>, owner: String, conversation: Vec<Message>) -> Self {
        Keep {
            store,
            owner,
            conversation,
            upstream: None,
            heard: None,
        }
    }

    /// The response is written by `provider` itself, from the client's body as written.
    pub fn written_by(&mut self, provider: &str) {
        self.upstream = Some(provider.to_owned());
    }

    /// Stores `response` under its own id, its conversation ending with `answer`. A store that
    /// fails costs the client a later `previous_response_id`, not this answer: it is logged.
    pub async fn store(self, response: Value, answer: Message) {
        let Some(id) = response["id"].as_str().map(str::to_owned) else {
            tracing::warn!("a response without an id cannot be stored");
            return;
        };
        let mut conversation = self.conversation;
        conversation.push(answer);
        let stored = Stored {
            owner: self.owner,
            expires_ms: self.store.expiry(),
            response,
            conversation,
            upstream: self.upstream,
            size: 0,
        };
        if let Err(error) = self.store.put(&id, &stored).await {
            tracing::warn!(%id, %error, "could not store a response");
        }
    }

    /// Stores a response object the provider wrote, whose `answer` was read from it already.
    pub async fn store_written(self, object: &[u8], answer: &ChatResponse) {
        match serde_json::from_slice::<Value>(object) {
            Ok(value) => self.store(value, responses::assistant_turn(answer)).await,
            Err(error) => tracing::warn!(%error, "a provider's response cannot be stored"),
        }
    }

    /// Hears one event of a stream the provider writes itself, for the response it ends with.
    pub fn hear(&mut self, event: &NativeEvent) {
        let ends = match event.name.as_str() {
            "" => ENDINGS.iter().any(|e| event.data.contains(e)),
            name => ENDINGS.contains(&name),
        };
        if ends {
            self.heard = Some(event.data.clone());
        }
    }

    /// Stores the response the heard stream ended with, if it ended with one.
    pub async fn store_heard(mut self) {
        let Some(data) = self.heard.take() else {
            return;
        };
        let read = serde_json::from_str::<Ending>(&data)
            .map_err(|e| e.to_string())
            .and_then(|ending| {
                let answer = responses::read_answer(&ending.response).map_err(|e| e.message)?;
                Ok((ending.response, responses::assistant_turn(&answer)))
            });
        match read {
            Ok((value, answer)) => self.store(value, answer).await,
            Err(error) => tracing::warn!(%error, "a provider's response cannot be stored"),
        }
    }
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
    /// Files under the data directory, which this store has locked, written by one thread.
    Disk {
        dir: PathBuf,
        writer: Writer,
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
        let writer = Writer::start().map_err(crate::state::io(&dir))?;
        let store = StoredResponses {
            backend: Backend::Disk {
                dir,
                writer,
                _lock: lock,
            },
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
            Backend::Disk { dir, writer, .. } => writer.write(file(dir, id), bytes).await,
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

    /// Removes every file past its TTL, and temporary files a crash left behind an hour ago
    /// (Redis expires its keys itself). Run at start and then hourly, so the directory holds
    /// what a TTL allows and no more.
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
            if path.extension().is_some_and(|e| e == "tmp") {
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|at| at.elapsed().is_ok_and(|age| age.as_secs() > 3600));
                if stale {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
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
    // A name of its own per write: two writes of one id (an upstream repeating its ids) must not
    // rename each other's temporary file away.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{n}.tmp"));
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
