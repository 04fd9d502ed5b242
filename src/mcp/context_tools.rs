//! `context_get`, `context_put`, `context_list` and `context_delete`: the context store as tools,
//! for clients that use tools only. Namespaces outside the key's `context:` globs are refused.
//!
//! Results carry the document's version, which `if_match` takes back to guard a write.

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use super::http_tool::failure;
use super::schema::Schema;
use crate::auth::Caller;
use crate::context::Author;
use crate::context::{ContextError, ContextStore, Precondition};

/// A built-in tool: its description and its compiled input schema.
pub struct ContextTool {
    pub tool: Tool,
    input: Schema,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Get,
    Put,
    List,
    Delete,
}

/// The most entries `context_list` returns at once.
const MAX_LIST: u64 = 1000;

/// The four tools, described and compiled.
pub fn tools() -> Vec<ContextTool> {
    let name = json!({"type": "string", "pattern": "^[A-Za-z0-9._~:@-]{1,200}$"});
    let version = json!({"type": "integer", "minimum": 0, "description": "Only if the document is at this version (from an earlier result)"});
    let specs = [
        (
            Kind::Get,
            "context_get",
            "Read a JSON document of the shared context store, with its version.",
            json!({"namespace": name, "key": name}),
            vec!["namespace", "key"],
            (true, false, true),
        ),
        (
            Kind::Put,
            "context_put",
            "Create or replace a JSON document of the shared context store. Give if_match to write only over the version you read.",
            json!({"namespace": name, "key": name, "value": {"description": "Any JSON value"},
                "if_match": version, "ttl": {"type": "string", "description": "Lifetime such as 30s, 10m, 1h"}}),
            vec!["namespace", "key", "value"],
            (false, false, true),
        ),
        (
            Kind::List,
            "context_list",
            "List the keys of a namespace of the shared context store, a page at a time.",
            json!({"namespace": name, "cursor": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST}}),
            vec!["namespace"],
            (true, false, true),
        ),
        (
            Kind::Delete,
            "context_delete",
            "Delete a JSON document of the shared context store.",
            json!({"namespace": name, "key": name, "if_match": version}),
            vec!["namespace", "key"],
            (false, true, true),
        ),
    ];
    specs
        .into_iter()
        .map(|(kind, tool_name, description, properties, required, (read_only, destructive, idempotent))| {
            let schema = json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
            let Value::Object(object) = schema.clone() else {
                unreachable!("built as an object")
            };
            ContextTool {
                tool: Tool::new(tool_name, description, Arc::new(object)).with_annotations(
                    ToolAnnotations::new()
                        .read_only(read_only)
                        .destructive(destructive)
                        .idempotent(idempotent)
                        .open_world(false),
                ),
                // The schemas above are fixed and valid; a failure here is a bug caught by tests.
                input: Schema::compile(&schema).unwrap_or_else(|e| panic!("{tool_name}: {e}")),
                kind,
            }
        })
        .collect()
}

impl ContextTool {
    pub async fn call(
        &self,
        store: &ContextStore,
        caller: &Caller,
        arguments: JsonObject,
    ) -> CallToolResult {
        if let Err(problems) = self.input.check(&arguments) {
            return failure(format!(
                "Invalid arguments for {}:\n{problems}",
                self.tool.name
            ));
        }
        let text = |field: &str| {
            arguments
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let namespace = text("namespace");
        if !caller.may_use_context(namespace) {
            return failure(format!(
                "This API key may not use the context namespace '{namespace}'."
            ));
        }
        let outcome = match self.kind {
            Kind::Get => get(store, namespace, text("key")).await,
            Kind::Put => put(store, &caller.author(), namespace, &arguments).await,
            Kind::List => list(store, namespace, &arguments).await,
            Kind::Delete => delete(store, namespace, &arguments).await,
        };
        match outcome {
            Ok(structured) => {
                let mut result =
                    CallToolResult::success(vec![ContentBlock::text(structured.to_string())]);
                result.structured_content = Some(structured);
                result
            }
            Err(message) => failure(message),
        }
    }
}

async fn get(store: &ContextStore, namespace: &str, key: &str) -> Result<Value, String> {
    let document = store.get(namespace, key).await.map_err(explain)?;
    Ok(json!({
        "namespace": namespace, "key": key, "version": document.version,
        "expires_at_ms": document.expires_ms, "value": document.value(),
    }))
}

async fn put(
    store: &ContextStore,
    author: &Author<'_>,
    namespace: &str,
    arguments: &JsonObject,
) -> Result<Value, String> {
    let key = arguments
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = arguments.get("value").cloned().unwrap_or(Value::Null);
    let ttl = match arguments.get("ttl").and_then(Value::as_str) {
        None => None,
        Some(text) => Some(crate::context::parse_ttl(text)?),
    };
    let (document, created) = store
        .put(
            author,
            namespace,
            key,
            &value,
            &precondition(arguments),
            ttl,
        )
        .await
        .map_err(explain)?;
    Ok(json!({"namespace": namespace, "key": key, "version": document.version, "created": created}))
}

async fn list(
    store: &ContextStore,
    namespace: &str,
    arguments: &JsonObject,
) -> Result<Value, String> {
    let limit = arguments
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(100);
    let after = arguments.get("cursor").and_then(Value::as_str);
    let (entries, more) = store
        .list(
            Some(namespace),
            after.map(|key| (namespace, key)),
            limit as usize,
            |_| true,
        )
        .await
        .map_err(explain)?;
    let next = more
        .then(|| entries.last().map(|e| e.key.clone()))
        .flatten();
    let items: Vec<Value> = entries
        .iter()
        .map(|e| json!({"key": e.key, "version": e.version, "size": e.size}))
        .collect();
    Ok(json!({"namespace": namespace, "items": items, "next_cursor": next}))
}

async fn delete(
    store: &ContextStore,
    namespace: &str,
    arguments: &JsonObject,
) -> Result<Value, String> {
    let key = arguments
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    store
        .delete(namespace, key, &precondition(arguments))
        .await
        .map_err(explain)?;
    Ok(json!({"namespace": namespace, "key": key, "deleted": true}))
}

fn precondition(arguments: &JsonObject) -> Precondition {
    match arguments.get("if_match").and_then(Value::as_u64) {
        Some(version) => Precondition::Version(vec![version]),
        None => Precondition::None,
    }
}

fn explain(error: ContextError) -> String {
    match error {
        ContextError::Storage(e) => {
            tracing::error!(error = %e, "context store write failed");
            "The context store could not save the document.".to_owned()
        }
        other => {
            let mut text = other.to_string();
            if let Some(first) = text.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            format!("{text}.")
        }
    }
}
