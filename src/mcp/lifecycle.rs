//! The catalog's lifecycle applied to MCP tools: retired tools are not listed and a call of one
//! is a tool error naming its successor; deprecated ones are marked where clients read them.

use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::json;

use super::Shared;
use crate::auth::Caller;
use crate::catalog::{Kind, deprecated_suffix, entry_id, retired_message};
use crate::config::{EntryMeta, Status};

/// The `_meta` key a deprecated tool's lifecycle is given under in `tools/list`.
pub const META_KEY: &str = "io.switchboard/lifecycle";

/// Where a tool listed by the gateway comes from, for the catalog.
pub struct Origin {
    pub tool: Tool,
    /// `yaml`, `openapi`, `builtin`, `registered`, or `server:NAME`.
    pub origin: String,
    /// What its own entry says (a YAML or registered tool).
    pub meta: Option<EntryMeta>,
}

impl Shared {
    /// What a configured or registered tool's own entry says of it.
    pub(super) fn tool_meta(&self, name: &str) -> Option<EntryMeta> {
        let http = self.http_tools.load();
        if let Some(tool) = http.iter().find(|t| t.tool.name == name) {
            return Some(tool.meta.clone());
        }
        self.registry.get(name).map(|t| t.meta.clone())
    }

    /// Removes retired tools from a listing and marks deprecated ones: a description suffix
    /// any client shows, and the lifecycle under `_meta` for clients that read it.
    pub(super) fn apply_lifecycle(&self, tools: &mut Vec<Tool>) {
        tools.retain_mut(|tool| {
            let origin = self.tool_meta(&tool.name);
            match self.catalog.status(Kind::Tool, &tool.name, origin.as_ref()) {
                Status::Published => true,
                Status::Retired => false,
                Status::Deprecated => {
                    let described = self
                        .catalog
                        .describe(Kind::Tool, &tool.name, origin.as_ref());
                    mark(tool, &described.meta);
                    true
                }
            }
        });
    }

    /// The tool error a call of a retired tool gets; counts a call of a deprecated one.
    pub(super) fn lifecycle_of_call(&self, caller: &Caller, name: &str) -> Option<CallToolResult> {
        let origin = self.tool_meta(name);
        match self.catalog.status(Kind::Tool, name, origin.as_ref()) {
            Status::Published => None,
            Status::Deprecated => {
                let key = caller.name.as_deref().unwrap_or("anonymous");
                self.catalog
                    .deprecated_call(&entry_id(Kind::Tool, name), key);
                None
            }
            Status::Retired => {
                let described = self.catalog.describe(Kind::Tool, name, origin.as_ref());
                let message = retired_message(Kind::Tool, name, &described.meta);
                Some(CallToolResult::error(vec![ContentBlock::text(message)]))
            }
        }
    }

    /// Every tool the gateway serves now, with where it comes from, for the catalog.
    pub fn catalog_tools(&self) -> Vec<Origin> {
        let mut tools = Vec::new();
        for tool in self.http_tools.load().iter() {
            tools.push(Origin {
                tool: tool.tool.clone(),
                origin: if tool.is_operation() {
                    "openapi"
                } else {
                    "yaml"
                }
                .to_owned(),
                meta: Some(tool.meta.clone()),
            });
        }
        for tool in &self.context_tools {
            tools.push(Origin {
                tool: tool.tool.clone(),
                origin: "builtin".to_owned(),
                meta: None,
            });
        }
        for tool in self.registry.tools() {
            let meta = self.registry.get(&tool.name).map(|t| t.meta.clone());
            tools.push(Origin {
                tool,
                origin: "registered".to_owned(),
                meta,
            });
        }
        let own: std::collections::HashSet<_> = tools.iter().map(|t| t.tool.name.clone()).collect();
        for era in [super::Era::Session, super::Era::Stateless] {
            for tool in self.servers.tools(era) {
                if own.contains(&tool.name) || tools.iter().any(|t| t.tool.name == tool.name) {
                    continue;
                }
                let server = self.servers.offering(&tool.name).unwrap_or_default();
                tools.push(Origin {
                    tool,
                    origin: format!("server:{server}"),
                    meta: None,
                });
            }
        }
        tools
    }
}

fn mark(tool: &mut Tool, meta: &EntryMeta) {
    let description = tool.description.as_deref().unwrap_or_default();
    tool.description = Some(format!("{description}{}", deprecated_suffix(meta)).into());
    let lifecycle = json!({
        "status": "deprecated",
        "successor": meta.successor,
        "sunset": meta.sunset,
    });
    let mut object = tool.meta.take().unwrap_or_default();
    object.0.insert(META_KEY.to_owned(), lifecycle);
    tool.meta = Some(object);
}
