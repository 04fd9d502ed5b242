//! `mcp.openapi`: the Swagger Petstore 3 spec (vendored in `fixtures/openapi/`) offered as tools
//! to the official MCP SDK, calls reaching a fake of the service with every argument in its
//! place and the configured key; a spec or a selection that cannot work is a config error
//! naming its YAML path.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::json;

use crate::common::{TestGateway, python};

/// The key the configured `headers` send with every call.
const SERVICE_KEY: &str = "petstore-service-key-0123";

/// What the fake received: method, path, and the configured key header.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// The Petstore service under `/api/v3`: answers 404 for pet 404, else what it received.
async fn petstore() -> (String, Seen) {
    async fn any(
        State(seen): State<Seen>,
        method: Method,
        uri: Uri,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::response::Response {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let path = uri.path().to_owned();
        seen.lock()
            .unwrap()
            .push((method.to_string(), path.clone(), header("x-service-key")));
        if path.ends_with("/pet/404") {
            return (StatusCode::NOT_FOUND, "Pet not found").into_response();
        }
        axum::Json(json!({
            "method": method.as_str(),
            "path": path,
            "query": query.unwrap_or_default(),
            "content_type": header("content-type"),
            "api_key": header("api_key"),
            "body": String::from_utf8_lossy(&body),
        }))
        .into_response()
    }
    let seen = Seen::default();
    let app = axum::Router::new().fallback(any).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn spec() -> String {
    format!(
        "{}/tests/gateway/fixtures/openapi/petstore.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn config(service: &str) -> String {
    format!(
        r#"
keys:
  - {{ name: all, key: sk-openapi-all }}
mcp:
  openapi:
    - name: petstore
      spec: {spec}
      base_url: {service}/api/v3
      operations: ["*Pet*", loginUser]
      headers: {{ x-service-key: {SERVICE_KEY} }}
      timeout: 5s
"#,
        spec = spec()
    )
}

#[tokio::test]
async fn the_petstore_spec_becomes_tools_the_mcp_sdk_lists_and_calls() {
    let (service, seen) = petstore().await;
    let gateway = TestGateway::start_reloadable(&config(&service)).await;
    let python = python();
    let script = format!(
        "{}/tests/python/test_mcp_openapi.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let url = gateway.url("/mcp");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("SWITCHBOARD_MCP_URL", url)
            .env("SWITCHBOARD_KEY", "sk-openapi-all")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("openapi ok"));
    let seen = seen.lock().unwrap().clone();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    // Six calls reached the service; the five with bad arguments did not.
    assert_eq!(
        calls,
        [
            ("GET", "/api/v3/pet/7"),
            ("GET", "/api/v3/pet/findByStatus"),
            ("GET", "/api/v3/pet/findByTags"),
            ("POST", "/api/v3/pet"),
            ("DELETE", "/api/v3/pet/3"),
            ("GET", "/api/v3/pet/404"),
        ]
    );
    assert!(seen.iter().all(|(.., key)| key == SERVICE_KEY), "{seen:?}");
}
