//! 2025-11-25 tasks of upstream tools: a task-augmented call forwarded with its `task` to the
//! tool's server on the client's own upstream session, and the client's `tasks/*` requests sent
//! to the server that runs each task.
//!
//! rmcp's typed model speaks the later tasks extension (SEP-2663) only, so these requests and
//! their answers travel whole ([`super::verbatim`]); the status notifications a server sends
//! reach the client through its session's relay.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::{ErrorData, Peer, RoleServer};
use serde_json::{Value, json};

use super::lock;
use super::verbatim;
use super::{Holder, Live, McpServers, Server};

/// How many tasks of one client are remembered; the oldest is forgotten first.
const PER_HOLDER: usize = 1024;

/// Which server runs each task a client started, by the server's name.
#[derive(Default)]
pub struct Tasks(Mutex<HashMap<Holder, VecDeque<(String, String)>>>);

impl Tasks {
    fn started(&self, holder: &Holder, task: String, server: &str) {
        let mut all = lock(&self.0);
        let mine = all.entry(holder.clone()).or_default();
        mine.retain(|(id, _)| *id != task);
        if mine.len() == PER_HOLDER {
            mine.pop_front();
        }
        mine.push_back((task, server.to_owned()));
    }

    fn server_of(&self, holder: &Holder, task: &str) -> Option<String> {
        let all = lock(&self.0);
        let mine = all.get(holder)?;
        mine.iter()
            .find(|(id, _)| id == task)
            .map(|(_, s)| s.clone())
    }

    /// The servers that run some task of `holder`, each once.
    fn servers_of(&self, holder: &Holder) -> Vec<String> {
        let all = lock(&self.0);
        let mut servers: Vec<String> = Vec::new();
        for (_, server) in all.get(holder).into_iter().flatten() {
            if !servers.contains(server) {
                servers.push(server.clone());
            }
        }
        servers
    }

    pub fn forget(&self, holder: &Holder) {
        lock(&self.0).remove(holder);
    }
}

impl McpServers {
    /// Forwards a task-augmented `tools/call` (its params as the client sent them, `task`
    /// included) to the tool's server; `None` when no server offers the tool.
    pub async fn call_as_task(
        &self,
        holder: &Holder,
        downstream: &Peer<RoleServer>,
        mut params: serde_json::Map<String, Value>,
    ) -> Option<Result<Value, ErrorData>> {
        let name = params.get("name")?.as_str()?.to_owned();
        let (server, live) = self.owner(holder.era(), &name)?;
        let Some(live) = live else {
            return Some(Err(server.unavailable_error()));
        };
        let prefix = server.config.tool_prefix();
        let tool = name.strip_prefix(prefix.as_ref())?.to_owned();
        params.insert("name".to_owned(), tool.into());
        let params = Some(Value::Object(params));
        let answer = self
            .whole(&server, &live, (holder, downstream), "tools/call", params)
            .await;
        if let Ok(answer) = &answer
            && let Some(task) = answer.pointer("/task/taskId").and_then(Value::as_str)
        {
            self.tasks
                .started(holder, task.to_owned(), &server.config.name);
        }
        Some(answer)
    }

    /// `tasks/get`, `tasks/result`, `tasks/cancel` (sent to the server running the task) or
    /// `tasks/list` (the client's tasks on every server that runs one, in one list).
    pub async fn task_request(
        &self,
        holder: &Holder,
        downstream: &Peer<RoleServer>,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ErrorData> {
        if method == "tasks/list" {
            return self.list_tasks(holder, downstream).await;
        }
        let task = params.as_ref().and_then(|p| p.get("taskId")?.as_str());
        let not_found =
            || ErrorData::invalid_params("Failed to retrieve task: Task not found", None);
        let server = task.and_then(|task| self.tasks.server_of(holder, task));
        let (server, live) = server.and_then(|s| self.up(&s)).ok_or_else(not_found)?;
        self.whole(&server, &live, (holder, downstream), method, params)
            .await
    }

    async fn list_tasks(
        &self,
        holder: &Holder,
        downstream: &Peer<RoleServer>,
    ) -> Result<Value, ErrorData> {
        let mut tasks = Vec::new();
        for name in self.tasks.servers_of(holder) {
            let Some((server, live)) = self.up(&name) else {
                continue;
            };
            let listed = self.whole(&server, &live, (holder, downstream), "tasks/list", None);
            if let Some(Value::Array(more)) = listed.await?.get_mut("tasks").map(Value::take) {
                tasks.extend(more);
            }
        }
        Ok(json!({ "tasks": tasks }))
    }

    /// The server named `name` and its connection, if it is up.
    fn up(&self, name: &str) -> Option<(Arc<Server>, Live)> {
        let all = self.all();
        let server = all.iter().find(|s| s.config.name == name)?;
        Some((server.clone(), server.live()?))
    }

    /// Sends `method` on `holder`'s upstream session of `server` and returns its result whole.
    async fn whole(
        &self,
        server: &Server,
        live: &Live,
        (holder, downstream): (&Holder, &Peer<RoleServer>),
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ErrorData> {
        let upstream = match server
            .session(live, (holder, downstream), &self.client)
            .await
        {
            Ok(upstream) => upstream,
            Err(_) => return Err(server.unavailable_error()),
        };
        let sent = verbatim::request(&upstream.peer, &upstream.tap, method, params);
        let answer = Box::pin(server.within_call_timeout(sent)).await;
        server.answered(holder, answer, method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_found_by_its_holder_only_and_the_oldest_goes_first() {
        let tasks = Tasks::default();
        let (a, b) = (Holder::Session("a".into()), Holder::Key(Some("k".into())));
        tasks.started(&a, "t1".into(), "one");
        tasks.started(&a, "t2".into(), "two");
        assert_eq!(tasks.server_of(&a, "t2").as_deref(), Some("two"));
        assert_eq!(tasks.server_of(&b, "t2"), None);
        assert_eq!(tasks.servers_of(&a), ["one", "two"]);
        for n in 0..PER_HOLDER {
            tasks.started(&a, format!("n{n}"), "three");
        }
        assert_eq!(tasks.server_of(&a, "t1"), None);
        tasks.forget(&a);
        assert_eq!(tasks.server_of(&a, "n5"), None);
    }
}
