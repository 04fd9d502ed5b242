//! The config document read section by section and entry by entry, so that one `check` reports
//! a problem in each provider, model, key and section instead of stopping at the first.
//!
//! A provider is read by its `kind` first, then as that kind's fields: serde's tagged enums
//! buffer the entry and would lose the path of a field inside it.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use super::{Config, ConfigError, OpenaiConfig, ProviderConfig};

/// The top-level sections, in the order `Config` declares them.
const SECTIONS: [&str; 7] = [
    "server",
    "providers",
    "models",
    "keys",
    "cache",
    "state",
    "mcp",
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

/// Reads `document` (a mapping) into a `Config`, or every problem found on the way.
pub(super) fn read(document: Mapping) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    for key in document.keys() {
        let name = key.as_str().unwrap_or_default();
        if !SECTIONS.contains(&name) {
            errors.push(ConfigError::new(
                name,
                format!(
                    "unknown field `{name}`, expected one of {}",
                    quoted(&SECTIONS)
                ),
            ));
        }
    }
    let section = |name: &str| document.get(name).cloned().unwrap_or(Value::Null);
    let config = Config {
        server: whole(section("server"), "server", &mut errors),
        providers: providers(section("providers"), &mut errors),
        models: entries(section("models"), "models", &mut errors),
        keys: entries(section("keys"), "keys", &mut errors),
        cache: whole(section("cache"), "cache", &mut errors),
        state: whole(section("state"), "state", &mut errors),
        mcp: whole(section("mcp"), "mcp", &mut errors),
    };
    // A failed section left its default in `config`, which is dropped: errors were found.
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// One value read whole; absent (`null`) is the type's default. A failure is recorded with its
/// full path and the default stands in, so reading goes on.
fn whole<T: DeserializeOwned + Default>(
    value: Value,
    at: &str,
    errors: &mut Vec<ConfigError>,
) -> T {
    if value.is_null() {
        return T::default();
    }
    read_at(value, at).unwrap_or_else(|error| {
        errors.push(error);
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
        ConfigError::new(path, plain(&e.into_inner().to_string()))
    })
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

/// A list read entry by entry, each failure recorded with its index.
fn entries<T: DeserializeOwned>(value: Value, at: &str, errors: &mut Vec<ConfigError>) -> Vec<T> {
    match value {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                read_at(item, &format!("{at}[{i}]"))
                    .map_err(|error| errors.push(error))
                    .ok()
            })
            .collect(),
        _ => {
            errors.push(ConfigError::new(at, "must be a list"));
            Vec::new()
        }
    }
}

/// `providers:` read entry by entry, each by its `kind`.
fn providers(value: Value, errors: &mut Vec<ConfigError>) -> BTreeMap<String, ProviderConfig> {
    let entries = match value {
        Value::Null => return BTreeMap::new(),
        Value::Mapping(entries) => entries,
        _ => {
            errors.push(ConfigError::new(
                "providers",
                "must be a mapping of name to provider",
            ));
            return BTreeMap::new();
        }
    };
    let mut providers = BTreeMap::new();
    for (name, entry) in entries {
        let Some(name) = name.as_str().map(str::to_owned) else {
            errors.push(ConfigError::new(
                "providers",
                "provider names must be strings",
            ));
            continue;
        };
        match provider(entry, &format!("providers.{name}")) {
            Ok(provider) => {
                providers.insert(name, provider);
            }
            Err(error) => errors.push(error),
        }
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
            return Err(ConfigError::new(
                format!("{at}.kind"),
                format!("unknown kind `{other}`, expected one of {}", quoted(&KINDS)),
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
