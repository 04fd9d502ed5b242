//! The `switchboard` command: serve a config (the default), check one, or import state into Redis.
//!
//! Exit codes: 0 after a clean shutdown or a valid config, 1 for an invalid config or a failure
//! to start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchboard::config::LoadError;
use switchboard::import::Imported;
use switchboard::telemetry::{self, LogFormat};
use switchboard::{Config, Gateway};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    // `switchboard --config x.yaml check` must not check ./config.yaml and say it is fine.
    args_conflicts_with_subcommands = true,
    about = "An AI gateway: one OpenAI-compatible endpoint for every model provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Validate a config file, print every problem with its YAML path, and exit.
    Check {
        /// The config file (default: config.yaml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The config file, named without `--config`.
        #[arg(conflicts_with = "config", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Manage the state replicas share.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Copy the usage and context documents kept in `state.data_dir` into `state.redis`. Stop the
    /// gateway that uses the data directory first.
    Import {
        /// The config file naming both.
        #[arg(long, default_value = "config.yaml")]
        config: PathBuf,
    },
}

#[derive(Args, Clone)]
struct ServeArgs {
    /// The config file.
    #[arg(long, default_value = "config.yaml")]
    config: PathBuf,
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

// Many small, short-lived allocations per request (JSON, headers, events): mimalloc spends
// markedly less CPU on them than glibc's allocator under a gateway's load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { config, file }) => check(
            &file
                .or(config)
                .unwrap_or_else(|| PathBuf::from("config.yaml")),
        ),
        Some(Command::Serve(args)) => run(&args),
        Some(Command::State {
            action: StateAction::Import { config },
        }) => import(&config),
        None => run(&cli.serve),
    }
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            println!(
                "{}: OK ({} providers, {} models, {} keys)",
                path.display(),
                config.providers.len(),
                config.models.len(),
                config.keys.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: invalid configuration", path.display());
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads and builds a config, so `check` catches everything `serve` would except a state
/// directory it cannot use: that one is left alone, for the gateway that may be running on it.
fn load(path: &Path) -> anyhow::Result<Config> {
    let config = read(path)?;
    Gateway::check(&config)?;
    Ok(config)
}

fn read(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| match e {
        LoadError::Invalid(_) => anyhow::anyhow!("{e}"),
        other => anyhow::Error::new(other),
    })
}

/// Where shared state lives, for the "listening" line; never the URL (it may hold a password).
fn state_mode(config: &Config) -> String {
    match &config.state.redis {
        None => format!("embedded in {}", config.state.data_dir.display()),
        Some(redis) if redis.url.is_cluster() => format!(
            "Redis Cluster ({} seed nodes), prefix {:?}, on_redis_error {:?}",
            redis.url.all().len(),
            redis.key_prefix,
            config.state.on_redis_error
        ),
        Some(redis) => format!(
            "Redis, prefix {:?}, on_redis_error {:?}",
            redis.key_prefix, config.state.on_redis_error
        ),
    }
}

fn import(path: &Path) -> ExitCode {
    let imported = read(path).and_then(|config| {
        let runtime = runtime().context("starting the runtime")?;
        runtime
            .block_on(switchboard::import::all(&config))
            .map_err(anyhow::Error::new)
    });
    match imported {
        Ok(report) => {
            for (key, outcome) in &report.keys {
                let said = match outcome {
                    Imported::Added => "usage imported",
                    Imported::AlreadyThere => "imported before: left as it is",
                };
                println!("{key}: {said}");
            }
            let (added, present) = report.documents;
            println!(
                "{} keys; context: {added} documents imported, {present} already in Redis",
                report.keys.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{}: cannot import: {error:#}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn run(args: &ServeArgs) -> ExitCode {
    telemetry::init_logging(args.log_format);
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let loading = || format!("loading {}", args.config.display());
    let (config, text) = Config::load_with_text(&args.config)
        .map_err(|e| match e {
            LoadError::Invalid(_) => anyhow::anyhow!("{e}"),
            other => anyhow::Error::new(other),
        })
        .with_context(loading)?;
    let mut gateway =
        Gateway::reloadable(&config, args.config.clone(), &text).with_context(loading)?;
    let listen = args.listen.unwrap_or(config.server.listen);
    let runtime = runtime().context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        // Handlers in place before "listening" is said: a supervisor that stops the gateway as
        // soon as it is up gets a drain, not the default action's kill.
        let signals = Signals::new();
        gateway.catch_hangups();
        if gateway.is_open() {
            tracing::warn!("no keys configured: anyone who can reach {addr} can use every model");
        }
        let list = |names: Vec<&str>| names.join(", ");
        tracing::info!(
            %addr,
            config = %std::path::absolute(&args.config).unwrap_or_else(|_| args.config.clone()).display(),
            providers = %list(config.providers.keys().map(String::as_str).collect()),
            models = %list(config.models.iter().map(|m| m.name.as_str()).collect()),
            mcp_tools = %list(config.mcp.tools.iter().map(|t| t.name.as_str()).collect()),
            mcp_servers = %list(config.mcp.servers.iter().map(|s| s.name.as_str()).collect()),
            state = %state_mode(&config),
            "listening"
        );
        gateway
            .serve(listener, shutdown_signal(signals))
            .await
            .context("serving")
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// A multi-threaded runtime with a worker per available core; on a single core, the
/// current-thread runtime, which serves the same load without cross-thread wake-ups.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

/// Ctrl-C or SIGTERM.
/// Completes on the first Ctrl-C or SIGTERM, which starts the graceful shutdown. A second one
/// means the operator will not wait for it: the process exits at once.
async fn shutdown_signal(mut signals: Signals) {
    // Listening from the start, so a second signal right after the first is not missed.
    signals.next().await;
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("second signal: exiting without waiting for requests in flight");
        std::process::exit(130);
    });
}

/// Ctrl-C and SIGTERM as one stream of signals.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = signal(SignalKind::interrupt())
                .and_then(|i| Ok((i, signal(SignalKind::terminate())?)))
                .ok();
            Signals { streams }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((interrupt, terminate)) = &mut self.streams {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
