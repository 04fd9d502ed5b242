//! `mcp.openapi` of config.yaml: HTTP services described by an OpenAPI 3.0 document, each
//! selected operation offered as a tool; the document read (file or URL) when the config loads.
//!
//! Reading happens in [`load`], not in `Config::parse`, so parsing stays free of I/O.

mod operations;
mod schemas;

pub use operations::{Body, Encoding, Operation, Param, Place, read};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::mcp::{BUILT_IN_TOOLS, header_errors, valid_tool_name};
use super::{ConfigError, McpConfig, Secret, Span, TOOL_SEPARATOR};

/// Largest document read; the largest public specs (cloud providers') are a few MiB.
const MAX_SPEC: u64 = 16 * 1024 * 1024;

/// How long a spec named by URL may take to arrive.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One `mcp.openapi` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiConfig {
    /// Names the service; its tools are `{name}__{operationId}` unless `prefix` says otherwise.
    pub name: String,
    /// What the operation ids are offered with; `""` offers them unchanged.
    #[serde(default)]
    pub prefix: Option<String>,
    /// A file (relative to the config file) or an http(s) URL.
    pub spec: String,
    /// Where calls go; the spec's first server when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Globs over operation ids; every operation when absent.
    #[serde(default = "every_operation")]
    pub operations: Vec<String>,
    /// Sent with every call (an API key); never shown to clients.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// The selected operations, filled by [`load`].
    #[serde(skip)]
    pub loaded: Arc<Vec<Operation>>,
}

fn every_operation() -> Vec<String> {
    vec!["*".to_owned()]
}

fn default_timeout() -> Span {
    Span(Duration::from_secs(30))
}

impl OpenApiConfig {
    /// What the service's operation ids are offered with.
    pub fn tool_prefix(&self) -> String {
        match &self.prefix {
            Some(prefix) => prefix.clone(),
            None => format!("{}{TOOL_SEPARATOR}", self.name),
        }
    }

    /// Where calls go: `base_url`, checked by [`validate`] or taken from the spec by [`load`].
    pub fn base(&self) -> &str {
        self.base_url.as_deref().unwrap_or_default()
    }
}

/// The problems `Config::parse` can see: names, URLs, headers, the timeout, the globs.
pub fn validate(mcp: &McpConfig, errors: &mut Vec<ConfigError>) {
    for (i, service) in mcp.openapi.iter().enumerate() {
        let path = format!("mcp.openapi[{i}]");
        if !valid_tool_name(&service.name) || service.name.contains(TOOL_SEPARATOR) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                "must be 1-64 characters of letters, digits, '-', '.' and single '_'",
            ));
        }
        let before = &mcp.openapi[..i];
        if before.iter().any(|other| other.name == service.name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate OpenAPI service name {:?}", service.name),
            ));
        }
        if let Some(prefix) = &service.prefix
            && !prefix.is_empty()
            && !valid_tool_name(prefix)
        {
            errors.push(ConfigError::new(
                format!("{path}.prefix"),
                "must be letters, digits, '_', '-' and '.'",
            ));
        }
        if let Some(url) = &service.base_url
            && !is_http_url(url)
        {
            errors.push(ConfigError::new(
                format!("{path}.base_url"),
                "must be an http:// or https:// URL",
            ));
        }
        if service.spec.trim().is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.spec"),
                "must name a file or an http(s) URL",
            ));
        }
        for (j, glob) in service.operations.iter().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                errors.push(ConfigError::new(
                    format!("{path}.operations[{j}]"),
                    format!("invalid glob: {e}"),
                ));
            }
        }
        if service.operations.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.operations"),
                "selects nothing; leave it out to offer every operation",
            ));
        }
        header_errors(&format!("{path}.headers"), &service.headers, errors);
        if service.timeout.0.is_zero() {
            errors.push(ConfigError::new(
                format!("{path}.timeout"),
                "must be longer than 0s",
            ));
        }
    }
}

fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

/// Reads every service's spec (a relative file from `dir`), keeps the operations its globs
/// select, and checks their tool names against every other tool the config names.
pub fn load(mcp: &mut McpConfig, dir: &Path) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut owners: HashMap<String, String> = BUILT_IN_TOOLS
        .iter()
        .map(|name| ((*name).to_owned(), "a built-in tool".to_owned()))
        .collect();
    for (i, tool) in mcp.tools.iter().enumerate() {
        owners.insert(tool.name.clone(), format!("mcp.tools[{i}]"));
    }
    let server_prefixes: Vec<(String, String)> = mcp
        .servers
        .iter()
        .map(|s| (s.tool_prefix().into_owned(), s.name.clone()))
        .filter(|(prefix, _)| !prefix.is_empty())
        .collect();
    for (i, service) in mcp.openapi.iter_mut().enumerate() {
        let path = format!("mcp.openapi[{i}]");
        let spec = match text_of(&service.spec, dir).and_then(|text| read(&text)) {
            Ok(spec) => spec,
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{path}.spec"),
                    format!("{}: {e}", service.spec),
                ));
                continue;
            }
        };
        if service.base_url.is_none() {
            match &spec.server {
                Some(url) => service.base_url = Some(url.clone()),
                None => errors.push(ConfigError::new(
                    format!("{path}.base_url"),
                    "is required: the spec names no absolute http(s) server",
                )),
            }
        }
        let selected = select(service, &path, &spec, &mut errors);
        let prefix = service.tool_prefix();
        for operation in &selected {
            let tool = format!("{prefix}{}", operation.id);
            let at = format!("{path}.operations");
            if !valid_tool_name(&tool) {
                errors.push(ConfigError::new(
                    at,
                    format!("the tool name {tool:?} is not 1-128 letters, digits, '_', '-', '.'"),
                ));
            } else if let Some(owner) = owners.get(&tool) {
                errors.push(ConfigError::new(
                    at,
                    format!(
                        "the tool {tool:?} of operation {} is also {owner}",
                        operation.id
                    ),
                ));
            } else if let Some((_, server)) = server_prefixes
                .iter()
                .find(|(p, _)| tool.starts_with(p.as_str()))
            {
                errors.push(ConfigError::new(
                    at,
                    format!(
                        "the tool {tool:?} starts with the prefix of the MCP server '{server}'"
                    ),
                ));
            } else {
                owners.insert(tool, format!("operation {} of {path}", operation.id));
            }
        }
        service.loaded = Arc::new(selected);
    }
    errors
}

/// The operations the globs pick; a glob that picks nothing, or names an operation the gateway
/// cannot call, is an error (so a typo or a spec change is seen at load, not by a model).
fn select(
    service: &OpenApiConfig,
    path: &str,
    spec: &operations::Spec,
    errors: &mut Vec<ConfigError>,
) -> Vec<Operation> {
    let mut selected = Vec::new();
    for (j, pattern) in service.operations.iter().enumerate() {
        let Ok(glob) = globset::Glob::new(pattern) else {
            continue;
        };
        let matcher = glob.compile_matcher();
        let at = format!("{path}.operations[{j}]");
        let exact = !pattern.contains(['*', '?', '[', '{']);
        if let Some((id, reason)) = spec.skipped.iter().find(|(id, _)| exact && id == pattern) {
            errors.push(ConfigError::new(
                at,
                format!("operation {id} cannot be a tool: {reason}"),
            ));
            continue;
        }
        let matched: Vec<&Operation> = spec
            .operations
            .iter()
            .filter(|op| matcher.is_match(&op.id))
            .collect();
        if matched.is_empty() {
            let known: Vec<&str> = spec.operations.iter().map(|op| op.id.as_str()).collect();
            errors.push(ConfigError::new(
                at,
                format!(
                    "matches no operation of the spec (it has: {})",
                    known.join(", ")
                ),
            ));
        }
        for op in matched {
            if !selected.iter().any(|s: &Operation| s.id == op.id) {
                selected.push(op.clone());
            }
        }
    }
    selected
}

/// The spec's text: a file, or a URL fetched (bounded in time and size) on a thread of its
/// own, so a config load works the same inside the runtime and outside it.
fn text_of(spec: &str, dir: &Path) -> Result<String, String> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        let url = spec.to_owned();
        return std::thread::spawn(move || fetch(&url))
            .join()
            .unwrap_or_else(|_| Err("fetching it failed".to_owned()));
    }
    let path = dir.join(spec);
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    if size > MAX_SPEC {
        return Err(format!("is larger than {} MiB", MAX_SPEC / (1024 * 1024)));
    }
    std::fs::read_to_string(&path).map_err(|e| e.to_string())
}

fn fetch(url: &str) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    crate::tls::install_tls_provider();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let mut response = client
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if (body.len() + chunk.len()) as u64 > MAX_SPEC {
                return Err(format!("is larger than {} MiB", MAX_SPEC / (1024 * 1024)));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "is not UTF-8 text".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const SPEC: &str = r#"
openapi: 3.0.3
info: { title: t, version: "1" }
servers: [{ url: "/relative" }]
paths:
  /a: { get: { operationId: listA, responses: {} } }
  /b: { get: { operationId: getB, responses: {} } }
  /upload:
    post:
      operationId: upload
      responses: {}
      requestBody: { content: { multipart/form-data: { schema: { type: object } } } }
"#;

    /// Loads `mcp_yaml` (the `mcp:` section) from a config file beside a spec file `s.yaml`.
    fn load_with(name: &str, mcp_yaml: &str) -> Result<Config, Vec<String>> {
        let dir =
            std::env::temp_dir().join(format!("switchboard-openapi-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.yaml"), SPEC).unwrap();
        let text = format!("providers:\n  demo: {{ kind: mock }}\nmcp:\n{mcp_yaml}");
        let loaded = Config::from_file_text(&dir.join("config.yaml"), &text);
        std::fs::remove_dir_all(&dir).ok();
        match loaded {
            Ok(config) => Ok(config),
            Err(crate::config::LoadError::Invalid(problems)) => {
                Err(problems.iter().map(ToString::to_string).collect())
            }
            Err(other) => Err(vec![other.to_string()]),
        }
    }

    #[test]
    fn a_relative_spec_is_read_beside_the_config_and_its_globs_select() {
        let config = load_with(
            "ok",
            "  openapi:\n    - { name: svc, spec: s.yaml, base_url: \"http://127.0.0.1:9/x\", operations: [\"list*\"] }\n",
        )
        .unwrap();
        let ids: Vec<&str> = config.mcp.openapi[0]
            .loaded
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        assert_eq!(ids, ["listA"]);
    }

    #[test]
    fn what_cannot_work_is_refused_at_its_path() {
        let problems = load_with(
            "bad",
            r#"  tools:
    - { name: svc__getB, input_schema: { type: object }, http: { url: "http://127.0.0.1:9/" } }
  openapi:
    - { name: svc, spec: s.yaml, operations: ["get*", "nothing*", upload] }
    - { name: gone, spec: missing.yaml, base_url: "http://127.0.0.1:9/" }
"#,
        )
        .unwrap_err();
        let joined = problems.join("\n");
        for expected in [
            "mcp.openapi[0].base_url: is required",
            "mcp.openapi[0].operations[1]: matches no operation of the spec (it has: listA, getB)",
            "mcp.openapi[0].operations[2]: operation upload cannot be a tool: its request body is multipart/form-data only",
            "mcp.openapi[0].operations: the tool \"svc__getB\" of operation getB is also mcp.tools[0]",
            "mcp.openapi[1].spec: missing.yaml:",
        ] {
            assert!(joined.contains(expected), "{expected:?} not in:\n{joined}");
        }
    }
}
