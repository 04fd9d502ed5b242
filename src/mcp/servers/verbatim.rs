//! Requests forwarded as the server will read them and answers kept as it wrote them: rmcp's
//! typed model drops what it does not know (a tool's `execution`, 2025-11-25 tasks), so these
//! travel as JSON beside it.
//!
//! A request goes out as rmcp's `CustomRequest` and is marked by [`Tapped`] on its way to the
//! wire; the transports hand [`Tap::heard`] every message before rmcp parses it, and the answer
//! to a marked request is kept whole for its caller. A task's status notification is passed to
//! the session's client the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, CustomRequest, JsonObject, JsonRpcMessage, RequestId,
    ServerJsonRpcMessage,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use rmcp::transport::Transport;
use rmcp::{Peer, RoleClient};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::lock;
use super::relay::Relay;

/// The notification a 2025-11-25 server sends when a task's status changes.
pub const TASK_STATUS: &str = "notifications/tasks/status";

/// The answers of one connection that their callers want whole.
pub struct Tap {
    slots: Mutex<HashMap<RequestId, Option<Bytes>>>,
    /// How many slots exist: while none does, messages are not even looked at.
    marked: AtomicUsize,
    relay: Arc<Relay>,
}

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
            relay,
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
        let status = memchr::memmem::find(message, TASK_STATUS.as_bytes()).is_some();
        if self.marked.load(Ordering::Acquire) == 0 && !status {
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
            (None, Some(TASK_STATUS)) => {
                let params = peek.params.and_then(|p| serde_json::from_str(p.get()).ok());
                self.relay.notify(TASK_STATUS, params);
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
        if let JsonRpcMessage::Request(request) = &item
            && matches!(request.request, ClientRequest::CustomRequest(_))
        {
            self.tap.mark(request.id.clone());
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
