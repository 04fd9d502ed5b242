//! The gateway as a value: built from a [`Config`], served on a listener until a shutdown signal,
//! then drained (streams included) within `server.shutdown_timeout`.
//!
//! `main` and the black-box tests start the gateway through this one entry point.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

mod follow;
mod reload;

use std::path::PathBuf;

use crate::api::{self, AppState, Current, Loaded};
use crate::auth::{JwtAuth, KeyError, KeyStore};
use crate::cache::ResponseCache;
use crate::catalog::Catalog;
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
    #[error(transparent)]
    Audit(#[from] crate::audit::WriterError),
}

/// How long a shutdown waits for settlements on their way to Redis.
const SETTLEMENTS_AT_SHUTDOWN: Duration = Duration::from_secs(5);

/// A gateway ready to serve.
pub struct Gateway {
    /// The usage files' lock, held by an open gateway that keeps no usage files.
    _usage_lock: Option<std::fs::File>,
    current: Current,
    shutdown_timeout: Duration,
    limits: Limits,
    /// Started when serving starts, so `check` resolves nothing.
    discoveries: Vec<Discovery>,
    /// Ends MCP sessions, whose event streams would otherwise hold a graceful shutdown open,
    /// and the upstream MCP servers' supervisors.
    mcp_stop: CancellationToken,
    /// The config file a reload reads, with the channel reloads are asked on.
    source: Option<(PathBuf, mpsc::Receiver<api::reload::Asked>)>,
    /// Where traces go; the exporter starts with serving, inside the runtime.
    telemetry: crate::config::TelemetryConfig,
    /// `SIGHUP` caught ahead of serving (see [`Gateway::catch_hangups`]).
    hangups: Option<reload::Hangups>,
}

/// Whether a build opens the state directory (usage ledger, context store) or leaves it alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Untouched,
}

/// The parts of the state the config decides and a reload builds anew (reusing, through
/// `previous`, what carries over).
struct Configured {
    keys: KeyStore,
    routes: Routes,
    clients: upstream::Clients,
    admin_key: Option<[u8; 32]>,
    bodies: api::body::Bodies,
}

impl Configured {
    fn build(
        config: &Config,
        upstreams: std::collections::BTreeMap<String, Arc<upstream::Upstream>>,
        ledger: &Arc<Ledger>,
        shared: Option<&Arc<Shared>>,
        previous: Option<&AppState>,
        catalog: &Arc<Catalog>,
    ) -> Result<Configured, BuildError> {
        let max_answer = usize::try_from(config.server.max_answer.0).unwrap_or(usize::MAX);
        let clients =
            upstream::Clients::new(&config.models, max_answer, previous.map(|p| &p.clients))?;
        let keys = KeyStore::new(
            &config.keys,
            ledger,
            shared,
            previous.map(|p| &p.keys),
            Some(catalog),
        )?;
        // An unchanged issuer keeps its fetched keys and its callers' quotas.
        let kept = previous
            .and_then(|p| p.keys.jwt().cloned())
            .filter(|jwt| Some(jwt.config()) == config.auth.jwt.as_ref());
        let jwt = kept.or_else(|| {
            let jwt = config.auth.jwt.as_ref()?;
            let client = clients.default_client().clone();
            let shared = shared.cloned();
            Some(Arc::new(JwtAuth::new(jwt, client, ledger.clone(), shared)))
        });
        Ok(Configured {
            keys: keys.with_jwt(jwt),
            routes: Routes::new(&config.models, upstreams),
            clients,
            admin_key: config
                .server
                .admin_key
                .as_ref()
                .filter(|k| !k.is_empty())
                .map(|k| crate::digest::sha256(k.expose().as_bytes())),
            bodies: api::body::Bodies {
                max: config.server.max_body.0,
                timeout: config.server.body_timeout.0,
            },
        })
    }

    /// The snapshot with these parts and everything else of `running`.
    fn over(self, running: &AppState, loaded: Loaded) -> AppState {
        AppState {
            keys: self.keys,
            routes: self.routes,
            clients: self.clients,
            admin_key: self.admin_key,
            bodies: self.bodies,
            loaded: Arc::new(loaded),
            ledger: running.ledger.clone(),
            shared: running.shared.clone(),
            registrations: running.registrations.clone(),
            metrics: running.metrics.clone(),
            cache: running.cache.clone(),
            started: running.started,
            draining: running.draining.clone(),
            context: running.context.clone(),
            mcp: running.mcp.clone(),
            mcp_shared: running.mcp_shared.clone(),
            tool_registry: running.tool_registry.clone(),
            mcp_sessions: running.mcp_sessions.clone(),
            shared_sessions: running.shared_sessions.clone(),
            responses: running.responses.clone(),
            catalog: running.catalog.clone(),
            console: running.console.clone(),
            reloads: running.reloads.clone(),
            audit: running.audit.clone(),
        }
    }
}

impl Gateway {
    /// Builds every runtime part from a validated configuration, opening the state directory.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Self::build(config, State::Open, None)
    }

    /// [`new`](Self::new) for a config loaded from `path` (whose text is `text`): `SIGHUP`, a
    /// change to the file and `POST /admin/reload` reload it while the gateway serves.
    pub fn reloadable(config: &Config, path: PathBuf, text: &str) -> Result<Self, BuildError> {
        Self::build(config, State::Open, Some((path, text)))
    }

    /// Builds everything [`new`](Self::new) builds except the state directory, which is neither
    /// read, written nor locked: `switchboard check` runs beside the gateway it checks.
    pub fn check(config: &Config) -> Result<(), BuildError> {
        Self::build(config, State::Untouched, None).map(drop)
    }

    fn build(
        config: &Config,
        state_dir: State,
        source: Option<(PathBuf, &str)>,
    ) -> Result<Self, BuildError> {
        let upstreams = upstream::build_all(&config.providers)?;
        let discoveries = discovery::build_all(&config.providers, &upstreams)?;
        let metrics = Arc::new(Metrics::default());
        // A check opens no file.
        let audit = match state_dir {
            State::Open => crate::audit::Audit::new(config.audit.as_ref(), metrics.clone())?,
            State::Untouched => crate::audit::Audit::default(),
        };
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
                Some(&config.state.data_dir),
            )?),
            _ => None,
        };
        let cache = config
            .cache
            .as_ref()
            .filter(|c| c.enabled)
            .map(|c| ResponseCache::new(c, metrics.clone(), redis.clone()));
        let names = config.keys.iter().map(|k| k.name.as_str());
        // An open gateway accounts nothing, so it keeps no usage files; it still takes their
        // lock, so that two gateways never share a directory whatever their configs.
        // With Redis, usage lives there; the accounts in memory serve `on_redis_error: allow`.
        let keyless = config.keys.is_empty() && config.auth.jwt.is_none();
        let ledger = Arc::new(
            if keyless || state_dir == State::Untouched || shared.is_some() {
                Ledger::in_memory(names)
            } else {
                Ledger::open(&config.state.data_dir, names)?
            },
        );
        let usage_lock = match state_dir {
            State::Open if keyless && shared.is_none() => Some(crate::state::claim(
                &config.state.data_dir,
                crate::usage::LOCK_FILE,
            )?),
            _ => None,
        };
        let catalog = Arc::new(match (state_dir, &redis) {
            (State::Open, Some(redis)) => {
                Catalog::shared(&config.catalog, redis.clone(), metrics.clone())
            }
            (State::Open, None) => {
                Catalog::open(&config.catalog, &config.state.data_dir, metrics.clone())?
            }
            (State::Untouched, _) => Catalog::unopened(&config.catalog, metrics.clone()),
        });
        let configured =
            Configured::build(config, upstreams, &ledger, shared.as_ref(), None, &catalog)?;
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
        let mcp_stop = CancellationToken::new();
        let shared_sessions = redis
            .as_ref()
            .map(|redis| Arc::new(crate::mcp::SharedSessions::new(redis.clone())));
        let tool_registry = Arc::new(crate::mcp::Registry::new(config));
        let default_client = configured.clients.default_client().clone();
        let mcp_servers = Arc::new(crate::mcp::McpServers::new(
            &config.mcp.servers,
            default_client.clone(),
            mcp_stop.clone(),
            config.mcp.session_idle.0,
        ));
        let parts = crate::mcp::Parts {
            context: context.clone(),
            registry: tool_registry.clone(),
            client: default_client,
            servers: mcp_servers,
            stop: mcp_stop.clone(),
            sessions: shared_sessions.clone(),
            audit: audit.clone(),
            catalog: catalog.clone(),
        };
        let (mcp, mcp_sessions, mcp_shared) =
            crate::mcp::service(config, parts).map_err(BuildError::Mcp)?;
        // Loading the tokenizer serves the first request; a check serves none.
        if state_dir == State::Open
            && configured
                .keys
                .callers()
                .iter()
                .any(|c| c.quota.as_ref().is_some_and(|q| q.needs_estimate()))
        {
            crate::tokens::warm_up();
        }
        let hash =
            crate::digest::sha256_hex(source.as_ref().map_or("", |(_, text)| *text).as_bytes());
        let (reloads, source) = match source {
            Some((path, _)) => {
                let (asks, asked) = mpsc::channel(8);
                (Some(asks), Some((path, asked)))
            }
            None => (None, None),
        };
        let state = AppState {
            keys: configured.keys,
            routes: configured.routes,
            clients: configured.clients,
            admin_key: configured.admin_key,
            bodies: configured.bodies,
            ledger,
            registrations: redis.as_ref().map(|redis| {
                Arc::new(api::Registrations {
                    tools: SharedRegistrations::new(redis.clone(), "tools"),
                    instances: SharedRegistrations::new(redis.clone(), "instances"),
                })
            }),
            shared,
            metrics,
            cache,
            started: crate::clock::unix_now(),
            draining: Arc::new(AtomicBool::new(false)),
            loaded: Arc::new(Loaded {
                config: config.clone(),
                hash,
                at: crate::clock::unix_now(),
                restart_required: Vec::new(),
            }),
            reloads,
            context,
            mcp,
            mcp_shared,
            tool_registry,
            mcp_sessions: Arc::new(mcp_sessions),
            shared_sessions,
            responses,
            console: Arc::new(api::Console::new(redis.clone())),
            catalog,
            audit,
        };
        Ok(Gateway {
            current: Current::new(state),
            shutdown_timeout: config.server.shutdown_timeout.0,
            limits: Limits {
                header_timeout: config.server.header_timeout.0,
                max_connections: usize::try_from(config.server.max_connections)
                    .unwrap_or(usize::MAX),
            },
            discoveries,
            mcp_stop,
            source,
            telemetry: config.telemetry.clone(),
            hangups: None,
            _usage_lock: usage_lock,
        })
    }

    /// Catches `SIGHUP` from now on (inside the runtime), so one sent as soon as the gateway says
    /// it is listening reloads it instead of ending it by the signal's default action. A
    /// reloadable gateway that is not told catches it once serving starts.
    pub fn catch_hangups(&mut self) {
        if self.source.is_some() {
            self.hangups = Some(reload::Hangups::install());
        }
    }

    /// The HTTP routes alone, to drive requests in-process (the fuzz targets do): no listener,
    /// and none of the background work [`serve`](Self::serve) starts.
    pub fn into_router(self) -> axum::Router {
        api::router(self.current)
    }

    /// Whether no virtual key is configured, so anyone who can connect may call.
    pub fn is_open(&self) -> bool {
        self.current.load().keys.is_open()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits for in-flight requests,
    /// giving up on them after the shutdown timeout.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.current.load();
        let client = state.clients.default_client().clone();
        let traces = crate::telemetry::traces::Traces::start(&self.telemetry, client)
            .map_err(std::io::Error::other)?;
        let draining = Arc::new(Notify::new());
        let notify = draining.clone();
        let mcp_stop = self.mcp_stop.clone();
        let flag = state.draining.clone();
        let signal = async move {
            shutdown.await;
            flag.store(true, Ordering::Relaxed);
            mcp_stop.cancel();
            tracing::info!("shutting down: draining in-flight requests");
            notify.notify_one();
        };
        let ledger = state.ledger.clone();
        let maintenance = tokio::spawn(ledger.clone().maintain());
        let shared = state.shared.clone();
        let settling = shared.clone().map(|shared| tokio::spawn(shared.run()));
        let following = state
            .registrations
            .clone()
            .map(|registrations| tokio::spawn(follow::follow(self.current.clone(), registrations)));
        let discovering = discovery::spawn_all(self.discoveries);
        let (path, asked) = self.source.unzip();
        let reloader = reload::Reloader::new(path, self.current.clone(), discovering);
        let reloading = tokio::spawn(reloader.run(asked, self.hangups));
        let expiry = tokio::spawn(state.context.clone().expire());
        let tool_expiry = tokio::spawn(state.tool_registry.clone().sweep());
        let response_expiry = tokio::spawn(state.responses.clone().sweep_hourly());
        let catalog_following = tokio::spawn(state.catalog.clone().follow());
        let sampling = tokio::spawn(state.console.clone().sample(self.current.clone()));
        state.mcp_shared.start_servers();
        let server = connections::serve(
            listener,
            api::router(self.current.clone()),
            self.limits,
            signal,
        );
        let grace = self.shutdown_timeout;
        tokio::select! {
            () = server => {}
            () = async { draining.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(timeout = ?grace, "shutdown timeout reached: closing remaining connections");
            }
        }
        maintenance.abort();
        catalog_following.abort();
        sampling.abort();
        if let Some(following) = following {
            following.abort();
        }
        // Its discoveries end with it.
        reloading.abort();
        let _ = reloading.await;
        if let (Some(shared), Some(settling)) = (shared, settling) {
            shared.drain(SETTLEMENTS_AT_SHUTDOWN).await;
            settling.abort();
        }
        expiry.abort();
        tool_expiry.abort();
        response_expiry.abort();
        // Each closes its connection (and ends its child process) within 5s of the cancel.
        self.mcp_stop.cancel();
        state.mcp_shared.stop_servers(Duration::from_secs(6)).await;
        if let Err(error) = ledger.compact() {
            tracing::error!(%error, "cannot save usage at shutdown");
        }
        let audit = state.audit.clone();
        let _ = tokio::task::spawn_blocking(move || audit.flush()).await;
        if let Some(traces) = traces {
            traces.shutdown().await;
        }
        Ok(())
    }
}
