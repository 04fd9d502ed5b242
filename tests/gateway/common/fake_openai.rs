//! A fake OpenAI-compatible provider. It validates what the gateway sends (path, bearer key,
//! JSON body) and answers as OpenAI's API reference documents; the upstream model name picks a
//! behaviour, so one fake serves every scenario.
//!
//! Behaviours: `ok` (default), `error-<status>`, `slow` (answers after 2 s), `cut` (the connection
//! breaks mid-stream), `truncated` (the stream ends cleanly but without `[DONE]`), `garbage`
//! (invalid JSON), `hang-stream` (sends one chunk then waits forever), `delay-<ms>` (answers
//! normally after a pause), `stream-error` (an error event mid-stream that echoes the key),
//! `no-usage` (a stream that never reports usage, even when asked), `fail-first-<n>` (500 for
//! the first n requests, then answers after 300 ms), `limited-<s>` (429 with `Retry-After: s` on
//! the first request, then answers), `endless` (a 200 whose body never ends), `bloated` (a valid
//! answer of 100 KiB, its length declared), `think-<ms>` (a stream whose headers come at once
//! and its first event after the pause, as a reasoning model's), `keepalive` (one chunk, then a
//! `: keep-alive` comment every 100 ms for 600 ms, then the rest), `raw` (the bytes of
//! [`RAW_STREAM`], whatever the request), `no-stream` (answers whole even when asked to stream),
//! `per-choice` (two choices, each in chunks of its own, only the first one naming its role),
//! `gated` (answers once the test opens the gate). Chat requests in flight are counted, and the
//! most ever in flight at once is kept.
//! With tools offered, and for `parallel`, `refusal` and `unknown-event`, it answers as
//! [`super::openai_answer`] scripts it. `POST /v1/responses` answers as
//! [`super::openai_responses`] says.

use super::fake::{Received, Recorder, error_status};
use super::{openai_answer, openai_responses};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// A stream a gateway must edit without touching anything else: a first chunk without a role,
/// with an integer beyond `u64`, an escape and `"usage": null`; a plain chunk with `"usage":
/// null`, as OpenAI sends them once asked for usage; then a last chunk carrying usage
/// beside its choices (running totals, as some servers send) and numbers in unusual spellings.
pub const RAW_STREAM: &str = concat!(
    r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"raw","seed":18446744073709551617,"e":"\u00e9","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"raw","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"raw","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5},"x":[1,2.50,1e3]}"#,
    "\n\ndata: [DONE]\n\n"
);

/// The API key the fake expects.
pub const KEY: &str = "sk-upstream-secret-0123456789";

#[derive(Default)]
struct Shared {
    received: Recorder,
    /// Requests seen per behaviour, for behaviours that change over time.
    seen: Mutex<std::collections::HashMap<String, usize>>,
    /// Notified when a streamed answer's body is dropped before it finished: the gateway hung up.
    cancelled: Notify,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// `gated` requests wait until this says true.
    gate: Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    /// The responses `/v1/responses` wrote.
    responses: openai_responses::Written,
}

/// A chat request in flight, counted until its handler ends or is dropped.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn enter(shared: &Arc<Shared>) -> InFlight {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running fake.
#[derive(Clone)]
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeOpenAi {
    pub async fn start() -> FakeOpenAi {
        FakeOpenAi::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind")
    }

    /// A fake listening on `addr`, for tests that need a given address (DNS discovery).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeOpenAi> {
        let shared = Arc::new(Shared::default());
        let app = app(&shared);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(FakeOpenAi { addr, shared })
    }

    /// A fake served over TLS with the given certificate chain and key (PEM); its `base_url`
    /// is still plain, callers spell the `https://` one.
    pub async fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> FakeOpenAi {
        let shared = Arc::new(Shared::default());
        let addr = super::serve_tls(app(&shared), cert_pem, key_pem).await;
        FakeOpenAi { addr, shared }
    }

    /// The `base_url` to configure: includes `/v1`, as OpenAI's SDK spells it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.all()
    }

    /// Chat requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// The most chat requests ever answered at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Lets every `gated` request, waiting or to come, answer.
    pub fn open_gate(&self) {
        self.gate_sender().send_replace(true);
    }

    fn gate_sender(&self) -> tokio::sync::watch::Sender<bool> {
        self.shared
            .gate
            .lock()
            .unwrap()
            .get_or_insert_with(|| tokio::sync::watch::channel(false).0)
            .clone()
    }

    /// Waits until a stream the fake was sending is dropped by the gateway.
    pub async fn stream_cancelled(&self) {
        self.shared.cancelled.notified().await;
    }
}

fn app(shared: &Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/responses", post(responses))
        .with_state(shared.clone())
}

async fn responses(State(shared): State<Arc<Shared>>, headers: HeaderMap, raw: String) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&raw) else {
        return openai_responses::unreadable();
    };
    if let Err(response) = check_request(&shared, "/v1/responses", &headers, &body) {
        return *response;
    }
    // The record `check_request` made, with the bytes as they came.
    if let Some(last) = shared.received.0.lock().unwrap().last_mut() {
        last.raw = raw;
    }
    openai_responses::answer(&shared.responses, &body)
}

fn check_request(
    shared: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<(), Box<Response>> {
    shared.received.record(Received {
        path: path.to_owned(),
        headers: headers.clone(),
        body: body.clone(),
        at: std::time::Instant::now(),
        ..Received::default()
    });
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return Err(Box::new(openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
            Some("invalid_api_key"),
        )));
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/json")
    {
        return Err(Box::new(openai_error(
            StatusCode::BAD_REQUEST,
            "content-type must be application/json",
            "invalid_request_error",
            None,
        )));
    }
    if !body["model"].is_string() {
        return Err(Box::new(openai_error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
        )));
    }
    Ok(())
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": code}})),
    )
        .into_response()
}

fn behaviour(body: &Value) -> &str {
    body["model"].as_str().unwrap_or("ok")
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let _counted = InFlight::enter(&shared);
    if let Err(response) = check_request(&shared, "/v1/chat/completions", &headers, &body) {
        return *response;
    }
    if body["messages"].as_array().is_none_or(Vec::is_empty) {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "messages must be a non-empty array",
            "invalid_request_error",
            None,
        );
    }
    let model = behaviour(&body).to_owned();
    let nth = {
        let mut seen = shared.seen.lock().unwrap();
        let count = seen.entry(model.clone()).or_default();
        *count += 1;
        *count
    };
    if let Some(n) = model
        .strip_prefix("fail-first-")
        .and_then(|n| n.parse::<usize>().ok())
    {
        if nth <= n {
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "fake failure 500",
                "server_error",
                None,
            );
        }
        // Recovered, but slow enough for concurrent requests to find the probe still in flight.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(seconds) = model.strip_prefix("limited-")
        && nth == 1
    {
        let mut response = openai_error(
            StatusCode::TOO_MANY_REQUESTS,
            "fake rate limit",
            "requests",
            Some("rate_limit_exceeded"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.parse().unwrap());
        return response;
    }
    if let Some(status) = error_status(&model) {
        return openai_error(
            status,
            &format!("fake failure {} for key {KEY}", status.as_u16()),
            "server_error",
            Some("fake_code"),
        );
    }
    if let Some(ms) = model.strip_prefix("delay-").and_then(|ms| ms.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if model == "slow" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if model == "gated" {
        let mut open = {
            let mut gate = shared.gate.lock().unwrap();
            gate.get_or_insert_with(|| tokio::sync::watch::channel(false).0)
                .subscribe()
        };
        let _ = open.wait_for(|open| *open).await;
    }
    if model == "garbage" {
        return (StatusCode::OK, "{ this is not json").into_response();
    }
    if model == "misshapen-echo" {
        // Valid JSON in the wrong shape, quoting the credential it was called with.
        return Json(json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": KEY}))
            .into_response();
    }
    if model == "endless" {
        let spaces = futures_util::stream::repeat_with(|| {
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(&[b' '; 16 * 1024]))
        });
        return (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(spaces),
        )
            .into_response();
    }
    if model == "bloated" {
        let padding = "x".repeat(100 * 1024);
        return Json(json!({
            "id": "chatcmpl-fake1", "object": "chat.completion", "created": 1741569952,
            "model": model, "padding": padding,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        }))
        .into_response();
    }
    let scripted = matches!(model.as_str(), "parallel" | "refusal" | "unknown-event");
    if scripted || body["tools"].is_array() {
        return openai_answer::answer(&model, &body, openai_answer::Flavor::OpenAi);
    }
    if body["stream"] == json!(true) && model != "no-stream" {
        return stream(shared, &model, &body);
    }
    Json(json!({
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1741569952,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I assist you today?", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake"
    }))
    .into_response()
}

fn chunk(model: &str, delta: Value, finish: Value) -> String {
    let chunk = json!({"id": "chatcmpl-fake2", "object": "chat.completion.chunk", "created": 1741569952,
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {chunk}\n\n")
}

/// Drops notify the fake that the gateway hung up before the stream finished.
struct CancelGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl CancelGuard {
    fn complete(mut self) {
        self.finished = true;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.cancelled.notify_one();
        }
    }
}

fn stream(shared: Arc<Shared>, model: &str, body: &Value) -> Response {
    // `no-usage` stands for servers that ignore `stream_options.include_usage`.
    let include_usage =
        body["stream_options"]["include_usage"] == json!(true) && model != "no-usage";
    // The first chunk carries the role and the first word together, as several providers send it.
    let mut events = vec![chunk(
        model,
        json!({"role": "assistant", "content": "Hello", "refusal": null}),
        Value::Null,
    )];
    for word in ["!", " How", " can", " I", " help?"] {
        events.push(chunk(model, json!({"content": word}), Value::Null));
    }
    if model == "stream-error" {
        // An error event mid-stream that echoes the credential, as some proxies do.
        events.truncate(2);
        let error = json!({"error": {"message": format!("upstream exploded for key {KEY}"), "type": "server_error"}});
        events.push(format!("data: {error}\n\n"));
    }
    let cut = model == "cut";
    let truncated = model == "truncated";
    let hang = model == "hang-stream";
    if cut || truncated {
        events.truncate(3);
    } else if hang {
        events.truncate(1);
    } else {
        events.push(chunk(model, json!({}), json!("stop")));
        if include_usage {
            let usage = json!({"id": "chatcmpl-fake2", "object": "chat.completion.chunk", "created": 1741569952,
                "model": model, "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}});
            events.push(format!("data: {usage}\n\n"));
        }
        events.push("data: [DONE]\n\n".to_owned());
    }
    if model == "raw" {
        return event_stream(RAW_STREAM);
    }
    if model == "per-choice" {
        let events: String = [
            (0, json!({"role": "assistant", "content": "A"}), Value::Null),
            (1, json!({"content": "B"}), Value::Null),
            (0, json!({}), json!("stop")),
            (1, json!({}), json!("stop")),
        ]
        .into_iter()
        .map(|(index, delta, finish)| {
            let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}]});
            format!("data: {chunk}\n\n")
        })
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
        .collect();
        return event_stream(events);
    }
    if let Some(kind) = model.strip_prefix("burst") {
        return burst(&events, kind);
    }
    if model == "dribble" {
        return dribble(events.swap_remove(0), events.swap_remove(0));
    }
    let think = model
        .strip_prefix("think-")
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    if let Some(pause) = think {
        let body = futures_util::stream::iter(events.into_iter().enumerate()).then(
            move |(i, event)| async move {
                if i == 0 {
                    tokio::time::sleep(pause).await;
                }
                Ok::<_, std::io::Error>(event)
            },
        );
        return event_stream(Body::from_stream(body));
    }
    if model == "keepalive" {
        let first = events.remove(0);
        let comments = (0..6).map(|_| ": keep-alive\n\n".to_owned());
        let body = futures_util::stream::iter(std::iter::once(first).chain(comments).chain(events))
            .then(|event| async move {
                if event.starts_with(':') {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok::<_, std::io::Error>(event)
            });
        return event_stream(Body::from_stream(body));
    }
    let guard = CancelGuard {
        shared,
        finished: false,
    };
    let body = futures_util::stream::unfold(
        (events.into_iter(), guard),
        move |(mut events, mut guard)| async move {
            match events.next() {
                Some(event) => {
                    // Real providers pace their events; a pause also proves the gateway does not buffer.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Some((Ok::<_, std::io::Error>(event), (events, guard)))
                }
                None if hang => {
                    std::future::pending::<()>().await;
                    None
                }
                None if cut => {
                    // An error from the body stream makes hyper abort the connection mid-response.
                    guard.finished = true;
                    Some((
                        Err(std::io::Error::other("connection cut")),
                        (events, guard),
                    ))
                }
                None => {
                    guard.complete();
                    None
                }
            }
        },
    );
    event_stream(Body::from_stream(body))
}

/// The whole stream in one write, so one read at the gateway completes every event: `burst`
/// as is, `burst-garbage` and `burst-bad-utf8` with a broken event after the third.
fn burst(events: &[String], kind: &str) -> Response {
    let mut bytes = b": keep-alive\n\n".to_vec();
    for (i, event) in events.iter().enumerate() {
        if i == 3 {
            match kind {
                "-garbage" => bytes.extend_from_slice(b"data: {not json\n\n"),
                "-bad-utf8" => bytes.extend_from_slice(b"data: \xff\xfe\n\n"),
                _ => {}
            }
        }
        bytes.extend_from_slice(event.as_bytes());
    }
    event_stream(bytes)
}

/// One event, then the next a byte every 50 ms, never finished: bytes keep coming, events do not.
fn dribble(first: String, next: String) -> Response {
    let next = next.trim_end().as_bytes().to_vec();
    let bytes = futures_util::stream::iter(std::iter::once(first.into_bytes()))
        .chain(futures_util::stream::iter(next).then(|byte| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            vec![byte]
        }))
        .chain(futures_util::stream::once(std::future::pending()))
        .map(Ok::<_, std::io::Error>);
    event_stream(Body::from_stream(bytes))
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(response) = check_request(&shared, "/v1/embeddings", &headers, &body) {
        return *response;
    }
    if body["input"].is_null() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "input is required",
            "invalid_request_error",
            None,
        );
    }
    Json(json!({
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.0023064255, -0.009327292, -0.0028842222], "index": 0}],
        "model": behaviour(&body),
        "usage": {"prompt_tokens": 8, "total_tokens": 8}
    }))
    .into_response()
}

/// A `text/event-stream` answer with `body`.
fn event_stream(body: impl axum::response::IntoResponse) -> Response {
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}
