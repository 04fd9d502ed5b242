//! Checks that need the whole document: references between sections, duplicates, globs, URLs
//! and header values. Every problem is reported, each at its YAML path.
//!
//! Serde already rejected wrong types and unknown fields; this is what a schema cannot say.

use std::collections::HashSet;

use super::{Config, ConfigError, HttpProviderConfig, ProviderConfig};

/// Every problem in `config`, in document order.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, provider) in &config.providers {
        provider_errors(name, provider, &mut errors);
    }
    model_errors(config, &mut errors);
    key_errors(config, &mut errors);
    errors
}

fn provider_errors(name: &str, provider: &ProviderConfig, errors: &mut Vec<ConfigError>) {
    let path = format!("providers.{name}");
    if name.is_empty() || name.contains('/') {
        errors.push(ConfigError::new(
            &path,
            "a provider name must be non-empty and contain no '/'",
        ));
    }
    if let ProviderConfig::Openai(http) = provider {
        http_errors(&path, http, errors);
    }
}

fn http_errors(path: &str, http: &HttpProviderConfig, errors: &mut Vec<ConfigError>) {
    if let Some(url) = &http.base_url {
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(_) => errors.push(ConfigError::new(
                format!("{path}.base_url"),
                "must be an http:// or https:// URL",
            )),
            Err(e) => errors.push(ConfigError::new(
                format!("{path}.base_url"),
                format!("invalid URL {url:?}: {e}"),
            )),
        }
    }
    if let Some(key) = &http.api_key
        && http::HeaderValue::from_str(key.expose()).is_err()
    {
        errors.push(ConfigError::new(
            format!("{path}.api_key"),
            "contains characters not allowed in an HTTP header",
        ));
    }
    for (name, value) in &http.headers {
        let at = format!("{path}.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header name"));
        }
        if http::HeaderValue::from_str(value.expose()).is_err() {
            errors.push(ConfigError::new(&at, "invalid header value"));
        }
    }
}

fn model_errors(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut seen = HashSet::new();
    for (i, model) in config.models.iter().enumerate() {
        let path = format!("models[{i}]");
        if model.name.trim().is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                "must not be empty",
            ));
        } else if !seen.insert(model.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate model name {:?}", model.name),
            ));
        }
        if model.targets.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.targets"),
                "a model needs at least one target",
            ));
        }
        for (j, target) in model.targets.iter().enumerate() {
            let at = format!("{path}.targets[{j}]");
            if !config.providers.contains_key(&target.provider) {
                let hint = suggestion(
                    &target.provider,
                    config.providers.keys().map(String::as_str),
                );
                errors.push(ConfigError::new(
                    format!("{at}.provider"),
                    format!("unknown provider {:?}{hint}", target.provider),
                ));
            }
            if target.weight == 0 {
                errors.push(ConfigError::new(
                    format!("{at}.weight"),
                    "must be at least 1",
                ));
            }
        }
    }
}

fn key_errors(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut names = HashSet::new();
    let mut secrets = HashSet::new();
    for (i, key) in config.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if key.name.trim().is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                "must not be empty",
            ));
        } else if !names.insert(key.name.as_str()) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate key name {:?}", key.name),
            ));
        }
        match (&key.key, &key.key_sha256) {
            (Some(secret), None) if secret.is_empty() => {
                errors.push(ConfigError::new(format!("{path}.key"), "must not be empty"));
            }
            (Some(secret), None) => {
                if !secrets.insert(secret.expose()) {
                    errors.push(ConfigError::new(
                        format!("{path}.key"),
                        "the same key is configured twice",
                    ));
                }
            }
            (None, Some(hex)) => {
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    errors.push(ConfigError::new(
                        format!("{path}.key_sha256"),
                        "must be 64 hexadecimal characters",
                    ));
                }
            }
            (Some(_), Some(_)) => errors.push(ConfigError::new(
                &path,
                "give either key or key_sha256, not both",
            )),
            (None, None) => errors.push(ConfigError::new(&path, "needs key or key_sha256")),
        }
        for (j, glob) in key.models.iter().flatten().enumerate() {
            if let Err(e) = globset::Glob::new(glob) {
                errors.push(ConfigError::new(
                    format!("{path}.models[{j}]"),
                    format!("invalid glob: {}", e.kind()),
                ));
            }
        }
    }
}

/// ` (did you mean "x"?)` when a known name is close to the unknown one.
fn suggestion<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .map(|k| (strsim::jaro_winkler(unknown, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::{Config, LoadError};

    fn errors(text: &str) -> Vec<String> {
        match Config::parse(text, &|_| None) {
            Err(LoadError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn unknown_provider_suggests_the_close_one() {
        let found = errors(
            "providers:\n  openai: { kind: openai }\nmodels:\n  - { name: a, targets: [ { provider: openai, model: x } ] }\n  - { name: b, targets: [ { provider: openai, model: x } ] }\n  - { name: c, targets: [ { provider: opnai, model: x } ] }\n",
        );
        assert_eq!(
            found,
            vec![
                r#"models[2].targets[0].provider: unknown provider "opnai" (did you mean "openai"?)"#
            ]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let found = errors(
            "providers:\n  p: { kind: openai, base_url: 'ftp://x' }\nmodels:\n  - { name: a, targets: [] }\n  - { name: a, targets: [ { provider: q, model: x, weight: 0 } ] }\nkeys:\n  - { name: k }\n  - { name: k, key: s, key_sha256: abc }\n  - { name: j, key_sha256: nothex, models: ['a[' ] }\n",
        );
        let expected_paths = [
            "providers.p.base_url",
            "models[0].targets",
            "models[1].name",
            "models[1].targets[0].provider",
            "models[1].targets[0].weight",
            "keys[0]",
            "keys[1].name",
            "keys[1]",
            "keys[2].key_sha256",
            "keys[2].models[0]",
        ];
        assert_eq!(found.len(), expected_paths.len(), "{found:#?}");
        for (error, path) in found.iter().zip(expected_paths) {
            assert!(
                error.starts_with(&format!("{path}: ")),
                "{error} should start with {path}"
            );
        }
    }
}
