//! `cache:` of config.yaml: the exact-match response cache's switches and bounds.
//! Field names are a contract with users.

use std::time::Duration;

use serde::Deserialize;

use super::{Size, Span};

/// `cache:`: the exact-match response cache.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// How long an answer stays servable.
    #[serde(default = "default_cache_ttl")]
    pub ttl: Span,
    /// Bytes of cached answers held at most.
    #[serde(default = "default_cache_size")]
    pub max_size: Size,
    #[serde(default)]
    pub scope: CacheScope,
    /// Cache only requests whose answer is meant to repeat: temperature 0 or a seed.
    #[serde(default)]
    pub only_deterministic: bool,
    /// Also cache answers cut off by the output limit (`finish_reason: length`).
    #[serde(default)]
    pub store_truncated: bool,
}

/// Who shares cached answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Each virtual key has its own cache.
    #[default]
    Key,
    /// Every key shares one cache.
    Global,
}

fn enabled() -> bool {
    true
}

fn default_cache_ttl() -> Span {
    Span(Duration::from_secs(600))
}

fn default_cache_size() -> Size {
    Size(256 * 1024 * 1024)
}
