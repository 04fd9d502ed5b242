//! What a session-era client asks that rmcp's typed model cannot carry, answered beside rmcp:
//! 2025-11-25 tasks (a `tools/call` with `task`, `tasks/get|result|cancel|list`) of upstream
//! tools, and every field an upstream server lists of a tool.
//!
//! The HTTP side finds these requests in the bodies it reads and answers them through here; the
//! session they belong to must live in this process (its client hears the tasks' statuses).

use rmcp::ErrorData;
use rmcp::model::{ErrorCode, JsonObject};
use serde_json::Value;

use super::Shared;
use super::servers::Holder;
use super::session::unknown_tool;
use crate::auth::Caller;

/// The methods answered here, `tools/call` only when it carries `task`.
pub const TASK_METHODS: [&str; 4] = ["tasks/get", "tasks/result", "tasks/cancel", "tasks/list"];

impl Shared {
    /// Answers a task request of `caller` on its session `session`; `None` when that session
    /// does not live here (rmcp answers the request then).
    pub async fn task_request(
        &self,
        caller: &Caller,
        session: &str,
        (method, params): (&str, Option<Value>),
    ) -> Option<Result<Value, ErrorData>> {
        let client = self.client(session)?;
        let holder = Holder::Session(session.to_owned());
        Some(if method == "tools/call" {
            let started = std::time::Instant::now();
            let params = match params {
                Some(Value::Object(params)) => params,
                _ => {
                    return Some(Err(ErrorData::invalid_params(
                        "params must be an object",
                        None,
                    )));
                }
            };
            let tool = params
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let tool = tool.to_owned();
            let called = self.call_as_task(caller, &holder, &client, params).await;
            let ended = match &called {
                Ok(_) => super::Ended::Answered,
                Err(_) => super::Ended::Refused,
            };
            let who = Some((caller.name.clone(), None));
            self.audit_call(&tool, who, ended, started, None);
            called
        } else {
            let servers = &self.servers;
            servers.task_request(&holder, &client, method, params).await
        })
    }

    async fn call_as_task(
        &self,
        caller: &Caller,
        holder: &Holder,
        client: &rmcp::Peer<rmcp::RoleServer>,
        params: JsonObject,
    ) -> Result<Value, ErrorData> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !caller.may_use_tool(name) {
            return Err(unknown_tool(name));
        }
        // A retired tool is answered as a plain call would be: a tool error naming its successor.
        if let Some(retired) = self.lifecycle_of_call(caller, name) {
            return serde_json::to_value(retired)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None));
        }
        if self.owns(name) {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("The tool '{name}' does not support task-augmented execution."),
                None,
            ));
        }
        let name = name.to_owned();
        let called = self.servers.call_as_task(holder, client, params).await;
        called.unwrap_or_else(|| Err(unknown_tool(&name)))
    }

    /// Whether `name` is one of the gateway's own tools (configured or registered), which
    /// shadow an upstream server's of the same name.
    fn owns(&self, name: &str) -> bool {
        self.all_tools().iter().any(|t| t.name == name) || self.registry.get(name).is_some()
    }

    /// What the server offering the tool `name` listed of it beyond rmcp's `Tool`.
    pub fn tool_extras(&self, era: super::Era, name: &str) -> Option<JsonObject> {
        if self.owns(name) {
            return None;
        }
        self.servers.tool_extras(era, name)
    }

    /// Whether any tool has something rmcp's `Tool` cannot hold.
    pub fn any_tool_extras(&self) -> bool {
        self.servers.any_extras()
    }

    /// Whether tasks can be had here at all: only upstream servers run them.
    pub fn runs_tasks(&self) -> bool {
        self.servers.any()
    }
}
