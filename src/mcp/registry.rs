//! HTTP tools registered at run time (`POST /admin/tools`), each alive until its TTL runs out:
//! the store, its expiry (lazy on read plus a sweep), and the change feed sessions listen to.
//!
//! A registered tool is built and called exactly as a YAML one; only its lifetime differs.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use rmcp::model::Tool;
use tokio::sync::{Notify, broadcast};

use super::http_tool::HttpTool;
use crate::config::{BUILT_IN_TOOLS, Config, ConfigError, HttpToolConfig, tool_errors};

/// The longest TTL accepted: a registration is meant to be renewed, not to stay forever.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Changes buffered per listening session before it is told "something changed" wholesale.
const FEED: usize = 256;

/// The run-time tools, by name.
pub struct Registry {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// What the config keeps out of reach, replaced by a reload.
    names: RwLock<Names>,
    /// The name of each tool added, replaced, removed or expired.
    changes: broadcast::Sender<String>,
    /// Wakes the sweep when an expiry may have moved closer.
    wake: Notify,
}

struct Entry {
    tool: Arc<HttpTool>,
    ttl: Duration,
    expires: Instant,
    method: String,
    url: String,
    /// The key that registered it; `None`: the admin key.
    owner: Option<String>,
}

/// The names a registration may not take.
struct Names {
    /// YAML (`mcp.tools`, `mcp.openapi`) and built-in tool names, which a registration may not
    /// shadow.
    reserved: HashSet<String>,
    /// Each upstream MCP server's non-empty prefix and its name: names under it are its own.
    prefixes: Vec<(String, String)>,
}

impl Names {
    fn of(config: &Config) -> Names {
        let yaml = config.mcp.tools.iter().map(|t| t.name.clone());
        let openapi = config.mcp.openapi.iter().flat_map(|service| {
            let prefix = service.tool_prefix();
            service
                .loaded
                .iter()
                .map(move |op| format!("{prefix}{}", op.id))
        });
        let yaml = yaml.chain(openapi);
        let built_in = BUILT_IN_TOOLS.iter().map(|name| (*name).to_owned());
        let servers = config.mcp.servers.iter();
        Names {
            reserved: yaml.chain(built_in).collect(),
            prefixes: servers
                .map(|s| (s.tool_prefix().into_owned(), s.name.clone()))
                .filter(|(prefix, _)| !prefix.is_empty())
                .collect(),
        }
    }

    /// A registered tool may shadow neither a configured tool nor an upstream server's.
    fn check(&self, name: &str) -> Result<(), RegisterError> {
        if self.reserved.contains(name) {
            return Err(RegisterError::Reserved(format!(
                "'{name}' is a tool of the gateway's configuration; a registered tool may not \
                 shadow it."
            )));
        }
        let owner = self
            .prefixes
            .iter()
            .find(|(p, _)| name.starts_with(p.as_str()));
        match owner {
            Some((prefix, server)) => Err(RegisterError::Reserved(format!(
                "'{name}' starts with '{prefix}', the prefix of the tools of the MCP server \
                 '{server}'; a registered tool may not use it."
            ))),
            None => Ok(()),
        }
    }
}

/// A registered tool as `GET /admin/tools` reports it.
pub struct Listing {
    pub tool: Tool,
    pub ttl: Duration,
    pub remaining: Duration,
    pub method: String,
    pub url: String,
    /// The key that registered it; `None`: the admin key.
    pub owner: Option<String>,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Added,
    Renewed,
}

/// Why a registration was refused.
#[derive(Debug)]
pub enum RegisterError {
    /// Problems in the body, each at the path of its field (`http.url`, `ttl`, ...).
    Invalid(Vec<ConfigError>),
    /// The name belongs to the gateway's configuration; the message says how.
    Reserved(String),
    /// Another key registered the tool of that name; only it (or the admin key) may change it.
    NotYours(String),
}

impl Registry {
    /// An empty registry that keeps the names `config` serves out of reach.
    pub fn new(config: &Config) -> Registry {
        Registry {
            entries: Mutex::default(),
            names: RwLock::new(Names::of(config)),
            changes: broadcast::channel(FEED).0,
            wake: Notify::new(),
        }
    }

    /// Keeps the names of a reloaded config out of reach; a registered tool that a new
    /// configured tool or server now shadows is removed (and announced).
    pub fn reconfigure(&self, config: &Config) {
        let names = Names::of(config);
        let mut entries = self.lock();
        entries.retain(|name, _| {
            let clear = names.check(name).is_ok();
            if !clear {
                tracing::warn!(tool = %name, "a registered tool is shadowed by the reloaded config and removed");
                let _ = self.changes.send(name.clone());
            }
            clear
        });
        drop(entries);
        *self.names.write().unwrap_or_else(|e| e.into_inner()) = names;
    }

    /// Adds `config` for `ttl` on behalf of `owner` (`None`: the admin key), or renews (and
    /// replaces) the tool of that name, which only the key that registered it (or the admin
    /// key) may do.
    pub fn register(
        &self,
        config: &HttpToolConfig,
        ttl: Duration,
        owner: Option<&str>,
    ) -> Result<Registered, RegisterError> {
        self.check_name(&config.name)?;
        let tool = build(config, ttl)?;
        let entry = Entry {
            tool: Arc::new(tool),
            ttl,
            expires: Instant::now() + ttl,
            method: config.http.method.clone(),
            url: config.http.url.clone(),
            owner: owner.map(str::to_owned),
        };
        let listed = entry.tool.tool.clone();
        // `live`: a tool whose TTL ran out is gone, even before the sweep saw it, so registering
        // it again adds it anew.
        let mut entries = self.live();
        if let Some(existing) = entries.get(&config.name) {
            may_change(&config.name, existing, owner)?;
        }
        let previous = entries.insert(config.name.clone(), entry);
        drop(entries);
        // A renewal that lists the same tool changes nothing a client can see: services renew
        // often, and each notice makes every session list its tools again.
        if previous.as_ref().is_none_or(|p| p.tool.tool != listed) {
            let _ = self.changes.send(config.name.clone());
        }
        self.wake.notify_one();
        Ok(match previous {
            Some(_) => Registered::Renewed,
            None => Registered::Added,
        })
    }

    /// Whether `register` would take `config` for `ttl` from `owner`, without registering it.
    pub fn check(
        &self,
        config: &HttpToolConfig,
        ttl: Duration,
        owner: Option<&str>,
    ) -> Result<(), RegisterError> {
        self.check_name(&config.name)?;
        if let Some(existing) = self.live().get(&config.name) {
            may_change(&config.name, existing, owner)?;
        }
        build(config, ttl).map(drop)
    }

    /// Whether `owner` may renew or remove the tool of that name (true when there is none).
    pub fn may_change(&self, name: &str, owner: Option<&str>) -> Result<(), RegisterError> {
        match self.live().get(name) {
            Some(existing) => may_change(name, existing, owner),
            None => Ok(()),
        }
    }

    fn check_name(&self, name: &str) -> Result<(), RegisterError> {
        self.names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .check(name)
    }

    /// Removes the tool of that name; `false` when there was none.
    pub fn remove(&self, name: &str) -> bool {
        let removed = self.lock().remove(name).is_some();
        if removed {
            let _ = self.changes.send(name.to_owned());
        }
        removed
    }

    /// The live tools, whole: what clients see and what their entries said.
    pub fn live_tools(&self) -> Vec<Arc<HttpTool>> {
        self.live().values().map(|e| e.tool.clone()).collect()
    }

    /// The live tools as clients see them.
    pub fn tools(&self) -> Vec<Tool> {
        self.live().values().map(|e| e.tool.tool.clone()).collect()
    }

    /// The live tool of that name.
    pub fn get(&self, name: &str) -> Option<Arc<HttpTool>> {
        self.live().get(name).map(|e| e.tool.clone())
    }

    /// Every live tool with its TTL and what is left of it.
    pub fn list(&self) -> Vec<Listing> {
        let now = Instant::now();
        self.live()
            .values()
            .map(|e| Listing {
                tool: e.tool.tool.clone(),
                ttl: e.ttl,
                remaining: e.expires.saturating_duration_since(now),
                method: e.method.clone(),
                url: e.url.clone(),
                owner: e.owner.clone(),
            })
            .collect()
    }

    /// Names of the tools that change from now on.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Removes tools as their TTL runs out, so sessions hear of it on time rather than at the
    /// next read. Runs until aborted.
    pub async fn sweep(self: Arc<Self>) {
        loop {
            let next = {
                let entries = self.live();
                entries.values().map(|e| e.expires).min()
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }

    /// The entries, the expired ones removed first (and announced).
    fn live(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        let mut entries = self.lock();
        let now = Instant::now();
        entries.retain(|name, entry| {
            let alive = entry.expires > now;
            if !alive {
                let _ = self.changes.send(name.clone());
            }
            alive
        });
        entries
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A registration as other replicas are given it: the tool's entry and the key that owns it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedEntry<T> {
    owner: Option<String>,
    tool: T,
}

/// The shared form of a tool entry (`entry`: its JSON) registered by `owner`.
pub fn shared_entry(owner: Option<&str>, entry: &str) -> String {
    let tool = serde_json::value::RawValue::from_string(entry.to_owned()).ok();
    serde_json::to_string(&SharedEntry {
        owner: owner.map(str::to_owned),
        tool,
    })
    .unwrap_or_default()
}

/// A shared registration read back: the tool and its owner. A bare tool entry, as replicas
/// before owners wrote them, belongs to the admin key.
pub fn read_shared(body: &str) -> Result<(HttpToolConfig, Option<String>), serde_json::Error> {
    match serde_json::from_str::<SharedEntry<HttpToolConfig>>(body) {
        Ok(shared) => Ok((shared.tool, shared.owner)),
        Err(_) => serde_json::from_str(body).map(|tool| (tool, None)),
    }
}

/// A key changes only its own registrations; the admin key changes any.
fn may_change(name: &str, existing: &Entry, owner: Option<&str>) -> Result<(), RegisterError> {
    match owner {
        Some(key) if existing.owner.as_deref() != Some(key) => {
            Err(RegisterError::NotYours(format!(
                "The tool '{name}' was registered by another key; only that key or the admin key may change it."
            )))
        }
        _ => Ok(()),
    }
}

/// The tool, after the checks a YAML entry gets plus the TTL's; paths name the body's fields.
fn build(config: &HttpToolConfig, ttl: Duration) -> Result<HttpTool, RegisterError> {
    let mut errors = Vec::new();
    tool_errors("", config, &mut errors);
    for error in &mut errors {
        error.path = error.path.trim_start_matches('.').to_owned();
    }
    if ttl.is_zero() || ttl > MAX_TTL {
        let message = format!("must be between 1ms and {}h", MAX_TTL.as_secs() / 3600);
        errors.push(ConfigError::new("ttl", message));
    }
    if !errors.is_empty() {
        return Err(RegisterError::Invalid(errors));
    }
    HttpTool::new(config)
        .map_err(|message| RegisterError::Invalid(vec![ConfigError::new("", message)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        let yaml = "mcp:\n  tools:\n    - { name: yaml_tool, input_schema: { type: object }, http: { url: 'http://h/' } }\n  servers:\n    - { name: files, url: 'http://files/mcp' }\n";
        Registry::new(&Config::parse(yaml, &|_| None).unwrap())
    }

    fn tool(name: &str, description: &str) -> HttpToolConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "description": description,
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "http": {"method": "GET", "url": "http://svc/w/{city}"}
        }))
        .unwrap()
    }

    #[test]
    fn renewal_replaces_and_only_a_visible_change_is_announced() {
        let registry = registry();
        let mut changes = registry.changes();
        let minute = Duration::from_secs(60);
        assert_eq!(
            registry.register(&tool("w", "one"), minute, None).unwrap(),
            Registered::Added
        );
        assert_eq!(changes.try_recv().unwrap(), "w");
        assert_eq!(
            registry.register(&tool("w", "one"), minute, None).unwrap(),
            Registered::Renewed
        );
        assert!(changes.try_recv().is_err());
        registry.register(&tool("w", "two"), minute, None).unwrap();
        assert_eq!(changes.try_recv().unwrap(), "w");
        assert_eq!(registry.tools()[0].description.as_deref(), Some("two"));
        assert!(registry.remove("w"));
        assert!(!registry.remove("w"));
        assert_eq!(changes.try_recv().unwrap(), "w");
        assert!(registry.tools().is_empty());
    }

    #[test]
    fn registering_an_expired_tool_again_adds_it_anew() {
        let registry = registry();
        let brief = Duration::from_millis(1);
        registry.register(&tool("w", "one"), brief, None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let mut changes = registry.changes();
        let minute = Duration::from_secs(60);
        assert_eq!(
            registry.register(&tool("w", "one"), minute, None).unwrap(),
            Registered::Added
        );
        assert_eq!(changes.try_recv().unwrap(), "w", "the expiry");
        assert_eq!(changes.try_recv().unwrap(), "w", "the new registration");
    }

    #[test]
    fn an_expired_tool_is_gone_on_the_next_read_and_announced() {
        let registry = registry();
        registry
            .register(&tool("brief", "d"), Duration::from_millis(1), None)
            .unwrap();
        let mut changes = registry.changes();
        std::thread::sleep(Duration::from_millis(5));
        assert!(registry.get("brief").is_none());
        assert_eq!(changes.try_recv().unwrap(), "brief");
        assert!(registry.list().is_empty());
    }

    #[test]
    fn reserved_names_and_bad_fields_are_refused_with_their_paths() {
        let registry = registry();
        let day = Duration::from_secs(3600);
        for (name, why) in [
            ("yaml_tool", "configuration"),
            ("context_get", "configuration"),
            ("files__read", "MCP server 'files'"),
        ] {
            assert!(matches!(
                registry.register(&tool(name, "d"), day, None),
                Err(RegisterError::Reserved(message)) if message.contains(name) && message.contains(why)
            ));
        }
        assert!(
            registry
                .register(&tool("files_read", "d"), day, None)
                .is_ok()
        );
        let mut bad = tool("ok", "d");
        bad.http.url = "ftp://svc/{nope}".into();
        bad.input_schema = serde_json::json!({"type": "array"});
        let Err(RegisterError::Invalid(errors)) = registry.register(&bad, Duration::ZERO, None)
        else {
            panic!("accepted");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["input_schema", "http.url", "http.url", "ttl"]);
    }

    #[test]
    fn only_the_owner_or_the_admin_changes_a_registration() {
        let registry = registry();
        let minute = Duration::from_secs(60);
        let ours = tool("billing_charge", "one");
        registry.register(&ours, minute, Some("billing")).unwrap();
        let Err(RegisterError::NotYours(message)) =
            registry.register(&ours, minute, Some("search"))
        else {
            panic!("another key renewed a tool it does not own");
        };
        assert!(message.contains("billing_charge"), "{message}");
        assert!(
            registry
                .may_change("billing_charge", Some("search"))
                .is_err()
        );
        assert!(
            registry
                .may_change("billing_charge", Some("billing"))
                .is_ok()
        );
        assert_eq!(
            registry.register(&ours, minute, Some("billing")).unwrap(),
            Registered::Renewed
        );
        assert_eq!(
            registry.register(&ours, minute, None).unwrap(),
            Registered::Renewed
        );
        assert_eq!(
            registry.list()[0].owner,
            None,
            "the admin's renewal took it over"
        );
    }
}
