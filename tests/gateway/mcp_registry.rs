//! MCP tools registered at run time through `/admin/tools`: admin auth, validation that names the
//! field, 409 on a configured name, renewal, removal and expiry; and, through the official `mcp`
//! Python SDK, sessions that see tools appear, hear of changes and call a registered tool.

use std::process::Command;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestGateway, client, serve};

const ADMIN: &str = "admin-registry-secret";
/// The header secret a registered tool sends to its service.
const SERVICE_KEY: &str = "svc-registered-0123456789";

fn config() -> String {
    format!(
        r#"
server: {{ admin_key: {ADMIN} }}
keys:
  - {{ name: all, key: sk-reg-all }}
  - {{ name: team, key: sk-reg-team, tools: ["team_*"] }}
mcp:
  tools:
    - name: yaml_tool
      input_schema: {{ type: object }}
      http: {{ url: "http://127.0.0.1:9/" }}
"#
    )
}

/// A service echoing `GET /echo/{city}` as JSON; 401 without the service key.
async fn echo_service() -> String {
    async fn echo(Path(city): Path<String>, headers: HeaderMap) -> axum::response::Response {
        use axum::response::IntoResponse;
        if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(SERVICE_KEY) {
            return (StatusCode::UNAUTHORIZED, "bad key").into_response();
        }
        axum::Json(json!({"city": city, "temp": 18})).into_response()
    }
    let app = axum::Router::new().route("/echo/{city}", axum::routing::get(echo));
    format!("http://{}", serve(app).await)
}

fn tool(name: &str, ttl: &str) -> Value {
    json!({
        "name": name,
        "description": "Weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "http": {"method": "GET", "url": "http://127.0.0.1:9/echo/{city}", "headers": {"x-api-key": SERVICE_KEY}},
        "ttl": ttl,
    })
}

async fn register(gateway: &TestGateway, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(gateway.url("/admin/tools"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn listed(gateway: &TestGateway) -> Vec<Value> {
    let response = client()
        .get(gateway.url("/admin/tools"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["tools"].as_array().unwrap().clone()
}

#[tokio::test]
async fn only_the_admin_key_registers_and_an_off_admin_api_is_403() {
    let gateway = TestGateway::start(&config()).await;
    let (status, body) = register(&gateway, "wrong", &tool("w", "30s")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    // A client key without the grant is told which one it lacks.
    let (status, body) = register(&gateway, "sk-reg-all", &tool("w", "30s")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'tools:register'")
    );
    let unauthenticated = client()
        .delete(gateway.url("/admin/tools/w"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert!(listed(&gateway).await.is_empty());

    let off = TestGateway::start("keys: [ { name: a, key: sk-a } ]").await;
    let (status, body) = register(&off, "sk-a", &tool("w", "30s")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field_and_configured_names_are_409() {
    let gateway = TestGateway::start(&config()).await;
    let mut cases = Vec::new();
    let mut no_ttl = tool("w", "30s");
    no_ttl.as_object_mut().unwrap().remove("ttl");
    cases.push((no_ttl, "ttl"));
    cases.push((tool("w", "forever"), "ttl"));
    cases.push((tool("w", "0s"), "ttl"));
    let mut bad_url = tool("w", "30s");
    bad_url["http"]["url"] = json!("ftp://svc/{city}");
    cases.push((bad_url, "http.url"));
    let mut placeholder = tool("w", "30s");
    placeholder["http"]["url"] = json!("http://svc/{town}");
    cases.push((placeholder, "http.url"));
    let mut timeout = tool("w", "30s");
    timeout["http"]["timeout"] = json!(5);
    cases.push((timeout, "http.timeout"));
    let mut schema = tool("w", "30s");
    schema["input_schema"] = json!({"type": "string"});
    cases.push((schema, "input_schema"));
    cases.push((tool("bad name!", "30s"), "name"));
    for (body, field) in cases {
        let (status, answer) = register(&gateway, ADMIN, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["error"]["param"], field, "{body} -> {answer}");
        assert!(
            !answer.to_string().contains(SERVICE_KEY),
            "a secret was echoed: {answer}"
        );
    }
    let mut unknown = tool("w", "30s");
    unknown["colour"] = json!("red");
    let (status, answer) = register(&gateway, ADMIN, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{answer}"
    );
    let malformed = client()
        .post(gateway.url("/admin/tools"))
        .bearer_auth(ADMIN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    for name in ["yaml_tool", "context_put"] {
        let (status, answer) = register(&gateway, ADMIN, &tool(name, "30s")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert_eq!(answer["error"]["param"], "name");
    }
    assert!(
        listed(&gateway).await.is_empty(),
        "a refused body left a tool"
    );
}

#[tokio::test]
async fn posting_again_renews_and_replaces_and_delete_removes() {
    let gateway = TestGateway::start(&config()).await;
    let (status, answer) = register(&gateway, ADMIN, &tool("team_w", "2s")).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["renewed"], false);
    let first = listed(&gateway).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["ttl_ms"], 2000);
    assert!(first[0]["expires_in_ms"].as_u64().unwrap() <= 2000);
    assert!(!first[0].to_string().contains(SERVICE_KEY), "{first:?}");

    let mut replaced = tool("team_w", "1h");
    replaced["description"] = json!("Replaced");
    let (status, answer) = register(&gateway, ADMIN, &replaced).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["renewed"], true);
    let renewed = listed(&gateway).await;
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0]["description"], "Replaced");
    assert!(renewed[0]["expires_in_ms"].as_u64().unwrap() > 3_500_000);

    let delete = || {
        client()
            .delete(gateway.url("/admin/tools/team_w"))
            .bearer_auth(ADMIN)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), StatusCode::OK);
    assert!(listed(&gateway).await.is_empty());
    assert_eq!(delete().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tool_disappears_when_its_ttl_runs_out() {
    let gateway = TestGateway::start(&config()).await;
    // Taken before registering: "not before its TTL" must not depend on how long the
    // registrations took.
    let started = Instant::now();
    let (status, _) = register(&gateway, ADMIN, &tool("brief", "300ms")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = register(&gateway, ADMIN, &tool("lasting", "1h")).await;
    assert_eq!(status, StatusCode::CREATED);
    loop {
        let names: Vec<Value> = listed(&gateway)
            .await
            .iter()
            .map(|t| t["name"].clone())
            .collect();
        if names == [json!("lasting")] {
            break;
        }
        assert_eq!(names, [json!("brief"), json!("lasting")]);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the tool outlived its TTL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
}

use crate::common::python;

#[tokio::test]
async fn mcp_sdk_sessions_see_registered_tools_hear_changes_and_call_them() {
    let service = echo_service().await;
    let gateway = TestGateway::start(&config()).await;
    let python = python();
    assert!(python.exists(), "{} not found", python.display());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/test_mcp_registry.py"
    );
    let (mcp_url, admin_url) = (gateway.url("/mcp"), gateway.url("/admin/tools"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .env("SWITCHBOARD_MCP_URL", mcp_url)
            .env("SWITCHBOARD_ADMIN_URL", admin_url)
            .env("SWITCHBOARD_ADMIN_KEY", ADMIN)
            .env("SWITCHBOARD_KEY", "sk-reg-all")
            .env("SWITCHBOARD_TEAM_KEY", "sk-reg-team")
            .env("SWITCHBOARD_SERVICE_URL", service)
            .env("SWITCHBOARD_SERVICE_KEY", SERVICE_KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "test_mcp_registry.py failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
