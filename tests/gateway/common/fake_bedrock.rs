//! A fake AWS Bedrock runtime. It checks each request as Bedrock would (path, SigV4 signature
//! recomputed from the received headers, JSON body, turn alternation, tool result ids) and answers
//! Converse JSON or ConverseStream event-stream frames; the model id picks a behaviour.
//!
//! Behaviours (the model id up to any `:`): `ok` (text, or a call of the first tool when tools are
//! offered), `parallel` (two calls of the first tool), `error-<status>` (Bedrock's error body,
//! echoing the secret key), `cut` (stream aborted mid-frame), `unknown-event` (an event type the
//! adapter does not know, then a normal finish), `refusal` (a guardrail intervention).
//! A Claude model id (`anthropic.…`) also takes InvokeModel and InvokeModelWithResponseStream
//! with an Anthropic Messages body, answered as Anthropic's message or its events, each
//! wrapped in a base64 `chunk` event as Bedrock does.

use super::fake::{Received, Recorder};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

/// The access key id the fake expects.
pub const KEY: &str = "AKIAFAKEBEDROCK12345";
/// The secret access key the fake verifies signatures with.
pub const SECRET: &str = "fake/bedrock/secret/key/0123456789abcdefghij";
/// The region the fake serves.
pub const REGION: &str = "us-east-1";

/// A running fake.
#[derive(Clone)]
pub struct FakeBedrock {
    pub addr: SocketAddr,
    received: Recorder,
}

impl FakeBedrock {
    pub async fn start() -> FakeBedrock {
        let received = Recorder::default();
        let app = axum::Router::new()
            .route("/model/{model}/{action}", post(invoke))
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeBedrock { addr, received }
    }

    /// The `base_url` to configure: the runtime's root, as the AWS SDKs' endpoint.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }

    /// A `providers:` entry for this fake, in YAML flow style.
    pub fn provider_yaml(&self) -> String {
        format!(
            "{{ kind: bedrock, region: {REGION}, access_key_id: {KEY}, secret_access_key: \"{SECRET}\", base_url: \"{}\" }}",
            self.base_url()
        )
    }
}

/// Bedrock's error answer: `{"message"}` with the exception in `x-amzn-errortype`.
fn aws_error(status: StatusCode, exception: &str, message: &str) -> Response {
    let error_type = format!("{exception}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    (
        status,
        [("x-amzn-errortype", error_type)],
        Json(json!({ "message": message })),
    )
        .into_response()
}

fn invalid(message: &str) -> Response {
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

async fn invoke(
    State(received): State<Recorder>,
    Path((model, action)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    received.record(Received {
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body: json.clone(),
        raw: String::from_utf8_lossy(&body).into_owned(),
        ..Received::default()
    });
    if let Err(message) = check_signature(&headers, uri.path(), &body) {
        return aws_error(StatusCode::FORBIDDEN, "AccessDeniedException", &message);
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/json")
    {
        return invalid("content-type must be application/json");
    }
    let behaviour = model.split(':').next().unwrap_or_default().to_owned();
    if let Some(status) = behaviour.strip_prefix("error-") {
        let status = StatusCode::from_bytes(status.as_bytes()).unwrap_or(StatusCode::BAD_REQUEST);
        let message = format!("fake failure {} for secret {SECRET}", status.as_u16());
        return aws_error(status, "FakeException", &message);
    }
    match action.as_str() {
        "converse" | "converse-stream" => {
            if let Err(message) = check_converse(&json) {
                return invalid(&message);
            }
            let plan = answer_plan(&behaviour, &json);
            if action == "converse" {
                Json(plan.converse()).into_response()
            } else {
                plan.stream(&behaviour)
            }
        }
        "invoke" | "invoke-with-response-stream" if model.contains("anthropic.") => {
            claude(&json, action == "invoke")
        }
        "invoke" => match json["inputText"].as_str() {
            // A one-letter text is its own last value, so a test can tell the vectors apart.
            Some(text) => {
                Json(json!({"embedding": [0.5, -0.25, mark(text)], "inputTextTokenCount": 3}))
                    .into_response()
            }
            None => invalid("Malformed input request: #: required key [inputText] not found"),
        },
        _ => aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "unknown operation",
        ),
    }
}

/// Claude through InvokeModel: Bedrock refuses `model` and `stream` in the body and wants its
/// `anthropic_version`.
fn claude(body: &Value, whole: bool) -> Response {
    if body["anthropic_version"] != "bedrock-2023-05-31" {
        return invalid("Malformed input request: #: required key [anthropic_version] not found");
    }
    for extraneous in ["model", "stream"] {
        if body.get(extraneous).is_some() {
            return invalid(&format!(
                "Malformed input request: #: extraneous key [{extraneous}] is not permitted"
            ));
        }
    }
    let text = "Hello from Claude on Bedrock.";
    let usage = json!({"input_tokens": 11, "output_tokens": 6});
    if whole {
        return Json(
            json!({"id": "msg_bdrk_01", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": usage}),
        )
        .into_response();
    }
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_bdrk_02", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 11, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello from Claude"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " on Bedrock."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 6}}),
        json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 11, "outputTokenCount": 6}}),
    ];
    let frames: Vec<Result<Bytes, std::io::Error>> = events
        .iter()
        .map(|event| {
            let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
            Ok(Bytes::from(frame(
                "chunk",
                &json!({"bytes": bytes, "p": "abcdef"}),
            )))
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        Body::from_stream(futures_util::stream::iter(frames)),
    )
        .into_response()
}

/// Recomputes the SigV4 signature from what arrived, as Bedrock does.
fn check_signature(headers: &HeaderMap, path: &str, body: &[u8]) -> Result<(), String> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or("missing Authorization")?;
    let date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing x-amz-date")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .ok_or("algorithm must be AWS4-HMAC-SHA256")?;
    let (credential, rest) = rest
        .split_once(", SignedHeaders=")
        .ok_or("no SignedHeaders")?;
    let (signed, signature) = rest.split_once(", Signature=").ok_or("no Signature")?;
    let scope = format!(
        "{KEY}/{}/{REGION}/bedrock/aws4_request",
        &date[..8.min(date.len())]
    );
    if credential != scope {
        return Err(format!("credential scope {credential} is not {scope}"));
    }
    let signed: Vec<&str> = signed.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err("host and x-amz-date must be signed".into());
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("signature must be 64 hex digits".into());
    }
    let expected = expected_signature(headers, &signed, path, body, parse_amz_date(date)?)?;
    if signature != expected {
        return Err(
            "The request signature we calculated does not match the signature you provided.".into(),
        );
    }
    Ok(())
}

fn expected_signature(
    headers: &HeaderMap,
    signed: &[&str],
    path: &str,
    body: &[u8],
    time: SystemTime,
) -> Result<String, String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or("no host")?;
    let signed_headers: Vec<(&str, &str)> = signed
        .iter()
        .filter_map(|name| Some((*name, headers.get(*name)?.to_str().ok()?)))
        .collect();
    let identity = Credentials::new(KEY, SECRET, None, None, "fake").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        format!("http://{host}{path}"),
        signed_headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (_, signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(signature)
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(date: &str) -> Result<SystemTime, String> {
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        date.get(range)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad x-amz-date {date}"))
    };
    let (y, m, d) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let seconds = number(9..11)? * 3600 + number(11..13)? * 60 + number(13..15)?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = u64::try_from(days * 86_400 + seconds).map_err(|e| e.to_string())?;
    Ok(UNIX_EPOCH + Duration::from_secs(total))
}

/// What Bedrock's validation refuses: no messages, a first turn not the user's, turns of the same
/// role in a row, empty content, a tool result without its tool use, no output cap.
fn check_converse(body: &Value) -> Result<(), String> {
    let messages = body["messages"]
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("messages must not be empty")?;
    if body["inferenceConfig"]["maxTokens"]
        .as_u64()
        .is_none_or(|n| n == 0)
    {
        return Err("inferenceConfig.maxTokens must be a positive integer".into());
    }
    // Bedrock's documented minimum lengths and id pattern.
    for (i, block) in body["system"].as_array().into_iter().flatten().enumerate() {
        if block["text"].as_str().is_some_and(str::is_empty) {
            return Err(format!(
                "system.{i}.text: Member must have length greater than or equal to 1"
            ));
        }
    }
    for (i, tool) in body["toolConfig"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool["toolSpec"]["description"]
            .as_str()
            .is_some_and(str::is_empty)
        {
            return Err(format!(
                "toolConfig.tools.{i}.toolSpec.description: Member must have length greater than or equal to 1"
            ));
        }
    }
    let valid_id = |id: &str| {
        (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut expected_role = "user";
    let mut open_tool_uses: Vec<String> = Vec::new();
    let mut uses_tools = false;
    for (i, message) in messages.iter().enumerate() {
        if message["role"] != expected_role {
            return Err(format!(
                "A conversation must alternate between user and assistant roles (messages.{i})"
            ));
        }
        let content = message["content"]
            .as_array()
            .filter(|c| !c.is_empty())
            .ok_or(format!("messages.{i}.content must not be empty"))?;
        for block in content {
            if let Some(text) = block.get("text") {
                if text.as_str().is_none_or(|t| t.trim().is_empty()) {
                    return Err(format!(
                        "messages.{i}: text content blocks must be non-empty"
                    ));
                }
            } else if let Some(tool_use) = block.get("toolUse") {
                uses_tools = true;
                if !valid_id(tool_use["toolUseId"].as_str().unwrap_or_default()) {
                    return Err(format!(
                        "messages.{i}: toolUseId must satisfy [a-zA-Z0-9_-]{{1,64}}"
                    ));
                }
                open_tool_uses.push(
                    tool_use["toolUseId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            } else if let Some(result) = block.get("toolResult") {
                uses_tools = true;
                let id = result["toolUseId"].as_str().unwrap_or_default();
                if !open_tool_uses.iter().any(|open| open == id) {
                    return Err(format!("messages.{i}: toolResult {id} matches no toolUse"));
                }
            } else if block.get("image").is_none() {
                return Err(format!("messages.{i}: unknown content block {block}"));
            }
        }
        if expected_role == "user" {
            open_tool_uses.clear();
        }
        expected_role = if expected_role == "user" {
            "assistant"
        } else {
            "user"
        };
    }
    if uses_tools && body["toolConfig"].is_null() {
        return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
    }
    Ok(())
}

/// What the fake will answer, as content blocks and a stop reason.
struct Plan {
    text: Option<&'static str>,
    tool_calls: Vec<(String, String, Value)>,
    stop_reason: &'static str,
}

fn answer_plan(behaviour: &str, body: &Value) -> Plan {
    let tool = body["toolConfig"]["tools"][0]["toolSpec"]["name"]
        .as_str()
        .map(str::to_owned);
    match (behaviour, tool) {
        ("refusal", _) => Plan {
            text: Some("Sorry, the model cannot answer this question."),
            tool_calls: Vec::new(),
            stop_reason: "guardrail_intervened",
        },
        ("parallel", Some(name)) => Plan {
            text: None,
            tool_calls: vec![
                (
                    "tooluse_paris".into(),
                    name.clone(),
                    json!({"city": "Paris"}),
                ),
                ("tooluse_tokyo".into(), name, json!({"city": "Tokyo"})),
            ],
            stop_reason: "tool_use",
        },
        (_, Some(name)) => Plan {
            text: None,
            tool_calls: vec![("tooluse_paris".into(), name, json!({"city": "Paris"}))],
            stop_reason: "tool_use",
        },
        (_, None) => Plan {
            text: Some("Hello! How can I help?"),
            tool_calls: Vec::new(),
            stop_reason: "end_turn",
        },
    }
}

fn usage() -> Value {
    json!({"inputTokens": 15, "outputTokens": 10, "totalTokens": 29, "cacheReadInputTokens": 4})
}

impl Plan {
    fn converse(&self) -> Value {
        let mut content: Vec<Value> = self.text.iter().map(|t| json!({"text": t})).collect();
        for (id, name, input) in &self.tool_calls {
            content.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
        }
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.stop_reason,
            "usage": usage(),
            "metrics": {"latencyMs": 120}
        })
    }

    fn events(&self, behaviour: &str) -> Vec<(&'static str, Value)> {
        let mut events = vec![("messageStart", json!({"role": "assistant"}))];
        if let Some(text) = self.text {
            let (first, second) = text.split_at(5);
            for piece in [first, second] {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": piece}, "p": "abcdef"}),
                ));
                if behaviour == "unknown-event" {
                    events.push(("futureInsightEvent", json!({"insight": "not for you"})));
                }
            }
            events.push(("contentBlockStop", json!({"contentBlockIndex": 0})));
        }
        for (i, (id, name, input)) in self.tool_calls.iter().enumerate() {
            events.push(("contentBlockStart", json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
            let arguments = input.to_string();
            let (a, rest) = arguments.split_at(4);
            let (b, c) = rest.split_at(rest.len() / 2);
            for piece in [a, b, c] {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": piece}}}),
                ));
            }
            events.push(("contentBlockStop", json!({"contentBlockIndex": i})));
        }
        events.push(("messageStop", json!({"stopReason": self.stop_reason})));
        events.push((
            "metadata",
            json!({"usage": usage(), "metrics": {"latencyMs": 120}}),
        ));
        events
    }

    fn stream(&self, behaviour: &str) -> Response {
        let mut frames: Vec<Vec<u8>> = self
            .events(behaviour)
            .into_iter()
            .map(|(name, payload)| frame(name, &payload))
            .collect();
        let cut = behaviour == "cut";
        if cut {
            // Two whole events, then half a frame, then the connection breaks.
            frames.truncate(3);
            let last = frames.pop().unwrap_or_default();
            frames.push(last[..last.len() / 2].to_vec());
        }
        let body = futures_util::stream::unfold(
            (frames.into_iter(), false),
            move |(mut frames, ended)| async move {
                if ended {
                    return None;
                }
                match frames.next() {
                    Some(frame) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        Some((Ok::<_, std::io::Error>(Bytes::from(frame)), (frames, false)))
                    }
                    None if cut => {
                        Some((Err(std::io::Error::other("connection cut")), (frames, true)))
                    }
                    None => None,
                }
            },
        );
        (
            [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
            Body::from_stream(body),
        )
            .into_response()
    }
}

fn frame(event: &'static str, payload: &Value) -> Vec<u8> {
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut bytes = Vec::new();
    write_message_to(&message, &mut bytes).expect("frame encodes");
    bytes
}

/// `0.125` for most texts; a single letter's position in the alphabet for one-letter texts.
fn mark(text: &str) -> f64 {
    match text.as_bytes() {
        [letter @ b'a'..=b'z'] => f64::from(letter - b'a' + 1),
        _ => 0.125,
    }
}
