//! What an operator sees of each upstream server: whether each of its faces is up, and what it
//! offers there.

use serde::Serialize;

use super::McpServers;

/// One server's state, as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub name: String,
    /// Connected by `initialize` (a session), or by discovery alone.
    pub up: bool,
    /// The 2026-07-28 face, found by `server/discover`, is up.
    pub discovered: bool,
    pub tools: usize,
    pub prompts: usize,
    /// How the gateway reaches it: `http` or `stdio`.
    pub transport: &'static str,
}

impl McpServers {
    /// Every configured server, in config order.
    pub fn health(&self) -> Vec<Health> {
        let servers = self
            .servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        servers
            .iter()
            .map(|server| {
                let live = server.live();
                let modern = server
                    .modern
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let either = live.as_ref().or(modern.as_ref());
                Health {
                    name: server.config.name.clone(),
                    up: either.is_some(),
                    discovered: modern.is_some(),
                    tools: either.map_or(0, |l| l.tools.len()),
                    prompts: either.map_or(0, |l| l.prompts.len()),
                    transport: if server.config.url.is_some() {
                        "http"
                    } else {
                        "stdio"
                    },
                }
            })
            .collect()
    }
}
