//! The gateway as a value: built from a [`Config`], served on a listener until a shutdown signal,
//! then drained (streams included) within `server.shutdown_timeout`.
//!
//! `main` and the black-box tests start the gateway through this one entry point.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::api::{self, AppState};
use crate::auth::{KeyError, KeyStore};
use crate::cache::ResponseCache;
use crate::config::Config;
use crate::connections::{self, Limits};
use crate::context::ContextStore;
use crate::quota::Shared;
use crate::routing::Routes;
use crate::state::redis::Redis;
use crate::state::redis::registrations::SharedRegistrations;
use crate::stored_responses::StoredResponses;
use crate::telemetry::Metrics;
use crate::upstream::discovery::{self, Discovery, DiscoveryError};
use crate::upstream::{self, UpstreamError};
use crate::usage::{Ledger, StateError};
use tokio_util::sync::CancellationToken;

/// A configuration that cannot be turned into a running gateway.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("cannot create the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("{0}")]
    Mcp(String),
    #[error(transparent)]
    Redis(#[from] crate::state::redis::ConnectError),
}

/// Applies the tools and instances registered through other replicas, for as long as the
/// gateway runs.
async fn follow(state: Arc<AppState>, registrations: Arc<api::Registrations>) {
    let tools = registrations.tools.follow(
        |entry| match crate::mcp::read_shared(&entry.body) {
            Ok((tool, owner)) => {
                let owner = owner.as_deref();
                if let Err(error) = state.tool_registry.register(&tool, entry.remaining, owner) {
                    tracing::warn!(tool = %entry.name, ?error, "a shared tool registration was refused here");
                }
            }
            Err(error) => tracing::warn!(tool = %entry.name, %error, "an unreadable shared tool registration"),
        },
        |name| {
            state.tool_registry.remove(name);
        },
    );
    let instances = registrations.instances.follow(
        |entry| {
            let Some((provider, url)) = entry.name.split_once(' ') else {
                return;
            };
            if let Some(upstream) = state.routes.upstreams().get(provider)
                && let upstream::Backend::Http(http) = &upstream.backend
            {
                // Another replica checked it against the same rules; a config changed since, or
                // a write to Redis by anyone else, must not send this one's credentials there.
                let allowed = url
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| e.to_string());
                if let Err(why) = allowed.and_then(|uri| http.admits(provider, &uri)) {
                    tracing::warn!(%provider, %url, %why, "a shared registration was refused here");
                    return;
                }
                let endpoint = switchboard_providers::Endpoint {
                    base_url: url.to_owned(),
                    ..http.endpoint.clone()
                };
                upstream.instances.register(endpoint, entry.remaining);
            }
        },
        |name| {
            if let Some((provider, url)) = name.split_once(' ')
                && let Some(upstream) = state.routes.upstreams().get(provider)
            {
                upstream.instances.unregister(url);
            }
        },
    );
    tokio::join!(tools, instances);
}

/// How long a shutdown waits for settlements on their way to Redis.
const SETTLEMENTS_AT_SHUTDOWN: Duration = Duration::from_secs(5);

/// A gateway ready to serve.
pub struct Gateway {
    /// The usage files' lock, held by an open gateway that keeps no usage files.
    _usage_lock: Option<std::fs::File>,
    state: Arc<AppState>,
    shutdown_timeout: Duration,
    limits: Limits,
    /// Started when serving starts, so `check` resolves nothing.
    discoveries: Vec<Discovery>,
    /// Ends MCP sessions, whose event streams would otherwise hold a graceful shutdown open.
    mcp_stop: CancellationToken,
    /// Upstream MCP servers; their supervisors start when serving starts.
    mcp_servers: Arc<crate::mcp::McpServers>,
}

/// Whether a build opens the state directory (usage ledger, context store) or leaves it alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Untouched,
}

impl Gateway {
    /// Builds every runtime part from a validated configuration, opening the state directory.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Self::build(config, State::Open)
    }

    /// Builds everything [`new`](Self::new) builds except the state directory, which is neither
    /// read, written nor locked: `switchboard check` runs beside the gateway it checks.
    pub fn check(config: &Config) -> Result<(), BuildError> {
        Self::build(config, State::Untouched).map(drop)
    }

    fn build(config: &Config, state_dir: State) -> Result<Self, BuildError> {
        let upstreams = upstream::build_all(&config.providers)?;
        let discoveries = discovery::build_all(&config.providers, &upstreams)?;
        let metrics = Arc::new(Metrics::default());
        // A check connects to nothing.
        let redis = match (&config.state.redis, state_dir) {
            (Some(redis), State::Open) => Some(Redis::new(redis, metrics.clone())?),
            _ => None,
        };
        let shared = match (&config.state.redis, &redis) {
            (Some(settings), Some(redis)) => Some(Shared::new(
                redis.clone(),
                settings,
                config.state.on_redis_error,
                metrics.clone(),
            )),
            _ => None,
        };
        let cache = config
            .cache
            .as_ref()
            .filter(|c| c.enabled)
            .map(|c| ResponseCache::new(c, metrics.clone(), redis.clone()));
        let admin_key = config
            .server
            .admin_key
            .as_ref()
            .filter(|k| !k.is_empty())
            .map(|k| crate::digest::sha256(k.expose().as_bytes()));
        let names = config.keys.iter().map(|k| k.name.as_str());
        // An open gateway accounts nothing, so it keeps no usage files; it still takes their
        // lock, so that two gateways never share a directory whatever their configs.
        // With Redis, usage lives there; the accounts in memory serve `on_redis_error: allow`.
        let ledger = if config.keys.is_empty() || state_dir == State::Untouched || shared.is_some()
        {
            Ledger::in_memory(names)
        } else {
            Ledger::open(&config.state.data_dir, names)?
        };
        let usage_lock = match state_dir {
            State::Open if config.keys.is_empty() && shared.is_none() => Some(crate::state::claim(
                &config.state.data_dir,
                crate::usage::LOCK_FILE,
            )?),
            _ => None,
        };
        let keys = KeyStore::new(&config.keys, &ledger, shared.as_ref())?;
        let context = Arc::new(match (state_dir, &redis) {
            // With Redis, the data directory is neither read, written nor locked.
            (State::Open, Some(redis)) => ContextStore::shared(
                redis.clone(),
                &config.state.data_dir,
                config.mcp.max_document.0,
            ),
            (State::Open, None) => {
                ContextStore::open(&config.state.data_dir, config.mcp.max_document.0)?
            }
            (State::Untouched, _) => {
                ContextStore::unopened(&config.state.data_dir, config.mcp.max_document.0)
            }
        });
        let responses_ttl = config.state.responses_ttl.0;
        let responses = Arc::new(match (state_dir, &redis) {
            (State::Open, Some(redis)) => StoredResponses::shared(redis.clone(), responses_ttl),
            (State::Open, None) => StoredResponses::open(&config.state.data_dir, responses_ttl)?,
            (State::Untouched, _) => StoredResponses::unopened(responses_ttl),
        });
        let max_answer = usize::try_from(config.server.max_answer.0).unwrap_or(usize::MAX);
        let clients = upstream::Clients::new(&config.models, max_answer)?;
        let mcp_stop = CancellationToken::new();
        let shared_sessions = redis
            .as_ref()
            .map(|redis| Arc::new(crate::mcp::SharedSessions::new(redis.clone())));
        let tool_registry = Arc::new(crate::mcp::Registry::new(config));
        let mcp_servers = Arc::new(crate::mcp::McpServers::new(
            &config.mcp.servers,
            clients.default_client().clone(),
        ));
        let (mcp, mcp_sessions) = crate::mcp::service(
            config,
            context.clone(),
            tool_registry.clone(),
            clients.default_client().clone(),
            mcp_servers.clone(),
            mcp_stop.clone(),
            shared_sessions.clone(),
        )
        .map_err(BuildError::Mcp)?;
        // Loading the tokenizer serves the first request; a check serves none.
        if state_dir == State::Open
            && keys
                .callers()
                .iter()
                .any(|c| c.quota.as_ref().is_some_and(|q| q.needs_estimate()))
        {
            crate::tokens::warm_up();
        }
        let state = AppState {
            keys,
            ledger: Arc::new(ledger),
            registrations: redis.as_ref().map(|redis| {
                Arc::new(api::Registrations {
                    tools: SharedRegistrations::new(redis.clone(), "tools"),
                    instances: SharedRegistrations::new(redis.clone(), "instances"),
                })
            }),
            shared,
            routes: Routes::new(&config.models, upstreams),
            clients,
            metrics,
            cache,
            admin_key,
            bodies: api::body::Bodies {
                max: config.server.max_body.0,
                timeout: config.server.body_timeout.0,
            },
            started: crate::clock::unix_now(),
            draining: AtomicBool::new(false),
            context,
            mcp,
            tool_registry,
            mcp_sessions,
            shared_sessions,
            responses,
        };
        Ok(Gateway {
            state: Arc::new(state),
            shutdown_timeout: config.server.shutdown_timeout.0,
            limits: Limits {
                header_timeout: config.server.header_timeout.0,
                max_connections: usize::try_from(config.server.max_connections)
                    .unwrap_or(usize::MAX),
            },
            discoveries,
            mcp_stop,
            mcp_servers,
            _usage_lock: usage_lock,
        })
    }

    /// The HTTP routes alone, to drive requests in-process (the fuzz targets do): no listener,
    /// and none of the background work [`serve`](Self::serve) starts.
    pub fn into_router(self) -> axum::Router {
        api::router(self.state)
    }

    /// Whether no virtual key is configured, so anyone who can connect may call.
    pub fn is_open(&self) -> bool {
        self.state.keys.is_open()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits for in-flight requests,
    /// giving up on them after the shutdown timeout.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let draining = Arc::new(Notify::new());
        let state = self.state.clone();
        let notify = draining.clone();
        let mcp_stop = self.mcp_stop.clone();
        let signal = async move {
            shutdown.await;
            state.draining.store(true, Ordering::Relaxed);
            mcp_stop.cancel();
            tracing::info!("shutting down: draining in-flight requests");
            notify.notify_one();
        };
        let ledger = self.state.ledger.clone();
        let maintenance = tokio::spawn(ledger.clone().maintain());
        let shared = self.state.shared.clone();
        let settling = shared.clone().map(|shared| tokio::spawn(shared.run()));
        let following = self
            .state
            .registrations
            .clone()
            .map(|registrations| tokio::spawn(follow(self.state.clone(), registrations)));
        let discovering = discovery::spawn_all(self.discoveries);
        let expiry = tokio::spawn(self.state.context.clone().expire());
        let tool_expiry = tokio::spawn(self.state.tool_registry.clone().sweep());
        let response_expiry = tokio::spawn(self.state.responses.clone().sweep_hourly());
        let mcp_supervisors = self.mcp_servers.spawn(&self.mcp_stop);
        let server = connections::serve(listener, api::router(self.state), self.limits, signal);
        let grace = self.shutdown_timeout;
        tokio::select! {
            () = server => {}
            () = async { draining.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(timeout = ?grace, "shutdown timeout reached: closing remaining connections");
            }
        }
        maintenance.abort();
        if let Some(following) = following {
            following.abort();
        }
        if let (Some(shared), Some(settling)) = (shared, settling) {
            shared.drain(SETTLEMENTS_AT_SHUTDOWN).await;
            settling.abort();
        }
        for task in discovering {
            task.abort();
        }
        expiry.abort();
        tool_expiry.abort();
        response_expiry.abort();
        // Each closes its connection (and ends its child process) within 5s of the cancel.
        self.mcp_stop.cancel();
        for task in mcp_supervisors {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(6), task).await;
        }
        if let Err(error) = ledger.compact() {
            tracing::error!(%error, "cannot save usage at shutdown");
        }
        Ok(())
    }
}
