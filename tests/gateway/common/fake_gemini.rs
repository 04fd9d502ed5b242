//! A fake Gemini API. It validates what the gateway sends (path and action, `x-goog-api-key`,
//! JSON body: roles, alternation, parts, function responses answering calls, a schema Gemini
//! accepts) and answers 400 in Google's error format when something is wrong; otherwise it
//! answers as Gemini's API reference documents, with the behaviour picked by the model name.
//!
//! Behaviours: `ok` (text, or a call of the first tool with `{"city": "Paris"}` when tools are
//! offered and no function result came back), `parallel` (two calls: Paris and Tokyo),
//! `error-<status>` (Google's error, echoing the key), `cut` (the connection breaks mid-stream),
//! `unknown-event` (an unknown event and part kind, then a normal finish), `refusal`
//! (`finishReason: SAFETY`), `blocked` (`promptFeedback.blockReason`, no candidates). With
//! `responseLogprobs`, each text part is one token chosen at -0.5, with `logprobs` top candidates.

use super::fake::{Received, Recorder};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The API key the fake expects in `x-goog-api-key`.
pub const KEY: &str = "AIzaSy-fake-gemini-key-0123456789";

/// A running fake.
#[derive(Clone)]
pub struct FakeGemini {
    pub addr: SocketAddr,
    received: Recorder,
}

type Shared = Recorder;

impl FakeGemini {
    pub async fn start() -> FakeGemini {
        let received = Shared::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(received.clone());
        let addr = super::serve(app).await;
        FakeGemini { addr, received }
    }

    /// The `base_url` to configure: the API root, as Google's SDKs spell it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.all()
    }
}

/// Google's error envelope.
fn google_error(code: u16, status: &str, message: &str) -> Response {
    let http = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    (http, Json(body)).into_response()
}

fn invalid(message: &str) -> Response {
    google_error(400, "INVALID_ARGUMENT", message)
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or(uri.path().to_owned(), |p| p.as_str().to_owned());
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(_) => return invalid("Invalid JSON payload received."),
    };
    shared.record(Received {
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
        ..Received::default()
    });
    if headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/json")
    {
        return invalid("content-type must be application/json");
    }
    let Some((model, action)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.split_once(':'))
    else {
        return google_error(404, "NOT_FOUND", &format!("{path} is not found"));
    };
    match action {
        "generateContent" => generate(model, &body, false),
        "streamGenerateContent?alt=sse" => generate(model, &body, true),
        "embedContent" => embed(model, &body, false),
        "batchEmbedContents" => embed(model, &body, true),
        _ => google_error(404, "NOT_FOUND", &format!("action {action} is not found")),
    }
}

fn generate(model: &str, body: &Value, stream: bool) -> Response {
    if let Err(message) = check_generate(body) {
        return invalid(&message);
    }
    if let Some(status) = model.strip_prefix("error-") {
        let code: u16 = status.parse().unwrap_or(500);
        let name = match code {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        };
        return google_error(code, name, &format!("fake failure {code} for key {KEY}"));
    }
    let mut pieces = answer(model, body);
    if body["generationConfig"]["responseLogprobs"] == json!(true) {
        let top = body["generationConfig"]["logprobs"].as_u64().unwrap_or(0);
        pieces.iter_mut().for_each(|piece| add_logprobs(piece, top));
    }
    if stream {
        sse(model, pieces)
    } else {
        Json(whole(&pieces)).into_response()
    }
}

/// Gemini's rules for a `generateContent` body.
fn check_generate(body: &Value) -> Result<(), String> {
    const TOP: &[&str] = &[
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
    ];
    for key in body.as_object().ok_or("body must be an object")?.keys() {
        if !TOP.contains(&key.as_str()) {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{key}\""
            ));
        }
    }
    let contents = body["contents"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or("contents is not specified")?;
    let mut previous: Option<&str> = None;
    let mut calls: Vec<String> = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let role = content["role"]
            .as_str()
            .ok_or(format!("contents[{i}].role is required"))?;
        if !matches!(role, "user" | "model") {
            return Err(format!("contents[{i}].role must be user or model"));
        }
        if previous == Some(role) || (previous.is_none() && role != "user") {
            return Err(
                "Please ensure that multiturn requests alternate between user and model.".into(),
            );
        }
        previous = Some(role);
        let parts = content["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or(format!("contents[{i}].parts must not be empty"))?;
        let mut answered = Vec::new();
        for part in parts {
            check_part(part, role)?;
            if let Some(name) = part["functionCall"]["name"].as_str() {
                answered.push(name.to_owned());
            }
            if let Some(name) = part["functionResponse"]["name"].as_str() {
                let at = calls
                    .iter()
                    .position(|c| c == name)
                    .ok_or(format!("functionResponse {name} answers no functionCall"))?;
                calls.remove(at);
            }
        }
        if role == "model" {
            calls = answered;
        }
    }
    if let Some(system) = body.get("systemInstruction") {
        let parts = system["parts"]
            .as_array()
            .ok_or("systemInstruction.parts is required")?;
        if parts.iter().any(|p| !p["text"].is_string()) {
            return Err("systemInstruction takes text parts".into());
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        for declaration in tool["functionDeclarations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(parameters) = declaration.get("parameters") {
                check_schema(parameters)?;
            }
        }
    }
    if let Some(schema) = body["generationConfig"].get("responseSchema") {
        check_schema(schema)?;
    }
    if let Some(top) = body["generationConfig"].get("logprobs") {
        if body["generationConfig"]["responseLogprobs"] != json!(true) {
            return Err("logprobs is only valid if responseLogprobs is true".into());
        }
        if !top.as_u64().is_some_and(|n| (1..=20).contains(&n)) {
            return Err(format!("logprobs must be in [1, 20]; got {top}"));
        }
    }
    Ok(())
}

/// A piece's text parts as one token each, chosen at -0.5, with `top` candidates per step.
fn add_logprobs(piece: &mut Value, top: u64) {
    let Some(candidate) = piece.get_mut("candidates").and_then(|c| c.get_mut(0)) else {
        return;
    };
    let tokens: Vec<String> = candidate["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let chosen: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"token": t, "tokenId": 7, "logProbability": -0.5}))
        .collect();
    let tops: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let alternatives = (1..top).map(|k| {
                json!({"token": format!("alt{k}"), "tokenId": 100 + k, "logProbability": -1.0 - k as f64})
            });
            let first = json!({"token": t, "tokenId": 7, "logProbability": -0.5});
            json!({"candidates": std::iter::once(first).chain(alternatives).collect::<Vec<_>>()})
        })
        .collect();
    let mut result =
        json!({"chosenCandidates": chosen, "logProbabilitySum": -0.5 * tokens.len() as f64});
    if top > 0 {
        result["topCandidates"] = Value::Array(tops);
    }
    candidate["logprobsResult"] = result;
}

fn check_part(part: &Value, role: &str) -> Result<(), String> {
    const KINDS: &[&str] = &[
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
    ];
    let object = part.as_object().ok_or("a part must be an object")?;
    let kinds: Vec<&String> = object
        .keys()
        .filter(|k| KINDS.contains(&k.as_str()))
        .collect();
    if kinds.len() != 1
        || object
            .keys()
            .any(|k| !KINDS.contains(&k.as_str()) && k != "thoughtSignature")
    {
        return Err(format!("a part must have exactly one data field: {part}"));
    }
    match kinds[0].as_str() {
        "functionCall" if role != "model" => Err("functionCall parts belong to the model".into()),
        "functionResponse" if role != "user" => {
            Err("functionResponse parts belong to the user".into())
        }
        "functionResponse" if !part["functionResponse"]["response"].is_object() => {
            Err("functionResponse.response must be an object".into())
        }
        "functionCall" if !part["functionCall"]["args"].is_object() => {
            Err("functionCall.args must be an object".into())
        }
        "inlineData" if !part["inlineData"]["mimeType"].is_string() => {
            Err("inlineData.mimeType is required".into())
        }
        // Gemini's image types: anything else is "Unsupported MIME type".
        "inlineData"
            if part["inlineData"]["mimeType"].as_str().is_some_and(|m| {
                m.starts_with("image/")
                    && ![
                        "image/png",
                        "image/jpeg",
                        "image/webp",
                        "image/heic",
                        "image/heif",
                    ]
                    .contains(&m)
            }) =>
        {
            Err(format!(
                "Unsupported MIME type: {}",
                part["inlineData"]["mimeType"]
            ))
        }
        _ => Ok(()),
    }
}

/// Keywords Gemini's Schema refuses with "Unknown name".
fn check_schema(schema: &Value) -> Result<(), String> {
    match schema {
        Value::Object(object) => {
            let array = object
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("array"));
            if array && !object.get("items").is_some_and(Value::is_object) {
                return Err("parameters.properties.items: missing field.".into());
            }
            for (key, value) in object {
                if matches!(
                    key.as_str(),
                    "additionalProperties"
                        | "$schema"
                        | "$ref"
                        | "$defs"
                        | "definitions"
                        | "strict"
                        | "const"
                ) {
                    return Err(format!(
                        "Invalid JSON payload received. Unknown name \"{key}\" in schema"
                    ));
                }
                if key != "properties" || value.is_object() {
                    check_schema(value)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_schema),
        _ => Ok(()),
    }
}

/// What the fake answers: the streamed pieces, each a `GenerateContentResponse`.
fn answer(model: &str, body: &Value) -> Vec<Value> {
    let usage = json!({"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 25,
        "thoughtsTokenCount": 7, "cachedContentTokenCount": 3});
    let piece = |parts: Value, finish: Option<&str>| {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "fake-response-1"})
    };
    let tool = body["tools"][0]["functionDeclarations"][0]["name"].as_str();
    let last_is_result = body["contents"]
        .as_array()
        .and_then(|c| c.last())
        .is_some_and(|c| {
            c["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p.get("functionResponse").is_some())
        });
    let call = |city: &str| json!({"functionCall": {"name": tool.unwrap_or("none"), "args": {"city": city}}});
    match (model, tool) {
        ("parallel", Some(_)) => vec![piece(json!([call("Paris"), call("Tokyo")]), Some("STOP"))],
        ("refusal", _) => vec![
            piece(json!([{"text": "I can"}]), None),
            json!({"candidates": [{"content": {"role": "model"}, "finishReason": "SAFETY", "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}],
                "usageMetadata": usage, "modelVersion": model}),
        ],
        ("blocked", _) => vec![
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 11, "totalTokenCount": 11}, "modelVersion": model}),
        ],
        (_, Some(_)) if !last_is_result => vec![
            piece(json!([call("Paris")]), None),
            piece(json!([{"text": ""}]), Some("STOP")),
        ],
        _ => vec![
            piece(json!([{"text": "Hello"}]), None),
            piece(json!([{"text": " from"}]), None),
            piece(json!([{"text": " Gemini!"}]), Some("STOP")),
        ],
    }
}

/// The pieces as one answer: parts joined per candidate, the last finish reason and usage.
fn whole(pieces: &[Value]) -> Value {
    let mut answer = pieces.last().cloned().unwrap_or_default();
    if let Some(candidate) = answer.get_mut("candidates").and_then(|c| c.get_mut(0)) {
        let parts: Vec<Value> = pieces
            .iter()
            .flat_map(|p| {
                p["candidates"][0]["content"]["parts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        let mut joined: Vec<Value> = parts
            .into_iter()
            .filter(|p| p.get("text").is_none())
            .collect();
        if !text.is_empty() {
            joined.insert(0, json!({"text": text}));
        }
        candidate["content"]["parts"] = Value::Array(joined);
        if candidate.get("logprobsResult").is_some() {
            let steps = |field: &str| -> Vec<Value> {
                pieces
                    .iter()
                    .flat_map(|p| {
                        p["candidates"][0]["logprobsResult"][field]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect()
            };
            candidate["logprobsResult"]["chosenCandidates"] =
                Value::Array(steps("chosenCandidates"));
            if candidate["logprobsResult"].get("topCandidates").is_some() {
                candidate["logprobsResult"]["topCandidates"] = Value::Array(steps("topCandidates"));
            }
        }
    }
    answer
}

/// Pieces as Gemini's SSE (`data:` lines ended by CRLF), paced like a real stream.
fn sse(model: &str, pieces: Vec<Value>) -> Response {
    let mut events: Vec<String> = pieces
        .iter()
        .map(|p| format!("data: {p}\r\n\r\n"))
        .collect();
    let cut = model == "cut";
    if cut {
        events.truncate(2);
    }
    if model == "unknown-event" {
        let odd = json!({"candidates": [{"content": {"role": "model", "parts": [{"executableCode": {"language": "PYTHON", "code": "print(1)"}}]}, "index": 0}]});
        events.insert(1, format!("data: {odd}\r\n\r\n"));
        events.insert(
            1,
            "event: keepalive\r\ndata: {\"ping\": 1}\r\n\r\n".to_owned(),
        );
    }
    let body =
        futures_util::stream::unfold((events.into_iter(), cut), |(mut events, cut)| async move {
            match events.next() {
                Some(event) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Some((Ok::<_, std::io::Error>(event), (events, cut)))
                }
                // An error from the body stream makes hyper abort the connection mid-response.
                None if cut => Some((
                    Err(std::io::Error::other("connection cut")),
                    (events, false),
                )),
                None => None,
            }
        });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

fn embed(model: &str, body: &Value, batch: bool) -> Response {
    let requests: Vec<&Value> = if batch {
        match body["requests"].as_array() {
            Some(requests) if requests.len() > 100 => {
                return invalid(
                    "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
                );
            }
            Some(requests) if !requests.is_empty() => requests.iter().collect(),
            _ => return invalid("requests must not be empty"),
        }
    } else {
        vec![body]
    };
    let mut embeddings = Vec::new();
    for request in requests {
        if request["model"] != json!(format!("models/{model}")) {
            return invalid("each request must name the model of the path as models/{model}");
        }
        if !request["content"]["parts"][0]["text"].is_string() {
            return invalid("content.parts[0].text is required");
        }
        let size = request["outputDimensionality"].as_u64().unwrap_or(3) as usize;
        let mut values: Vec<f32> = (0..size).map(|i| 0.25 * (i + 1) as f32).collect();
        // A numeric text is its own first value, so a test can tell the vectors apart.
        if let Some(n) = request["content"]["parts"][0]["text"]
            .as_str()
            .and_then(|t| t.parse::<f32>().ok())
        {
            values[0] = n;
        }
        embeddings.push(json!({"values": values}));
    }
    if batch {
        Json(json!({"embeddings": embeddings})).into_response()
    } else {
        Json(json!({"embedding": embeddings[0]})).into_response()
    }
}
