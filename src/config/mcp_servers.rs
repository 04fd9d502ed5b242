//! `mcp.servers` of config.yaml: upstream MCP servers (Streamable HTTP by `url`, or a local
//! command over stdio) whose tools the gateway offers as `{server}__{tool}`; and their checks.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::{ConfigError, McpConfig, Secret, Size, Span};

/// What separates a server's name from its tools' names in `tools/list`.
pub const TOOL_SEPARATOR: &str = "__";

/// One `mcp.servers` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The server's name; letters, digits, '-', '.' and single '_'.
    pub name: String,
    /// What the server's tool names are offered with: `{name}__` when absent; `""` offers them
    /// unchanged.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A Streamable HTTP endpoint; exclusive with `command`.
    #[serde(default)]
    pub url: Option<String>,
    /// Sent with every request to `url`; the client's own key never is.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// A program speaking MCP over stdin/stdout; exclusive with `url`.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The command's environment, besides a few basics (PATH, HOME, ...) the gateway passes on.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Longest wait for connecting, listing tools or a ping: how soon a hung server is noticed.
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// Longest wait for a tool call (a client that gives up sooner cancels it); long-running
    /// tools are common, so this is generous and apart from `timeout`.
    #[serde(default = "default_call_timeout")]
    pub call_timeout: Span,
    /// How often a connected server is pinged, so one that went away is noticed.
    #[serde(default = "default_ping_interval")]
    pub ping_interval: Span,
    /// The largest message (a tool result) taken from the server; a larger one fails its own
    /// call with a message naming this limit, and the server and its other calls go on.
    #[serde(default = "default_max_result")]
    pub max_result: Size,
    /// Most upstream sessions open at once: each client session (or, for a client without
    /// one, each key) gets its own, so state a server keeps per session is never shared.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Over HTTP, whether the server is also asked for its 2026-07-28 face (`server/discover`):
    /// sessionless clients are then served by it, as they would be directly, and a server that
    /// speaks only that revision is reached at all. `false` reaches it by `initialize` alone.
    #[serde(default = "default_discover")]
    pub discover: bool,
}

fn default_discover() -> bool {
    true
}

/// The largest `max_result`: a message is held whole in memory before it is forwarded.
const MAX_RESULT_CAP: u64 = 1024 * 1024 * 1024;

/// How the gateway reaches a server.
pub enum McpServerTransport<'a> {
    Http {
        url: &'a str,
        headers: &'a BTreeMap<String, Secret>,
    },
    Stdio {
        command: &'a str,
        args: &'a [String],
        env: &'a BTreeMap<String, Secret>,
    },
}

impl McpServerConfig {
    /// What the server's tool names are offered with.
    pub fn tool_prefix(&self) -> std::borrow::Cow<'_, str> {
        match &self.prefix {
            Some(prefix) => prefix.as_str().into(),
            None => format!("{}{TOOL_SEPARATOR}", self.name).into(),
        }
    }

    /// The transport; validation guarantees exactly one of `url` and `command`.
    pub fn transport(&self) -> Option<McpServerTransport<'_>> {
        match (&self.url, &self.command) {
            (Some(url), None) => Some(McpServerTransport::Http {
                url,
                headers: &self.headers,
            }),
            (None, Some(command)) => Some(McpServerTransport::Stdio {
                command,
                args: &self.args,
                env: &self.env,
            }),
            _ => None,
        }
    }
}

fn default_timeout() -> Span {
    Span(std::time::Duration::from_secs(30))
}

fn default_call_timeout() -> Span {
    Span(std::time::Duration::from_secs(600))
}

fn default_ping_interval() -> Span {
    Span(std::time::Duration::from_secs(15))
}

fn default_max_result() -> Size {
    Size(16 * 1024 * 1024)
}

fn default_max_sessions() -> usize {
    64
}

/// Whether `name` can prefix tool names unambiguously: the first `__` of a gateway tool name
/// always ends the server's name.
fn valid_server_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.contains(TOOL_SEPARATOR)
        && !name.ends_with('_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Every problem in `mcp.servers`, and `mcp.tools` names that would shadow a server's tools.
pub fn validate(mcp: &McpConfig, errors: &mut Vec<ConfigError>) {
    let mut names = HashSet::new();
    for (i, server) in mcp.servers.iter().enumerate() {
        let path = format!("mcp.servers[{i}]");
        if !valid_server_name(&server.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                "must be 1-64 characters of letters, digits, '-', '.' and '_', \
                 without '__' and not ending in '_'",
            ));
        } else if !names.insert(server.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate server name {:?}", server.name),
            ));
        }
        transport_errors(&path, server, errors);
        prefix_errors(&path, server, &mcp.servers[..i], errors);
        for (field, span) in [
            ("timeout", server.timeout),
            ("call_timeout", server.call_timeout),
            ("ping_interval", server.ping_interval),
        ] {
            if span.0.is_zero() {
                errors.push(ConfigError::new(
                    format!("{path}.{field}"),
                    "must be longer than 0s",
                ));
            }
        }
        if server.max_result.0 < 1024 || server.max_result.0 > MAX_RESULT_CAP {
            errors.push(ConfigError::new(
                format!("{path}.max_result"),
                "must be between 1KiB and 1GiB",
            ));
        }
        if server.max_sessions == 0 {
            errors.push(ConfigError::new(
                format!("{path}.max_sessions"),
                "must be at least 1",
            ));
        }
    }
    for (i, tool) in mcp.tools.iter().enumerate() {
        let owner = mcp.servers.iter().find(|server| {
            let prefix = server.tool_prefix();
            !prefix.is_empty() && tool.name.starts_with(prefix.as_ref())
        });
        if let Some(server) = owner {
            errors.push(ConfigError::new(
                format!("mcp.tools[{i}].name"),
                format!(
                    "'{}' is the prefix of the MCP server '{}'",
                    server.tool_prefix(),
                    server.name
                ),
            ));
        }
    }
}

/// A prefix is made of tool-name characters, and two servers never share one (but any number
/// may offer their names unchanged: clashes between those are found as they list). Default
/// prefixes are as unique as the names they are made of, which are checked apart.
fn prefix_errors(
    path: &str,
    server: &McpServerConfig,
    before: &[McpServerConfig],
    errors: &mut Vec<ConfigError>,
) {
    let Some(prefix) = &server.prefix else {
        let explicit = before
            .iter()
            .enumerate()
            .filter(|(_, o)| o.prefix.is_some());
        let mine = server.tool_prefix();
        for (j, other) in explicit {
            if other.tool_prefix() == mine {
                errors.push(shared_prefix(path, &mine, j, other));
            }
        }
        return;
    };
    let valid = prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        errors.push(ConfigError::new(
            format!("{path}.prefix"),
            "must be at most 64 characters of letters, digits, '_', '-' and '.'",
        ));
    }
    let shared = before
        .iter()
        .enumerate()
        .find(|(_, other)| !prefix.is_empty() && other.tool_prefix() == prefix.as_str());
    if let Some((j, other)) = shared {
        errors.push(shared_prefix(path, prefix, j, other));
    }
}

fn shared_prefix(path: &str, prefix: &str, j: usize, other: &McpServerConfig) -> ConfigError {
    ConfigError::new(
        format!("{path}.prefix"),
        format!(
            "'{prefix}' is also the prefix of the MCP server '{}' (mcp.servers[{j}]); their \
             tools would clash",
            other.name
        ),
    )
}

fn transport_errors(path: &str, server: &McpServerConfig, errors: &mut Vec<ConfigError>) {
    match server.transport() {
        None => errors.push(ConfigError::new(
            path,
            "needs exactly one of url (Streamable HTTP) and command (stdio)",
        )),
        Some(McpServerTransport::Http { url, headers }) => {
            if !server.args.is_empty() || !server.env.is_empty() {
                errors.push(ConfigError::new(
                    path,
                    "args and env are for a command, not a url",
                ));
            }
            url_errors(&format!("{path}.url"), url, errors);
            header_errors(path, headers, errors);
        }
        Some(McpServerTransport::Stdio { command, env, .. }) => {
            if !server.headers.is_empty() {
                errors.push(ConfigError::new(
                    format!("{path}.headers"),
                    "headers are for a url, not a command",
                ));
            }
            if command.trim().is_empty() {
                errors.push(ConfigError::new(format!("{path}.command"), "is empty"));
            }
            for name in env.keys() {
                if name.is_empty() || name.contains(['=', '\0']) {
                    errors.push(ConfigError::new(
                        format!("{path}.env.{name}"),
                        "invalid variable name",
                    ));
                }
            }
        }
    }
}

fn url_errors(at: &str, url: &str, errors: &mut Vec<ConfigError>) {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
        Ok(_) => errors.push(ConfigError::new(at, "must be an http:// or https:// URL")),
        Err(e) => errors.push(ConfigError::new(at, format!("invalid URL: {e}"))),
    }
}

/// Headers rmcp sets itself may not be configured.
const RESERVED_HEADERS: [&str; 5] = [
    "accept",
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

fn header_errors(path: &str, headers: &BTreeMap<String, Secret>, errors: &mut Vec<ConfigError>) {
    for (name, value) in headers {
        let at = format!("{path}.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header name"));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errors.push(ConfigError::new(&at, "is set by the MCP transport itself"));
        }
        if http::HeaderValue::from_str(value.expose()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header value"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LoadError};

    use super::McpServerTransport;

    /// The YAML path each error message starts with.
    fn paths(found: &[String]) -> Vec<&str> {
        found
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect()
    }

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, &|_| None) {
            Err(LoadError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn the_documented_shape_loads() {
        let config = Config::parse(
            r#"
mcp:
  servers:
    - name: github
      url: https://mcp.example.com/mcp
      headers: { authorization: "Bearer ${GH_TOKEN}" }
      timeout: 20s
    - name: files
      command: npx
      args: ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]
      env: { LOG_LEVEL: debug }
      ping_interval: 5s
"#,
            &|name| (name == "GH_TOKEN").then(|| "gh-secret".to_owned()),
        )
        .unwrap();
        let [github, files] = &config.mcp.servers[..] else {
            panic!("{:?}", config.mcp.servers)
        };
        let Some(McpServerTransport::Http { url, headers }) = github.transport() else {
            panic!("github is not HTTP")
        };
        assert_eq!(url, "https://mcp.example.com/mcp");
        assert_eq!(headers["authorization"].expose(), "Bearer gh-secret");
        assert_eq!(github.timeout.0, std::time::Duration::from_secs(20));
        let Some(McpServerTransport::Stdio { command, args, env }) = files.transport() else {
            panic!("files is not stdio")
        };
        assert_eq!((command, args.len()), ("npx", 3));
        assert_eq!(env["LOG_LEVEL"].expose(), "debug");
        assert_eq!(files.ping_interval.0, std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_prefix_is_made_of_tool_name_characters_and_never_shared() {
        let found = errors(
            r#"
mcp:
  tools:
    - { name: gh_issue, input_schema: { type: object }, http: { url: "http://h/" } }
  servers:
    - { name: github, url: "http://h/", prefix: gh_ }
    - { name: hub, url: "http://h/", prefix: gh_ }
    - { name: plain, url: "http://h/", prefix: "" }
    - { name: bare, url: "http://h/", prefix: "" }
    - { name: spaced, url: "http://h/", prefix: "a b" }
    - { name: files, url: "http://h/", prefix: "github__" }
    - { name: github, url: "http://h/" }
"#,
        );
        let paths = paths(&found);
        assert_eq!(
            paths,
            [
                "mcp.servers[1].prefix",
                "mcp.servers[4].prefix",
                "mcp.servers[6].name",
                "mcp.servers[6].prefix",
                "mcp.tools[0].name",
            ],
            "{found:#?}"
        );
        assert!(found[0].contains("'github' (mcp.servers[0])"), "{found:?}");
        assert!(found[4].contains("'gh_'"), "{found:?}");
    }

    #[test]
    fn every_server_problem_names_its_path() {
        let found = errors(
            r#"
mcp:
  tools:
    - { name: up__echo, input_schema: { type: object }, http: { url: "http://h/" } }
  servers:
    - { name: up, url: "http://127.0.0.1:1/mcp" }
    - { name: up, command: srv, headers: { x: y } }
    - { name: "a__b", url: "ftp://h/", args: [x] }
    - { name: "bad name", url: "http://h/", command: srv }
    - { name: ok, url: "http://h/", timeout: 0s, headers: { accept: x, "bad header": v } }
    - { name: empty, command: " ", env: { "A=B": c }, ping_interval: 0s }
"#,
        );
        let paths = paths(&found);
        assert_eq!(
            paths,
            [
                "mcp.servers[1].name",
                "mcp.servers[1].headers",
                "mcp.servers[2].name",
                "mcp.servers[2]",
                "mcp.servers[2].url",
                "mcp.servers[3].name",
                "mcp.servers[3]",
                "mcp.servers[4].headers.accept",
                "mcp.servers[4].headers.bad header",
                "mcp.servers[4].timeout",
                "mcp.servers[5].command",
                "mcp.servers[5].env.A=B",
                "mcp.servers[5].ping_interval",
                "mcp.tools[0].name",
            ],
            "{found:#?}"
        );
    }
}
