//! The Redis the replicas share: one multiplexed connection (or a cluster's) that reconnects by
//! itself, every call bounded by `state.redis.timeout`, and the health `/ready` and limits read.
//!
//! Keys are `<key_prefix>{<tag>}:<name>`: everything one virtual key owns shares the hash tag,
//! so a script that touches all of it touches one Redis Cluster slot.

mod health;
pub mod registrations;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, ScriptInvocation, Value};

use crate::config::RedisConfig;
use crate::telemetry::Metrics;
use crate::telemetry::traces;
use health::Health;

/// Why a Redis call gave no answer. Never quotes the URL: it may carry a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisFailure {
    #[error("Redis did not answer within {0:?} (state.redis.timeout)")]
    Timeout(Duration),
    /// The call did not get through (connection refused, dropped, cluster down).
    #[error("Redis failed: {0}")]
    Failed(String),
    /// Redis answered with an error: a bug on our side, not an outage; retrying will not help.
    #[error("Redis refused the call: {0}")]
    Refused(String),
    /// Degraded, and the next probe is not due yet: failing fast keeps calls from piling up.
    #[error("Redis is unreachable: {0}")]
    Unavailable(Arc<str>),
}

impl RedisFailure {
    /// The failure's kind, as a span's `error.type`.
    pub fn kind(&self) -> &'static str {
        match self {
            RedisFailure::Timeout(_) => "timeout",
            RedisFailure::Failed(_) => "failed",
            RedisFailure::Refused(_) => "refused",
            RedisFailure::Unavailable(_) => "unavailable",
        }
    }
}

/// Why the connection to Redis could not even be set up.
#[derive(Debug, thiserror::Error)]
#[error("state.redis.url: {0}")]
pub struct ConnectError(String);

/// The shared Redis of the replicas.
pub struct Redis {
    client: Client,
    /// Pub/sub goes to one node: a cluster forwards every publication to every node.
    subscriber: redis::Client,
    /// Made at the first call, inside the runtime (the client needs one to make it).
    connection: OnceLock<Connection>,
    timeout: Duration,
    prefix: String,
    health: Health,
    metrics: Arc<Metrics>,
}

impl Redis {
    /// Sets up the connection without waiting for Redis: a gateway starts while Redis is down
    /// and reports itself degraded until it answers.
    pub fn new(config: &RedisConfig, metrics: Arc<Metrics>) -> Result<Arc<Redis>, ConnectError> {
        let timeout = config.timeout.0;
        let urls: Vec<&str> = config.url.all().iter().map(|u| u.expose()).collect();
        let first = urls.first().copied().unwrap_or_default();
        let subscriber = redis::Client::open(first).map_err(|e| ConnectError(e.to_string()))?;
        let client = if config.url.is_cluster() {
            let client = redis::cluster::ClusterClientBuilder::new(urls)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()
                .map_err(|e| ConnectError(e.to_string()))?;
            Client::Cluster(client)
        } else {
            let url = urls.first().copied().unwrap_or_default();
            Client::Single(redis::Client::open(url).map_err(|e| ConnectError(e.to_string()))?)
        };
        Ok(Arc::new(Redis {
            client,
            subscriber,
            connection: OnceLock::new(),
            timeout,
            prefix: config.key_prefix.clone(),
            health: Health::new(),
            metrics,
        }))
    }

    /// The connection, made lazily: it connects (and reconnects) by itself in the background.
    fn connection(&self) -> Result<Connection, RedisFailure> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        let timeout = self.timeout;
        let made = match &self.client {
            Client::Cluster(client) => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Connection::Cluster(client.get_pending_async_connection_with_config(config))
            }
            Client::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
                    .map_err(|e| RedisFailure::Failed(e.to_string()))?;
                Connection::Single(manager)
            }
        };
        Ok(self.connection.get_or_init(|| made).clone())
    }

    /// The key `name` of the group `tag` (a virtual key's name, `cache`, ...).
    pub fn key(&self, tag: &str, name: &str) -> String {
        format!("{}{{{tag}}}:{name}", self.prefix)
    }

    /// The metrics its calls are recorded in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The longest a call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a Lua script.
    pub async fn script<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, RedisFailure> {
        self.bounded(op, Again::IfNeverSent, |mut connection| async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Runs a Lua script that may run twice with no effect the second time (it dedupes, or
    /// only reads): made again when the connection dropped under it.
    pub async fn idempotent_script<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, RedisFailure> {
        self.bounded(op, Again::IfDropped, |mut connection| async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Runs one command; every command the gateway sends reads, or writes what it would write
    /// again, so it is made again when the connection dropped under it.
    pub async fn command<T: FromRedisValue>(
        &self,
        op: &'static str,
        command: &Cmd,
    ) -> Result<T, RedisFailure> {
        self.bounded(op, Again::IfDropped, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }

    /// A connection of its own for pub/sub, made within the timeout.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, RedisFailure> {
        match tokio::time::timeout(self.timeout, self.subscriber.get_async_pubsub()).await {
            Err(_) => Err(RedisFailure::Timeout(self.timeout)),
            Ok(Err(error)) => Err(RedisFailure::Failed(error.to_string())),
            Ok(Ok(pubsub)) => Ok(pubsub),
        }
    }

    /// Why Redis is being treated as unreachable, if it is.
    pub fn degraded(&self) -> Option<Arc<str>> {
        self.health.cause()
    }

    /// Runs `call` under the timeout, recording its time, its failure and the health. A call
    /// that never left (the connection was found broken, and is being made again) is made once
    /// more: the first call after Redis comes back must not fail for the connection's sake.
    async fn bounded<T, F, Fut>(
        &self,
        op: &'static str,
        again: Again,
        call: F,
    ) -> Result<T, RedisFailure>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if let Some(cause) = self.health.fail_fast() {
            self.metrics.state.redis_error(op);
            return Err(RedisFailure::Unavailable(cause));
        }
        let connection = self.connection()?;
        let attempt = async {
            match call(connection.clone()).await {
                Err(error) if again.applies(&error) => call(connection).await,
                outcome => outcome,
            }
        };
        let started = Instant::now();
        let span = traces::child(
            format!("redis {op}"),
            traces::Kind::Client,
            vec![
                traces::Attribute::new("db.system.name", "redis"),
                traces::Attribute::new("db.operation.name", op),
            ],
        );
        let ended = |span, outcome: &Result<T, RedisFailure>| {
            let error = outcome
                .as_ref()
                .err()
                .map(|f| (f.kind().to_owned(), f.to_string()));
            traces::end(span, error);
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Err(_) => Err(RedisFailure::Timeout(self.timeout)),
            Ok(Err(error)) if is_script_error(&error) => {
                // Redis answered: a bug in a script is not an outage.
                self.health.answered(&self.metrics);
                self.metrics.state.redis_error(op);
                tracing::error!(op, %error, "Redis refused a call");
                let refused = Err(RedisFailure::Refused(error.to_string()));
                ended(span, &refused);
                return refused;
            }
            Ok(Err(error)) => Err(RedisFailure::Failed(error.to_string())),
            Ok(Ok(value)) => Ok(value),
        };
        self.metrics
            .state
            .redis_call(op, started.elapsed().as_secs_f64());
        match &outcome {
            Ok(_) => self.health.answered(&self.metrics),
            Err(failure) => {
                self.metrics.state.redis_error(op);
                self.health.failed(&failure.to_string(), &self.metrics);
            }
        }
        ended(span, &outcome);
        outcome
    }
}

/// When a call is made a second time, on the connection made again after it dropped: the first
/// call after Redis returns finds the old connection broken.
#[derive(Clone, Copy)]
enum Again {
    /// Only if it surely never reached Redis: a second run could apply it twice.
    IfNeverSent,
    /// If the connection dropped, sent or not: running it twice changes nothing.
    IfDropped,
}

impl Again {
    fn applies(self, error: &redis::RedisError) -> bool {
        match self {
            Again::IfNeverSent => never_sent(error),
            Again::IfDropped => error.is_connection_dropped() || never_sent(error),
        }
    }
}

/// Whether a call failed before it reached Redis (so making it again cannot apply it twice).
fn never_sent(error: &redis::RedisError) -> bool {
    use std::io::ErrorKind;
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionRefused | ErrorKind::NotConnected
            )
        })
}

/// An error Redis itself answered with (a script's bug, a type mismatch), as opposed to one on
/// the way to it or from a node that cannot serve.
fn is_script_error(error: &redis::RedisError) -> bool {
    use redis::ServerErrorKind as Server;
    matches!(
        error.kind(),
        redis::ErrorKind::UnexpectedReturnType
            | redis::ErrorKind::Parse
            | redis::ErrorKind::Server(
                Server::ResponseError | Server::ExecAbort | Server::CrossSlot | Server::NoPerm
            )
    )
}

/// What connections are made from; one per gateway, so the cluster's is not boxed.
#[allow(clippy::large_enum_variant)]
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A single Redis or a cluster, behind one interface.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
