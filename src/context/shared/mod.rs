//! The context store in the Redis the replicas share: documents, versions and TTLs in Redis,
//! preconditions checked and versions bumped by one Lua compare-and-set, every change published
//! to every replica, expired documents removed (and told) by whichever replica sees them first.
//!
//! Keys: `<prefix>{ctx:<namespace>}:d:<key>` (a hash: JSON, version, owner, size, expiry), the
//! namespace's index and expiries beside it (one namespace, one cluster slot), the set of
//! namespaces, and each author's holdings under `{ctx-owner:<name>}`.

mod listen;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use tokio::sync::broadcast;

use super::{Author, Change, ContextError, Document, Entry, Precondition};
use crate::state::redis::{Redis, RedisFailure};

pub use listen::{listen, parse as parse_change};

static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("put.lua")));
static DELETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("delete.lua")));
static LIST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("list.lua")));
static HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("hold.lua")));

/// Attempts at a bounded author's write while other writes keep moving the document.
const ATTEMPTS: usize = 8;

/// The documents of every replica.
pub struct SharedDocuments {
    redis: Arc<Redis>,
    channel: String,
}

/// What the compare-and-set said.
enum Put {
    Written {
        version: u64,
        created: bool,
        old_owner: Option<String>,
        old_size: u64,
    },
    Stale(Option<u64>),
    /// The document moved since a bounded author's holdings were reserved against it.
    Moved,
}

impl SharedDocuments {
    pub fn new(redis: Arc<Redis>) -> Self {
        let channel = redis.key("ctx", "changes");
        SharedDocuments { redis, channel }
    }

    fn doc(&self, namespace: &str, key: &str) -> String {
        format!("{}{key}", self.doc_prefix(namespace))
    }

    fn doc_prefix(&self, namespace: &str) -> String {
        self.redis.key(&format!("ctx:{namespace}"), "d:")
    }

    fn index(&self, namespace: &str) -> String {
        self.redis.key(&format!("ctx:{namespace}"), "index")
    }

    fn expiries(&self, namespace: &str) -> String {
        self.redis.key(&format!("ctx:{namespace}"), "expiries")
    }

    fn namespaces(&self) -> String {
        self.redis.key("ctx", "namespaces")
    }

    fn holdings(&self, owner: &str) -> String {
        self.redis.key(&format!("ctx-owner:{owner}"), "held")
    }

    /// A document's three keys, as the write and delete scripts take them.
    fn document_keys<'a, 'b>(
        &self,
        invocation: &'a mut redis::ScriptInvocation<'b>,
        namespace: &str,
        key: &str,
    ) -> &'a mut redis::ScriptInvocation<'b> {
        invocation
            .key(self.doc(namespace, key))
            .key(self.index(namespace))
            .key(self.expiries(namespace))
    }

    /// Runs a script whose reply is a list of figures and names.
    async fn run(
        &self,
        op: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<Reply, ContextError> {
        self.redis
            .script(op, invocation)
            .await
            .map(Reply)
            .map_err(unavailable)
    }

    /// The live document, if there is one.
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Document>, ContextError> {
        type Fields = (Option<String>, Option<u64>, Option<String>, Option<String>);
        let (json, version, owner, expires): Fields = self
            .redis
            .command(
                "context_get",
                redis::cmd("HMGET")
                    .arg(self.doc(namespace, key))
                    .arg(&["j", "v", "o", "x"]),
            )
            .await
            .map_err(unavailable)?;
        let (Some(json), Some(version)) = (json, version) else {
            return Ok(None);
        };
        let expires_ms = expires.and_then(|x| x.parse().ok());
        let document = Document {
            json: Arc::from(json),
            version,
            expires_ms,
            owner: owner.filter(|o| !o.is_empty()).map(Arc::from),
        };
        Ok(document.live(super::unix_ms()).then_some(document))
    }

    /// Writes a document under the precondition and the author's bounds.
    pub async fn put(
        &self,
        author: &Author<'_>,
        namespace: &str,
        key: &str,
        json: String,
        precondition: &Precondition,
        ttl: Option<Duration>,
    ) -> Result<(Document, bool), ContextError> {
        let bounded =
            author.name.is_some() && (author.max_documents.is_some() || author.max_bytes.is_some());
        for _ in 0..ATTEMPTS {
            let (expectation, reserved) = if bounded {
                let current = self.get(namespace, key).await?;
                let reserved = self.reserve(author, current.as_ref(), json.len()).await?;
                (Some(current.map(|d| d.version)), Some(reserved))
            } else {
                (None, None)
            };
            let outcome = self
                .compare_and_set(
                    author,
                    namespace,
                    key,
                    &json,
                    precondition,
                    ttl,
                    expectation,
                )
                .await;
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    if let Some(reserved) = reserved {
                        self.give_back(author.name, reserved).await;
                    }
                    return Err(error);
                }
            };
            match outcome {
                Put::Moved => {
                    if let Some(reserved) = reserved {
                        self.give_back(author.name, reserved).await;
                    }
                }
                Put::Stale(current) => {
                    if let Some(reserved) = reserved {
                        self.give_back(author.name, reserved).await;
                    }
                    return Err(ContextError::Stale {
                        namespace: namespace.to_owned(),
                        key: key.to_owned(),
                        current,
                    });
                }
                Put::Written {
                    version,
                    created,
                    old_owner,
                    old_size,
                } => {
                    self.account(author, bounded, old_owner, old_size, json.len())
                        .await;
                    if created {
                        // The set of namespaces, for listings across them; never shrunk.
                        let _ = self
                            .redis
                            .command::<()>(
                                "context_put",
                                redis::cmd("SADD").arg(self.namespaces()).arg(namespace),
                            )
                            .await;
                    }
                    let document = Document {
                        expires_ms: ttl.map(|t| super::unix_ms() + t.as_millis() as u64),
                        json: Arc::from(json),
                        version,
                        owner: author.name.map(Arc::from),
                    };
                    return Ok((document, created));
                }
            }
        }
        Err(ContextError::Stale {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            current: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn compare_and_set(
        &self,
        author: &Author<'_>,
        namespace: &str,
        key: &str,
        json: &str,
        precondition: &Precondition,
        ttl: Option<Duration>,
        expectation: Option<Option<u64>>,
    ) -> Result<Put, ContextError> {
        let (kind, versions) = precondition_args(precondition);
        let (expect, expected) = match expectation {
            None => ("any", 0),
            Some(None) => ("absent", 0),
            Some(Some(version)) => ("version", version),
        };
        let mut invocation = PUT.prepare_invoke();
        self.document_keys(&mut invocation, namespace, key)
            .arg(json)
            .arg(author.name.unwrap_or_default())
            .arg(kind)
            .arg(versions)
            .arg(ttl.map_or(0, |t| t.as_millis() as u64))
            .arg(key)
            .arg(&self.channel)
            .arg(namespace)
            .arg(expect)
            .arg(expected);
        let reply = self.run("context_put", &invocation).await?;
        Ok(match reply.int(0) {
            1 => Put::Written {
                version: u64::try_from(reply.int(1)).unwrap_or(0),
                created: reply.int(2) == 1,
                old_owner: reply.owner(3),
                old_size: u64::try_from(reply.int(4)).unwrap_or(0),
            },
            0 => Put::Stale(u64::try_from(reply.int(1)).ok()),
            _ => Put::Moved,
        })
    }

    /// Reserves what a write by a bounded author adds to its holdings over `current`.
    async fn reserve(
        &self,
        author: &Author<'_>,
        current: Option<&Document>,
        size: usize,
    ) -> Result<(i64, i64), ContextError> {
        let Some(name) = author.name else {
            return Ok((0, 0));
        };
        let own = current.filter(|d| d.owner.as_deref() == Some(name));
        let documents = i64::from(own.is_none());
        let bytes = size as i64 - own.map_or(0, |d| d.json.len() as i64);
        let mut invocation = HOLD.prepare_invoke();
        invocation
            .key(self.holdings(name))
            .arg(documents)
            .arg(bytes)
            .arg(author.max_documents.unwrap_or(0))
            .arg(author.max_bytes.unwrap_or(0));
        let held: i64 = self
            .redis
            .script("context_hold", &invocation)
            .await
            .map_err(unavailable)?;
        match held {
            1 => Ok((documents, bytes)),
            0 => Err(ContextError::TooManyDocuments {
                limit: author.max_documents.unwrap_or(0),
            }),
            _ => Err(ContextError::OverBytes {
                limit: author.max_bytes.unwrap_or(0),
            }),
        }
    }

    /// Gives a reservation back; a failure leaves the holdings high until the next write.
    async fn give_back(&self, owner: Option<&str>, (documents, bytes): (i64, i64)) {
        if let Some(owner) = owner {
            self.adjust(owner, -documents, -bytes).await;
        }
    }

    async fn adjust(&self, owner: &str, documents: i64, bytes: i64) {
        if documents == 0 && bytes == 0 {
            return;
        }
        let mut invocation = HOLD.prepare_invoke();
        invocation
            .key(self.holdings(owner))
            .arg(documents)
            .arg(bytes)
            .arg(0)
            .arg(0);
        if let Err(error) = self.redis.script::<i64>("context_hold", &invocation).await {
            tracing::warn!(owner, %error, "context holdings not updated in Redis");
        }
    }

    /// After a write: the writer holds the document, a previous owner no longer does.
    async fn account(
        &self,
        author: &Author<'_>,
        reserved: bool,
        old_owner: Option<String>,
        old_size: u64,
        size: usize,
    ) {
        let same = old_owner.as_deref() == author.name && author.name.is_some();
        if let (Some(name), false) = (author.name, reserved) {
            let documents = i64::from(!same);
            let bytes = size as i64 - if same { old_size as i64 } else { 0 };
            self.adjust(name, documents, bytes).await;
        }
        if let (Some(old), false) = (old_owner, same) {
            self.adjust(&old, -1, -(old_size as i64)).await;
        }
    }

    /// Removes a document under the precondition.
    pub async fn delete(
        &self,
        namespace: &str,
        key: &str,
        precondition: &Precondition,
    ) -> Result<(), ContextError> {
        let (kind, versions) = precondition_args(precondition);
        let kind = if kind == "absent" { "versions" } else { kind };
        match self.remove(namespace, key, kind, &versions).await? {
            Removed::Gone => Ok(()),
            Removed::Stale(current) => Err(ContextError::Stale {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
                current,
            }),
            Removed::Missing => Err(ContextError::NotFound {
                namespace: namespace.to_owned(),
                key: key.to_owned(),
            }),
        }
    }

    async fn remove(
        &self,
        namespace: &str,
        key: &str,
        kind: &str,
        versions: &str,
    ) -> Result<Removed, ContextError> {
        let mut invocation = DELETE.prepare_invoke();
        self.document_keys(&mut invocation, namespace, key)
            .arg(kind)
            .arg(versions)
            .arg(key)
            .arg(&self.channel)
            .arg(namespace);
        let reply = self.run("context_delete", &invocation).await?;
        Ok(match reply.int(0) {
            1 => {
                if let Some(owner) = reply.owner(1) {
                    self.adjust(&owner, -1, -reply.int(2).max(0)).await;
                }
                Removed::Gone
            }
            0 => Removed::Stale(u64::try_from(reply.int(1)).ok()),
            _ => Removed::Missing,
        })
    }

    /// Up to `limit` live documents after `after`, of the namespaces `visible` admits (only
    /// `namespace` when given), and whether more follow.
    pub async fn list(
        &self,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
        limit: usize,
        visible: impl Fn(&str) -> bool,
    ) -> Result<(Vec<Entry>, bool), ContextError> {
        let mut namespaces: Vec<String> = match namespace {
            Some(ns) => vec![ns.to_owned()],
            None => self
                .redis
                .command(
                    "context_list",
                    redis::cmd("SMEMBERS").arg(self.namespaces()),
                )
                .await
                .map_err(unavailable)?,
        };
        namespaces.sort();
        let mut entries = Vec::new();
        for ns in namespaces
            .iter()
            .filter(|ns| visible(ns) && after.is_none_or(|(a, _)| ns.as_str() >= a))
        {
            let from = after.filter(|(a, _)| a == ns).map_or("", |(_, key)| key);
            let wanted = limit + 1 - entries.len();
            let mut invocation = LIST.prepare_invoke();
            invocation
                .key(self.index(ns))
                .arg(from)
                .arg(wanted.saturating_sub(1))
                .arg(self.doc_prefix(ns));
            let flat: Vec<String> = self
                .redis
                .idempotent_script("context_list", &invocation)
                .await
                .map_err(unavailable)?;
            for entry in flat.chunks_exact(3) {
                entries.push(Entry {
                    namespace: ns.clone(),
                    key: entry[0].clone(),
                    version: entry[1].parse().unwrap_or(0),
                    size: entry[2].parse().unwrap_or(0),
                });
            }
            if entries.len() > limit {
                break;
            }
        }
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok((entries, more))
    }

    /// Removes what has expired, in every namespace, telling every replica; one replica wins
    /// each removal. Runs until the gateway stops.
    pub async fn expire(&self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(namespaces) = self
                .redis
                .command::<Vec<String>>(
                    "context_expire",
                    redis::cmd("SMEMBERS").arg(self.namespaces()),
                )
                .await
            else {
                continue;
            };
            for ns in namespaces {
                let due: Vec<String> = self
                    .redis
                    .command(
                        "context_expire",
                        redis::cmd("ZRANGEBYSCORE")
                            .arg(self.expiries(&ns))
                            .arg("-inf")
                            .arg(super::unix_ms())
                            .arg("LIMIT")
                            .arg(0)
                            .arg(100),
                    )
                    .await
                    .unwrap_or_default();
                for key in due {
                    let _ = self.remove(&ns, &key, "expired", "").await;
                }
            }
        }
    }

    /// Relays every replica's changes to this one's subscribers until the gateway stops.
    pub async fn relay(&self, changes: broadcast::Sender<Change>) {
        listen(self.redis.clone(), self.channel.clone(), changes).await;
    }

    /// Copies one document as it is (import from the embedded store); `false` if one exists.
    pub async fn import(
        &self,
        namespace: &str,
        key: &str,
        document: &Document,
    ) -> Result<bool, RedisFailure> {
        let ttl = document
            .expires_ms
            .map(|at| at.saturating_sub(super::unix_ms()).max(1));
        let author = Author {
            name: document.owner.as_deref(),
            ..Author::default()
        };
        let put = self
            .compare_and_set(
                &author,
                namespace,
                key,
                &document.json,
                &Precondition::Absent,
                ttl.map(Duration::from_millis),
                None,
            )
            .await;
        match put {
            Ok(Put::Written {
                old_owner,
                old_size,
                ..
            }) => {
                self.account(&author, false, old_owner, old_size, document.json.len())
                    .await;
                let _ = self
                    .redis
                    .command::<()>(
                        "context_put",
                        redis::cmd("SADD").arg(self.namespaces()).arg(namespace),
                    )
                    .await;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(ContextError::Unavailable(failure)) => Err(failure),
            Err(_) => Ok(false),
        }
    }
}

enum Removed {
    Gone,
    Stale(Option<u64>),
    Missing,
}

fn precondition_args(precondition: &Precondition) -> (&'static str, String) {
    match precondition {
        Precondition::None => ("none", String::new()),
        Precondition::Exists => ("exists", String::new()),
        Precondition::Absent => ("absent", String::new()),
        Precondition::Version(versions) => (
            "versions",
            versions
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

fn unavailable(failure: RedisFailure) -> ContextError {
    ContextError::Unavailable(failure)
}

/// A script's reply: figures, and an owner's name.
struct Reply(Vec<redis::Value>);

impl Reply {
    /// The figure at `i`; -1 when there is none.
    fn int(&self, i: usize) -> i64 {
        self.0.get(i).and_then(as_i64).unwrap_or(-1)
    }

    /// The key name at `i`, if one is there.
    fn owner(&self, i: usize) -> Option<String> {
        self.0.get(i).and_then(as_string).filter(|o| !o.is_empty())
    }
}

fn as_i64(value: &redis::Value) -> Option<i64> {
    match value {
        redis::Value::Int(n) => Some(*n),
        redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

fn as_string(value: &redis::Value) -> Option<String> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(text) => Some(text.clone()),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}
