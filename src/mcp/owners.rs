//! Which key opened each MCP session, and how many each key holds: rmcp serves a session's GET
//! stream and its DELETE without calling the handler, so the owner check lives here, in front.
//!
//! A key may hold at most `mcp.max_sessions_per_key` sessions; a slot is taken before rmcp
//! creates one, so concurrent `initialize` calls cannot overshoot the cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Below this many sessions the map is not swept.
const SWEEP_FLOOR: usize = 1024;

/// A key's name, or `None` on a gateway without keys.
type Owner = Option<String>;

/// The owner of every live session and the count of each owner's sessions and slots.
pub struct SessionOwners {
    inner: Mutex<Owners>,
    /// rmcp's sessions, to forget the ones it closed on its own (idle, never initialized).
    sessions: Arc<LocalSessionManager>,
    max_per_key: usize,
}

struct Owners {
    by_id: HashMap<String, Owner>,
    /// Sessions plus slots taken for sessions being created, per owner.
    held: HashMap<Owner, usize>,
    /// The size at which the next new session sweeps out closed ones: twice what survived the
    /// last sweep, so sweeping costs a constant per session.
    sweep_at: usize,
}

impl Owners {
    fn release(&mut self, owner: &Owner) {
        if let Some(count) = self.held.get_mut(owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.held.remove(owner);
            }
        }
    }
}

/// A key already holds as many sessions as `mcp.max_sessions_per_key` allows.
#[derive(Debug)]
pub struct TooManySessions {
    pub limit: usize,
}

/// A slot for one session being created; given back unless [`bind`](Self::bind) is called.
pub struct SessionSlot<'a> {
    owners: &'a SessionOwners,
    owner: Owner,
    bound: bool,
}

impl SessionSlot<'_> {
    /// The session was created with this id: the slot is now the session's.
    pub async fn bind(mut self, id: String) {
        self.bound = true;
        let due = {
            let mut owners = self.owners.lock();
            owners.by_id.insert(id, self.owner.take());
            owners.by_id.len() >= owners.sweep_at
        };
        if due {
            self.owners.sweep(None).await;
        }
    }
}

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        if !self.bound {
            self.owners.lock().release(&self.owner);
        }
    }
}

impl SessionOwners {
    pub fn new(sessions: Arc<LocalSessionManager>, max_per_key: usize) -> Self {
        SessionOwners {
            inner: Mutex::new(Owners {
                by_id: HashMap::new(),
                held: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
            sessions,
            max_per_key,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Owners> {
        // Counts and ids: a panic between two updates leaves at worst a count one off.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key that opened a session: `None` if unknown, `Some(None)` for the keyless gateway.
    pub fn owner_of(&self, id: &str) -> Option<Owner> {
        self.lock().by_id.get(id).cloned()
    }

    /// Takes a slot for a new session of `owner`. At the cap, sessions rmcp has closed are
    /// forgotten first; only live ones count.
    pub async fn reserve(&self, owner: Owner) -> Result<SessionSlot<'_>, TooManySessions> {
        if !self.try_take(&owner) {
            self.sweep(Some(&owner)).await;
            if !self.try_take(&owner) {
                return Err(TooManySessions {
                    limit: self.max_per_key,
                });
            }
        }
        Ok(SessionSlot {
            owners: self,
            owner,
            bound: false,
        })
    }

    fn try_take(&self, owner: &Owner) -> bool {
        let mut owners = self.lock();
        let count = owners.held.entry(owner.clone()).or_default();
        if *count >= self.max_per_key {
            return false;
        }
        *count += 1;
        true
    }

    /// Forgets a session the client ended.
    pub fn forget(&self, id: &str) {
        let mut owners = self.lock();
        if let Some(owner) = owners.by_id.remove(id) {
            owners.release(&owner);
        }
    }

    /// Forgets the sessions rmcp no longer has (most clients never send DELETE): all of them,
    /// or only `owner`'s.
    async fn sweep(&self, owner: Option<&Owner>) {
        let ids: Vec<String> = self
            .lock()
            .by_id
            .iter()
            .filter(|(_, o)| owner.is_none_or(|wanted| *o == wanted))
            .map(|(id, _)| id.clone())
            .collect();
        let mut closed = Vec::new();
        for id in ids {
            let live = self.sessions.has_session(&Arc::from(id.as_str())).await;
            if !live.unwrap_or(false) {
                closed.push(id);
            }
        }
        let mut owners = self.lock();
        for id in &closed {
            if let Some(owner) = owners.by_id.remove(id) {
                owners.release(&owner);
            }
        }
        if owner.is_none() {
            owners.sweep_at = (owners.by_id.len() * 2).max(SWEEP_FLOOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(max_per_key: usize) -> SessionOwners {
        SessionOwners::new(Arc::new(LocalSessionManager::default()), max_per_key)
    }

    #[tokio::test]
    async fn sessions_rmcp_has_closed_are_forgotten_when_the_map_grows() {
        let owners = owners(10);
        owners.lock().sweep_at = 2;
        let slot = owners.reserve(Some("a".into())).await.unwrap();
        slot.bind("closed-1".into()).await;
        assert_eq!(owners.owner_of("closed-1"), Some(Some("a".into())));
        // The second entry reaches the sweep size: neither session exists in rmcp any more.
        let slot = owners.reserve(None).await.unwrap();
        slot.bind("closed-2".into()).await;
        assert_eq!(owners.owner_of("closed-1"), None);
        assert_eq!(owners.owner_of("closed-2"), None);
        assert_eq!(owners.lock().sweep_at, SWEEP_FLOOR);
        assert!(owners.lock().held.is_empty());
    }

    #[tokio::test]
    async fn a_key_at_its_cap_gets_no_slot_until_one_is_given_back() {
        let owners = owners(2);
        let alice = || Some("alice".to_owned());
        let first = owners.reserve(alice()).await.unwrap();
        let second = owners.reserve(alice()).await.unwrap();
        assert_eq!(owners.reserve(alice()).await.err().unwrap().limit, 2);
        // Another key has its own cap.
        assert!(owners.reserve(Some("bob".into())).await.is_ok());
        // A slot whose session was never created is given back.
        drop(second);
        let second = owners.reserve(alice()).await.unwrap();
        // A bound session rmcp no longer has is swept out when the cap is reached.
        first.bind("gone".into()).await;
        second.bind("gone-too".into()).await;
        assert!(owners.reserve(alice()).await.is_ok());
    }

    #[tokio::test]
    async fn an_ended_session_frees_its_slot() {
        let owners = owners(1);
        owners.reserve(None).await.unwrap().bind("s".into()).await;
        owners.forget("s");
        assert!(owners.reserve(None).await.is_ok());
    }
}
