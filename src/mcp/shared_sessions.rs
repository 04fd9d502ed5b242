//! MCP sessions any replica can serve: what rmcp needs to restore a session elsewhere (the
//! client's `initialize`, through its `SessionStore`), the key that opened it, and the documents
//! it subscribed to, all in the Redis the replicas share.
//!
//! A request for a session this replica does not hold is restored by rmcp, which replays the
//! stored `initialize`; the owner is checked first, so an id used with another key is refused.

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use crate::state::redis::{Redis, RedisFailure};

/// How long a session's record outlives its last write: sessions are restored for a day.
const KEEP: Duration = Duration::from_secs(24 * 3600);

pub struct SharedSessions {
    redis: Arc<Redis>,
}

impl SharedSessions {
    pub fn new(redis: Arc<Redis>) -> Self {
        SharedSessions { redis }
    }

    fn key(&self, id: &str, what: &str) -> String {
        self.redis.key(&format!("mcp:{id}"), what)
    }

    /// Records the key (`None`: an open gateway) that opened session `id`.
    pub async fn set_owner(&self, id: &str, owner: Option<&str>) -> Result<(), RedisFailure> {
        let mut set = redis::cmd("SET");
        set.arg(self.key(id, "owner"))
            .arg(owner.map_or_else(|| "-".to_owned(), |o| format!("k:{o}")))
            .arg("PX")
            .arg(KEEP.as_millis() as u64);
        self.redis.command("mcp_session", &set).await
    }

    /// The key that opened session `id`: `None` for a session no replica knows.
    pub async fn owner(&self, id: &str) -> Result<Option<Option<String>>, RedisFailure> {
        let stored: Option<String> = self
            .redis
            .command("mcp_session", redis::cmd("GET").arg(self.key(id, "owner")))
            .await?;
        Ok(stored.map(|s| s.strip_prefix("k:").map(str::to_owned)))
    }

    pub async fn subscribe(&self, id: &str, uri: &str) -> Result<(), RedisFailure> {
        let key = self.key(id, "subscriptions");
        self.redis
            .command::<()>("mcp_session", redis::cmd("SADD").arg(&key).arg(uri))
            .await?;
        self.redis
            .command(
                "mcp_session",
                redis::cmd("PEXPIRE").arg(&key).arg(KEEP.as_millis() as u64),
            )
            .await
    }

    pub async fn unsubscribe(&self, id: &str, uri: &str) -> Result<(), RedisFailure> {
        self.redis
            .command(
                "mcp_session",
                redis::cmd("SREM")
                    .arg(self.key(id, "subscriptions"))
                    .arg(uri),
            )
            .await
    }

    /// The documents session `id` subscribed to, through any replica.
    pub async fn subscriptions(&self, id: &str) -> Result<Vec<String>, RedisFailure> {
        self.redis
            .command(
                "mcp_session",
                redis::cmd("SMEMBERS").arg(self.key(id, "subscriptions")),
            )
            .await
    }

    /// Forgets session `id` everywhere.
    pub async fn forget(&self, id: &str) -> Result<(), RedisFailure> {
        for what in ["owner", "subscriptions", "init"] {
            self.redis
                .command::<()>("mcp_session", redis::cmd("DEL").arg(self.key(id, what)))
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl SessionStore for SharedSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let stored: Option<String> = self
            .redis
            .command(
                "mcp_session",
                redis::cmd("GET").arg(self.key(session_id, "init")),
            )
            .await?;
        match stored {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let json = serde_json::to_string(state)?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(session_id, "init"))
            .arg(json)
            .arg("PX")
            .arg(KEEP.as_millis() as u64);
        Ok(self.redis.command::<()>("mcp_session", &set).await?)
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.forget(session_id).await?)
    }
}
