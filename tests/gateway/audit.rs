//! The audit log: a mixed session (chat plain, cached and streamed, embeddings, a context write,
//! an MCP tool call, admin actions with the admin key and with a grant, an unknown model) leaves
//! one line per action saying what happened; the file rotates at its size keeping `keep` files;
//! and no configured secret, nor any prompt, is ever in it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, client, eventually};

const ADMIN: &str = "sk-audit-admin-0123";
const KEY: &str = "sk-audit-team-0123";
const PROVIDER_SECRET: &str = "sk-audit-provider-0123";
const PROMPT: &str = "the confidential words of the prompt";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn config(dir: &std::path::Path) -> String {
    format!(
        r#"
server: {{ admin_key: {ADMIN} }}
providers:
  demo: {{ kind: mock }}
  unused: {{ kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: {PROVIDER_SECRET} }}
models:
  - {{ name: m, targets: [ {{ provider: demo, model: gen, pricing: {{ input: 1, output: 2 }} }} ] }}
  - {{ name: e, targets: [ {{ provider: demo, model: embed }} ] }}
keys:
  - {{ name: team, key: {KEY}, grants: [usage:read] }}
cache: {{ ttl: 60s }}
audit: {{ path: {:?}, max_size: 2KiB, keep: 2 }}
"#,
        dir.join("audit.jsonl").display().to_string()
    )
}

/// Every line of the log, oldest file first.
fn lines(dir: &std::path::Path) -> Vec<Value> {
    ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]
        .iter()
        .filter_map(|name| std::fs::read_to_string(dir.join(name)).ok())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .map(|line| serde_json::from_str(&line).unwrap())
        .collect()
}

async fn post(gateway: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(gateway.url(path))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A deterministic chat, so the second plain one is a cache hit; the streamed one asks for
/// another length, so it is a miss with usage of its own.
fn chat(stream: bool) -> Value {
    json!({"model": "m", "temperature": 0, "stream": stream, "max_tokens": if stream { 40 } else { 30 },
           "messages": [{"role": "user", "content": PROMPT}]})
}

#[tokio::test]
async fn a_mixed_session_is_logged_line_by_line_rotated_and_without_secrets() {
    let dir = crate::common::temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = TestGateway::start(&config(&dir)).await;

    let first = post(&gateway, "/v1/chat/completions", chat(false)).await;
    assert_eq!(first.status(), StatusCode::OK);
    let request_id = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        post(&gateway, "/v1/chat/completions", chat(false))
            .await
            .status(),
        200
    );
    let streamed = post(&gateway, "/v1/chat/completions", chat(true)).await;
    assert!(streamed.text().await.unwrap().contains("[DONE]"));
    let embedded = post(
        &gateway,
        "/v1/embeddings",
        json!({"model": "e", "input": PROMPT}),
    )
    .await;
    assert_eq!(embedded.status(), 200);
    let put = client()
        .put(gateway.url("/v1/context/notes/today"))
        .bearer_auth(KEY)
        .json(&json!({"text": PROMPT}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let mcp = |body: Value| {
        client()
            .post(gateway.url("/mcp"))
            .bearer_auth(KEY)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
    };
    let opened = mcp(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
    .send()
    .await
    .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let in_session = |body: Value| {
        mcp(body)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    in_session(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    let called = in_session(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "context_get", "arguments": {"namespace": "notes", "key": "today"}}}))
    .send()
    .await
    .unwrap();
    assert!(called.text().await.unwrap().contains(PROMPT));
    let usage = client()
        .get(gateway.url("/admin/usage"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(usage.status(), 200);
    let purged = client()
        .delete(gateway.url("/admin/cache"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(purged.status(), 200);
    let unknown = post(
        &gateway,
        "/v1/chat/completions",
        json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(unknown.status(), 404);

    eventually("nine audit lines", async || lines(&dir).len() >= 9).await;
    let logged = lines(&dir);
    let actions: Vec<&str> = logged
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "chat.completions",
            "chat.completions",
            "chat.completions",
            "embeddings",
            "context.put",
            "mcp.tool_call",
            "admin.usage",
            "admin.cache_purge",
            "chat.completions",
        ],
        "{logged:#?}"
    );
    let miss = &logged[0];
    assert_eq!(miss["request_id"], request_id.as_str());
    assert_eq!(miss["trace_id"], TRACE);
    assert_eq!(miss["key"], "team");
    assert_eq!(
        (&miss["model"], &miss["target"]),
        (&json!("m"), &json!("demo/gen"))
    );
    assert_eq!(
        (&miss["status"], &miss["outcome"]),
        (&json!(200), &json!("ok"))
    );
    assert_eq!(miss["cache"], "miss");
    assert!(miss["input_tokens"].as_u64().unwrap() > 0, "{miss}");
    assert!(miss["output_tokens"].as_u64().unwrap() > 0, "{miss}");
    assert!(miss["cost_usd"].as_f64().unwrap() > 0.0, "{miss}");
    assert!(
        miss["duration_ms"].as_f64().is_some() && miss["time"].as_str().unwrap().ends_with('Z')
    );
    let hit = &logged[1];
    assert_eq!(hit["cache"], "hit");
    assert!(hit.get("cost_usd").is_none(), "a hit costs nothing: {hit}");
    assert!(
        logged[2]["output_tokens"].as_u64().unwrap() > 0,
        "the stream's usage: {}",
        logged[2]
    );
    assert!(
        logged[3]["input_tokens"].as_u64().unwrap() > 0,
        "{}",
        logged[3]
    );
    assert_eq!(logged[4]["document"], "notes/today");
    assert_eq!(
        (&logged[5]["tool"], &logged[5]["key"]),
        (&json!("context_get"), &json!("team"))
    );
    assert_eq!(logged[5]["outcome"], "ok");
    assert_eq!(
        (&logged[6]["grant"], &logged[6]["key"]),
        (&json!("usage:read"), &json!("team"))
    );
    assert_eq!(
        (&logged[7]["grant"], &logged[7]["key"]),
        (&json!("admin"), &Value::Null)
    );
    assert_eq!(
        (&logged[8]["status"], &logged[8]["outcome"]),
        (&json!(404), &json!("error"))
    );

    // The same facts, counted: GenAI histograms under the conventions' names, spend per key and
    // model, tool calls, cache lookups by model, time to first token.
    let metrics = crate::common::metrics(gateway.url("/metrics")).await;
    for series in [
        r#"gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_request_model="m",gen_ai_provider_name="demo",gen_ai_token_type="input"}"#,
        r#"gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="embeddings",gen_ai_request_model="e""#,
        r#"switchboard_spend_usd_total{key="team",model="m"}"#,
        r#"switchboard_mcp_tool_calls_total{tool="context_get",outcome="ok"} 1"#,
        r#"switchboard_cache_lookups_by_model_total{model="m",outcome="hit"} 1"#,
        r#"switchboard_time_to_first_token_seconds_count{model="m",provider="demo"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    assert_eq!(metrics.matches("# EOF").count(), 1);

    // Enough lines to rotate several times: two rotated files are kept, each within the size.
    for _ in 0..30 {
        post(&gateway, "/v1/chat/completions", chat(false)).await;
    }
    eventually("the log to rotate past keep", async || {
        lines(&dir).iter().filter(|l| l["cache"] == "hit").count() >= 12
    })
    .await;
    gateway.stop().await;
    for name in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"] {
        let size = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(size <= 2048, "{name} is {size} bytes");
    }
    assert!(!dir.join("audit.jsonl.3").exists());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in [ADMIN, KEY, PROVIDER_SECRET, PROMPT] {
            assert!(!text.contains(secret), "{secret} in the audit log");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
