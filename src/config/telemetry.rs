//! `telemetry:` of config.yaml: traces exported over OTLP (HTTP/protobuf or gRPC) and the name
//! the gateway gives itself in them. Absent: no traces are exported.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, Secret};

/// `telemetry:`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where traces go; absent: none are exported.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
    /// `service.name` of the gateway's spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Whether spans carry prompts and answers (`gen_ai.input.messages`, ...). Off: never.
    #[serde(default)]
    pub capture_content: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp: None,
            service_name: default_service_name(),
            capture_content: false,
        }
    }
}

/// `telemetry.otlp`: the collector spans are exported to.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// `http://collector:4318/v1/traces` for `http`, `http://collector:4317` for `grpc`.
    pub endpoint: String,
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Sent with every export (an API key of a hosted collector, say).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// The share of traces kept, 0 to 1; a client's sampled `traceparent` is always followed.
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
}

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies.
    #[default]
    Http,
    /// OTLP/gRPC.
    Grpc,
}

fn default_service_name() -> String {
    "switchboard".to_owned()
}

fn default_ratio() -> f64 {
    1.0
}

pub(super) fn validate(telemetry: &TelemetryConfig, errors: &mut Vec<ConfigError>) {
    if telemetry.service_name.trim().is_empty() {
        errors.push(ConfigError::new(
            "telemetry.service_name",
            "must not be empty",
        ));
    }
    let Some(otlp) = &telemetry.otlp else {
        return;
    };
    match reqwest::Url::parse(&otlp.endpoint) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        _ => errors.push(ConfigError::new(
            "telemetry.otlp.endpoint",
            "must be an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces",
        )),
    }
    if !(0.0..=1.0).contains(&otlp.sample_ratio) {
        errors.push(ConfigError::new(
            "telemetry.otlp.sample_ratio",
            "must be between 0 and 1",
        ));
    }
    for (name, value) in &otlp.headers {
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && http::HeaderValue::from_str(value.expose()).is_ok();
        if !valid {
            errors.push(ConfigError::new(
                format!("telemetry.otlp.headers.{name}"),
                "is not a valid HTTP header",
            ));
        }
    }
}
