//! Canonical stream chunks as the Responses API's events: `response.created` and
//! `response.in_progress`, then for each output item `response.output_item.added`, its parts and
//! deltas (`response.output_text.delta`, `response.function_call_arguments.delta`,
//! `response.reasoning_summary_text.delta`), their `.done` events and
//! `response.output_item.done`, then `response.completed` (or `response.incomplete`). Every
//! event carries its `sequence_number`.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::answer::{
    Echo, Turn, call_item, incomplete, message_item, message_parts, reasoning_item, status,
    text_part,
};
use crate::anthropic::REASONING_FIELD;
use crate::chat::{ChatChunk, FinishReason, Message, Usage};

/// The item being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Reasoning,
    Message,
    /// A function call, by its index in the turn's calls.
    Call(usize),
}

/// Writes one response's events, chunk by chunk, and keeps what it said.
#[derive(Debug)]
pub struct EventWriter {
    echo: Echo,
    model: String,
    sequence: u64,
    started: bool,
    turn: Turn,
    /// Output items already done.
    items: Vec<Value>,
    open: Option<Open>,
    /// The turn's call index of each tool call, by its OpenAI index in the stream.
    calls: HashMap<u32, usize>,
    stop: Option<FinishReason>,
    usage: Option<Usage>,
    finished: Option<Value>,
    /// The ids every delta of the message and of the reasoning names, made once.
    message_id: String,
    reasoning_id: String,
}

impl EventWriter {
    pub fn new(echo: Echo) -> Self {
        EventWriter {
            message_id: echo.message_id(),
            reasoning_id: echo.reasoning_id(),
            echo,
            model: String::new(),
            sequence: 0,
            started: false,
            turn: Turn::default(),
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            stop: None,
            usage: None,
            finished: None,
        }
    }

    /// Writes the events one chunk adds (its first choice's).
    pub fn chunk(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) {
        if !self.started {
            chunk.model.clone_into(&mut self.model);
            self.start(out);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return;
        };
        let delta = &choice.delta;
        if let Some(Value::String(text)) = delta.extra.get(REASONING_FIELD)
            && !text.is_empty()
        {
            self.reasoning(text, out);
        }
        for text in [&delta.content, &delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                self.text(text, out);
            }
        }
        for call in delta.tool_calls.iter().flatten() {
            let function = call.function.as_ref();
            if let Some(id) = &call.id {
                let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
                self.open_call(call.index, id, &name, out);
            }
            let arguments = function.and_then(|f| f.arguments.as_deref()).unwrap_or("");
            if let (Some(&at), false) = (self.calls.get(&call.index), arguments.is_empty()) {
                self.arguments(at, arguments, out);
            }
        }
        if let Some(reason) = &choice.finish_reason {
            self.stop = Some(reason.clone());
        }
    }

    /// Closes the response: the open item, then `response.completed` (or `.incomplete`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished.is_some() {
            return;
        }
        if !self.started {
            self.start(out);
        }
        self.close(out);
        let reason = self.stop.as_ref();
        let status = status(reason);
        let mut response = self.object(status);
        response["incomplete_details"] = incomplete(reason);
        let name = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.event(
            out,
            name,
            WithResponse {
                response: &response,
            },
        );
        self.finished = Some(response);
    }

    /// Ends the stream with an `error` event and `response.failed`.
    pub fn error(&mut self, code: &str, message: &str, out: &mut Vec<u8>) {
        if !self.started {
            self.start(out);
        }
        self.event(
            out,
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        let mut response = self.object("failed");
        response["error"] = json!({"code": code, "message": message});
        self.event(
            out,
            "response.failed",
            WithResponse {
                response: &response,
            },
        );
    }

    /// The completed response object and the assistant turn, once the stream has finished.
    pub fn finished(&self) -> Option<(&Value, Message)> {
        self.finished.as_ref().map(|r| (r, self.turn.assistant()))
    }

    fn object(&self, status: &str) -> Value {
        self.echo
            .object(status, &self.model, self.items.clone(), self.usage.as_ref())
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let response = self
            .echo
            .object("in_progress", &self.model, Vec::new(), None);
        self.event(
            out,
            "response.created",
            WithResponse {
                response: &response,
            },
        );
        self.event(
            out,
            "response.in_progress",
            WithResponse {
                response: &response,
            },
        );
    }

    fn output_index(&self) -> usize {
        self.items.len()
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        let id = self.reasoning_id.clone();
        if self.open != Some(Open::Reasoning) {
            self.close(out);
            self.open = Some(Open::Reasoning);
            self.turn.reasoning = Some(String::new());
            let index = self.output_index();
            let item = reasoning_item(&id, "");
            self.event(
                out,
                "response.output_item.added",
                WithItem {
                    output_index: index,
                    item: &item,
                },
            );
            self.event(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index,
                "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
            );
        }
        if let Some(so_far) = &mut self.turn.reasoning {
            so_far.push_str(text);
        }
        let delta = Delta {
            item_id: &id,
            output_index: self.output_index(),
            content_index: None,
            summary_index: Some(0),
            delta: text,
            logprobs: None,
        };
        self.event(out, "response.reasoning_summary_text.delta", delta);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        let id = self.message_id.clone();
        if self.open != Some(Open::Message) {
            // The open item joins the output first: the message comes after it.
            self.close(out);
            self.open = Some(Open::Message);
            self.turn.text = Some(String::new());
            let index = self.output_index();
            let item = message_item(&id, "in_progress", Vec::new());
            self.event(
                out,
                "response.output_item.added",
                WithItem {
                    output_index: index,
                    item: &item,
                },
            );
            self.event(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": index,
                "content_index": 0, "part": text_part("")}),
            );
        }
        if let Some(so_far) = &mut self.turn.text {
            so_far.push_str(text);
        }
        let delta = Delta {
            item_id: &id,
            output_index: self.output_index(),
            content_index: Some(0),
            summary_index: None,
            delta: text,
            logprobs: Some([]),
        };
        self.event(out, "response.output_text.delta", delta);
    }

    fn open_call(&mut self, stream_index: u32, call_id: &str, name: &str, out: &mut Vec<u8>) {
        self.close(out);
        let at = self.turn.calls.len();
        self.turn
            .calls
            .push((call_id.to_owned(), name.to_owned(), String::new()));
        self.calls.insert(stream_index, at);
        self.open = Some(Open::Call(at));
        let item = call_item(&self.echo.call_id(at), call_id, name, "", "in_progress");
        let index = self.output_index();
        self.event(
            out,
            "response.output_item.added",
            WithItem {
                output_index: index,
                item: &item,
            },
        );
    }

    fn arguments(&mut self, at: usize, piece: &str, out: &mut Vec<u8>) {
        if let Some(call) = self.turn.calls.get_mut(at) {
            call.2.push_str(piece);
        }
        // A call's pieces after another item opened still belong to it, at its own index.
        let index = match self.open {
            Some(Open::Call(open)) if open == at => self.output_index(),
            _ => self.done_index(at),
        };
        let id = self.echo.call_id(at);
        let delta = Delta {
            item_id: &id,
            output_index: index,
            content_index: None,
            summary_index: None,
            delta: piece,
            logprobs: None,
        };
        self.event(out, "response.function_call_arguments.delta", delta);
    }

    /// Where a call that is already done sits in the output.
    fn done_index(&self, at: usize) -> usize {
        let id = json!(self.echo.call_id(at));
        self.items
            .iter()
            .position(|i| i["id"] == id)
            .unwrap_or(self.items.len())
    }

    /// Closes the open item: its `.done` events, and it joins the output.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let index = self.output_index();
        let item = match open {
            Open::Reasoning => {
                let id = self.echo.reasoning_id();
                let text = self.turn.reasoning.clone().unwrap_or_default();
                self.event(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id,
                    "output_index": index, "summary_index": 0, "text": text}),
                );
                self.event(out, "response.reasoning_summary_part.done", json!({"item_id": id,
                    "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}}));
                reasoning_item(&id, &text)
            }
            Open::Message => {
                let id = self.echo.message_id();
                let text = self.turn.text.clone().unwrap_or_default();
                self.event(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index,
                    "content_index": 0, "text": text, "logprobs": []}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index,
                    "content_index": 0, "part": text_part(&text)}),
                );
                message_item(&id, "completed", message_parts(Some(&text), None))
            }
            Open::Call(at) => {
                let (call_id, name, arguments) = self.turn.calls[at].clone();
                let id = self.echo.call_id(at);
                self.event(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id,
                    "output_index": index, "arguments": arguments}),
                );
                call_item(&id, &call_id, &name, &arguments, "completed")
            }
        };
        self.event(
            out,
            "response.output_item.done",
            WithItem {
                output_index: index,
                item: &item,
            },
        );
        self.items.push(item);
    }

    /// Writes one event: its name, then its data with `type` and `sequence_number` first.
    /// Written straight from borrowed fields: a delta costs no JSON tree.
    fn event<T: Serialize>(&mut self, out: &mut Vec<u8>, name: &str, body: T) {
        let event = Event {
            kind: name,
            sequence_number: self.sequence,
            body,
        };
        self.sequence += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // Strings, numbers and JSON values only: serializing cannot fail.
        let _ = serde_json::to_writer(&mut *out, &event);
        out.extend_from_slice(b"\n\n");
    }
}

#[derive(Serialize)]
struct Event<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct WithResponse<'a> {
    response: &'a Value,
}

#[derive(Serialize)]
struct WithItem<'a> {
    output_index: usize,
    item: &'a Value,
}

/// A delta of text, of a summary or of a call's arguments.
#[derive(Serialize)]
struct Delta<'a> {
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[u8; 0]>,
}
