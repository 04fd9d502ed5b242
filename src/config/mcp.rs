//! `mcp:` of config.yaml: HTTP endpoints served as MCP tools, and the context store's size bound;
//! with the checks on them that serde cannot express, each at its YAML path.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::{ConfigError, Secret, Size, Span};

/// `mcp:`: what the MCP server at `/mcp` offers besides the context store.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// HTTP endpoints offered as tools.
    #[serde(default)]
    pub tools: Vec<HttpToolConfig>,
    /// Largest context document, as JSON bytes.
    #[serde(default = "default_max_document")]
    pub max_document: Size,
    /// Upstream MCP servers whose tools are offered as `{server}__{tool}`.
    #[serde(default)]
    pub servers: Vec<super::McpServerConfig>,
    /// MCP sessions one key may hold open at once; the next `initialize` gets 429.
    #[serde(default = "default_max_sessions_per_key")]
    pub max_sessions_per_key: u32,
    /// How long a session lives without a message before it is closed.
    #[serde(default = "default_session_idle")]
    pub session_idle: Span,
    /// HTTP services described by OpenAPI documents, their operations offered as tools.
    #[serde(default)]
    pub openapi: Vec<super::OpenApiConfig>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            tools: Vec::new(),
            max_document: default_max_document(),
            servers: Vec::new(),
            max_sessions_per_key: default_max_sessions_per_key(),
            session_idle: default_session_idle(),
            openapi: Vec::new(),
        }
    }
}

/// Each session costs about 140 KB: 64 of them per key is 9 MB, while an agent with a session
/// per sub-task rarely holds more than a handful.
fn default_max_sessions_per_key() -> u32 {
    64
}

/// Long enough for an agent between steps; a session it abandoned is gone within minutes.
fn default_session_idle() -> Span {
    Span(std::time::Duration::from_secs(120))
}

fn default_max_document() -> Size {
    Size(1024 * 1024)
}

/// One `mcp.tools` entry: an HTTP endpoint described as an MCP tool.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToolConfig {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments; its root must be `type: object`.
    pub input_schema: Value,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub annotations: ToolAnnotationsConfig,
    pub http: HttpCallConfig,
    /// The catalog's fields (`catalog:` in docs/catalog.md), here for a tool registered through
    /// `POST /admin/tools`, whose body is this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<super::Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_at: Option<String>,
}

impl HttpToolConfig {
    /// What this entry says of itself for the catalog.
    pub fn meta(&self) -> super::EntryMeta {
        super::EntryMeta {
            description: self.description.clone(),
            owner: self.owner.clone(),
            docs: self.docs.clone(),
            version: self.version.clone(),
            status: self.status.unwrap_or_default(),
            successor: self.successor.clone(),
            sunset: self.sunset.clone(),
            deprecated_at: self.deprecated_at.clone(),
        }
    }
}

/// Hints for clients about what a tool does; absent ones are not advertised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolAnnotationsConfig {
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub destructive: Option<bool>,
    #[serde(default)]
    pub idempotent: Option<bool>,
    #[serde(default)]
    pub open_world: Option<bool>,
}

/// `http:` of a tool: the request a call makes.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCallConfig {
    #[serde(default = "default_method")]
    pub method: String,
    /// `{arg}` placeholders are replaced by the percent-encoded argument.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default = "default_tool_timeout")]
    pub timeout: Span,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_tool_timeout() -> Span {
    Span(std::time::Duration::from_secs(30))
}

/// Tool names the gateway itself serves.
pub const BUILT_IN_TOOLS: [&str; 4] = [
    "context_get",
    "context_put",
    "context_list",
    "context_delete",
];

/// The methods a tool may use.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The `{name}` placeholders of a URL template, in order; `None` when a brace is unbalanced.
pub fn placeholders(template: &str) -> Option<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return None;
        }
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if name.is_empty() || name.contains('{') {
            return None;
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Some(names)
}

/// Every problem in `mcp:`.
pub fn validate(mcp: &McpConfig, errors: &mut Vec<ConfigError>) {
    if mcp.max_document.0 == 0 {
        errors.push(ConfigError::new(
            "mcp.max_document",
            "must be larger than 0",
        ));
    }
    if mcp.max_sessions_per_key == 0 {
        errors.push(ConfigError::new(
            "mcp.max_sessions_per_key",
            "must be larger than 0",
        ));
    }
    if mcp.session_idle.0.is_zero() {
        errors.push(ConfigError::new(
            "mcp.session_idle",
            "must be longer than 0s",
        ));
    }
    let mut names = HashSet::new();
    for (i, tool) in mcp.tools.iter().enumerate() {
        let path = format!("mcp.tools[{i}]");
        let named = valid_tool_name(&tool.name) && !BUILT_IN_TOOLS.contains(&tool.name.as_str());
        if named && !names.insert(tool.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate tool name {:?}", tool.name),
            ));
        }
        tool_errors(&path, tool, errors);
    }
    super::mcp_servers::validate(mcp, errors);
    super::openapi::validate(mcp, errors);
}

/// Every problem in one tool entry, at paths under `path` (also used for tools registered at
/// run time, which are checked exactly as YAML ones).
pub fn tool_errors(path: &str, tool: &HttpToolConfig, errors: &mut Vec<ConfigError>) {
    if !valid_tool_name(&tool.name) {
        errors.push(ConfigError::new(
            format!("{path}.name"),
            "must be 1-128 characters of letters, digits, '_', '-' and '.'",
        ));
    } else if BUILT_IN_TOOLS.contains(&tool.name.as_str()) {
        errors.push(ConfigError::new(
            format!("{path}.name"),
            format!("{:?} is a built-in tool", tool.name),
        ));
    }
    schema_errors(&format!("{path}.input_schema"), &tool.input_schema, errors);
    if let Some(schema) = &tool.output_schema {
        schema_errors(&format!("{path}.output_schema"), schema, errors);
    }
    http_errors(path, tool, errors);
    errors.extend(tool.meta().problems(path, &tool.name));
}

/// The MCP spec's tool-name rule: 1-128 of ASCII letters, digits, '_', '-' and '.'.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// MCP requires object schemas for tools, and the gateway must be able to compile them.
fn schema_errors(path: &str, schema: &Value, errors: &mut Vec<ConfigError>) {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        errors.push(ConfigError::new(
            path,
            "must be a JSON Schema with type: object",
        ));
        return;
    }
    if let Err(error) = jsonschema::validator_for(schema) {
        errors.push(ConfigError::new(
            path,
            format!("invalid JSON Schema: {error}"),
        ));
    }
}

fn http_errors(path: &str, tool: &HttpToolConfig, errors: &mut Vec<ConfigError>) {
    let http = &tool.http;
    if !METHODS.contains(&http.method.as_str()) {
        errors.push(ConfigError::new(
            format!("{path}.http.method"),
            format!("must be one of {}", METHODS.join(", ")),
        ));
    }
    url_errors(path, tool, errors);
    if http.timeout.0.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.http.timeout"),
            "must be longer than 0s",
        ));
    }
    header_errors(&format!("{path}.http.headers"), &http.headers, errors);
}

/// Header names and values that HTTP can carry, each at `{path}.{name}`.
pub(super) fn header_errors(
    path: &str,
    headers: &BTreeMap<String, Secret>,
    errors: &mut Vec<ConfigError>,
) {
    for (name, value) in headers {
        let at = format!("{path}.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header name"));
        }
        if http::HeaderValue::from_str(value.expose()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header value"));
        }
    }
}

/// The template must be an http(s) URL once its placeholders are filled, and each placeholder
/// must name a property of the input schema, so a call can always fill it.
fn url_errors(path: &str, tool: &HttpToolConfig, errors: &mut Vec<ConfigError>) {
    let at = format!("{path}.http.url");
    let Some(names) = placeholders(&tool.http.url) else {
        errors.push(ConfigError::new(at, "has an unbalanced '{' or '}'"));
        return;
    };
    let properties = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object);
    for name in &names {
        if !properties.is_some_and(|p| p.contains_key(*name)) {
            errors.push(ConfigError::new(
                &at,
                format!("placeholder {{{name}}} is not a property of input_schema"),
            ));
        }
    }
    let mut sample = tool.http.url.clone();
    for name in &names {
        sample = sample.replace(&format!("{{{name}}}"), "x");
    }
    match reqwest::Url::parse(&sample) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        Ok(_) => errors.push(ConfigError::new(at, "must be an http:// or https:// URL")),
        Err(e) => errors.push(ConfigError::new(at, format!("invalid URL: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;
    use crate::config::{Config, LoadError};

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, &|name| {
            (name == "SVC_KEY").then(|| "s3cret".to_owned())
        }) {
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
  max_document: 64KiB
  tools:
    - name: get_weather
      description: Current weather for a city
      input_schema: { type: object, properties: { city: { type: string } }, required: [city] }
      output_schema: { type: object, properties: { temp: { type: number } } }
      annotations: { read_only: true, idempotent: true }
      http:
        method: GET
        url: "http://127.0.0.1:9002/weather/{city}"
        headers: { authorization: "Bearer ${SVC_KEY}" }
        timeout: 5s
keys:
  - { name: a, key: k, tools: ["get_*"], context: ["team-*"] }
"#,
            &|name| (name == "SVC_KEY").then(|| "s3cret".to_owned()),
        )
        .unwrap();
        assert_eq!(config.mcp.max_document.0, 64 * 1024);
        let tool = &config.mcp.tools[0];
        assert_eq!(tool.http.headers["authorization"].expose(), "Bearer s3cret");
        assert_eq!(tool.http.timeout.0, std::time::Duration::from_secs(5));
        assert_eq!(
            config.keys[0].context.as_deref(),
            Some(&["team-*".to_owned()][..])
        );
    }

    #[test]
    fn every_tool_problem_names_its_path() {
        let found = errors(
            r#"
mcp:
  max_document: 0
  tools:
    - { name: a, input_schema: { type: object }, http: { url: "http://h/" } }
    - { name: a, input_schema: { type: array }, http: { method: FETCH, url: "http://h/{id}", timeout: 0s } }
    - { name: context_get, input_schema: { type: object, properties: { x: { type: 12 } } }, http: { url: "ftp://h/" } }
    - { name: "bad name", input_schema: { type: object }, http: { url: "http://h/{x", headers: { "bad header": v } } }
keys:
  - { name: k, key: s, tools: ["a["], context: ["[z"] }
"#,
        );
        let paths: Vec<&str> = found
            .iter()
            .map(|e| e.split(": ").next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "keys[0].tools[0]",
                "keys[0].context[0]",
                "mcp.max_document",
                "mcp.tools[1].name",
                "mcp.tools[1].input_schema",
                "mcp.tools[1].http.method",
                "mcp.tools[1].http.url",
                "mcp.tools[1].http.timeout",
                "mcp.tools[2].name",
                "mcp.tools[2].input_schema",
                "mcp.tools[2].http.url",
                "mcp.tools[3].name",
                "mcp.tools[3].http.url",
                "mcp.tools[3].http.headers.bad header",
            ],
            "{found:#?}"
        );
        assert!(found[6].contains("{id} is not a property"), "{found:#?}");
    }

    #[test]
    fn placeholders_are_found_and_unbalanced_braces_refused() {
        assert_eq!(placeholders("http://h/{a}/x?b={b}"), Some(vec!["a", "b"]));
        assert_eq!(placeholders("http://h/plain"), Some(vec![]));
        assert_eq!(placeholders("http://h/{a"), None);
        assert_eq!(placeholders("http://h/a}"), None);
        assert_eq!(placeholders("http://h/{}"), None);
    }
}
