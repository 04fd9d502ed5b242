//! Scoped credentials: client keys holding `grants` on the admin surface. Each grant allows what
//! it names and nothing else; a key without it is told which grant it lacks; a key that
//! registers tools names them only under its prefix and changes only its own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestGateway, client};

const ADMIN: &str = "sk-grants-admin";

fn config() -> String {
    format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  up: {{ kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-provider, registration: {{ allow: [127.0.0.0/8] }} }}
  mock: {{ kind: mock }}
models:
  - {{ name: m, targets: [ {{ provider: mock, model: echo }} ] }}
keys:
  - {{ name: billing, key: sk-billing, grants: [tools:register], tools_prefix: billing_ }}
  - {{ name: search, key: sk-search, grants: [tools:register], tools_prefix: search_ }}
  - {{ name: meter, key: sk-meter, grants: [usage:read] }}
  - {{ name: auditor, key: sk-auditor, grants: ["usage:read:*"] }}
  - {{ name: purger, key: sk-purger, grants: [cache:purge] }}
  - {{ name: ops, key: sk-ops, grants: [upstreams:register] }}
  - {{ name: ops2, key: sk-ops2, grants: [upstreams:register] }}
  - {{ name: plain, key: sk-plain }}
cache: {{ ttl: 60s }}
"#
    )
}

async fn call(
    gateway: &TestGateway,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method, gateway.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A 403 whose message names `grant`.
fn refused_for(answer: &(StatusCode, Value), grant: &str) {
    assert_eq!(answer.0, StatusCode::FORBIDDEN, "{}", answer.1);
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("'{grant}'")), "{message}");
}

fn tool(name: &str) -> Value {
    json!({
        "name": name,
        "description": "d",
        "input_schema": {"type": "object"},
        "http": {"url": "http://127.0.0.1:9/x"},
        "ttl": "60s",
    })
}

#[tokio::test]
async fn a_service_key_registers_renews_lists_and_deletes_only_its_own_tools() {
    let gateway = TestGateway::start(&config()).await;
    let post = |key: &'static str, body: Value| {
        call(&gateway, Method::POST, "/admin/tools", key, Some(body))
    };
    let (status, body) = post("sk-billing", tool("billing_charge")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        post("sk-billing", tool("billing_charge")).await.0,
        StatusCode::OK
    );
    let (status, body) = post("sk-billing", tool("search_steal")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'billing_")
    );
    // A tool in its prefix that another owner registered is not the key's to replace.
    assert_eq!(
        post(ADMIN, tool("billing_ops")).await.0,
        StatusCode::CREATED
    );
    let (status, body) = post("sk-billing", tool("billing_ops")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another key")
    );
    assert_eq!(
        post("sk-search", tool("search_find")).await.0,
        StatusCode::CREATED
    );
    refused_for(&post("sk-plain", tool("billing_x")).await, "tools:register");
    refused_for(&post("sk-meter", tool("billing_x")).await, "tools:register");

    let (status, listing) = call(&gateway, Method::GET, "/admin/tools", "sk-billing", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listing["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing_charge"], "{listing}");
    assert_eq!(listing["tools"][0]["owner"], "billing");
    let (_, everything) = call(&gateway, Method::GET, "/admin/tools", ADMIN, None).await;
    assert_eq!(
        everything["tools"].as_array().unwrap().len(),
        3,
        "{everything}"
    );

    let delete = async |key: &str, name: &str| {
        call(
            &gateway,
            Method::DELETE,
            &format!("/admin/tools/{name}"),
            key,
            None,
        )
        .await
    };
    assert_eq!(
        delete("sk-search", "billing_charge").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        delete("sk-billing", "billing_ops").await.0,
        StatusCode::FORBIDDEN
    );
    refused_for(
        &delete("sk-plain", "billing_charge").await,
        "tools:register",
    );
    assert_eq!(
        delete("sk-billing", "billing_charge").await.0,
        StatusCode::OK
    );
    assert_eq!(
        delete("sk-billing", "billing_charge").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(ADMIN, "search_find").await.0, StatusCode::OK);
}

#[tokio::test]
async fn usage_cache_and_upstream_grants_allow_what_they_name_and_nothing_else() {
    let gateway = TestGateway::start(&config()).await;
    for key in ["sk-meter", "sk-plain"] {
        let chat = client()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(chat.status(), StatusCode::OK);
    }
    let rows = |answer: &Value| -> Vec<String> {
        answer["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, own) = call(&gateway, Method::GET, "/admin/usage", "sk-meter", None).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(rows(&own), ["meter"]);
    assert_eq!(own["keys"][0]["requests"], 1, "{own}");
    let (status, all) = call(&gateway, Method::GET, "/admin/usage", "sk-auditor", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rows(&all).len(), 8, "{all}");
    refused_for(
        &call(&gateway, Method::GET, "/admin/usage", "sk-plain", None).await,
        "usage:read",
    );

    let purge = |key: &'static str| call(&gateway, Method::DELETE, "/admin/cache", key, None);
    assert_eq!(purge("sk-purger").await.0, StatusCode::OK);
    refused_for(&purge("sk-meter").await, "cache:purge");

    let instance = json!({"provider": "up", "url": "http://127.0.0.1:9/v2", "ttl": "30s"});
    let register = |key: &'static str| {
        call(
            &gateway,
            Method::POST,
            "/admin/upstreams",
            key,
            Some(instance.clone()),
        )
    };
    assert_eq!(register("sk-ops").await.0, StatusCode::OK);
    refused_for(&register("sk-billing").await, "upstreams:register");
    let leave = json!({"provider": "up", "url": "http://127.0.0.1:9/v2"});
    refused_for(
        &call(
            &gateway,
            Method::DELETE,
            "/admin/upstreams",
            "sk-plain",
            Some(leave.clone()),
        )
        .await,
        "upstreams:register",
    );
    // Another key with the grant can neither renew nor remove what `ops` registered.
    let (status, body) = register("sk-ops2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another key")
    );
    let delete = Some(leave.clone());
    let (status, _) = call(
        &gateway,
        Method::DELETE,
        "/admin/upstreams",
        "sk-ops2",
        delete,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = call(&gateway, Method::GET, "/admin/upstreams", ADMIN, None).await;
    let instances = listed["providers"]["up"]["instances"].as_array().unwrap();
    assert!(instances.iter().any(|i| i["owner"] == "ops"), "{listed}");
    assert_eq!(
        call(
            &gateway,
            Method::DELETE,
            "/admin/upstreams",
            "sk-ops",
            Some(leave)
        )
        .await
        .0,
        StatusCode::OK
    );

    // What no grant opens stays the admin key's.
    let (status, body) = call(&gateway, Method::GET, "/admin/upstreams", "sk-ops", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin key")
    );
    let (status, _) = call(&gateway, Method::GET, "/admin/usage", "sk-wrong", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn grants_that_do_not_fit_are_config_errors_naming_the_key() {
    let broken = r#"
keys:
  - { name: a, key: sk-a, grants: [tools:register] }
  - { name: b, key: sk-b, grants: [tools:register], tools_prefix: team_ }
  - { name: c, key: sk-c, grants: [tools:register], tools_prefix: team_billing_ }
  - { name: d, key: sk-d, tools_prefix: d_ }
  - { name: e, key: sk-e, grants: [tools:regster] }
"#;
    let errors = switchboard::config::Config::parse(broken, &|_| None)
        .expect_err("a broken config loaded")
        .to_string();
    for expected in [
        "keys[0].tools_prefix",
        "keys[2].tools_prefix: \"team_billing_\" overlaps \"team_\" of keys[1]",
        "keys[3].tools_prefix",
        "keys[4].grants[0]",
    ] {
        assert!(errors.contains(expected), "{expected} in {errors}");
    }
}
