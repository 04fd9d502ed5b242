//! The catalog's lifecycle applied to MCP tools: retired tools are not listed and a call of one
//! is a tool error naming its successor; deprecated ones are marked where clients read them.

use std::collections::{HashMap, HashSet};

use rmcp::model::{CallToolResult, ContentBlock, Tool};
use serde_json::json;

use super::Shared;
use super::http_tool::HttpTool;
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
    /// The lifecycles configured and registered tools declare of themselves, for those not
    /// published (YAML and registered tools rarely declare one: usually empty).
    fn declared(&self) -> HashMap<String, EntryMeta> {
        let http = self.http_tools.load();
        let registered = self.registry.live_tools();
        let declaring = http.iter().chain(registered.iter().map(|t| &**t));
        declaring
            .filter(|t| t.meta.status != Status::Published)
            .map(|t| (t.tool.name.to_string(), t.meta.clone()))
            .collect()
    }

    /// Removes retired tools from a listing and marks deprecated ones: a description suffix
    /// any client shows, and the lifecycle under `_meta` for clients that read it.
    pub(super) fn apply_lifecycle(&self, tools: &mut Vec<Tool>) {
        let declared = self.declared();
        tools.retain_mut(|tool| {
            let origin = declared.get(tool.name.as_ref());
            match self.catalog.unpublished(Kind::Tool, &tool.name, origin) {
                None => true,
                Some(described) if described.meta.status == Status::Retired => false,
                Some(described) => {
                    mark(tool, &described.meta);
                    true
                }
            }
        });
    }

    /// The tool error a call of a retired tool gets; counts a call of a deprecated one.
    pub(super) fn lifecycle_of_call(&self, caller: &Caller, name: &str) -> Option<CallToolResult> {
        let declared = self.declared();
        let described = self
            .catalog
            .unpublished(Kind::Tool, name, declared.get(name))?;
        if described.meta.status == Status::Retired {
            let message = retired_message(Kind::Tool, name, &described.meta);
            return Some(CallToolResult::error(vec![ContentBlock::text(message)]));
        }
        let key = caller.name.as_deref().unwrap_or("anonymous");
        self.catalog
            .deprecated_call(&entry_id(Kind::Tool, name), key);
        None
    }

    /// Every tool the gateway serves now, with where it comes from, for the catalog: its own
    /// tools first, then each server's not shadowed by one listed before.
    pub fn catalog_tools(&self) -> Vec<Origin> {
        let own = |tool: &HttpTool, origin: &str| Origin {
            tool: tool.tool.clone(),
            origin: origin.to_owned(),
            meta: Some(tool.meta.clone()),
        };
        let mut tools: Vec<Origin> = (self.http_tools.load().iter())
            .map(|t| own(t, if t.is_operation() { "openapi" } else { "yaml" }))
            .collect();
        tools.extend(self.context_tools.iter().map(|t| Origin {
            tool: t.tool.clone(),
            origin: "builtin".to_owned(),
            meta: None,
        }));
        tools.extend(
            self.registry
                .live_tools()
                .iter()
                .map(|t| own(t, "registered")),
        );
        let mut seen: HashSet<String> = tools.iter().map(|t| t.tool.name.to_string()).collect();
        for era in [super::Era::Session, super::Era::Stateless] {
            for tool in self.servers.tools(era) {
                if !seen.insert(tool.name.to_string()) {
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
