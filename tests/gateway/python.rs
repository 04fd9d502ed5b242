//! The official `openai` Python SDK against the gateway: what users actually run.
//!
//! The interpreter is `$SWITCHBOARD_PYTHON`, else the `.venv` that the test script creates.

use std::path::PathBuf;
use std::process::Command;

use crate::common::TestGateway;

use crate::common::python;

/// Runs a script on a blocking thread, so the in-process gateway keeps serving meanwhile.
async fn run_script(script: &'static str, gateway: &TestGateway, key: &'static str) {
    run_script_with(script, gateway, key, &[]).await;
}

async fn run_script_with(
    script: &'static str,
    gateway: &TestGateway,
    key: &'static str,
    env: &[(&'static str, String)],
) {
    let base_url = gateway.url("/v1");
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || run_blocking(script, &base_url, key, &env))
        .await
        .unwrap();
}

/// Runs a script with only the environment given: for gateways a test started as processes.
pub async fn run_script_env(script: &'static str, env: &[(&'static str, String)]) {
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || run_blocking(script, "", "", &env))
        .await
        .unwrap();
}

fn run_blocking(script: &str, base_url: &str, key: &str, env: &[(&str, String)]) {
    let python = python();
    assert!(
        python.exists(),
        "{} not found: run ./scripts/test.sh, which creates the venv with the openai SDK",
        python.display()
    );
    // A bare name is a test script; a path (`examples/chat.py`) is from the repository's root.
    let folder = if script.contains('/') {
        ""
    } else {
        "tests/python/"
    };
    let path = format!("{}/{folder}{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&path)
        .env("SWITCHBOARD_BASE_URL", base_url)
        .env("SWITCHBOARD_KEY", key)
        .envs(env.iter().map(|(k, v)| (k, v)))
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

#[tokio::test]
async fn openai_sdk_cannot_tell_which_provider_answered() {
    use crate::common::{
        fake_anthropic::FakeAnthropic, fake_azure::FakeAzure, fake_bedrock::FakeBedrock,
        fake_cohere::FakeCohere, fake_gemini::FakeGemini, fake_mistral::FakeMistral,
    };
    let anthropic = FakeAnthropic::start().await;
    let gemini = FakeGemini::start().await;
    let cohere = FakeCohere::start().await;
    let mistral = FakeMistral::start().await;
    let azure = FakeAzure::start().await;
    let bedrock = FakeBedrock::start().await;
    let gateway = TestGateway::start(&format!(
        r#"
providers:
  anthropic: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}
  gemini: {{ kind: gemini, base_url: "{}", api_key: "{}" }}
  cohere: {{ kind: cohere, base_url: "{}", api_key: "{}" }}
  mistral: {{ kind: mistral, base_url: "{}", api_key: "{}" }}
  azure: {{ kind: azure, base_url: "{}", api_key: "{}" }}
  bedrock: {}
keys:
  - {{ name: sdk, key: sk-sdk-providers }}
"#,
        anthropic.base_url(),
        crate::common::fake_anthropic::KEY,
        gemini.base_url(),
        crate::common::fake_gemini::KEY,
        cohere.base_url(),
        crate::common::fake_cohere::KEY,
        mistral.base_url(),
        crate::common::fake_mistral::KEY,
        azure.base_url(),
        crate::common::fake_azure::KEY,
        bedrock.provider_yaml(),
    ))
    .await;
    let providers = "anthropic,gemini,cohere,mistral,azure,bedrock".to_owned();
    run_script_with(
        "test_providers_sdk.py",
        &gateway,
        "sk-sdk-providers",
        &[("SWITCHBOARD_MODELS", providers)],
    )
    .await;
}

/// The shipped config.yaml, with its state in a temporary directory and an admin key; the gateway
/// a newcomer runs with `cargo run --release`.
async fn shipped_gateway() -> (TestGateway, PathBuf) {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .expect("the shipped config.yaml");
    let data_dir = crate::common::temp_dir();
    let config = shipped
        .replace(
            "data_dir: ${SWITCHBOARD_DATA_DIR:-./data}",
            &format!("data_dir: {:?}", data_dir.display().to_string()),
        )
        .replace("${SWITCHBOARD_ADMIN_KEY:-}", "dev-admin-key");
    assert!(
        config.contains("dev-admin-key") && config.contains(&*data_dir.display().to_string()),
        "the shipped config names its admin key and data_dir as expected"
    );
    (TestGateway::start(&config).await, data_dir)
}

/// The examples, against the shipped config, exactly as the README runs them.
#[tokio::test]
async fn the_examples_run_against_the_shipped_config() {
    let (gateway, data_dir) = shipped_gateway().await;
    run_script("examples/chat.py", &gateway, "no-key-needed").await;
    run_script("examples/anthropic_chat.py", &gateway, "no-key-needed").await;
    run_script("examples/mcp_client.py", &gateway, "no-key-needed").await;
    let env = [
        ("SWITCHBOARD_ADMIN_KEY", "dev-admin-key".to_owned()),
        ("SWITCHBOARD_RENEWALS", "2".to_owned()),
    ];
    run_script_with("examples/service.py", &gateway, "no-key-needed", &env).await;
    // What the service left behind: its tool registered, its context shared.
    let tools: serde_json::Value = crate::common::client()
        .get(gateway.url("/admin/tools"))
        .bearer_auth("dev-admin-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tools.to_string().contains("price_of"), "{tools}");
    let menu: serde_json::Value = crate::common::client()
        .get(gateway.url("/v1/context/menu/today"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(menu["currency"], "EUR", "{menu}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The gateway config behind `test_anthropic_sdk.py`: model `claude` served by `provider`, the
/// SDK's key, and a key allowed one request a minute.
fn anthropic_sdk_config(provider: &str, model: &str) -> String {
    format!(
        r#"
providers:
  demo: {{ kind: mock }}
{provider}
models:
  - {{ name: claude, targets: [ {{ provider: upstream, model: {model} }} ] }}
keys:
  - {{ name: sdk, key: sk-sdk-messages }}
  - {{ name: limited, key: sk-sdk-limited, limits: {{ requests_per_minute: 1 }} }}
"#
    )
}

async fn anthropic_sdk(scenario: &str, provider: &str, model: &str) {
    let gateway = TestGateway::start(&anthropic_sdk_config(provider, model)).await;
    let env = [
        ("SCENARIO", scenario.to_owned()),
        ("LIMITED_KEY", "sk-sdk-limited".to_owned()),
    ];
    run_script_with("test_anthropic_sdk.py", &gateway, "sk-sdk-messages", &env).await;
}

#[tokio::test]
async fn anthropic_sdk_messages_against_the_mock() {
    anthropic_sdk("mock", "  upstream: { kind: mock }", "mock-claude").await;
}

#[tokio::test]
async fn anthropic_sdk_messages_against_anthropic_natively() {
    let fake = crate::common::fake_anthropic::FakeAnthropic::start().await;
    let provider = format!(
        r#"  upstream: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}"#,
        fake.base_url(),
        crate::common::fake_anthropic::KEY
    );
    anthropic_sdk("anthropic", &provider, "ok").await;
    // Every body reached Anthropic as the SDK wrote it but for the model.
    let received = fake.received();
    assert!(received.len() >= 8, "{}", received.len());
    for request in &received {
        assert_eq!(request.body["model"], "ok", "{}", request.raw);
    }
    let system = &received[0].body["system"][0];
    assert_eq!(system["cache_control"]["type"], "ephemeral", "{system}");
}

#[tokio::test]
async fn anthropic_sdk_messages_against_an_openai_compatible_server() {
    let fake = crate::common::fake_openai::FakeOpenAi::start().await;
    let provider = format!(
        r#"  upstream: {{ kind: openai, base_url: "{}", api_key: "{}" }}"#,
        fake.base_url(),
        crate::common::fake_openai::KEY
    );
    anthropic_sdk("openai", &provider, "ok").await;
    let received = fake.received();
    let first = &received[0].body;
    assert_eq!(first["messages"][0]["role"], "system", "{first}");
    assert_eq!(first["messages"][0]["content"], "Be brief.", "{first}");
    assert_eq!(first["max_tokens"], 64, "{first}");
    // The tool's result went back as a tool message under the call's own id.
    let after = received
        .iter()
        .find(|r| r.body["messages"].as_array().is_some_and(|m| m.len() == 3))
        .expect("the tool round trip");
    let messages = &after.body["messages"];
    let id = messages[1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_call_id"], id);
    assert_eq!(messages[2]["content"], "18C and sunny");
}

async fn responses_sdk(scenario: &str, provider: &str, model: &str) -> TestGateway {
    let gateway = TestGateway::start(&format!(
        r#"
providers:
{provider}
models:
  - {{ name: agent, targets: [ {{ provider: upstream, model: {model} }} ] }}
keys:
  - {{ name: sdk, key: sk-sdk-responses }}
  - {{ name: other, key: sk-sdk-other }}
"#
    ))
    .await;
    let env = [
        ("SCENARIO", scenario.to_owned()),
        ("OTHER_KEY", "sk-sdk-other".to_owned()),
    ];
    run_script_with("test_responses_sdk.py", &gateway, "sk-sdk-responses", &env).await;
    gateway
}

#[tokio::test]
async fn openai_sdk_responses_against_the_mock() {
    responses_sdk("mock", "  upstream: { kind: mock }", "mock-agent").await;
}

#[tokio::test]
async fn openai_sdk_responses_against_an_openai_compatible_server() {
    let fake = crate::common::fake_openai::FakeOpenAi::start().await;
    let provider = format!(
        r#"  upstream: {{ kind: openai, base_url: "{}", api_key: "{}" }}"#,
        fake.base_url(),
        crate::common::fake_openai::KEY
    );
    responses_sdk("openai", &provider, "ok").await;
    let received = fake.received();
    // The instructions led the first request as a system message.
    assert_eq!(received[0].body["messages"][0]["role"], "system");
    assert_eq!(received[0].body["messages"][0]["content"], "Be brief.");
    // The second turn carried the first, stored by the gateway.
    let second = received
        .iter()
        .find(|r| r.body.to_string().contains("What is my name?"))
        .expect("the second turn");
    let messages = second.body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["content"], "My name is Ada.", "{messages:?}");
    assert_eq!(messages[1]["role"], "assistant", "{messages:?}");
    assert_eq!(messages[2]["content"], "What is my name?", "{messages:?}");
    // The function's output went back as a tool message under the call's id.
    let result = received
        .iter()
        .find(|r| r.body.to_string().contains("18C and sunny"))
        .expect("the call's output");
    let messages = result.body["messages"].as_array().unwrap();
    let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
    let call = &messages[messages.len() - 2]["tool_calls"][0];
    assert_eq!(tool["tool_call_id"], call["id"]);
    // Built-in tools never reached the provider.
    assert!(
        !received
            .iter()
            .any(|r| r.body.to_string().contains("web_search"))
    );
}

#[tokio::test]
async fn openai_sdk_responses_passed_through_to_openai() {
    let fake = crate::common::fake_openai::FakeOpenAi::start().await;
    let provider = format!(
        r#"  upstream: {{ kind: openai, base_url: "{}", api_key: "{}", responses_api: true }}"#,
        fake.base_url(),
        crate::common::fake_openai::KEY
    );
    responses_sdk("openai-native", &provider, "ok").await;
    let received = fake.received();
    // Every request went to the Responses API as the SDK wrote it, the model aside.
    assert!(received.iter().all(|r| r.path == "/v1/responses"));
    let first = &received[0];
    assert_eq!(first.body["instructions"], "Be brief.");
    assert_eq!(
        first.raw.replace(r#""model":"ok""#, r#""model":"agent""#),
        serde_json::to_string(&first.body)
            .unwrap()
            .replace(r#""model":"ok""#, r#""model":"agent""#),
        "the body is the SDK's JSON, unchanged"
    );
    // The second turn named the first for OpenAI to find; the gateway sent no history.
    let second = received
        .iter()
        .find(|r| r.raw.contains("What is my name?"))
        .expect("the second turn");
    assert!(second.body["previous_response_id"].is_string());
    assert!(!second.raw.contains("My name is Ada."));
    // The built-in tools reached the provider.
    assert!(received.iter().any(|r| r.raw.contains("web_search")));
}

#[tokio::test]
async fn openai_sdk_responses_against_anthropic() {
    let fake = crate::common::fake_anthropic::FakeAnthropic::start().await;
    let provider = format!(
        r#"  upstream: {{ kind: anthropic, base_url: "{}", api_key: "{}" }}"#,
        fake.base_url(),
        crate::common::fake_anthropic::KEY
    );
    responses_sdk("anthropic", &provider, "ok").await;
    let first = &fake.received()[0].body;
    assert_eq!(first["system"][0]["text"], "Be brief.", "{first}");
}
