//! `keys:` of config.yaml: the virtual keys handed to clients, with their model, tool and
//! context globs and their limits.

use std::num::{NonZeroU32, NonZeroU64};

use serde::Deserialize;

use super::Secret;

/// One entry of `keys:`: a virtual key handed to a client.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    #[serde(default)]
    pub key: Option<Secret>,
    /// The hex SHA-256 of the key, for operators who keep no plaintext in the file.
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// Globs of model names this key may use; absent means every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// What this key may spend; absent means no limit.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// Globs of MCP tool names this key may list and call; absent means every tool.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Globs of the upstream MCP servers' prompt names this key may list and get; absent means
    /// every prompt.
    #[serde(default)]
    pub prompts: Option<Vec<String>>,
    /// Globs of the upstream MCP servers' resource URIs (and URI templates) this key may list,
    /// read and subscribe to; absent means every resource.
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// Globs of context namespaces this key may read and write; absent means every namespace.
    #[serde(default)]
    pub context: Option<Vec<String>>,
    /// What this key may do on the admin surface; none by default.
    #[serde(default)]
    pub grants: Vec<super::Grant>,
    /// The start of every tool name this key registers (with the `tools:register` grant).
    #[serde(default)]
    pub tools_prefix: Option<String>,
}

/// `keys[].limits`: request rate and concurrency per key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per minute, enforced by GCRA: a full minute's worth may come at once.
    #[serde(default)]
    pub requests_per_minute: Option<NonZeroU32>,
    /// Requests in flight at once, streams until their last byte.
    #[serde(default)]
    pub max_concurrent: Option<NonZeroU32>,
    /// Prompt plus completion tokens per minute, as a bucket that refills continuously.
    #[serde(default)]
    pub tokens_per_minute: Option<NonZeroU32>,
    /// Prompt plus completion tokens per UTC calendar day.
    #[serde(default)]
    pub tokens_per_day: Option<NonZeroU64>,
    /// Spend per UTC calendar period, at the catalog's (or the target's `pricing`) prices.
    #[serde(default)]
    pub budget_usd: Option<BudgetConfig>,
    /// Context documents the key may hold (those it wrote last), over every namespace.
    #[serde(default)]
    pub context_documents: Option<NonZeroU64>,
    /// Bytes of context (compact JSON) the key may hold.
    #[serde(default)]
    pub context_bytes: Option<super::Size>,
}

/// `budget_usd:` of a key.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub amount: f64,
    pub period: BudgetPeriod,
}

/// The calendar period a budget covers, in UTC; weeks start on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
}
