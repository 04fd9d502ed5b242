//! `keys[].grants` and `keys[].tools_prefix`: what a client key may do on the admin surface,
//! beyond its model, tool and context globs. The admin key holds every grant.

use serde::Deserialize;

use super::{ConfigError, KeyConfig};

/// One admin-surface permission a key may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum Grant {
    /// Register, renew, list and delete its own run-time tools, named under its `tools_prefix`.
    #[serde(rename = "tools:register")]
    ToolsRegister,
    /// Register and remove instances of providers (still only where `registration.allow` says).
    #[serde(rename = "upstreams:register")]
    UpstreamsRegister,
    /// Read its own row of `/admin/usage`.
    #[serde(rename = "usage:read")]
    UsageRead,
    /// Read every key's row of `/admin/usage`.
    #[serde(rename = "usage:read:*")]
    UsageReadAll,
    /// Empty the response cache.
    #[serde(rename = "cache:purge")]
    CachePurge,
    /// Reload the configuration file.
    #[serde(rename = "reload")]
    Reload,
    /// Read the running configuration, secrets masked.
    #[serde(rename = "config:read")]
    ConfigRead,
}

impl Grant {
    /// The grant as written in config.yaml, for refusals that name it.
    pub fn name(self) -> &'static str {
        match self {
            Grant::ToolsRegister => "tools:register",
            Grant::UpstreamsRegister => "upstreams:register",
            Grant::UsageRead => "usage:read",
            Grant::UsageReadAll => "usage:read:*",
            Grant::CachePurge => "cache:purge",
            Grant::Reload => "reload",
            Grant::ConfigRead => "config:read",
        }
    }
}

/// A key's grants and prefix agree with each other and with every other key's: a key that
/// registers tools owns a prefix, and no two keys own overlapping prefixes (one could then
/// name a tool inside the other's).
pub(super) fn validate(keys: &[KeyConfig], errors: &mut Vec<ConfigError>) {
    for (i, key) in keys.iter().enumerate() {
        let registers = key.grants.contains(&Grant::ToolsRegister);
        match key.tools_prefix.as_deref() {
            None if registers => errors.push(ConfigError::new(
                format!("keys[{i}].tools_prefix"),
                "the tools:register grant needs the tool-name prefix this key owns, e.g. `billing_`",
            )),
            Some(_) if !registers => errors.push(ConfigError::new(
                format!("keys[{i}].tools_prefix"),
                "only a key with the tools:register grant owns a tool-name prefix",
            )),
            Some(prefix) if !super::valid_tool_name(prefix) => {
                errors.push(ConfigError::new(
                    format!("keys[{i}].tools_prefix"),
                    "must be the start of a tool name: letters, digits, `_`, `-` and `.`",
                ))
            }
            _ => {}
        }
        let Some(prefix) = key.tools_prefix.as_deref() else {
            continue;
        };
        for (j, other) in keys.iter().enumerate().take(i) {
            if let Some(theirs) = other.tools_prefix.as_deref()
                && (prefix.starts_with(theirs) || theirs.starts_with(prefix))
            {
                errors.push(ConfigError::new(
                    format!("keys[{i}].tools_prefix"),
                    format!(
                        "{prefix:?} overlaps {theirs:?} of keys[{j}] ({:?}): each key must own its own names",
                        other.name
                    ),
                ));
            }
        }
    }
}
