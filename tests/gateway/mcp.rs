//! The MCP server at `/mcp`: the official `mcp` Python SDK, in both protocol eras, lists and
//! calls an HTTP tool backed by a fake service, reads context and hears of REST changes, and is
//! refused outside its key's globs; plus what needs no SDK: 401 without a key, and what the
//! service receives.
//!
//! The interpreter is `$SWITCHBOARD_PYTHON`, else the `.venv` that the test script creates.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::common::{TestGateway, client};

/// The secret the weather service expects, given to the gateway as a tool header.
const SERVICE_KEY: &str = "svc-secret-0123456789";

/// What the fake weather service received: path, query and its auth header.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// A weather service: `GET /weather/{city}`; 401 without the service key, 404 for Atlantis.
pub async fn weather_service() -> (String, Seen) {
    async fn weather(
        State(seen): State<Seen>,
        Path(city): Path<String>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let auth = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let query = query.unwrap_or_default();
        seen.lock()
            .unwrap()
            .push((city.clone(), query.clone(), auth.clone()));
        if auth != SERVICE_KEY {
            return (StatusCode::UNAUTHORIZED, "bad key").into_response();
        }
        if city == "Atlantis" {
            let body = format!("no city Atlantis (key {SERVICE_KEY})");
            return (StatusCode::NOT_FOUND, body).into_response();
        }
        // Services that echo what they were sent, in the answer and in a value the output
        // schema refuses.
        if city == "Echo" {
            let echoed =
                json!({"temp": 1.0, "headers": {"x-api-key": auth.clone()}, auth.clone(): [auth]});
            return axum::Json(echoed).into_response();
        }
        if city == "Leak" {
            return axum::Json(json!({"temp": auth})).into_response();
        }
        if city == "Huge" {
            let text = "x".repeat(9 * 1024 * 1024);
            return axum::Json(json!({"temp": 1.0, "report": text})).into_response();
        }
        let units = query.strip_prefix("units=");
        axum::Json(json!({"city": city, "temp": 21.5, "units": units})).into_response()
    }
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/weather/{city}", axum::routing::get(weather))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// The admin key of [`config`], for `/admin/tools`.
pub const ADMIN_KEY: &str = "sk-mcp-admin";

/// Keys `all` (every tool and namespace) and `team` (`context_*` tools, `team-*` namespaces),
/// and `get_weather` calling `service`.
pub fn config(service: &str) -> String {
    format!(
        r#"
server: {{ admin_key: {ADMIN_KEY} }}
keys:
  - {{ name: all, key: sk-mcp-all }}
  - {{ name: team, key: sk-mcp-team, tools: ["context_*"], context: ["team-*"] }}
mcp:
  tools:
    - name: get_weather
      description: Current weather for a city
      input_schema:
        type: object
        properties: {{ city: {{ type: string }}, units: {{ type: string, enum: [metric, imperial] }} }}
        required: [city]
      output_schema: {{ type: object, properties: {{ temp: {{ type: number }} }}, required: [temp] }}
      annotations: {{ read_only: true }}
      http:
        method: GET
        url: "{service}/weather/{{city}}"
        headers: {{ x-api-key: {SERVICE_KEY} }}
        timeout: 5s
"#
    )
}

use crate::common::python;

/// Runs `tests/python/{script}` against the gateway and fails with its output if it fails.
async fn run_sdk_script(gateway: &TestGateway, script: &'static str) {
    let python = python();
    assert!(
        python.exists(),
        "{} not found: run ./scripts/test.sh, which creates the venv with the mcp SDK",
        python.display()
    );
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let urls = [
        ("SWITCHBOARD_MCP_URL", gateway.url("/mcp")),
        ("SWITCHBOARD_CONTEXT_URL", gateway.url("/v1/context")),
        ("SWITCHBOARD_ADMIN_URL", gateway.url("/admin")),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(path)
            .envs(urls)
            .env("SWITCHBOARD_ADMIN_KEY", ADMIN_KEY)
            .env("SWITCHBOARD_KEY", "sk-mcp-all")
            .env("SWITCHBOARD_TEAM_KEY", "sk-mcp-team")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout),
    );
    // The SDK warns on each session close it does not like (it took rmcp's 202 for a failure).
    assert!(
        !stderr.contains("Session termination failed"),
        "{script}: {stderr}"
    );
}

#[tokio::test]
async fn mcp_sdk_calls_tools_reads_context_hears_changes_and_is_refused_outside_its_globs() {
    let (service, seen) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    run_sdk_script(&gateway, "test_mcp_sdk.py").await;
    let seen = seen.lock().unwrap().clone();
    // Bad arguments never reach the service; the key is the configured one, not the client's.
    assert_eq!(
        seen,
        [
            (
                "Paris".to_owned(),
                "units=metric".to_owned(),
                SERVICE_KEY.to_owned()
            ),
            ("Atlantis".to_owned(), String::new(), SERVICE_KEY.to_owned()),
        ]
    );
}

#[tokio::test]
async fn mcp_sdk_on_the_stateless_revision_calls_tools_and_listens_within_its_globs() {
    let (service, seen) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    run_sdk_script(&gateway, "test_mcp_modern.py").await;
    let cities: Vec<String> = seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(cities, ["Paris"], "bad arguments never reach the service");
}

#[tokio::test]
async fn mcp_without_a_valid_key_is_401_in_openai_shape() {
    let (service, _) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    for key in [None, Some("sk-wrong")] {
        let mut request = client()
            .post(gateway.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // The challenge tells an MCP client a bearer key is wanted; the body says which header.
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"switchboard\""
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("Authorization: Bearer"), "{message}");
    }
    let accepted = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-mcp-all")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    assert!(accepted.headers().contains_key("mcp-session-id"));
}

/// One JSON-RPC message posted to a session; the answer's status and its JSON-RPC messages.
async fn post(gateway: &TestGateway, session: &str, body: String) -> (StatusCode, Vec<Value>) {
    let response = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-mcp-all")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let messages = crate::common::sse_data(&text)
        .iter()
        .chain(std::iter::once(&text))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|m| m.get("jsonrpc").is_some())
        .collect();
    (status, messages)
}

/// A session opened as `sk-mcp-all` on the 2025-11-25 revision, initialized; its id.
async fn open_session(gateway: &TestGateway) -> String {
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    let opened = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-mcp-all")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _) = post(gateway, &session, initialized.to_string()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    session
}

/// A service that echoes the tool's header values, anywhere in a JSON answer or in a value its
/// output schema refuses, does not get them to the client; an answer too big to pass on is an
/// error, not a cut one.
#[tokio::test]
async fn tool_header_values_never_reach_the_client_nor_cut_answers() {
    let (service, _) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    let session = open_session(&gateway).await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "get_weather", "arguments": {"city": "Huge"}}});
    let (_, messages) = post(&gateway, &session, call.to_string()).await;
    let result = messages.iter().find_map(|m| m.get("result")).unwrap();
    assert_eq!(
        result["isError"], true,
        "an answer cut short is not passed off as whole"
    );
    assert!(result.to_string().contains("more than 8 MiB"), "{result}");
    for (id, city) in [(2, "Echo"), (3, "Leak")] {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "get_weather", "arguments": {"city": city}}});
        let (_, messages) = post(&gateway, &session, call.to_string()).await;
        let result = messages
            .iter()
            .find_map(|m| m.get("result"))
            .unwrap_or_else(|| panic!("{messages:?}"));
        let text = result.to_string();
        assert!(!text.contains(SERVICE_KEY), "{city}: {text}");
        assert!(text.contains("<redacted>"), "{city}: {text}");
    }
}

/// An argument of `..` in a path placeholder would make `/weather/..` the service's `/`.
#[tokio::test]
async fn a_path_argument_cannot_navigate_the_services_url() {
    let (service, seen) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    let session = open_session(&gateway).await;
    for city in ["..", "."] {
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "get_weather", "arguments": {"city": city}}});
        let (_, messages) = post(&gateway, &session, call.to_string()).await;
        let result = messages
            .iter()
            .find_map(|m| m.get("result"))
            .unwrap_or_else(|| panic!("{messages:?}"));
        assert_eq!(result["isError"], true, "{result}");
        assert!(result.to_string().contains("may not be"), "{result}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "the service was not called"
    );
    // Dots inside a segment are ordinary characters.
    let call = json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
        "params": {"name": "get_weather", "arguments": {"city": "St. Louis"}}});
    let (_, messages) = post(&gateway, &session, call.to_string()).await;
    let result = messages.iter().find_map(|m| m.get("result")).unwrap();
    assert_eq!(result["isError"], false, "{result}");
}

#[tokio::test]
async fn malformed_and_unknown_requests_get_clear_errors() {
    let (service, _) = weather_service().await;
    let gateway = TestGateway::start(&config(&service)).await;
    let session = open_session(&gateway).await;

    let (status, _) = post(&gateway, &session, "{not json".to_owned()).await;
    assert!(status.is_client_error(), "{status}");

    // The HTTP errors rmcp finds itself come as JSON-RPC errors, not plain text.
    let refused = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-mcp-all")
        .header("accept", "text/plain")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["jsonrpc"], "2.0", "{error}");
    assert_eq!(error["error"]["code"], -32600, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Accept"),
        "{error}"
    );

    let unknown = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/teleport", "params": {}});
    let (status, messages) = post(&gateway, &session, unknown.to_string()).await;
    let error = messages
        .iter()
        .find_map(|m| m.get("error"))
        .unwrap_or_else(|| panic!("{status} {messages:?}"));
    assert_eq!(error["code"], -32601, "{error}");

    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "context_put", "arguments": {"namespace": "team-a", "key": "k", "value": 1}}});
    let (_, messages) = post(&gateway, &session, call.to_string()).await;
    let result = messages.iter().find_map(|m| m.get("result")).unwrap();
    assert_eq!(result["isError"], false, "{result}");

    // Another key cannot ride on this session: not its requests, not its stream, not its end.
    let as_other = |method: reqwest::Method| {
        client()
            .request(method, gateway.url("/mcp"))
            .bearer_auth("sk-mcp-team")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    let hijack = as_other(reqwest::Method::POST)
        .json(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hijack.status(), StatusCode::NOT_FOUND);
    let stream = as_other(reqwest::Method::GET).send().await.unwrap();
    assert_eq!(
        stream.status(),
        StatusCode::NOT_FOUND,
        "the stream is the owner's"
    );
    // Naming a method in `Mcp-Method` (the 2026 revision's header) changes nothing: rmcp still
    // routes a request with a session id to that session.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let sneaky = as_other(method.clone())
            .header("mcp-method", "x")
            .send()
            .await
            .unwrap();
        assert_eq!(
            sneaky.status(),
            StatusCode::NOT_FOUND,
            "{method} with Mcp-Method"
        );
    }
    let ended = as_other(reqwest::Method::DELETE).send().await.unwrap();
    assert_eq!(
        ended.status(),
        StatusCode::NOT_FOUND,
        "only the owner ends it"
    );
    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"});
    let (status, messages) = post(&gateway, &session, call.to_string()).await;
    assert_eq!(status, StatusCode::OK, "the session lives on: {messages:?}");
    // The owner ends it with a 200, which the MCP SDKs take without a warning (not rmcp's 202).
    let ended = client()
        .delete(gateway.url("/mcp"))
        .bearer_auth("sk-mcp-all")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let (status, _) = post(&gateway, &session, call.to_string()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the session is gone");
}

/// A client's `notifications/cancelled` stops the call: the gateway drops its request to the
/// service at once, instead of letting it run to the tool's timeout.
#[tokio::test]
async fn a_cancelled_call_stops_the_service_request() {
    use tokio::sync::mpsc;
    /// Tells the test when the service's request starts and when it is dropped.
    struct Dropped(mpsc::UnboundedSender<&'static str>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let (events, mut heard) = mpsc::unbounded_channel::<&'static str>();
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || {
            let events = events.clone();
            async move {
                let _ = events.send("arrived");
                let _guard = Dropped(events);
                std::future::pending::<()>().await;
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let gateway = TestGateway::start(&format!(
        r#"
keys:
  - {{ name: all, key: sk-mcp-all }}
mcp:
  tools:
    - name: slow
      description: Never answers
      input_schema: {{ type: object }}
      http: {{ method: GET, url: "http://{addr}/slow", timeout: 120s }}
"#
    ))
    .await;
    let session = open_session(&gateway).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "slow", "arguments": {}}});
    let calling = {
        let url = gateway.url("/mcp");
        let session = session.clone();
        tokio::spawn(async move {
            client()
                .post(url)
                .bearer_auth("sk-mcp-all")
                .header("accept", "application/json, text/event-stream")
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-11-25")
                .json(&call)
                .send()
                .await
        })
    };
    assert_eq!(heard.recv().await, Some("arrived"));
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 7, "reason": "the user gave up"}});
    post(&gateway, &session, cancel.to_string()).await;
    // Without the cancellation reaching the call, the request would live for the tool's 120 s.
    let dropped = tokio::time::timeout(std::time::Duration::from_secs(60), heard.recv()).await;
    assert_eq!(
        dropped,
        Ok(Some("dropped")),
        "the service request was dropped"
    );
    calling.abort();
}
