//! Upstream MCP servers (`mcp.servers`): the official `mcp` Python SDK, through the gateway's
//! /mcp, lists and calls tools of a Streamable HTTP upstream and of a stdio upstream (both the
//! SDK-built fake_mcp_server.py), proves the client's key never reaches an upstream, and sees
//! the HTTP upstream's tools leave when it is killed and return when it is restarted.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::{TestGateway, client};

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/fake_mcp_server.py"
);
const CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_upstreams.py"
);
const SESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_upstream_sessions.py"
);
const ASKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_server_requests.py"
);
const MODERN_ONLY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_modern_upstream.py"
);
const RESOURCES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_upstream_resources.py"
);
const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/test_mcp_reference_servers.py"
);
/// The credential the HTTP upstream demands; configured as a header of the server entry.
const UPSTREAM_AUTH: &str = "Bearer up-token";

use crate::common::python;

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The HTTP fake on `port`; the gateway's supervisor finds it whenever it is ready.
async fn http_upstream(port: u16) -> Child {
    http_upstream_version(port, false).await
}

/// The HTTP fake on `port`, with its `echo` tool renamed `echo_v2` if `renamed`, once it
/// listens: a gateway started before would wait out its reconnection backoff, which on a
/// loaded machine (Python importing the SDK for seconds) outlasts a test's patience.
async fn http_upstream_version(port: u16, renamed: bool) -> Child {
    let mut child = Command::new(python())
        .args([FAKE, "http", &port.to_string(), UPSTREAM_AUTH])
        .env("FAKE_MCP_RENAMED", if renamed { "1" } else { "0" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fake MCP server on port {port} exited"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the fake MCP server never listened on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

fn config(port: u16) -> String {
    let python = python().display().to_string();
    format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
  - {{ name: local-only, key: sk-up-local, tools: ["local__*"], prompts: ["local__*"], resources: ["fake://notes/readme"] }}
mcp:
  servers:
    - name: up
      url: "http://127.0.0.1:{port}/mcp"
      headers: {{ authorization: "{UPSTREAM_AUTH}" }}
      timeout: 5s
      ping_interval: 200ms
    - name: local
      command: {python:?}
      args: [{FAKE:?}, stdio]
"#
    )
}

#[tokio::test]
async fn mcp_sdk_calls_upstream_tools_over_http_and_stdio_and_follows_the_http_upstream_down_and_up()
 {
    assert!(
        python().exists(),
        "{} not found: run ./scripts/test.sh, which creates the venv with the mcp SDK",
        python().display()
    );
    let port = free_port();
    let mut upstream = http_upstream(port).await;
    let gateway = TestGateway::start(&config(port)).await;

    let said = drive(CLIENT, &gateway, &mut upstream, port).await;
    assert_eq!(
        said,
        ["KILL", "RESTART", "mcp upstreams: all checks passed"]
    );
    gateway.stop().await;
}

/// An upstream server's sampling, elicitation and roots requests reach the client whose call made
/// them (two clients, each answering for itself, over HTTP and stdio), and a call its client
/// gives up on is cancelled at the server.
#[tokio::test]
async fn server_requests_reach_the_right_client_and_cancellation_reaches_the_server() {
    let port = free_port();
    let mut upstream = http_upstream(port).await;
    let gateway = TestGateway::start(&config(port)).await;
    let said = drive(ASKS, &gateway, &mut upstream, port).await;
    assert_eq!(said, ["mcp server requests: all checks passed"]);
    gateway.stop().await;
}

/// Upstream resources are listed with the gateway's own, read, completed and subscribed to at the
/// server that has them (the first configured where two list one URI), within each key's
/// `resources:` globs.
#[tokio::test]
async fn upstream_resources_are_listed_read_and_subscribed_to_within_the_keys_globs() {
    let port = free_port();
    let mut upstream = http_upstream(port).await;
    let gateway = TestGateway::start(&config(port)).await;
    let said = drive(RESOURCES, &gateway, &mut upstream, port).await;
    assert_eq!(said, ["mcp upstream resources: all checks passed"]);
    gateway.stop().await;
}

/// Runs the Python client `script` against the gateway, doing to the HTTP upstream on `port`
/// what it asks on its stdout (KILL, RESTART, RESTART_RENAMED: killed and started again at
/// once, a new version); every line it printed, once it exited successfully.
async fn drive(
    script: &str,
    gateway: &TestGateway,
    upstream: &mut Child,
    port: u16,
) -> Vec<String> {
    let mut client = Command::new(python())
        .arg(script)
        .env("SWITCHBOARD_MCP_URL", gateway.url("/mcp"))
        .env("SWITCHBOARD_KEY", "sk-up-all")
        .env("SWITCHBOARD_LOCAL_KEY", "sk-up-local")
        .env("SWITCHBOARD_OTHER_KEY", "sk-up-other")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    let driven = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            match line.as_str() {
                "KILL" => upstream.kill().await.unwrap(),
                "RESTART" => *upstream = http_upstream(port).await,
                "RESTART_RENAMED" => {
                    upstream.kill().await.unwrap();
                    *upstream = http_upstream_version(port, true).await;
                }
                _ => {}
            }
            if line.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                stdin.write_all(b"done\n").await.unwrap();
            }
            said.push(line);
        }
    })
    .await;
    let output = client.wait_with_output().await.unwrap();
    assert!(
        driven.is_ok() && output.status.success(),
        "{script} failed (timed out: {})\nstdout:\n{}\nstderr:\n{}",
        driven.is_err(),
        said.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    said
}

/// Each client gets its own upstream session (state kept per session never leaks across
/// sessions or keys, in both protocol revisions); with discovery, sessionless clients reach the
/// server's 2026-07-28 face instead; a result over `max_result` fails its own call only; an
/// upstream restarted at once with a renamed tool is noticed (no ping interval helps: it is a
/// minute) and its new tools listed and announced.
#[tokio::test]
async fn each_client_has_its_own_upstream_session_big_results_fail_alone_and_a_restart_is_seen() {
    let port = free_port();
    let mut upstream = http_upstream(port).await;
    let python = python().display().to_string();
    let gateway = TestGateway::start(&format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
  - {{ name: other, key: sk-up-other }}
mcp:
  servers:
    - {{ name: up, url: "http://127.0.0.1:{port}/mcp", headers: {{ authorization: "{UPSTREAM_AUTH}" }}, timeout: 10s, ping_interval: 1m, discover: false }}
    - {{ name: local, command: {python:?}, args: [{FAKE:?}, stdio], timeout: 10s, ping_interval: 1m }}
    - {{ name: modern, url: "http://127.0.0.1:{port}/mcp", headers: {{ authorization: "{UPSTREAM_AUTH}" }}, timeout: 10s, ping_interval: 1m }}
"#
    ))
    .await;
    let said = drive(SESSIONS, &gateway, &mut upstream, port).await;
    assert_eq!(
        said,
        [
            "RESTART_RENAMED",
            "mcp upstream sessions: all checks passed"
        ]
    );
    let _ = upstream.kill().await;
    gateway.stop().await;
}

/// A server that speaks only the sessionless revision (it refuses `initialize`) is reached by
/// discovery, and clients of both revisions list and call its tools.
#[tokio::test]
async fn a_server_of_the_sessionless_revision_alone_serves_clients_of_both() {
    let port = free_port();
    let mut upstream = Command::new(python())
        .args([FAKE, "http-modern", &port.to_string(), UPSTREAM_AUTH])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let gateway = TestGateway::start(&format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  servers:
    - {{ name: only, url: "http://127.0.0.1:{port}/mcp", headers: {{ authorization: "{UPSTREAM_AUTH}" }}, timeout: 10s }}
"#
    ))
    .await;
    let said = drive(MODERN_ONLY, &gateway, &mut upstream, port).await;
    assert_eq!(said, ["mcp 2026-only upstream: all checks passed"]);
    let _ = upstream.kill().await;
    gateway.stop().await;
}

/// The reference filesystem and memory servers from npm, behind the gateway over stdio, answer
/// every listed field and every call as they answer the official SDK directly.
#[tokio::test]
async fn the_reference_filesystem_and_memory_servers_answer_as_they_do_directly() {
    let dir = crate::common::temp_dir();
    let (direct_files, gateway_files) = (dir.join("direct"), dir.join("gateway"));
    for root in [&direct_files, &gateway_files] {
        std::fs::create_dir_all(root).unwrap();
    }
    let files = crate::agents::agent("mcp-server-filesystem");
    let memory = crate::agents::agent("mcp-server-memory");
    let gateway_memory = dir.join("gateway-memory.jsonl");
    let gateway = TestGateway::start(&format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  servers:
    - {{ name: files, command: {files:?}, args: [{gateway_files:?}], timeout: 20s }}
    - {{ name: memory, command: {memory:?}, env: {{ MEMORY_FILE_PATH: {gateway_memory:?} }}, timeout: 20s }}
"#
    ))
    .await;
    let output = Command::new(python())
        .arg(REFERENCE)
        .env("SWITCHBOARD_MCP_URL", gateway.url("/mcp"))
        .env("SWITCHBOARD_KEY", "sk-up-all")
        .env("SWITCHBOARD_AGENTS", files.parent().unwrap())
        .env("DIRECT_FILES_ROOT", &direct_files)
        .env("GATEWAY_FILES_ROOT", &gateway_files)
        .env("DIRECT_MEMORY_FILE", dir.join("direct-memory.jsonl"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("test_mcp_reference_servers.py timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("mcp reference servers: all checks passed"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    gateway.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// One JSON-RPC request to /mcp as `sk-up-all`; the JSON-RPC answer to it.
pub async fn rpc(
    gateway: &TestGateway,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Value) {
    let mut request = client()
        .post(gateway.url("/mcp"))
        .bearer_auth("sk-up-all")
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let response = request.send().await.unwrap();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let answer = crate::common::sse_data(&text)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or(Value::Null);
    (session, answer)
}

#[tokio::test]
async fn a_server_that_never_comes_up_offers_nothing_while_the_others_serve() {
    // Nothing listens on this port.
    let gateway = TestGateway::start(&config(free_port())).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (session, opened) = rpc(&gateway, None, initialize).await;
    let session = session.unwrap();
    assert_eq!(
        opened["result"]["capabilities"]["tools"]["listChanged"], true,
        "{opened}"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let names = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (_, listed) = rpc(&gateway, Some(&session), list.clone()).await;
            let names: Vec<String> = listed["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            if names.iter().any(|n| n == "local__echo") {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the stdio upstream's tools appear");
    assert!(names.iter().all(|n| !n.starts_with("up__")), "{names:?}");

    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "up__echo", "arguments": {"text": "x"}}});
    let (_, called) = rpc(&gateway, Some(&session), call).await;
    assert_eq!(called["result"]["isError"], true, "{called}");
    let text = called["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("'up' is unavailable"), "{text}");
    gateway.stop().await;
}

/// The names `tools/list` gives the session.
async fn tool_names(gateway: &TestGateway, session: &str) -> Vec<String> {
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, listed) = rpc(gateway, Some(session), list).await;
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `prefix: ""` offers a server's names unchanged and a `prefix` replaces `{server}__`; where two
/// unprefixed servers offer one name, the first configured serves it; the gateway's own tools
/// are never shadowed; and a registration cannot take a name an upstream offers (409 naming it).
#[tokio::test]
async fn prefixes_name_upstream_tools_and_the_first_configured_owner_serves_a_shared_name() {
    let port = free_port();
    // The HTTP server's `echo` is `echo_v2`: listed, it says that server is up.
    let mut upstream = http_upstream_version(port, true).await;
    let python = python().display().to_string();
    let gateway = TestGateway::start(&format!(
        r#"
server: {{ admin_key: sk-up-admin }}
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  tools:
    - {{ name: add, input_schema: {{ type: object }}, http: {{ url: "http://127.0.0.1:9/" }} }}
  servers:
    - {{ name: up, prefix: "", url: "http://127.0.0.1:{port}/mcp", headers: {{ authorization: "{UPSTREAM_AUTH}" }} }}
    - {{ name: local, prefix: "", command: {python:?}, args: [{FAKE:?}, stdio] }}
    - {{ name: other, prefix: "o.", command: {python:?}, args: [{FAKE:?}, stdio] }}
"#
    ))
    .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (session, initialized) = rpc(&gateway, None, initialize).await;
    let session = session.unwrap();
    let capabilities = &initialized["result"]["capabilities"];
    assert_eq!(
        capabilities["prompts"]["listChanged"], true,
        "{initialized}"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;
    crate::common::eventually("every server's tools", async || {
        let names = tool_names(&gateway, &session).await;
        ["echo_v2", "echo", "o.echo"]
            .iter()
            .all(|n| names.contains(&(*n).to_owned()))
    })
    .await;
    let names = tool_names(&gateway, &session).await;
    for name in ["echo", "echo_v2", "seen_auth", "count", "o.echo", "o.count"] {
        assert_eq!(
            names.iter().filter(|n| *n == name).count(),
            1,
            "{name}: {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n.contains("__")), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "add").count(), 1, "{names:?}");

    let call = |id: u64, name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
    };
    // Both unprefixed servers offer `seen_auth`; the first configured (HTTP, which saw the
    // configured credential) answers.
    let (_, seen) = rpc(&gateway, Some(&session), call(3, "seen_auth", json!({}))).await;
    assert_eq!(
        seen["result"]["structuredContent"]["result"],
        json!([UPSTREAM_AUTH]),
        "{seen}"
    );
    let (_, echoed) = rpc(
        &gateway,
        Some(&session),
        call(4, "o.echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(echoed["result"]["content"][0]["text"], "hi", "{echoed}");
    // `add` is the gateway's own tool (an HTTP tool whose service is down), not an upstream's.
    let (_, added) = rpc(
        &gateway,
        Some(&session),
        call(5, "add", json!({"a": 1, "b": 2})),
    )
    .await;
    assert_eq!(added["result"]["isError"], true, "{added}");

    let register = |name: &str| {
        client()
            .post(gateway.url("/admin/tools"))
            .bearer_auth("sk-up-admin")
            .json(&json!({"name": name, "input_schema": {"type": "object"},
                          "http": {"url": "http://127.0.0.1:9/"}, "ttl": "10m"}))
            .send()
    };
    let taken = register("echo_v2").await.unwrap();
    assert_eq!(taken.status(), 409);
    let body: Value = taken.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("'echo_v2'") && message.contains("'up'"),
        "{body}"
    );
    let under = register("o.mine").await.unwrap();
    assert_eq!(under.status(), 409);
    let body: Value = under.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'other'"),
        "{body}"
    );
    assert_eq!(register("mine").await.unwrap().status(), 201);
    let _ = upstream.kill().await;
}

/// A reload connects the servers it adds and disconnects those it removes, swaps the YAML
/// tools, keeps the tools registered at run time, and open sessions hear `list_changed`.
#[tokio::test]
async fn a_reload_connects_added_servers_drops_removed_ones_and_sessions_hear_it() {
    let python = python().display().to_string();
    let config = |server: &str, tool: &str| {
        format!(
            r#"
server: {{ admin_key: sk-up-admin }}
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  tools:
    - {{ name: {tool}, input_schema: {{ type: object }}, http: {{ url: "http://127.0.0.1:9/" }} }}
  servers:
    - name: {server}
      command: {python:?}
      args: [{FAKE:?}, stdio]
"#
        )
    };
    let gateway = TestGateway::start_reloadable(&config("local", "yaml_before")).await;
    let registered = client()
        .post(gateway.url("/admin/tools"))
        .bearer_auth("sk-up-admin")
        .json(
            &json!({"name": "kept_tool", "input_schema": {"type": "object"},
                      "http": {"url": "http://127.0.0.1:9/"}, "ttl": "10m"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let session = rpc(&gateway, None, initialize).await.0.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;
    crate::common::eventually("the stdio server's tools", async || {
        tool_names(&gateway, &session)
            .await
            .contains(&"local__echo".to_owned())
    })
    .await;
    let mut events = client()
        .get(gateway.url("/mcp"))
        .bearer_auth("sk-up-all")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);

    gateway.write_config(&config("other", "yaml_after"));
    let reloaded = client()
        .post(gateway.url("/admin/reload"))
        .bearer_auth("sk-up-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Some(chunk) = events.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(heard, Ok(true), "the session heard of the reload");
    crate::common::eventually("the added server's tools", async || {
        tool_names(&gateway, &session)
            .await
            .contains(&"other__echo".to_owned())
    })
    .await;
    let names = tool_names(&gateway, &session).await;
    assert!(names.iter().all(|n| !n.starts_with("local__")), "{names:?}");
    assert!(names.contains(&"yaml_after".to_owned()), "{names:?}");
    assert!(!names.contains(&"yaml_before".to_owned()), "{names:?}");
    assert!(names.contains(&"kept_tool".to_owned()), "{names:?}");
}

/// A tool call is bounded by `call_timeout`, not by the health `timeout`: an 8 s call with a 5 s
/// health timeout completes, while a server that stops answering (SIGSTOP) is still withdrawn.
/// (The health timeout leaves the pings of a loaded CI machine room: at 3 s one was missed.)
#[tokio::test]
async fn a_long_tool_call_outlives_the_health_timeout_and_a_stopped_server_is_withdrawn() {
    let port = free_port();
    let mut upstream = http_upstream(port).await;
    let python = python().display().to_string();
    let gateway = TestGateway::start(&format!(
        r#"
keys:
  - {{ name: all, key: sk-up-all }}
mcp:
  servers:
    - {{ name: up, url: "http://127.0.0.1:{port}/mcp", headers: {{ authorization: "{UPSTREAM_AUTH}" }}, timeout: 2s, ping_interval: 500ms }}
    - {{ name: local, command: {python:?}, args: [{FAKE:?}, stdio], timeout: 5s, ping_interval: 1s }}
"#
    ))
    .await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let session = rpc(&gateway, None, initialize).await.0.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;
    crate::common::eventually("both servers' tools", async || {
        let names = tool_names(&gateway, &session).await;
        names.contains(&"up__echo".to_owned()) && names.contains(&"local__sleep".to_owned())
    })
    .await;

    // The client's own session on the stdio server (a process of its own) is opened by a short
    // call first, so the long call measures the call alone: a loaded machine can take longer
    // than the 5 s timeout to start a Python server, and that call then answers "unavailable".
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let short = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                               "params": {"name": "local__sleep", "arguments": {"seconds": 0}}});
            let (_, answered) = rpc(&gateway, Some(&session), short).await;
            if answered["result"]["isError"] == false {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a session on the stdio server");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "local__sleep", "arguments": {"seconds": 8}}});
    let long = rpc(&gateway, Some(&session), call);
    let stopped = async {
        let pid = upstream.id().unwrap().to_string();
        let stop = Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .await
            .unwrap();
        assert!(stop.success());
        crate::common::eventually("the stopped server withdrawn", async || {
            !tool_names(&gateway, &session)
                .await
                .contains(&"up__echo".to_owned())
        })
        .await;
        let resume = Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .await
            .unwrap();
        assert!(resume.success());
    };
    let ((_, answered), ()) = tokio::join!(long, stopped);
    assert_eq!(answered["result"]["isError"], false, "{answered}");
    assert_eq!(
        answered["result"]["content"][0]["text"], "slept 8.0",
        "{answered}"
    );
    let _ = upstream.kill().await;
}

/// A client whose response stream breaks mid-call resumes the gateway's stream with
/// `Last-Event-ID` and hears the call's answer: the call went on meanwhile.
#[tokio::test]
async fn a_client_resumes_the_gateways_stream_after_a_break_and_hears_the_answer() {
    let port = free_port();
    let _upstream = http_upstream(port).await;
    let gateway = TestGateway::start(&config(port)).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let (session, _) = rpc(&gateway, None, initialize).await;
    let session = session.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    rpc(&gateway, Some(&session), initialized).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while !tool_names(&gateway, &session)
            .await
            .iter()
            .any(|n| n == "up__sleep")
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the HTTP upstream's tools are listed");

    let post = |body: Value| {
        client()
            .post(gateway.url("/mcp"))
            .bearer_auth("sk-up-all")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body)
    };
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": "up__sleep", "arguments": {"seconds": 1}}});
    let mut response = post(call).send().await.unwrap();
    // The stream's first event (its priming event) names where it stands; then it breaks.
    let mut seen = String::new();
    let last_id = loop {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("an event before the answer");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        let id = seen
            .lines()
            .find_map(|l| l.strip_prefix("id:"))
            .map(|i| i.trim().to_owned());
        if let Some(id) = id {
            break id;
        }
    };
    assert!(
        !seen.contains("slept"),
        "the answer came before the break: {seen}"
    );
    drop(response);

    let mut resumed = client()
        .get(gateway.url("/mcp"))
        .bearer_auth("sk-up-all")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", &last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let mut heard = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !heard.contains("slept 1") {
            let chunk = resumed
                .chunk()
                .await
                .unwrap()
                .expect("the resumed stream goes on");
            heard.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer on the resumed stream: {heard}"));
    let answer = crate::common::sse_data(&heard)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m["id"] == 7)
        .unwrap_or_else(|| panic!("the answer to 7 in {heard}"));
    assert_eq!(answer["result"]["content"][0]["text"], "slept 1.0");
    gateway.stop().await;
}
