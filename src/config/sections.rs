//! The config document read section by section and entry by entry, so that one `check` reports
//! a problem in each provider, model, key and section instead of stopping at the first. What
//! cannot be read leaves a placeholder under its own name, so the checks of the whole document
//! still run (and find its name) without repeating its problem.
//!
//! A provider is read by its `kind` first, then as that kind's fields: serde's tagged enums
//! buffer the entry and would lose the path of a field inside it.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use super::validate::suggestion;
use super::{
    Config, ConfigError, KeyConfig, MockConfig, ModelConfig, OpenaiConfig, ProviderConfig,
};

/// The top-level sections, in the order `Config` declares them.
const SECTIONS: [&str; 11] = [
    "server",
    "providers",
    "models",
    "keys",
    "cache",
    "state",
    "mcp",
    "audit",
    "telemetry",
    "auth",
    "catalog",
];

/// The kinds of provider, as `kind:` spells them.
const KINDS: [&str; 8] = [
    "openai",
    "gemini",
    "anthropic",
    "cohere",
    "mistral",
    "azure",
    "mock",
    "bedrock",
];

/// What reading the document found.
pub(super) struct Read {
    /// The config, with a placeholder (a default, under the entry's own name) for every entry
    /// or section that could not be read. Used for further checks only when `problems` is set.
    pub config: Config,
    pub problems: Problems,
}

/// The problems found while reading, and the paths of what could not be read.
#[derive(Default)]
pub(super) struct Problems {
    pub errors: Vec<ConfigError>,
    /// Entries and sections whose placeholder stands in: their own checks would only repeat
    /// the problem already reported.
    pub unread: Vec<String>,
}

impl Problems {
    fn failed(&mut self, at: &str, error: ConfigError) {
        self.errors.push(error);
        self.unread.push(at.to_owned());
    }

    /// Whether `path` is within something that could not be read.
    pub fn covers(&self, path: &str) -> bool {
        self.unread.iter().any(|unread| {
            path.strip_prefix(unread.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

/// Reads `document` (a mapping) into a `Config`, noting every problem found on the way.
pub(super) fn read(document: Mapping) -> Read {
    let mut problems = Problems::default();
    for key in document.keys() {
        let name = key.as_str().unwrap_or_default();
        if !SECTIONS.contains(&name) {
            let hint = suggestion(name, SECTIONS.into_iter());
            problems.errors.push(ConfigError::new(
                name,
                format!(
                    "unknown field `{name}`, expected one of {}{hint}",
                    quoted(&SECTIONS)
                ),
            ));
        }
    }
    let section = |name: &str| document.get(name).cloned().unwrap_or(Value::Null);
    let p = &mut problems;
    let config = Config {
        server: whole(section("server"), "server", p),
        providers: providers(section("providers"), p),
        models: entries(section("models"), "models", p),
        keys: entries(section("keys"), "keys", p),
        cache: whole(section("cache"), "cache", p),
        state: whole(section("state"), "state", p),
        mcp: whole(section("mcp"), "mcp", p),
        audit: whole(shorthand(section("audit"), "path"), "audit", p),
        telemetry: whole(section("telemetry"), "telemetry", p),
        auth: whole(section("auth"), "auth", p),
        catalog: whole(section("catalog"), "catalog", p),
    };
    Read { config, problems }
}

/// A section written as a bare string (`audit: stdout`), read as the mapping it is short for
/// (`{ path: stdout }`).
fn shorthand(value: Value, field: &str) -> Value {
    match value {
        Value::String(text) => {
            let mut mapping = Mapping::new();
            mapping.insert(Value::String(field.to_owned()), Value::String(text));
            Value::Mapping(mapping)
        }
        other => other,
    }
}

/// An entry of a list that can stand in, under its name, for one that could not be read.
pub(super) trait Entry: DeserializeOwned {
    fn placeholder(name: String) -> Self;
}

impl Entry for ModelConfig {
    fn placeholder(name: String) -> Self {
        ModelConfig {
            name,
            ..ModelConfig::default()
        }
    }
}

impl Entry for KeyConfig {
    fn placeholder(name: String) -> Self {
        KeyConfig {
            name,
            ..KeyConfig::default()
        }
    }
}

/// One value read whole; absent (`null`) is the type's default. A failure is recorded with its
/// full path and the default stands in, so reading goes on.
fn whole<T: DeserializeOwned + Default>(value: Value, at: &str, problems: &mut Problems) -> T {
    if value.is_null() {
        return T::default();
    }
    read_at(value, at).unwrap_or_else(|error| {
        problems.failed(at, error);
        T::default()
    })
}

fn read_at<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match inner.as_str() {
            "." => at.to_owned(),
            _ if inner.starts_with('[') => format!("{at}{inner}"),
            _ => format!("{at}.{inner}"),
        };
        ConfigError::new(path, with_hint(plain(&e.into_inner().to_string())))
    })
}

/// serde's `unknown field `x`, expected one of `a`, `b`` with the closest expected name, when
/// one is close: a misspelling says what was meant.
fn with_hint(message: String) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let known = expected.split('`').skip(1).step_by(2);
    let hint = suggestion(unknown, known);
    format!("{message}{hint}")
}

/// serde's message about a value, without the value when it is a string and without Rust's
/// type names. A string written where a mapping belongs (`keys: [sk-...]`, `headers: "Bearer
/// sk-..."`) may be a secret, and `check` output ends up in CI logs.
fn plain(message: &str) -> String {
    let mut message = match (message.find("string \""), message.rfind("\", expected")) {
        (Some(start), Some(end)) if end > start => {
            format!("{}a string{}", &message[..start], &message[end + 1..])
        }
        _ => message.to_owned(),
    };
    if let Some(at) = message.find("expected struct ") {
        message.replace_range(at.., "expected a mapping");
    }
    message
}

/// A list read entry by entry, each failure recorded with its index and a placeholder under
/// the entry's `name` in its place.
fn entries<T: Entry>(value: Value, at: &str, problems: &mut Problems) -> Vec<T> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let here = format!("{at}[{i}]");
                let name = item.get("name").and_then(Value::as_str).map(str::to_owned);
                read_at(item, &here).unwrap_or_else(|error| {
                    problems.failed(&here, error);
                    T::placeholder(name.unwrap_or_default())
                })
            })
            .collect(),
        _ => {
            problems.failed(at, ConfigError::new(at, "must be a list"));
            Vec::new()
        }
    }
}

/// `providers:` read entry by entry, each by its `kind`.
fn providers(value: Value, problems: &mut Problems) -> BTreeMap<String, ProviderConfig> {
    let entries = match value {
        Value::Null => return BTreeMap::new(),
        Value::Mapping(entries) => entries,
        _ => {
            let error = ConfigError::new("providers", "must be a mapping of name to provider");
            problems.failed("providers", error);
            // With no provider read, every target would name an unknown one.
            problems.unread.push("models".to_owned());
            return BTreeMap::new();
        }
    };
    let mut providers = BTreeMap::new();
    for (name, entry) in entries {
        let Some(name) = name.as_str().map(str::to_owned) else {
            let error = ConfigError::new("providers", "provider names must be strings");
            problems.errors.push(error);
            continue;
        };
        let at = format!("providers.{name}");
        let read = provider(entry, &at).unwrap_or_else(|error| {
            problems.failed(&at, error);
            // Any kind will do: it stands in so that targets naming it are not unknown.
            ProviderConfig::Mock(MockConfig::default())
        });
        providers.insert(name, read);
    }
    providers
}

fn provider(entry: Value, at: &str) -> Result<ProviderConfig, ConfigError> {
    let Value::Mapping(mut fields) = entry else {
        return Err(ConfigError::new(at, "must be a mapping with a `kind`"));
    };
    let kind = match fields.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(_) => return Err(ConfigError::new(format!("{at}.kind"), "must be a string")),
        None => {
            return Err(ConfigError::new(
                format!("{at}.kind"),
                format!("missing; one of {}", quoted(&KINDS)),
            ));
        }
    };
    // The one field of a kind beyond the HTTP fields every kind shares.
    let responses_api = match (kind.as_str(), fields.remove("responses_api")) {
        (_, None) => None,
        ("openai", Some(Value::Bool(on))) => Some(on),
        ("openai", Some(_)) => {
            return Err(ConfigError::new(
                format!("{at}.responses_api"),
                "must be true or false",
            ));
        }
        (_, Some(_)) => {
            return Err(ConfigError::new(
                format!("{at}.responses_api"),
                "only `kind: openai` takes it",
            ));
        }
    };
    let rest = Value::Mapping(fields);
    Ok(match kind.as_str() {
        "openai" => ProviderConfig::Openai(OpenaiConfig {
            http: read_at(rest, at)?,
            responses_api,
        }),
        "gemini" => ProviderConfig::Gemini(read_at(rest, at)?),
        "anthropic" => ProviderConfig::Anthropic(read_at(rest, at)?),
        "cohere" => ProviderConfig::Cohere(read_at(rest, at)?),
        "mistral" => ProviderConfig::Mistral(read_at(rest, at)?),
        "azure" => ProviderConfig::Azure(read_at(rest, at)?),
        "mock" => ProviderConfig::Mock(read_at(rest, at)?),
        "bedrock" => ProviderConfig::Bedrock(read_at(rest, at)?),
        other => {
            let hint = suggestion(other, KINDS.into_iter());
            return Err(ConfigError::new(
                format!("{at}.kind"),
                format!(
                    "unknown kind `{other}`, expected one of {}{hint}",
                    quoted(&KINDS)
                ),
            ));
        }
    })
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
