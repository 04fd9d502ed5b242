//! The upstream sessions of one server, one per holder (a client's MCP session, or a key for a
//! client of the sessionless revision), opened on first use and closed when the holder ends.
//!
//! State a server keeps per session (a thought history, an open file) is so never shared between
//! clients or keys. At most `max_sessions` are open; a new holder takes the place of the one idle
//! longest, and when every session has a call running the new holder is refused. A stdio server
//! keeps one spare session started ahead, so a new client does not wait for a process to start.
//! A client's session declares to its server what the client answers (sampling, elicitation,
//! roots); the spare declares nothing, so only a client that answers nothing takes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{CallToolResponse, ClientCapabilities};
use rmcp::{Peer, RoleClient, RoleServer};

use super::link::{self, Link, LinkError};
use super::lock;
use super::relay::Relay;
use super::verbatim::Tap;
use super::{Live, Server, tool_error};

/// Who an upstream session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// A client's own MCP session, by its id.
    Session(String),
    /// Every sessionless request of one key (`None`: a gateway without keys).
    Key(Option<String>),
}

impl Holder {
    /// The face of each server this holder's requests use.
    pub fn era(&self) -> super::Era {
        match self {
            Holder::Session(_) => super::Era::Session,
            Holder::Key(_) => super::Era::Stateless,
        }
    }
}

/// Why no session could be had.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("all {0} sessions (its max_sessions) are busy")]
    Full(usize),
    #[error(transparent)]
    Open(#[from] LinkError),
}

/// The open sessions of one server.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<Holder, Arc<Slot>>>,
    spare: Mutex<Spare>,
}

/// The next session, started before a client asks for it.
#[derive(Default)]
enum Spare {
    #[default]
    None,
    Starting,
    Ready(Box<Link>),
}

struct Slot {
    peer: tokio::sync::OnceCell<(Peer<RoleClient>, Arc<Relay>, Arc<Tap>)>,
    link: Mutex<Option<Link>>,
    used: Mutex<Instant>,
    calls: AtomicUsize,
    closed: AtomicBool,
}

/// A session lent to one call; while it lives the session is not idle and cannot be evicted.
pub struct Lent {
    slot: Arc<Slot>,
    pub peer: Peer<RoleClient>,
    pub relay: Arc<Relay>,
    pub tap: Arc<Tap>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        *lock(&self.slot.used) = Instant::now();
        self.slot.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Sessions {
    /// `holder`'s session, opened with `open` if it has none; at most `max` are open.
    pub async fn lend<F>(&self, holder: &Holder, max: usize, open: F) -> Result<Lent, Refused>
    where
        F: Future<Output = Result<Link, LinkError>>,
    {
        let slot = self.slot(holder, max)?;
        let opened = slot
            .peer
            .get_or_try_init(|| async {
                let link = open.await?;
                let opened = (link.peer().clone(), link.relay.clone(), link.tap.clone());
                *lock(&slot.link) = Some(link);
                // Closed while it was opening: what was just opened is closed too.
                if slot.closed.load(Ordering::Acquire) {
                    slot.close();
                }
                Ok::<_, LinkError>(opened)
            })
            .await;
        match opened {
            Ok((peer, relay, tap)) => Ok(Lent {
                peer: peer.clone(),
                relay: relay.clone(),
                tap: tap.clone(),
                slot,
            }),
            Err(error) => {
                drop(slot);
                self.forget(holder);
                Err(error.into())
            }
        }
    }

    /// The holder's slot, counted as in use; a new one may take an idle slot's place.
    fn slot(&self, holder: &Holder, max: usize) -> Result<Arc<Slot>, Refused> {
        let mut open = lock(&self.open);
        if let Some(slot) = open.get(holder) {
            slot.calls.fetch_add(1, Ordering::AcqRel);
            return Ok(slot.clone());
        }
        if open.len() >= max {
            let idle = open
                .iter()
                .filter(|(_, slot)| slot.calls.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, slot)| *lock(&slot.used))
                .map(|(holder, _)| holder.clone());
            let Some(evicted) = idle.and_then(|holder| open.remove(&holder)) else {
                return Err(Refused::Full(max));
            };
            evicted.close();
        }
        let slot = Arc::new(Slot {
            peer: tokio::sync::OnceCell::new(),
            link: Mutex::new(None),
            used: Mutex::new(Instant::now()),
            calls: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
        });
        open.insert(holder.clone(), slot.clone());
        Ok(slot)
    }

    /// Closes `holder`'s session, if it has one (its client went away, or it broke).
    pub fn forget(&self, holder: &Holder) {
        let removed = lock(&self.open).remove(holder);
        if let Some(slot) = removed {
            slot.close();
        }
    }

    /// The spare session, if one is ready and alive (a dead one is dropped, its process killed).
    pub fn take_spare(&self) -> Option<Link> {
        let mut spare = lock(&self.spare);
        match std::mem::take(&mut *spare) {
            Spare::Ready(link) if !link.peer().is_transport_closed() => Some(*link),
            Spare::Starting => {
                *spare = Spare::Starting;
                None
            }
            _ => None,
        }
    }

    /// Whether a spare should be started now: none is ready or starting. Marks one starting.
    pub fn wants_spare(&self) -> bool {
        let mut spare = lock(&self.spare);
        let wanted = matches!(*spare, Spare::None);
        if wanted {
            *spare = Spare::Starting;
        }
        wanted
    }

    /// Keeps a spare that was started (`None`: it could not be); one started before the
    /// sessions were all closed is closed too.
    pub fn put_spare(&self, link: Option<Link>) {
        let mut spare = lock(&self.spare);
        let starting = matches!(*spare, Spare::Starting);
        match link {
            Some(link) if starting => *spare = Spare::Ready(Box::new(link)),
            Some(link) => {
                drop(spare);
                close_link(link);
            }
            None if starting => *spare = Spare::None,
            None => {}
        }
    }

    /// `holder`'s session, if one is open now.
    pub fn opened(&self, holder: &Holder) -> Option<Peer<RoleClient>> {
        let slot = lock(&self.open).get(holder).cloned()?;
        slot.peer.get().map(|(peer, ..)| peer.clone())
    }

    /// Closes every session (the server is down, or removed).
    pub fn close_all(&self) {
        if let Spare::Ready(link) = std::mem::take(&mut *lock(&self.spare)) {
            close_link(*link);
        }
        let all: Vec<Arc<Slot>> = lock(&self.open).drain().map(|(_, slot)| slot).collect();
        for slot in all {
            slot.close();
        }
    }

    /// Closes the sessions no call used for `idle`.
    pub fn close_idle(&self, idle: Duration) {
        let mut open = lock(&self.open);
        let stale: Vec<Holder> = open
            .iter()
            .filter(|(_, slot)| {
                slot.calls.load(Ordering::Acquire) == 0 && lock(&slot.used).elapsed() >= idle
            })
            .map(|(holder, _)| holder.clone())
            .collect();
        for holder in stale {
            if let Some(slot) = open.remove(&holder) {
                slot.close();
            }
        }
    }
}

impl Slot {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(link) = lock(&self.link).take() {
            close_link(link);
        }
    }
}

fn close_link(link: Link) {
    // Dropped outside a runtime (at exit), a stdio server's process is killed with it.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(link.close());
    }
}
/// The upstream session a request uses, held (not idle, not evicted) while this lives.
pub struct Upstream {
    pub peer: Peer<RoleClient>,
    /// Its answers wanted whole.
    pub tap: Arc<Tap>,
    _lent: Option<Lent>,
}

impl Server {
    /// Where a request of `holder` goes: the supervisor's own session for a stateless server
    /// (its log messages, for several clients, go to none), the holder's session otherwise,
    /// whose relay then speaks to `downstream`; or the tool error saying why there is none.
    pub(super) async fn session(
        &self,
        live: &Live,
        (holder, downstream): (&Holder, &Peer<RoleServer>),
        client: &reqwest::Client,
    ) -> Result<Upstream, CallToolResponse> {
        if live.stateless {
            let (peer, tap) = (live.peer.clone(), live.tap.clone());
            return Ok(Upstream {
                peer,
                tap,
                _lent: None,
            });
        }
        let sessions = &self.sessions;
        let answers = downstream
            .peer_info()
            .map(|info| link::answers_of(&info.capabilities));
        let answers = answers.unwrap_or_default();
        // On the heap: connecting is a large future, and every caller would carry it.
        let open = Box::pin(async {
            // The spare declared that it answers nothing: a client that answers something (its
            // server may ask it to sample, elicit, list roots) gets a session that says so.
            let spare = match answers == ClientCapabilities::default() {
                true => sessions.take_spare(),
                false => None,
            };
            match spare {
                Some(spare) => Ok(spare),
                None => {
                    let list_changed = live.list_changed.clone();
                    link::connect(&self.config, client, list_changed, answers).await
                }
            }
        });
        let lent = sessions.lend(holder, self.config.max_sessions, open).await;
        self.refill(client, &live.list_changed);
        match lent {
            Ok(lent) => {
                lent.relay.logs_to(downstream);
                let (peer, tap) = (lent.peer.clone(), lent.tap.clone());
                Ok(Upstream {
                    peer,
                    tap,
                    _lent: Some(lent),
                })
            }
            Err(refused) => {
                let name = &self.config.name;
                tracing::warn!(server = %name, error = %refused, "no upstream session for a call");
                Err(match refused {
                    Refused::Full(_) => tool_error(format!(
                        "The MCP server '{name}' cannot take another client now: {refused}."
                    )),
                    Refused::Open(_) => self.unavailable(),
                })
            }
        }
    }

    /// Starts a spare session for the next client, for a stdio server that has none: its
    /// process then starts before a client waits for it.
    pub(super) fn refill(&self, client: &reqwest::Client, list_changed: &Arc<tokio::sync::Notify>) {
        if self.config.command.is_none() || !self.sessions.wants_spare() {
            return;
        }
        let (config, client) = (self.config.clone(), client.clone());
        let (sessions, list_changed) = (self.sessions.clone(), list_changed.clone());
        tokio::spawn(async move {
            let started = link::connect(&config, &client, list_changed, Default::default()).await;
            if let Err(error) = &started {
                tracing::debug!(server = %config.name, %error, "no spare session");
            }
            sessions.put_spare(started.ok());
        });
    }
}
