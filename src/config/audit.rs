//! `audit:` of config.yaml: where the audit log goes, a file rotated by size or the standard
//! output, one JSON line per request, tool call, context write and admin action.

use serde::Deserialize;

use super::{ConfigError, Size};

/// `audit:`; `audit: stdout` is short for `audit: { path: stdout }`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The file lines are appended to, or `stdout`.
    pub path: String,
    /// The size past which the file is rotated to `path.1` (and `path.1` to `path.2`, ...).
    #[serde(default = "default_max_size")]
    pub max_size: Size,
    /// Rotated files kept beside the current one; the oldest beyond is deleted.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl AuditConfig {
    /// Whether lines go to the standard output rather than a file.
    pub fn to_stdout(&self) -> bool {
        self.path == "stdout"
    }
}

fn default_max_size() -> Size {
    Size(100 * 1024 * 1024)
}

fn default_keep() -> u32 {
    5
}

/// The smallest file worth rotating: a few lines.
const MIN_SIZE: u64 = 1024;

pub(super) fn validate(audit: Option<&AuditConfig>, errors: &mut Vec<ConfigError>) {
    let Some(audit) = audit else {
        return;
    };
    if audit.path.trim().is_empty() {
        errors.push(ConfigError::new(
            "audit.path",
            "must be a file path or `stdout`",
        ));
    }
    if audit.max_size.0 < MIN_SIZE {
        errors.push(ConfigError::new("audit.max_size", "must be at least 1KiB"));
    }
    if !(1..=100).contains(&audit.keep) {
        errors.push(ConfigError::new("audit.keep", "must be between 1 and 100"));
    }
}
