//! Reloading the config file while serving, asked for by `SIGHUP`, a change to the file
//! (watched, debounced) or `POST /admin/reload`, one reload at a time.
//!
//! The new file is read and fully validated, then built beside the running state; only when
//! every part built is the new snapshot stored, so a bad file changes nothing. What cannot change
//! without a restart keeps its running value and is reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{BuildError, Configured};
use crate::api::reload::{Asked, Outcome};
use crate::api::{AppState, Current, Loaded};
use crate::config::{Config, ConfigError, LoadError};
use crate::upstream::discovery;
use crate::upstream::rebuild::{kept, rebuild_all};

/// Editors write a file in several steps (truncate, write, rename); the reload waits for them to
/// settle.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Applies reloads in order, and owns each provider's DNS discovery (a reload that replaces a
/// provider stops its discovery and starts the new one's).
pub(super) struct Reloader {
    path: Option<PathBuf>,
    current: Current,
    discoveries: BTreeMap<String, JoinHandle<()>>,
    /// The hash of the last text refused, so that a bad file is not refused again at each of
    /// its events; asking again (SIGHUP, the API) still reads it.
    refused: Option<String>,
}

impl Drop for Reloader {
    fn drop(&mut self) {
        for task in self.discoveries.values() {
            task.abort();
        }
    }
}

impl Reloader {
    pub(super) fn new(
        path: Option<PathBuf>,
        current: Current,
        discoveries: BTreeMap<String, JoinHandle<()>>,
    ) -> Reloader {
        Reloader {
            path,
            current,
            discoveries,
            refused: None,
        }
    }

    /// Reloads whenever asked, until aborted; a gateway without a file only keeps its
    /// discoveries running.
    pub(super) async fn run(
        mut self,
        asked: Option<mpsc::Receiver<Asked>>,
        hangups: Option<Hangups>,
    ) {
        let (Some(path), Some(mut asked)) = (self.path.clone(), asked) else {
            return std::future::pending().await;
        };
        let mut hangups = hangups.unwrap_or_else(Hangups::install);
        let (edited, mut edits) = mpsc::channel(1);
        // Kept alive for as long as reloads run.
        let _watcher = watch(&path, edited.clone());
        // An edit made between loading the file and watching it is not missed.
        if self.file_changed(&path) {
            let _ = edited.try_send(());
        }
        loop {
            let (cause, reply) = tokio::select! {
                asked = asked.recv() => match asked {
                    Some(asked) => ("POST /admin/reload", Some(asked.reply)),
                    None => return,
                },
                Some(()) = hangups.next() => ("SIGHUP", None),
                Some(()) = edits.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while edits.try_recv().is_ok() {}
                    if !self.file_changed(&path) {
                        continue;
                    }
                    ("a change to the file", None)
                }
            };
            let outcome = self.reload(&path, cause);
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }
    }

    /// Whether the file's text differs from the running config's and from the last refused:
    /// saving an unchanged file, or a change of its metadata alone, reloads nothing.
    fn file_changed(&self, path: &Path) -> bool {
        match std::fs::read(path) {
            Ok(text) => {
                let hash = crate::digest::sha256_hex(&text);
                hash != self.current.load().loaded.hash && self.refused.as_ref() != Some(&hash)
            }
            // A file gone for a moment (replaced by rename) is read at its next event.
            Err(_) => false,
        }
    }

    fn reload(&mut self, path: &Path, cause: &str) -> Outcome {
        let running = self.current.load();
        // The text is read once: what is parsed is what is hashed (and remembered if refused).
        let outcome = match Config::read_text(path) {
            Ok(text) => {
                let hash = crate::digest::sha256_hex(text.as_bytes());
                let loaded = match Config::from_file_text(path, &text) {
                    Ok(config) => self
                        .apply(&running, config, hash.clone())
                        .map_err(|error| vec![ConfigError::new("", error.to_string())]),
                    Err(LoadError::Invalid(problems)) => Err(problems),
                    Err(error) => Err(vec![ConfigError::new("", error.to_string())]),
                };
                // A refused text is not read again at each of its events.
                self.refused = loaded.is_err().then_some(hash);
                loaded
            }
            Err(error) => Err(vec![ConfigError::new("", error.to_string())]),
        };
        running.metrics.reloads.reload(outcome.is_ok());
        match outcome {
            Ok(loaded) => {
                tracing::info!(
                    %cause,
                    hash = %loaded.hash,
                    restart_required = ?loaded.restart_required,
                    "configuration reloaded"
                );
                running.metrics.reloads.loaded(loaded.at);
                Outcome::Applied {
                    hash: loaded.hash.clone(),
                    restart_required: loaded.restart_required.clone(),
                }
            }
            Err(problems) => {
                for problem in &problems {
                    tracing::error!(%cause, %problem, "configuration not reloaded");
                }
                Outcome::Refused(problems)
            }
        }
    }

    /// Builds the new snapshot beside the running one and stores it; nothing changes unless
    /// every part built.
    fn apply(
        &mut self,
        running: &AppState,
        config: Config,
        hash: String,
    ) -> Result<Arc<Loaded>, BuildError> {
        let (config, restart_required) = held_back(config, &running.loaded.config);
        let before = running.routes.upstreams();
        let upstreams = rebuild_all(&config.providers, before)?;
        let replaced: BTreeMap<_, _> = config
            .providers
            .iter()
            .filter(|(name, _)| upstreams.get(*name).is_none_or(|u| !kept(u, before)))
            .map(|(name, provider)| (name.clone(), provider.clone()))
            .collect();
        let discoveries = discovery::build_all(&replaced, &upstreams)?;
        let configured = Configured::build(
            &config,
            upstreams.clone(),
            &running.ledger,
            running.shared.as_ref(),
            Some(running),
            &running.catalog,
        )?;
        running
            .mcp_shared
            .reconfigure(&config)
            .map_err(BuildError::Mcp)?;
        running.catalog.configure(&config.catalog);
        let loaded = Loaded {
            config,
            hash,
            at: crate::clock::unix_now(),
            restart_required,
        };
        let state = configured.over(running, loaded);
        let loaded = state.loaded.clone();
        self.current.store(state);
        // Discoveries of providers gone or replaced stop; those of new ones start.
        self.discoveries.retain(|name, task| {
            let stays = upstreams.get(name).is_some_and(|u| kept(u, before));
            if !stays {
                task.abort();
            }
            stays
        });
        self.discoveries.extend(discovery::spawn_all(discoveries));
        Ok(loaded)
    }
}

/// `config` with the running values of what only a restart changes, and the YAML paths whose
/// new values wait for one. Keys that appear on a gateway started without any are applied, but
/// their usage is kept in memory until a restart opens the usage files.
fn held_back(mut config: Config, running: &Config) -> (Config, Vec<String>) {
    let mut waiting = Vec::new();
    // Each field named once: its path is its name.
    macro_rules! hold {
        ($($section:ident).+) => {
            if config.$($section).+ != running.$($section).+ {
                waiting.push(stringify!($($section).+).replace(' ', ""));
                config.$($section).+.clone_from(&running.$($section).+);
            }
        };
    }
    hold!(server.listen);
    hold!(server.max_connections);
    hold!(server.header_timeout);
    hold!(server.shutdown_timeout);
    hold!(state);
    hold!(cache);
    hold!(audit);
    hold!(telemetry);
    hold!(mcp.session_idle);
    hold!(mcp.max_sessions_per_key);
    hold!(mcp.max_document);
    if running.keys.is_empty() && !config.keys.is_empty() {
        waiting.push(
            "keys (usage of keys added to a gateway started without any is kept in memory)"
                .to_owned(),
        );
    }
    (config, waiting)
}

/// `SIGHUP`, caught from the moment it is installed (the default action ends the process).
pub(super) struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    /// Installs the handler; must run inside the runtime.
    pub(super) fn install() -> Hangups {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(
                    |error| tracing::warn!(%error, "cannot listen for SIGHUP; reload by HTTP"),
                )
                .ok();
            Hangups { signal }
        }
        #[cfg(not(unix))]
        Hangups {}
    }

    /// The next `SIGHUP`; never, where there are none.
    async fn next(&mut self) -> Option<()> {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            return signal.recv().await;
        }
        std::future::pending().await
    }
}

/// Watches the file's directory (an editor or Kubernetes replaces the file rather than writing
/// it, which a watch on the file itself would miss) and signals every event about the file.
fn watch(path: &Path, edited: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let path = std::path::absolute(path).ok()?;
    let directory = path.parent()?.to_owned();
    let name = path.file_name()?.to_owned();
    let handler = move |event: notify::Result<notify::Event>| {
        let ours = event.is_ok_and(|e| e.paths.iter().any(|p| p.file_name() == Some(&name)));
        if ours {
            // Full: a reload is already due, which will read this change too.
            let _ = edited.try_send(());
        }
    };
    let watched = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher
            .watch(&directory, notify::RecursiveMode::NonRecursive)
            .map(|()| watcher)
    });
    watched
        .inspect_err(|error| {
            tracing::warn!(%error, file = %path.display(), "cannot watch the config file; reload with SIGHUP or POST /admin/reload");
        })
        .ok()
}
