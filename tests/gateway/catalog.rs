//! The catalog's lifecycle on the wire: deprecated entries answer with `Deprecation`, `Sunset`
//! and `Link` and are counted per key; retired ones are unlisted and answered 410 (a tool error
//! over MCP) naming their successor; keys ask for access and an admin's decision takes effect at
//! once, on every replica sharing one Redis.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::redis::RedisServer;
use crate::common::replicas::{Replicas, post};
use crate::common::{TestGateway, client, eventually};
use crate::mcp_stateless::rpc;

const ADMIN: &str = "sk-catalog-admin";

fn config() -> String {
    format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  demo: {{ kind: mock }}
models:
  - {{ name: fast, targets: [ {{ provider: demo, model: mock-fast }} ] }}
  - {{ name: old, targets: [ {{ provider: demo, model: mock-old }} ] }}
  - {{ name: gone, targets: [ {{ provider: demo, model: mock-gone }} ] }}
  - {{ name: premium, targets: [ {{ provider: demo, model: mock-premium }} ] }}
keys:
  - {{ name: dev, key: sk-cat-dev, models: ["fast", "old", "gone"], tools: ["weather_*", "context_get"] }}
  - {{ name: ops, key: sk-cat-ops }}
catalog:
  models:
    fast: {{ description: Quick answers, owner: platform, version: "2" }}
    old:
      status: deprecated
      successor: fast
      sunset: 2027-03-01
      deprecated_at: 2026-11-02
      docs: https://docs.example/migrate
    gone: {{ status: retired, successor: fast }}
"#
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// A POST with `key` (as both SDKs send it); the future borrows nothing.
fn send(
    gateway: &TestGateway,
    key: &str,
    path: &str,
    body: Value,
) -> impl Future<Output = reqwest::Response> + use<> {
    let request = client()
        .post(gateway.url(path))
        .bearer_auth(key)
        .header("x-api-key", key);
    let request = request.json(&body);
    async move { request.send().await.unwrap() }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Vec<&'a str> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_deprecated_model_answers_with_its_lifecycle_headers_and_is_counted_per_key() {
    let gateway = TestGateway::start(&config()).await;
    for (path, body) in [
        ("/v1/chat/completions", chat("old")),
        (
            "/v1/chat/completions",
            json!({"stream": true, "model": "old", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "old", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let response = send(&gateway, "sk-cat-dev", path, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "deprecation"), ["@1793577600"], "{path}");
        assert_eq!(
            header(&response, "sunset"),
            ["Mon, 01 Mar 2027 00:00:00 GMT"]
        );
        assert_eq!(
            header(&response, "link"),
            [
                "</v1/catalog/model:fast>; rel=\"successor-version\"",
                "<https://docs.example/migrate>; rel=\"deprecation\""
            ]
        );
        response.bytes().await.unwrap();
    }
    let published = send(&gateway, "sk-cat-dev", "/v1/chat/completions", chat("fast")).await;
    assert!(published.headers().get("deprecation").is_none());
    // The successor link leads to the successor's entry.
    let entry_of = |id: &str| {
        client()
            .get(gateway.url(&format!("/v1/catalog/{id}")))
            .bearer_auth("sk-cat-dev")
            .send()
    };
    let successor: Value = entry_of("model:fast").await.unwrap().json().await.unwrap();
    assert_eq!(
        (successor["owner"].as_str(), successor["access"].as_str()),
        (Some("platform"), Some("yes"))
    );
    let premium: Value = entry_of("model:premium")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(premium["access"], "request");
    assert_eq!(
        entry_of("model:gone").await.unwrap().status(),
        StatusCode::GONE
    );
    assert_eq!(
        entry_of("model:none").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let metrics = client().get(gateway.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("switchboard_deprecated_calls_total{entry=\"model:old\",key=\"dev\"} 3"),
        "{metrics}"
    );
    let catalog = admin_catalog(&gateway).await;
    let old = entry(&catalog, "model:old");
    assert_eq!(old["deprecated_calls"], json!({"dev": 3}));
    assert_eq!(old["used_by"], json!(["dev", "ops"]));
}

#[tokio::test]
async fn a_retired_model_is_unlisted_and_answered_410_naming_its_successor() {
    let gateway = TestGateway::start(&config()).await;
    let response = send(&gateway, "sk-cat-dev", "/v1/chat/completions", chat("gone")).await;
    assert_eq!(response.status(), StatusCode::GONE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "retired");
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(
        body["error"]["message"],
        "The model 'gone' was retired; use 'fast' instead."
    );
    // Anthropic's clients get their own envelope.
    let messages =
        json!({"model": "gone", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let response = send(&gateway, "sk-cat-dev", "/v1/messages", messages).await;
    assert_eq!(response.status(), StatusCode::GONE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use 'fast'")
    );
    let models = client()
        .get(gateway.url("/v1/models"))
        .bearer_auth("sk-cat-dev")
        .send()
        .await
        .unwrap();
    let models: Value = models.json().await.unwrap();
    let names: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fast", "old"]);
    // The key's catalog lists neither the retired entry nor what it cannot see.
    let own = key_catalog(&gateway, "sk-cat-dev").await;
    let ids: Vec<&str> = own["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"model:fast") && !ids.contains(&"model:gone"),
        "{ids:?}"
    );
    assert!(ids.contains(&"tool:context_get") && !ids.contains(&"tool:context_put"));
    let fast = entry(
        &Value::Array(own["entries"].as_array().unwrap().clone()),
        "model:fast",
    );
    assert_eq!(fast["owner"], "platform");
    assert_eq!(own["usage"]["name"], "dev");
    let requestable: Vec<&str> = own["requestable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(requestable.contains(&"model:premium"), "{requestable:?}");
}

#[tokio::test]
async fn registered_tools_carry_their_lifecycle_into_mcp_listings_and_calls() {
    let gateway = TestGateway::start(&config()).await;
    let tool = |name: &str, extra: Value| {
        let mut body = json!({
            "name": name,
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "http": {"method": "GET", "url": "http://127.0.0.1:9/w/{city}"},
            "ttl": "5m",
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let registrations = [
        tool("weather_v2", json!({"owner": "geo", "version": "2"})),
        tool(
            "weather_v1",
            json!({"status": "deprecated", "successor": "weather_v2", "sunset": "2027-01-31"}),
        ),
        tool(
            "weather_v0",
            json!({"status": "retired", "successor": "weather_v2"}),
        ),
    ];
    for body in registrations {
        let response = send(&gateway, ADMIN, "/admin/tools", body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let bad = tool(
        "weather_bad",
        json!({"status": "deprecated", "sunset": "soon"}),
    );
    let response = send(&gateway, ADMIN, "/admin/tools", bad).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a date"),
        "{body}"
    );

    let (_, listed) = rpc(&gateway, "sk-cat-dev", "tools/list", json!({}), &[]).await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    let named = |name: &str| tools.iter().find(|t| t["name"] == name).cloned();
    assert!(named("weather_v0").is_none(), "a retired tool is listed");
    let v1 = named("weather_v1").unwrap();
    assert_eq!(
        v1["description"],
        "Weather by city (Deprecated; use weather_v2 instead; sunset 2027-01-31)"
    );
    assert_eq!(
        v1["_meta"]["io.switchboard/lifecycle"],
        json!({"status": "deprecated", "successor": "weather_v2", "sunset": "2027-01-31"})
    );
    assert_eq!(
        named("weather_v2").unwrap()["description"],
        "Weather by city"
    );

    let call = json!({"name": "weather_v0", "arguments": {"city": "Oslo"}});
    let (_, answer) = rpc(&gateway, "sk-cat-dev", "tools/call", call, &[]).await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        "The tool 'weather_v0' was retired; use 'weather_v2' instead."
    );
    let call = json!({"name": "weather_v1", "arguments": {"city": "Oslo"}});
    rpc(&gateway, "sk-cat-dev", "tools/call", call, &[]).await;
    let catalog = admin_catalog(&gateway).await;
    let v1 = entry(&catalog, "tool:weather_v1");
    assert_eq!(v1["deprecated_calls"], json!({"dev": 1}));
    assert_eq!(entry(&catalog, "tool:weather_v2")["owner"], "geo");
    assert_eq!(entry(&catalog, "tool:weather_v2")["origin"], "registered");
}

#[tokio::test]
async fn an_admin_deprecates_and_retires_at_run_time_and_bad_changes_name_the_field() {
    let gateway = TestGateway::start(&config()).await;
    let change = |body: Value| send(&gateway, ADMIN, "/admin/catalog/model:fast", body);
    let response =
        change(json!({"status": "deprecated", "successor": "premium", "sunset": "2027-06-30"}))
            .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["change"]["by"], "admin");
    let answered = send(&gateway, "sk-cat-ops", "/v1/chat/completions", chat("fast")).await;
    assert_eq!(
        header(&answered, "sunset"),
        ["Wed, 30 Jun 2027 00:00:00 GMT"]
    );
    assert!(header(&answered, "deprecation")[0].starts_with('@'));
    assert_eq!(
        header(&answered, "link"),
        ["</v1/catalog/model:premium>; rel=\"successor-version\""]
    );
    for (body, field) in [
        (
            json!({"status": "retired", "successor": "nowhere"}),
            "successor",
        ),
        (
            json!({"status": "deprecated", "sunset": "30/06/2027"}),
            "sunset",
        ),
        (json!({"status": "gone"}), ""),
    ] {
        let response = change(body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        if !field.is_empty() {
            assert_eq!(error["error"]["param"], field, "{error}");
        }
    }
    let response = change(json!({"status": "retired", "successor": "premium"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refused = send(&gateway, "sk-cat-ops", "/v1/chat/completions", chat("fast")).await;
    assert_eq!(refused.status(), StatusCode::GONE);
    // Only the admin key changes the catalog.
    let response = send(
        &gateway,
        "sk-cat-ops",
        "/admin/catalog/model:old",
        json!({"status": "published"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = send(
        &gateway,
        ADMIN,
        "/admin/catalog/model:nothing",
        json!({"status": "published"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_asks_for_access_and_the_admins_decision_takes_effect_at_once() {
    let gateway = TestGateway::start(&config()).await;
    let refused = send(
        &gateway,
        "sk-cat-dev",
        "/v1/chat/completions",
        chat("premium"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let ask = |entry: &str, body: Value| {
        send(
            &gateway,
            "sk-cat-dev",
            &format!("/v1/catalog/{entry}/subscription"),
            body,
        )
    };
    let response = ask("model:premium", json!({"note": "for the beta"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let asked: Value = response.json().await.unwrap();
    assert_eq!(
        (asked["status"].as_str(), asked["note"].as_str()),
        (Some("pending"), Some("for the beta"))
    );
    let again = ask("model:premium", json!({})).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], asked["id"]);
    for (entry, status) in [
        ("model:fast", StatusCode::CONFLICT),
        ("model:gone", StatusCode::GONE),
        ("model:nothing", StatusCode::NOT_FOUND),
        ("prompt:x", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(ask(entry, json!({})).await.status(), status, "{entry}");
    }
    let id = asked["id"].as_u64().unwrap();
    let decide = |key: &str, decision: &str| {
        send(
            &gateway,
            key,
            &format!("/admin/subscriptions/{id}"),
            json!({"decision": decision}),
        )
    };
    assert_eq!(
        decide("sk-cat-dev", "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        decide(ADMIN, "maybe").await.status(),
        StatusCode::BAD_REQUEST
    );
    let decided: Value = decide(ADMIN, "approve").await.json().await.unwrap();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "admin");
    assert!(decided["decided_at"].as_u64().unwrap() >= decided["requested_at"].as_u64().unwrap());
    let allowed = send(
        &gateway,
        "sk-cat-dev",
        "/v1/chat/completions",
        chat("premium"),
    )
    .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let own = key_catalog(&gateway, "sk-cat-dev").await;
    let premium = entry(&own["entries"], "model:premium");
    assert_eq!(premium["access"], "subscribed");
    // A rejection revokes.
    assert_eq!(decide(ADMIN, "reject").await.status(), StatusCode::OK);
    let refused = send(
        &gateway,
        "sk-cat-dev",
        "/v1/chat/completions",
        chat("premium"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let listed = subscriptions(&gateway).await;
    assert_eq!(listed["subscriptions"][0]["status"], "rejected");
}

#[tokio::test]
async fn replicas_share_decisions_lifecycle_changes_and_console_sessions_through_redis() {
    let redis = RedisServer::start();
    let yaml = format!(
        "{}state:\n  data_dir: {{data_dir}}\n  redis: {{ url: \"{}\", timeout: 500ms }}\n",
        config(),
        redis.url()
    );
    let replicas = Replicas::start(&yaml, 2);
    let (a, b) = (0, 1);
    let url = |i: usize, path: &str| replicas.url(i, path);
    let asked = client()
        .post(url(a, "/v1/catalog/model:premium/subscription"))
        .bearer_auth("sk-cat-dev")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::CREATED);
    let id = asked.json::<Value>().await.unwrap()["id"].as_u64().unwrap();
    let decided = client()
        .post(url(b, &format!("/admin/subscriptions/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), StatusCode::OK);
    // At once on both: B applied its own decision, A reads the book again before refusing.
    for replica in [a, b] {
        let reply = post(
            url(replica, "/v1/chat/completions"),
            "sk-cat-dev",
            chat("premium"),
        )
        .await;
        assert_eq!(reply.status, 200, "replica {replica}: {}", reply.text);
    }
    let retire = client()
        .post(url(a, "/admin/catalog/model:old"))
        .bearer_auth(ADMIN)
        .json(&json!({"status": "retired", "successor": "fast"}))
        .send()
        .await
        .unwrap();
    assert_eq!(retire.status(), StatusCode::OK);
    eventually("the retirement reaches replica B", async || {
        post(url(b, "/v1/chat/completions"), "sk-cat-dev", chat("old"))
            .await
            .status
            == 410
    })
    .await;
    // A console login on A is a session on B.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = no_redirects
        .post(url(a, "/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = no_redirects
        .get(url(b, "/ui/admin/subscriptions"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("data-subscription=\"{id}\"")),
        "{html}"
    );
    assert!(!html.contains(ADMIN), "the admin key is in the page");
    let stored = redis.cli(&["--scan", "--pattern", "switchboard:{console}:*"]);
    let stored = stored.trim();
    assert!(
        !stored.is_empty() && !stored.contains(&session[20..]),
        "the raw session id is a Redis key: {stored}"
    );
}

async fn subscriptions(gateway: &TestGateway) -> Value {
    get(gateway, "/admin/subscriptions", ADMIN)
        .await
        .json()
        .await
        .unwrap()
}

/// `GET path` with `key` as the bearer.
async fn get(gateway: &TestGateway, path: &str, key: &str) -> reqwest::Response {
    client()
        .get(gateway.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn admin_catalog(gateway: &TestGateway) -> Value {
    key_catalog(gateway, ADMIN).await
}

async fn key_catalog(gateway: &TestGateway, key: &str) -> Value {
    let response = get(gateway, "/v1/catalog", key).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The entry with this id in a catalog's `entries` (or in a list of entries).
fn entry(catalog: &Value, id: &str) -> Value {
    let entries = catalog.get("entries").unwrap_or(catalog);
    entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {catalog}"))
        .clone()
}

#[tokio::test]
async fn hostile_callers_of_the_catalog_get_clear_refusals() {
    let gateway = TestGateway::start(&config()).await;
    let get = |key: Option<&str>| {
        let request = client().get(gateway.url("/v1/catalog"));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
        .send()
    };
    for key in [None, Some("sk-wrong")] {
        let response = get(key).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{key:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    }
    let ask = |key: &str, body: Vec<u8>| {
        client()
            .post(gateway.url("/v1/catalog/model:premium/subscription"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let wrong = ask("sk-wrong", b"{}".to_vec()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let huge = format!("{{\"note\": \"{}\"}}", "x".repeat(200 * 1024));
    let huge = ask("sk-cat-dev", huge.into_bytes()).await.unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let malformed = ask("sk-cat-dev", b"{\"note\": ".to_vec()).await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let wrong_type = ask("sk-cat-dev", b"{\"note\": 7}".to_vec()).await.unwrap();
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
    // Nothing was recorded by any of them.
    let listed = subscriptions(&gateway).await;
    assert_eq!(listed["subscriptions"], json!([]));
    for key in ["sk-wrong", "sk-cat-dev"] {
        let decided = send(
            &gateway,
            key,
            "/admin/subscriptions/1",
            json!({"decision": "approve"}),
        )
        .await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&decided.status()),
            "{key}: {}",
            decided.status()
        );
        let changed = send(
            &gateway,
            key,
            "/admin/catalog/model:fast",
            json!({"status": "retired"}),
        )
        .await;
        assert!([StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&changed.status()));
    }
    let huge_change = client()
        .post(gateway.url("/admin/catalog/model:fast"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge_change.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let still = send(&gateway, "sk-cat-dev", "/v1/chat/completions", chat("fast")).await;
    assert_eq!(
        still.status(),
        StatusCode::OK,
        "the catalog was changed by a refused request"
    );
}
