//! `/mcp` on the stateless 2026-07-28 revision, on the wire: `server/discover`, per-request
//! `_meta`, `Mcp-Method`/`Mcp-Name` checked against the body (with nothing stored when they
//! disagree), removed methods, and per-key lists marked private.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, client};
use crate::mcp::{config, weather_service};

const MODERN: &str = "2026-07-28";

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// One request as a 2026-07-28 client sends it: `_meta` in the params and the standard
/// headers taken from the body, except those `headers` overrides.
pub async fn rpc(
    gateway: &TestGateway,
    key: &str,
    method: &str,
    mut params: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    if params.get("_meta").is_none() {
        params["_meta"] = meta();
    }
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let mut standard = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(name) = &name {
        standard.push(("mcp-name", name));
    }
    standard.retain(|(header, _)| !headers.iter().any(|(h, _)| h == header));
    let mut request = client()
        .post(gateway.url("/mcp"))
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream");
    for (header, value) in standard.iter().chain(headers) {
        request = request.header(*header, *value);
    }
    let response = request.json(&body).send().await.unwrap();
    let status = response.status();
    assert!(
        !response.headers().contains_key("mcp-session-id"),
        "a stateless request opened a session"
    );
    let text = response.text().await.unwrap();
    let message = crate::common::sse_data(&text)
        .iter()
        .chain(std::iter::once(&text))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|m| m.get("id") == Some(&json!(7)))
        .unwrap_or_else(|| panic!("no answer to the request: {status} {text}"));
    (status, message)
}

async fn gateway() -> TestGateway {
    let (service, _) = weather_service().await;
    TestGateway::start(&config(&service)).await
}

#[tokio::test]
async fn discover_names_both_eras_the_capabilities_and_the_gateway() {
    let gateway = gateway().await;
    let (status, answer) = rpc(&gateway, "sk-mcp-all", "server/discover", json!({}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let result = &answer["result"];
    let versions = result["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2025-11-25")) && versions.contains(&json!(MODERN)));
    let capabilities = &result["capabilities"];
    assert_eq!(capabilities["tools"]["listChanged"], true, "{result}");
    assert_eq!(capabilities["resources"]["subscribe"], true, "{result}");
    assert_eq!(capabilities["resources"]["listChanged"], true, "{result}");
    // Prompts come from upstream servers (this gateway has none: the list is empty).
    assert_eq!(capabilities["prompts"]["listChanged"], true, "{result}");
    let server = &result["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(server["name"], "switchboard", "{result}");

    let without_key = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-wrong")
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
                      "params": {"_meta": meta()}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(without_key.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn requests_without_their_meta_or_with_an_unknown_version_are_refused() {
    let gateway = gateway().await;
    let mut partial = meta();
    partial
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    let (status, answer) = rpc(
        &gateway,
        "sk-mcp-all",
        "server/discover",
        json!({"_meta": partial}),
        &[],
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(-32602))
    );

    let mut future = meta();
    future["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let (status, answer) = rpc(
        &gateway,
        "sk-mcp-all",
        "tools/list",
        json!({"_meta": future}),
        &[("mcp-protocol-version", "2099-01-01")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let supported = answer["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!(MODERN)), "{answer}");
    assert_eq!(answer["error"]["data"]["requested"], "2099-01-01");
}

#[tokio::test]
async fn headers_that_disagree_with_the_body_are_refused_and_nothing_is_written() {
    let gateway = gateway().await;
    let put = json!({"name": "context_put",
                     "arguments": {"namespace": "team-a", "key": "k", "value": 1}});
    for headers in [
        [("mcp-method", "tools/list")],
        [("mcp-name", "context_get")],
    ] {
        let (status, answer) =
            rpc(&gateway, "sk-mcp-all", "tools/call", put.clone(), &headers).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {answer}");
        assert_eq!(answer["error"]["code"], -32020, "{answer}");
    }
    let stored = client()
        .get(gateway.url("/v1/context/team-a/k"))
        .bearer_auth("sk-mcp-all")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), StatusCode::NOT_FOUND);

    let (status, answer) = rpc(&gateway, "sk-mcp-all", "tools/call", put, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[tokio::test]
async fn methods_of_the_session_era_are_gone() {
    let gateway = gateway().await;
    for method in ["ping", "resources/subscribe", "tools/teleport"] {
        let params = json!({"uri": "context://team-a/k"});
        let (status, answer) = rpc(&gateway, "sk-mcp-all", method, params, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
    }
}

#[tokio::test]
async fn lists_follow_the_key_and_are_marked_private() {
    let gateway = gateway().await;
    let (_, all) = rpc(&gateway, "sk-mcp-all", "tools/list", json!({}), &[]).await;
    let (_, team) = rpc(&gateway, "sk-mcp-team", "tools/list", json!({}), &[]).await;
    let names = |answer: &Value| -> Vec<String> {
        let tools = answer["result"]["tools"].as_array().unwrap();
        tools
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&all).contains(&"get_weather".to_owned()), "{all}");
    assert!(
        names(&team).iter().all(|n| n.starts_with("context_")),
        "{team}"
    );
    for answer in [&all, &team] {
        assert_eq!(answer["result"]["cacheScope"], "private", "{answer}");
        assert_eq!(answer["result"]["ttlMs"], 0, "{answer}");
    }
    let (_, templates) = rpc(
        &gateway,
        "sk-mcp-team",
        "resources/templates/list",
        json!({}),
        &[],
    )
    .await;
    assert_eq!(templates["result"]["cacheScope"], "public", "{templates}");

    let call = json!({"name": "get_weather", "arguments": {"city": "Paris"}});
    let (_, refused) = rpc(&gateway, "sk-mcp-team", "tools/call", call, &[]).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not use"),
        "{refused}"
    );
    let read = json!({"uri": "context://finance/budget"});
    let (_, refused) = rpc(&gateway, "sk-mcp-team", "resources/read", read, &[]).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance"),
        "{refused}"
    );
}
