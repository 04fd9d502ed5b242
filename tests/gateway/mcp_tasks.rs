//! Upstream tools as their servers describe them, and 2025-11-25 tasks: every field a server
//! lists of a tool (`execution`, annotations, `_meta`, fields of its own) reaches the client
//! unchanged but for the name, and the official `mcp` SDK runs task-augmented calls, polls,
//! cancels and lists tasks of a stdio and an HTTP server through the gateway.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::common::{TestGateway, python};
use crate::mcp_upstreams::{free_port, rpc};

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/fake_task_server.py"
);
const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_tasks.py"
);

fn config(port: u16) -> String {
    let python = python().display().to_string();
    format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  servers:
    - name: tasks
      command: {python:?}
      args: [{FAKE:?}, stdio]
    - name: web
      url: "http://127.0.0.1:{port}/mcp"
"#
    )
}

/// The tools the fake lists, as it writes them.
async fn listed_by_the_fake() -> Vec<Value> {
    let output = Command::new(python())
        .args([FAKE, "tools"])
        .output()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    listed["tools"].as_array().unwrap().clone()
}

#[tokio::test]
async fn upstream_tools_keep_every_field_and_tasks_run_through_the_gateway() {
    let port = free_port();
    let _web = Command::new(python())
        .args([FAKE, "http", &port.to_string()])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let gateway = TestGateway::start(&config(port)).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (session, opened) = rpc(&gateway, None, initialize).await;
    let session = session.unwrap();
    let tasks = &opened["result"]["capabilities"]["tasks"];
    assert_eq!(tasks["requests"]["tools"]["call"], json!({}), "{opened}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let tools = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, listed) = rpc(&gateway, Some(&session), list.clone()).await;
            let tools = listed["result"]["tools"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let named = |prefix: &str| {
                tools
                    .iter()
                    .any(|t| t["name"] == format!("{prefix}__maybe"))
            };
            if named("tasks") && named("web") {
                return tools;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("both servers' tools are listed");
    for server in ["tasks", "web"] {
        for mut expected in listed_by_the_fake().await {
            let name = format!("{server}__{}", expected["name"].as_str().unwrap());
            expected["name"] = name.clone().into();
            let shown = tools.iter().find(|t| t["name"] == name.as_str());
            assert_eq!(shown, Some(&expected), "{name} as the gateway lists it");
        }
    }

    let mut client = Command::new(python())
        .arg(CLIENT)
        .env("SWITCHBOARD_MCP_URL", gateway.url("/mcp"))
        .env("SWITCHBOARD_KEY", "sk-up-all")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(120), client.wait()).await;
    let output = client.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        waited.is_ok() && output.status.success() && stdout.contains("all checks passed"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    gateway.stop().await;
}
