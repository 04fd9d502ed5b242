//! `state:` of config.yaml: where state that must survive a restart is kept.
//! Its fields are a contract with users; the runtime side lives in the `state` module.

use std::path::PathBuf;

use serde::Deserialize;

/// `state:`: where state that must survive a restart (usage and spend) is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// A directory the gateway creates if needed and owns.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            data_dir: default_data_dir(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
