//! The official `openai` Python SDK against the gateway: what users actually run.
//!
//! The interpreter is `$SWITCHBOARD_PYTHON`, else the `.venv` that the test script creates.

use std::path::PathBuf;
use std::process::Command;

use crate::common::TestGateway;

fn python() -> PathBuf {
    std::env::var_os("SWITCHBOARD_PYTHON").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python")),
        PathBuf::from,
    )
}

/// Runs a script on a blocking thread, so the in-process gateway keeps serving meanwhile.
async fn run_script(script: &'static str, gateway: &TestGateway, key: &'static str) {
    let base_url = gateway.url("/v1");
    tokio::task::spawn_blocking(move || run_blocking(script, &base_url, key))
        .await
        .unwrap();
}

fn run_blocking(script: &str, base_url: &str, key: &str) {
    let python = python();
    assert!(
        python.exists(),
        "{} not found: run ./scripts/test.sh, which creates the venv with the openai SDK",
        python.display()
    );
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&path)
        .env("SWITCHBOARD_BASE_URL", base_url)
        .env("SWITCHBOARD_KEY", key)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn openai_sdk_chat_streams_tools_embeddings_models_and_errors() {
    let gateway = TestGateway::start(
        r#"
providers:
  demo: { kind: mock, latency: { per_chunk: 1ms } }
models:
  - { name: fast, targets: [ { provider: demo, model: mock-fast } ] }
  - { name: text-embedding-3-small, targets: [ { provider: demo, model: mock-embed } ] }
  - { name: forbidden, targets: [ { provider: demo, model: mock-x } ] }
keys:
  - { name: sdk, key: sk-sdk-test, models: ["fast", "text-embedding-3-small"] }
  - { name: limited, key: sk-sdk-limited, limits: { requests_per_minute: 1 } }
  - { name: tokens, key: sk-sdk-tokens, limits: { tokens_per_minute: 2000, tokens_per_day: 100 } }
"#,
    )
    .await;
    run_script("test_openai_sdk.py", &gateway, "sk-sdk-test").await;
}

#[tokio::test]
async fn openai_sdk_parses_cached_answers_replayed_as_streams() {
    let gateway = TestGateway::start(
        r#"
providers:
  demo: { kind: mock }
models:
  - { name: fast, targets: [ { provider: demo, model: mock-fast } ] }
keys:
  - { name: sdk, key: sk-sdk-cache }
cache: { ttl: 10m }
"#,
    )
    .await;
    run_script("test_cache_sdk.py", &gateway, "sk-sdk-cache").await;
}
