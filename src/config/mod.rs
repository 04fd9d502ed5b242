//! config.yaml: its shape (the field names are a contract with users), loading with `${VAR}`
//! interpolation, and validation that names the YAML path of every problem.
//!
//! A [`Config`] that loaded is valid: every reference resolves and every value parses.

mod audit;
mod auth;
mod cache;
mod catalog;
mod grants;
mod interpolate;
mod keys;
mod mcp;
mod mcp_servers;
mod models;
pub mod openapi;
mod providers;
mod registration;
mod sections;
mod server;
mod state;
mod telemetry;
mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use audit::AuditConfig;
pub use auth::{AuthConfig, ClaimsConfig, JwtConfig};
pub use cache::*;
pub use catalog::{CatalogConfig, EntryMeta, MAX_TEXT as MAX_CATALOG_TEXT, Status, day_start};
pub use grants::Grant;
pub use keys::*;
pub use mcp::valid_tool_name;
pub use mcp::{
    BUILT_IN_TOOLS, HttpCallConfig, HttpToolConfig, McpConfig, ToolAnnotationsConfig, placeholders,
    tool_errors,
};
pub use mcp_servers::{McpServerConfig, McpServerTransport, TOOL_SEPARATOR};
pub use models::*;
pub use openapi::OpenApiConfig;
pub use providers::*;
pub use registration::Allowed;
pub use server::*;
pub use state::*;
pub use telemetry::{OtlpConfig, OtlpProtocol, TelemetryConfig};
pub use units::{Secret, Size, Span, parse_duration};

/// The whole configuration file, read section by section (`sections`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub server: ServerConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: Vec<ModelConfig>,
    pub keys: Vec<KeyConfig>,
    /// Absent: no response cache.
    pub cache: Option<CacheConfig>,
    pub state: StateConfig,
    /// The MCP server at `/mcp` and the context store.
    pub mcp: McpConfig,
    /// Absent: no audit log.
    pub audit: Option<AuditConfig>,
    /// Traces; without `otlp`, none are exported.
    pub telemetry: TelemetryConfig,
    /// Callers besides the YAML keys (`auth.jwt`).
    pub auth: AuthConfig,
    /// What the gateway publishes, with metadata and lifecycle.
    pub catalog: CatalogConfig,
}

/// One problem in the configuration, at a YAML path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a configuration could not be loaded: every problem found, each with its path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {cause}{hint}")]
    Read {
        path: String,
        /// What to do about it, when the file is missing.
        hint: &'static str,
        /// Shown in the message, so not a `source` the error chain would print again.
        cause: std::io::Error,
    },
    #[error("{}", render(.0))]
    Invalid(Vec<ConfigError>),
}

fn render(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and validates a config file, with variables from the process environment. A
    /// relative `state.data_dir` is taken relative to the file's directory, so the gateway
    /// finds its state wherever it is started from.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        Config::load_with_text(path).map(|(config, _)| config)
    }

    /// [`load`](Self::load), and the text it was read from (a reload hashes it).
    pub fn load_with_text(path: &Path) -> Result<(Config, String), LoadError> {
        let text = Config::read_text(path)?;
        Config::from_file_text(path, &text).map(|config| (config, text))
    }

    /// The text of the config file at `path`.
    pub fn read_text(path: &Path) -> Result<String, LoadError> {
        std::fs::read_to_string(path).map_err(|cause| LoadError::Read {
            // Named in full: "config.yaml" alone does not say where it was looked for.
            path: std::path::absolute(path)
                .unwrap_or_else(|_| path.to_owned())
                .display()
                .to_string(),
            hint: match cause.kind() {
                std::io::ErrorKind::NotFound => " (name another file with --config FILE)",
                _ => "",
            },
            cause,
        })
    }

    /// The config `text` read from the file at `path`, variables from the process environment,
    /// a relative `state.data_dir` and `mcp.openapi` specs taken relative to the file's
    /// directory, and those specs read.
    pub fn from_file_text(path: &Path, text: &str) -> Result<Config, LoadError> {
        let mut config = Config::parse(text, &|name| std::env::var(name).ok())?;
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        if config.state.data_dir.is_relative()
            && let Some(dir) = shown.parent()
        {
            let relative: std::path::PathBuf = config
                .state
                .data_dir
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            config.state.data_dir = dir.join(relative);
        }
        let dir = shown.parent().unwrap_or(Path::new("."));
        let problems = openapi::load(&mut config.mcp, dir);
        if !problems.is_empty() {
            return Err(LoadError::Invalid(problems));
        }
        Ok(config)
    }

    /// Parses and validates config text, resolving variables through `lookup`.
    pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, LoadError> {
        // A byte-order mark (some Windows editors write one) is not part of the YAML.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let document: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| {
            LoadError::Invalid(vec![ConfigError::new("", format!("invalid YAML: {e}"))])
        })?;
        // An empty file is far more often a truncated or mis-mounted one than a wish for a
        // gateway with nothing configured.
        if document.is_null() {
            return Err(LoadError::Invalid(vec![ConfigError::new(
                "",
                "the configuration is empty (a gateway needs at least one provider)",
            )]));
        }
        let mut document = document;
        let mut errors = Vec::new();
        interpolate::interpolate(&mut document, "", lookup, &mut errors);
        if !errors.is_empty() {
            return Err(LoadError::Invalid(errors));
        }
        let serde_yaml_ng::Value::Mapping(document) = document else {
            return Err(LoadError::Invalid(vec![ConfigError::new(
                "",
                "the configuration must be a mapping of sections (server, providers, models, ...)",
            )]));
        };
        let sections::Read {
            mut config,
            mut problems,
        } = sections::read(document);
        for provider in config.providers.values_mut() {
            if let ProviderConfig::Bedrock(bedrock) = provider {
                bedrock.fill_from_env(lookup);
            }
        }
        // Both stages report in one run; what could not be read is not checked again.
        let mut errors = std::mem::take(&mut problems.errors);
        let checked = validate::validate(&config);
        errors.extend(checked.into_iter().filter(|e| !problems.covers(&e.path)));
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(LoadError::Invalid(errors))
        }
    }
}
