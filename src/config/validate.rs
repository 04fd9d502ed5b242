//! Checks that need the whole document: references between sections, duplicates, globs, URLs
//! and header values. Every problem is reported, each at its YAML path.
//!
//! Serde already rejected wrong types and unknown fields; this is what a schema cannot say.

use std::collections::HashSet;

use super::{
    BedrockConfig, Config, ConfigError, DiscoveryConfig, HttpProviderConfig, ProviderConfig,
};

/// Every problem in `config`, in document order.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (name, provider) in &config.providers {
        provider_errors(name, provider, &mut errors);
    }
    model_errors(config, &mut errors);
    key_errors(config, &mut errors);
    super::grants::validate(&config.keys, &mut errors);
    super::audit::validate(config.audit.as_ref(), &mut errors);
    super::telemetry::validate(&config.telemetry, &mut errors);
    server_and_cache_errors(config, &mut errors);
    super::mcp::validate(&config.mcp, &mut errors);
    super::state::validate(&config.state, &mut errors);
    super::auth::validate(&config.auth, &mut errors);
    super::catalog::validate(config, &mut errors);
    errors
}

/// The longest cache TTL accepted; moka refuses durations beyond about 1000 years.
const MAX_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

fn server_and_cache_errors(config: &Config, errors: &mut Vec<ConfigError>) {
    let sizes = [
        ("server.max_body", config.server.max_body),
        ("server.max_answer", config.server.max_answer),
    ];
    for (path, size) in sizes {
        if size.0 == 0 {
            errors.push(ConfigError::new(path, "must be larger than 0"));
        }
    }
    let spans = [
        ("server.header_timeout", config.server.header_timeout),
        ("server.body_timeout", config.server.body_timeout),
    ];
    for (path, span) in spans {
        if span.0.is_zero() {
            errors.push(ConfigError::new(path, "must be longer than 0"));
        }
    }
    if config.server.shutdown_timeout.0.is_zero() {
        // 0s would cut every stream and request in flight at the first signal.
        errors.push(ConfigError::new(
            "server.shutdown_timeout",
            "must be longer than 0s",
        ));
    }
    if config.server.max_connections == 0 {
        errors.push(ConfigError::new(
            "server.max_connections",
            "must be larger than 0",
        ));
    }
    if let Some(cache) = &config.cache {
        if cache.ttl.0.is_zero() || cache.ttl.0 > MAX_CACHE_TTL {
            errors.push(ConfigError::new(
                "cache.ttl",
                "must be between 1ms and 365 days",
            ));
        }
        if cache.max_size.0 == 0 {
            errors.push(ConfigError::new("cache.max_size", "must be larger than 0"));
        }
    }
}

fn provider_errors(name: &str, provider: &ProviderConfig, errors: &mut Vec<ConfigError>) {
    let path = format!("providers.{name}");
    if name.is_empty() || name.contains('/') {
        errors.push(ConfigError::new(
            &path,
            "a provider name must be non-empty and contain no '/'",
        ));
    }
    match provider {
        ProviderConfig::Openai(openai) => http_errors(&path, &openai.http, errors),
        ProviderConfig::Gemini(http)
        | ProviderConfig::Anthropic(http)
        | ProviderConfig::Cohere(http)
        | ProviderConfig::Mistral(http) => {
            http_errors(&path, http, errors);
        }
        ProviderConfig::Azure(azure) => {
            http_errors(&path, &azure.http(), errors);
            let version = &azure.api_version;
            // It is written into the query string as is.
            if version.is_empty()
                || !version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
            {
                errors.push(ConfigError::new(
                    format!("{path}.api_version"),
                    "must be a version such as 2024-10-21",
                ));
            }
        }

        ProviderConfig::Bedrock(bedrock) => bedrock_errors(&path, bedrock, errors),
        ProviderConfig::Mock(mock) if !(0.0..=1.0).contains(&mock.error_rate) => {
            errors.push(ConfigError::new(
                format!("{path}.error_rate"),
                "must be between 0 and 1",
            ));
        }
        ProviderConfig::Mock(_) => {}
    }
}

fn bedrock_errors(path: &str, bedrock: &BedrockConfig, errors: &mut Vec<ConfigError>) {
    http_errors(path, &bedrock.http(), errors);
    match bedrock.region.as_deref() {
        None | Some("") => errors.push(ConfigError::new(
            format!("{path}.region"),
            "required (or set AWS_REGION)",
        )),
        // The region becomes part of a host name and of the signature's scope.
        Some(region)
            if !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            errors.push(ConfigError::new(
                format!("{path}.region"),
                format!("{region:?} is not an AWS region name like us-east-1"),
            ));
        }
        Some(_) => {}
    }
    let secrets = [
        ("access_key_id", &bedrock.access_key_id, "AWS_ACCESS_KEY_ID"),
        (
            "secret_access_key",
            &bedrock.secret_access_key,
            "AWS_SECRET_ACCESS_KEY",
        ),
    ];
    for (field, value, variable) in secrets {
        if value.as_ref().is_none_or(|v| v.is_empty()) {
            errors.push(ConfigError::new(
                format!("{path}.{field}"),
                format!("required (or set {variable})"),
            ));
        }
    }
    let credentials = [
        ("access_key_id", &bedrock.access_key_id),
        ("secret_access_key", &bedrock.secret_access_key),
        ("session_token", &bedrock.session_token),
    ];
    for (field, value) in credentials {
        if let Some(value) = value
            && http::HeaderValue::from_str(value.expose()).is_err()
        {
            errors.push(ConfigError::new(
                format!("{path}.{field}"),
                "contains characters not allowed in an HTTP header",
            ));
        }
    }
}

fn http_errors(path: &str, http: &HttpProviderConfig, errors: &mut Vec<ConfigError>) {
    if let Some(url) = &http.base_url {
        match reqwest::Url::parse(url) {
            // Requests are built as `http::Uri`s: the URL must be one of those too.
            Ok(parsed) if url.parse::<http::Uri>().is_err() => errors.push(ConfigError::new(
                format!("{path}.base_url"),
                format!("{:?} is not a valid request URI (spaces and non-ASCII must be percent-encoded)", parsed.as_str()),
            )),
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
    if http.breaker.failures == 0 {
        errors.push(ConfigError::new(
            format!("{path}.breaker.failures"),
            "must be at least 1",
        ));
    }
    if http.breaker.window.0.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.breaker.window"),
            "must be longer than 0s",
        ));
    }
    if let Some(discovery) = &http.discovery {
        discovery_errors(&format!("{path}.discovery"), discovery, errors);
    }
    for (i, entry) in http
        .registration
        .iter()
        .flat_map(|r| r.allow.iter())
        .enumerate()
    {
        if let Err(message) = super::Allowed::parse(std::slice::from_ref(entry)) {
            errors.push(ConfigError::new(
                format!("{path}.registration.allow[{i}]"),
                message,
            ));
        }
    }
    if http.timeout.is_some_and(|t| t.0.is_zero()) {
        errors.push(ConfigError::new(
            format!("{path}.timeout"),
            "must be longer than 0s",
        ));
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

/// `discovery:` is only read by HTTP kinds: the mock's config has no such field, so serde rejects
/// it there with the provider's path.
fn discovery_errors(path: &str, discovery: &DiscoveryConfig, errors: &mut Vec<ConfigError>) {
    if let Err(message) = discovery.target() {
        errors.push(ConfigError::new(format!("{path}.dns"), message));
    }
    if discovery.refresh.0.is_zero() {
        errors.push(ConfigError::new(
            format!("{path}.refresh"),
            "must be longer than 0s",
        ));
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
        resilience_errors(config, &path, model, errors);
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
            if let Some(pricing) = &target.pricing {
                for (field, usd) in [("input", pricing.input), ("output", pricing.output)] {
                    if !(usd.is_finite() && usd >= 0.0) {
                        errors.push(ConfigError::new(
                            format!("{at}.pricing.{field}"),
                            "must be a price in USD per million tokens, 0 or more",
                        ));
                    }
                }
            }
        }
    }
}

fn resilience_errors(
    config: &Config,
    path: &str,
    model: &super::ModelConfig,
    errors: &mut Vec<ConfigError>,
) {
    for (j, fallback) in model.fallbacks.iter().enumerate() {
        let known = config.models.iter().any(|m| &m.name == fallback)
            || fallback
                .split_once('/')
                .is_some_and(|(p, m)| !m.is_empty() && config.providers.contains_key(p));
        if fallback == &model.name {
            errors.push(ConfigError::new(
                format!("{path}.fallbacks[{j}]"),
                "a model cannot fall back to itself",
            ));
        } else if !known {
            let hint = suggestion(fallback, config.models.iter().map(|m| m.name.as_str()));
            errors.push(ConfigError::new(
                format!("{path}.fallbacks[{j}]"),
                format!("unknown model {fallback:?}{hint}"),
            ));
        }
    }
    if model.retry.attempts == 0 {
        errors.push(ConfigError::new(
            format!("{path}.retry.attempts"),
            "must be at least 1 (it counts the first try)",
        ));
    }
    if model.retry.max_backoff.0 < model.retry.backoff.0 {
        errors.push(ConfigError::new(
            format!("{path}.retry.max_backoff"),
            "must not be shorter than backoff",
        ));
    }
    let t = &model.timeouts;
    for (name, span) in [
        ("connect", t.connect),
        ("first_token", t.first_token),
        ("idle", t.idle),
        ("total", t.total),
    ] {
        if span.is_some_and(|s| s.0.is_zero()) {
            errors.push(ConfigError::new(
                format!("{path}.timeouts.{name}"),
                "must be longer than 0s",
            ));
        }
    }
}

fn key_errors(config: &Config, errors: &mut Vec<ConfigError>) {
    let mut names = HashSet::new();
    // Plain keys and hashed ones share one namespace: the digest.
    let mut digests = HashSet::new();
    for (i, key) in config.keys.iter().enumerate() {
        let digest = match (&key.key, &key.key_sha256) {
            (Some(secret), None) => Some(crate::digest::sha256_hex(secret.expose().as_bytes())),
            (None, Some(hex)) => Some(hex.to_ascii_lowercase()),
            _ => None,
        };
        if let Some(digest) = digest
            && !digests.insert(digest)
        {
            errors.push(ConfigError::new(
                format!("keys[{i}]"),
                "the same key is configured twice",
            ));
        }
    }
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
            (Some(_), None) => {}
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
        if let Some(budget) = key.limits.as_ref().and_then(|l| l.budget_usd)
            && !(budget.amount.is_finite() && budget.amount > 0.0)
        {
            errors.push(ConfigError::new(
                format!("{path}.limits.budget_usd.amount"),
                "must be an amount in USD larger than 0",
            ));
        }
        for (field, globs) in [
            ("models", &key.models),
            ("tools", &key.tools),
            ("context", &key.context),
        ] {
            for (j, glob) in globs.iter().flatten().enumerate() {
                if let Err(e) = globset::Glob::new(glob) {
                    errors.push(ConfigError::new(
                        format!("{path}.{field}[{j}]"),
                        format!("invalid glob: {}", e.kind()),
                    ));
                }
            }
        }
    }
}

/// ` (did you mean "x"?)` when a known name is close to the unknown one.
pub(super) fn suggestion<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> String {
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
    fn colliding_keys_zero_limits_and_bad_uris_are_rejected() {
        let hashed = crate::digest::sha256_hex(b"sk-same");
        let found = errors(&format!(
            "server: {{ max_body: 0, max_answer: 0 }}\nproviders:\n  p: {{ kind: openai, base_url: 'https://ex.com/my v1', timeout: 0s }}\nkeys:\n  - {{ name: a, key: sk-same }}\n  - {{ name: b, key_sha256: {hashed} }}\ncache: {{ ttl: 5000d }}\n"
        ));
        let paths: Vec<&str> = found.iter().map(|e| e.split(':').next().unwrap()).collect();
        for path in [
            "providers.p.base_url",
            "providers.p.timeout",
            "keys[1]",
            "server.max_body",
            "server.max_answer",
            "cache.ttl",
        ] {
            assert!(paths.contains(&path), "{path} missing from {found:#?}");
        }
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

    #[test]
    fn prices_and_budgets_must_be_real_amounts() {
        let found = errors(
            "providers: { p: { kind: mock } }\nmodels:\n  - { name: a, targets: [ { provider: p, model: x, pricing: { input: -1, output: .nan } } ] }\nkeys:\n  - { name: k, key: s, limits: { budget_usd: { amount: 0, period: week } } }\n",
        );
        assert_eq!(
            found,
            [
                "models[0].targets[0].pricing.input: must be a price in USD per million tokens, 0 or more",
                "models[0].targets[0].pricing.output: must be a price in USD per million tokens, 0 or more",
                "keys[0].limits.budget_usd.amount: must be an amount in USD larger than 0",
            ]
        );
        let wrong_period = errors(
            "keys:\n  - { name: k, key: s, limits: { budget_usd: { amount: 5, period: year } } }\n",
        );
        assert!(
            wrong_period[0].starts_with("keys[0].limits.budget_usd.period"),
            "{wrong_period:?}"
        );
    }

    #[test]
    fn resilience_settings_are_checked() {
        let found = errors(
            "providers: { p: { kind: openai, breaker: { failures: 0 } } }\nmodels:\n  - { name: a, targets: [ { provider: p, model: x } ], fallbacks: [a, fsat, p/ok], retry: { attempts: 0, backoff: 1s, max_backoff: 10ms }, timeouts: { idle: 0s } }\n  - { name: fast, targets: [ { provider: p, model: y } ] }\n",
        );
        let paths: Vec<&str> = found.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "providers.p.breaker.failures",
                "models[0].fallbacks[0]",
                "models[0].fallbacks[1]",
                "models[0].retry.attempts",
                "models[0].retry.max_backoff",
                "models[0].timeouts.idle",
            ],
            "{found:#?}"
        );
        assert!(found[2].contains("did you mean \"fast\""), "{found:#?}");
    }

    #[test]
    fn discovery_needs_host_port_a_refresh_and_an_http_provider() {
        let found = errors(
            "providers:\n  p: { kind: openai, discovery: { dns: llm.internal, refresh: 0s } }\n  q: { kind: openai, discovery: { dns: 'llm:0' } }\n",
        );
        assert_eq!(
            found,
            [
                r#"providers.p.discovery.dns: "llm.internal" must be host:port"#,
                "providers.p.discovery.refresh: must be longer than 0s",
                r#"providers.q.discovery.dns: "0" is not a port (1-65535)"#,
            ]
        );
        let mock = errors("providers:\n  m: { kind: mock, discovery: { dns: 'llm:80' } }\n");
        assert!(
            mock.len() == 1
                && mock[0].starts_with("providers.m.discovery: unknown field `discovery`"),
            "{mock:?}"
        );
        let good = Config::parse(
            "providers:\n  p: { kind: openai, base_url: 'http://llm:8000/v1', discovery: { dns: 'llm.internal:8000', refresh: 250ms, nameserver: '127.0.0.1:5353' } }\n",
            &|_| None,
        )
        .unwrap();
        let discovery = good.providers["p"]
            .http()
            .unwrap()
            .discovery
            .clone()
            .unwrap();
        assert_eq!(discovery.dns, "llm.internal:8000");
        assert_eq!(discovery.refresh.0, std::time::Duration::from_millis(250));
        assert_eq!(
            discovery.nameserver,
            Some("127.0.0.1:5353".parse().unwrap())
        );
    }
}
