//! Requests forwarded as the server will read them and answers kept as it wrote them: rmcp's
//! typed model drops what it does not know (a tool's `execution`, 2025-11-25 tasks), so these
//! travel as JSON beside it.
//!
//! A request goes out as rmcp's `CustomRequest` and is marked by [`Tapped`] on its way to the
//! wire; the transports hand [`Tap::heard`] every message before rmcp parses it, and the answer
//! to a marked request is kept whole for its caller. A task's status notification (and an
//! elicitation's completion) is passed to the session's client the same way, and a tool call's progress to the client that made the
//! call, under the client's own token (rmcp gives every request a token of its own).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CallToolResult,
    CancelledNotification, CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification,
    ClientRequest, CustomRequest, GetMeta, JsonObject, JsonRpcMessage, ProgressNotificationParam,
    ProgressToken, RequestId, RequestMetaObject, ServerJsonRpcMessage, ServerResult,
};
// MCP logging: SEP-2577 deprecates it, but both revisions still carry it.
#[allow(deprecated)]
use rmcp::model::LoggingMessageNotificationParam;
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::transport::Transport;
use rmcp::{Peer, RoleClient, RoleServer};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::expected::{Claim, Expected};
use super::lock;
use super::relay::Relay;

/// The notification a 2025-11-25 server sends when a task's status changes.
const TASK_STATUS: &str = "notifications/tasks/status";
/// The notification a server sends when an elicitation in URL mode was completed out of band.
const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";
/// The notification a server sends when a resource its client subscribed to changed.
const RESOURCE_UPDATED: &str = "notifications/resources/updated";

/// The answers of one connection that their callers want whole, and where the progress of its
/// calls goes.
pub struct Tap {
    slots: Mutex<HashMap<RequestId, Option<Bytes>>>,
    /// How many slots exist: while none does, messages are not even looked at.
    marked: AtomicUsize,
    /// The calls in flight, by the progress token rmcp gave each: their caller and its token.
    progress: Expected<ProgressToken, Value, (Peer<RoleServer>, ProgressToken)>,
    /// On a stateless connection, shared by every client: the calls in flight whose log
    /// messages go to their own caller, by request id (their response streams say whose).
    logs: Option<Expected<RequestId, LogParams, Peer<RoleServer>>>,
    /// URIs the session's client subscribed to by an alias: the server's URI → the alias.
    renamed: Mutex<HashMap<String, String>>,
    relay: Arc<Relay>,
}

#[allow(deprecated)]
type LogParams = LoggingMessageNotificationParam;

/// A log message.
const LOG: &str = "notifications/message";

/// A notification of a request's progress.
const PROGRESS: &str = "notifications/progress";

/// What a message is, read without its body.
#[derive(Deserialize)]
struct Peek<'a> {
    id: Option<RequestId>,
    #[serde(borrow)]
    method: Option<&'a str>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

impl Tap {
    pub fn new(relay: Arc<Relay>) -> Tap {
        Tap {
            slots: Mutex::default(),
            marked: AtomicUsize::new(0),
            progress: Expected::default(),
            logs: None,
            renamed: Mutex::default(),
            relay,
        }
    }

    /// Updates of the server's `original` URI reach the client as `asked` (while `on`).
    pub fn rename_updates(&self, original: &str, asked: &str, on: bool) {
        let mut renamed = lock(&self.renamed);
        if on && original != asked {
            renamed.insert(original.to_owned(), asked.to_owned());
        } else if !on {
            renamed.remove(original);
        }
    }

    /// A tap for a connection every client shares (a stateless server's): each call's log
    /// messages go to its own caller.
    pub fn per_request(relay: Arc<Relay>) -> Tap {
        Tap {
            logs: Some(Expected::default()),
            ..Tap::new(relay)
        }
    }

    /// Keeps the log messages of the call `id` until [`Tap::logs_to`] says where they go.
    fn expect_logs(&self, id: RequestId) {
        if let Some(logs) = &self.logs {
            logs.expect(id);
        }
    }

    /// Sends the log messages of the call `id` (and those heard already) to `client`, until
    /// the guard is dropped.
    fn logs_to(&self, id: RequestId, client: &Peer<RoleServer>) -> Option<LogClaim<'_>> {
        let logs = self.logs.as_ref()?;
        let deliver = |client: &Peer<RoleServer>, params| self.relay.log_to(client, params);
        Some(logs.route(id, Some(client.clone()), deliver))
    }

    #[allow(deprecated)]
    fn heard_log(&self, on: &RequestId, params: Option<&RawValue>) {
        let Some(logs) = &self.logs else { return };
        let Some(Ok(params)) =
            params.map(|p| serde_json::from_str::<LoggingMessageNotificationParam>(p.get()))
        else {
            return;
        };
        logs.heard(on, params, |client, params| {
            self.relay.log_to(client, params)
        });
    }

    /// Keeps the progress of the call given `token` until [`Tap::progress_to`] says where it goes.
    fn expect_progress(&self, token: ProgressToken) {
        self.progress.expect(token);
    }

    /// Sends the progress of the call given `token` (and what came of it already) to `client`
    /// under the client's own token, or nowhere; until the guard is dropped.
    fn progress_to(
        &self,
        token: ProgressToken,
        client: Option<(Peer<RoleServer>, ProgressToken)>,
    ) -> ProgressClaim<'_> {
        let deliver = |(client, theirs): &(Peer<RoleServer>, ProgressToken), params| {
            self.relay_progress(client, theirs, params);
        };
        self.progress.route(token, client, deliver)
    }

    fn relay_progress(&self, client: &Peer<RoleServer>, theirs: &ProgressToken, params: Value) {
        match serde_json::from_value::<ProgressNotificationParam>(params) {
            Ok(mut params) => {
                params.progress_token = theirs.clone();
                self.relay.progress_to(client, params);
            }
            Err(error) => tracing::debug!(%error, "progress that is not MCP's is not passed on"),
        }
    }

    fn heard_progress(&self, params: Option<&RawValue>) {
        let Some(Ok(params)) = params.map(|p| serde_json::from_str::<Value>(p.get())) else {
            return;
        };
        let token = params.get("progressToken").cloned();
        let Some(Ok(token)) = token.map(serde_json::from_value::<ProgressToken>) else {
            return;
        };
        let deliver = |(client, theirs): &(Peer<RoleServer>, ProgressToken), params| {
            self.relay_progress(client, theirs, params);
        };
        self.progress.heard(&token, params, deliver);
    }

    /// An update's URI as its client subscribed to it.
    fn rename(&self, params: Option<&mut Value>) {
        let Some(Value::String(uri)) = params.and_then(|p| p.get_mut("uri")) else {
            return;
        };
        if let Some(asked) = lock(&self.renamed).get(uri.as_str()) {
            uri.clone_from(asked);
        }
    }

    /// Keeps the answer to `id` when it comes.
    fn mark(&self, id: RequestId) {
        if let std::collections::hash_map::Entry::Vacant(slot) = lock(&self.slots).entry(id) {
            slot.insert(None);
            self.marked.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The answer to `id` as the server wrote it, if it came; the slot is gone either way.
    fn take(&self, id: &RequestId) -> Option<Bytes> {
        let taken = lock(&self.slots).remove(id);
        if taken.is_some() {
            self.marked.fetch_sub(1, Ordering::AcqRel);
        }
        taken.flatten()
    }

    /// One message from the server, before rmcp reads it.
    pub fn heard(&self, message: &[u8]) {
        self.heard_on(None, message);
    }

    /// [`Tap::heard`] for a message on the response stream of the request `on`.
    pub fn heard_on(&self, on: Option<&RequestId>, message: &[u8]) {
        // Every method passed on is a notification: one pass over the message (a large result
        // is scanned once, not once per method) says whether it may be one.
        let awaited = self.marked.load(Ordering::Acquire) > 0;
        if !awaited && memchr::memmem::find(message, b"\"notifications/").is_none() {
            return;
        }
        let Ok(peek) = serde_json::from_slice::<Peek>(message) else {
            return;
        };
        match (peek.id, peek.method) {
            (Some(id), None) if peek.result.is_some() => {
                if let Some(slot) = lock(&self.slots).get_mut(&id) {
                    *slot = Some(Bytes::copy_from_slice(message));
                }
            }
            (None, Some(method @ (TASK_STATUS | ELICITATION_COMPLETE | RESOURCE_UPDATED))) => {
                let mut params = peek.params.and_then(|p| serde_json::from_str(p.get()).ok());
                if method == RESOURCE_UPDATED {
                    self.rename(params.as_mut());
                }
                self.relay.notify(method, params);
            }
            (None, Some(PROGRESS)) => self.heard_progress(peek.params),
            (None, Some(LOG)) => {
                if let Some(on) = on {
                    self.heard_log(on, peek.params);
                }
            }
            _ => {}
        }
    }
}

/// What a tap waiting for the answer to `id` keeps of `message`: the whole message if it is
/// that answer (for the fuzz target).
pub fn kept_for(id: i64, message: &[u8]) -> Option<Bytes> {
    let id = RequestId::Number(id);
    let tap = Tap::new(Arc::default());
    tap.mark(id.clone());
    tap.heard(message);
    tap.take(&id)
}

/// Sends `method` with `params` exactly as given and returns the server's `result` whole.
pub async fn request(
    peer: &Peer<RoleClient>,
    tap: &Tap,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ServiceError> {
    let request = ClientRequest::CustomRequest(CustomRequest::new(method, params));
    let options = PeerRequestOptions::no_options();
    let handle = peer.send_cancellable_request(request, options).await?;
    let id = handle.id.clone();
    // Marked here too, in case the caller gives up before the transport sent it: the slot
    // then goes with this guard.
    tap.mark(id.clone());
    let slot = Slot { tap, id };
    let typed = handle.await_response().await?;
    match slot.tap.take(&slot.id) {
        Some(whole) => result_of(&whole).map_err(|_| ServiceError::UnexpectedResponse),
        // Not seen whole (a transport that does not tap): rmcp's reading is the best there is.
        None => serde_json::to_value(typed).map_err(|_| ServiceError::UnexpectedResponse),
    }
}

/// Every tool the server lists, each object as it wrote it (every page).
pub async fn tools(peer: &Peer<RoleClient>, tap: &Tap) -> Result<Vec<JsonObject>, ServiceError> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let params = cursor.take().map(|cursor| json!({ "cursor": cursor }));
        let mut page = request(peer, tap, "tools/list", params).await?;
        if let Some(Value::Array(listed)) = page.get_mut("tools").map(Value::take) {
            tools.extend(listed.into_iter().filter_map(|tool| match tool {
                Value::Object(tool) => Some(tool),
                _ => None,
            }));
        }
        match page.get("nextCursor").and_then(Value::as_str) {
            // A server repeating its cursor would be listed forever.
            Some(next) if !next.is_empty() && tools.len() < MAX_TOOLS => {
                cursor = Some(next.to_owned());
            }
            _ => return Ok(tools),
        }
    }
}

/// More tools than any server offers; a server paging past it is cut off there.
const MAX_TOOLS: usize = 100_000;

/// What `whole` holds that `typed` (the same object after rmcp read and wrote it) lost: keys
/// it dropped, and inside an object both have, what that object lost.
pub fn lost(whole: &JsonObject, typed: &JsonObject) -> JsonObject {
    let mut lost = JsonObject::new();
    for (key, value) in whole {
        match (value, typed.get(key)) {
            (_, None) => {
                lost.insert(key.clone(), value.clone());
            }
            (Value::Object(whole), Some(Value::Object(typed))) => {
                let inner = self::lost(whole, typed);
                if !inner.is_empty() {
                    lost.insert(key.clone(), Value::Object(inner));
                }
            }
            _ => {}
        }
    }
    lost
}

/// Puts back into `object` what [`lost`] found missing; what `object` holds wins.
pub fn restore_lost(object: &mut JsonObject, lost: &JsonObject) {
    for (key, value) in lost {
        match (object.get_mut(key), value) {
            (None, _) => {
                object.insert(key.clone(), value.clone());
            }
            (Some(Value::Object(object)), Value::Object(lost)) => restore_lost(object, lost),
            _ => {}
        }
    }
}

/// Calls `params`' tool, its progress going to `client` under the client's own token (if it
/// gave one); cancelled upstream if dropped before the answer. The answer comes after the
/// progress heard before it has been passed on.
pub async fn call_tool(
    peer: &Peer<RoleClient>,
    tap: &Tap,
    mut params: CallToolRequestParams,
    client: &Peer<RoleServer>,
    stateless: bool,
) -> Result<CallToolResponse, ServiceError> {
    let theirs = params
        .meta
        .as_ref()
        .and_then(|meta| meta.get_progress_token());
    let mut options = PeerRequestOptions::no_options();
    // What the client said of itself for this one request (its capabilities, its log level)
    // goes to a stateless server in place of what the gateway's connection declared; a
    // session-era server was told at its session's start.
    if let Some(meta) = params.meta.as_mut() {
        let mut envelope = RequestMetaObject::default();
        for key in ENVELOPE {
            if let Some(value) = meta.0.0.remove(key) {
                envelope.0.0.insert(key.to_owned(), value);
            }
        }
        if stateless && !envelope.0.is_empty() {
            options.meta = Some(envelope);
        }
    }
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = peer.send_cancellable_request(request, options).await?;
    let _logging = tap.logs_to(handle.id.clone(), client);
    let mut abandoned = Abandoned(Some((peer.clone(), handle.id.clone())));
    let to = theirs.map(|theirs| (client.clone(), theirs));
    let following = tap.progress_to(handle.progress_token.clone(), to);
    let answer = handle.await_response().await;
    abandoned.0 = None;
    tap.relay.flush().await;
    drop(following);
    match answer? {
        ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
        ServerResult::InputRequiredResult(result) => Ok(CallToolResponse::InputRequired(result)),
        ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
        // An empty object: a result without content, as rmcp reads one.
        ServerResult::EmptyResult(_) => Ok(CallToolResponse::Complete(CallToolResult::success(
            Vec::new(),
        ))),
        _ => Err(ServiceError::UnexpectedResponse),
    }
}

/// The keys of a 2026-07-28 client's `_meta` that describe it for one request and are passed
/// on to a stateless server.
pub const ENVELOPE: [&str; 2] = [
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/logLevel",
];

/// Tells the server a call was abandoned (its client cancelled it or went away), unless the
/// answer came.
struct Abandoned(Option<(Peer<RoleClient>, RequestId)>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some((peer, id)) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let reason = Some("the client cancelled the call".to_owned());
        let params = CancelledNotificationParam::new(Some(id), reason);
        let cancelled =
            ClientNotification::CancelledNotification(CancelledNotification::new(params));
        runtime.spawn(async move {
            let _ = peer.send_notification(cancelled).await;
        });
    }
}

/// A call's claim on its log messages (a stateless connection's).
type LogClaim<'a> = Claim<'a, RequestId, LogParams, Peer<RoleServer>>;

/// A call's claim on its progress.
type ProgressClaim<'a> = Claim<'a, ProgressToken, Value, (Peer<RoleServer>, ProgressToken)>;

/// Removes a request's slot when its caller is done with it, answered or not.
struct Slot<'a> {
    tap: &'a Tap,
    id: RequestId,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.tap.take(&self.id);
    }
}

fn result_of(message: &[u8]) -> serde_json::Result<Value> {
    #[derive(Deserialize)]
    struct Answer {
        result: Value,
    }
    serde_json::from_slice::<Answer>(message).map(|answer| answer.result)
}

/// A transport whose outgoing `CustomRequest`s are marked in the tap before they leave.
pub struct Tapped<T> {
    pub inner: T,
    pub tap: Arc<Tap>,
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Tapped<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let JsonRpcMessage::Request(request) = &item {
            match &request.request {
                ClientRequest::CustomRequest(_) => self.tap.mark(request.id.clone()),
                call @ ClientRequest::CallToolRequest(_) => {
                    if let Some(token) = call.get_meta().get_progress_token() {
                        self.tap.expect_progress(token);
                    }
                    self.tap.expect_logs(request.id.clone());
                }
                _ => {}
            }
        }
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unclaimed_expectations_are_bounded() {
        let tap = Tap::per_request(Arc::default());
        for n in 0..8192 {
            tap.expect_logs(RequestId::Number(n));
            tap.expect_progress(ProgressToken(RequestId::Number(n)));
        }
        assert!(tap.logs.as_ref().unwrap().len() <= 4096);
        assert!(tap.progress.len() <= 4096);
    }

    #[test]
    fn a_marked_answer_is_kept_whole_and_others_are_not() {
        let tap = Tap::new(Arc::default());
        tap.heard(br#"{"jsonrpc":"2.0","id":1,"result":{"x":1}}"#);
        assert_eq!(tap.take(&RequestId::Number(1)), None);
        tap.mark(RequestId::Number(2));
        let answer = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a","execution":{"taskSupport":"required"}}]}}"#;
        tap.heard(answer);
        let whole = tap.take(&RequestId::Number(2)).unwrap();
        let result = result_of(&whole).unwrap();
        assert_eq!(result["tools"][0]["execution"]["taskSupport"], "required");
        assert_eq!(tap.marked.load(Ordering::Acquire), 0);
    }

    #[test]
    fn what_the_typed_model_lost_is_found_and_put_back_under_what_the_gateway_changed() {
        let whole = json!({"name": "a", "execution": {"taskSupport": "optional"},
            "annotations": {"readOnlyHint": true, "newHint": 1}, "title": "A"});
        let typed = json!({"name": "a", "annotations": {"readOnlyHint": true}, "title": "A"});
        let (Value::Object(whole), Value::Object(typed)) = (whole, typed) else {
            unreachable!()
        };
        let lost = lost(&whole, &typed);
        assert_eq!(
            Value::Object(lost.clone()),
            json!({"execution": {"taskSupport": "optional"}, "annotations": {"newHint": 1}})
        );
        let mut shown = typed.clone();
        shown.insert("name".into(), "up__a".into());
        restore_lost(&mut shown, &lost);
        assert_eq!(shown["name"], "up__a");
        assert_eq!(
            shown["annotations"],
            json!({"readOnlyHint": true, "newHint": 1})
        );
        assert_eq!(shown["execution"]["taskSupport"], "optional");
    }

    #[test]
    fn an_error_or_a_request_with_a_marked_id_is_not_taken_for_its_answer() {
        let tap = Tap::new(Arc::default());
        tap.mark(RequestId::Number(3));
        tap.heard(br#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
        tap.heard(br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"no"}}"#);
        tap.heard(b"not json");
        assert_eq!(tap.take(&RequestId::Number(3)), None);
    }
}
