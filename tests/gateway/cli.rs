//! The `switchboard` binary itself: `check`, serving, graceful shutdown and what it logs.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::process::{BIN, Process};
use crate::common::{client, sse_data};

fn write_config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_shipped_config() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml");
    let output = Command::new(BIN)
        .args(["check", "--config", shipped])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Flags belong after the subcommand; before it they are refused, not silently dropped in favour
/// of ./config.yaml (a CI step would otherwise pass on the wrong file).
#[test]
fn flags_before_a_subcommand_are_refused() {
    let bad = write_config("flags-first", "providers: {}\nnot_a_section: 1\n");
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&bad)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn check_prints_every_problem_with_its_path_and_exits_1() {
    let path = write_config(
        "check",
        "providers:\n  openai: { kind: openai }\nmodels:\n  - { name: a, targets: [ { provider: openai, model: x } ] }\n  - { name: b, targets: [ { provider: openai, model: x } ] }\n  - { name: c, targets: [ { provider: opnai, model: x } ] }\nkeys:\n  - { name: k }\n",
    );
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            r#"models[2].targets[0].provider: unknown provider "opnai" (did you mean "openai"?)"#
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("keys[0]: needs key or key_sha256"),
        "{stderr}"
    );

    let path = write_config(
        "check-env",
        "providers:\n  openai: { kind: openai, api_key: \"${SWITCHBOARD_TEST_UNSET_VAR}\" }\n",
    );
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("SWITCHBOARD_TEST_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "providers.openai.api_key: environment variable SWITCHBOARD_TEST_UNSET_VAR is not set"
        ),
        "{stderr}"
    );

    let path = write_config("check-yaml", "models: [ {\n");
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

/// What surprised newcomers: `check FILE` without `--config`, a missing file named in full with
/// the flag that names another, units written in the wrong case, a number with no unit, and a
/// shutdown that would cut every stream.
#[test]
fn check_takes_a_positional_file_and_explains_what_trips_newcomers() {
    let good = write_config("positional", "providers:\n  demo: { kind: mock }\n");
    let output = Command::new(BIN).arg("check").arg(&good).output().unwrap();
    assert!(output.status.success(), "{output:?}");

    let empty = std::env::temp_dir().join(format!("switchboard-cli-{}-nofile", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = Command::new(BIN)
        .arg("check")
        .current_dir(&empty)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let searched = empty.join("config.yaml");
    assert!(
        stderr.contains(&searched.display().to_string()) && stderr.contains("--config FILE"),
        "{stderr}"
    );

    let surprising = write_config(
        "units",
        "server: { shutdown_timeout: 0s }\nproviders:\n  demo: { kind: mock }\ncache: { ttl: 10M }\n",
    );
    let output = Command::new(BIN)
        .arg("check")
        .arg(&surprising)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cache.ttl") && stderr.contains("did you mean `m`"),
        "{stderr}"
    );
    let zero = write_config(
        "zero",
        "server: { shutdown_timeout: 0s }\nproviders:\n  demo: { kind: mock }\ncache: { ttl: 10 }\n",
    );
    let output = Command::new(BIN).arg("check").arg(&zero).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cache.ttl") && stderr.contains("10m"),
        "{stderr}"
    );
    let only_zero = write_config(
        "only-zero",
        "server: { shutdown_timeout: 0s }\nproviders:\n  demo: { kind: mock }\n",
    );
    let output = Command::new(BIN)
        .arg("check")
        .arg(&only_zero)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server.shutdown_timeout: must be longer than 0s"),
        "{stderr}"
    );
}

/// Started from another directory, the gateway keeps its state beside its config file, and its
/// first log line says what it serves.
#[tokio::test]
async fn a_relative_data_dir_is_beside_the_config_and_the_start_is_described() {
    let path = write_config(
        "relative",
        "providers:\n  demo: { kind: mock }\nmodels:\n  - { name: fast, targets: [ { provider: demo, model: m } ] }\nkeys:\n  - { name: a, key: sk-relative }\nstate: { data_dir: ./state }\n",
    );
    let elsewhere = std::env::temp_dir();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .current_dir(&elsewhere)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut process = Process::spawn(command);
    let started = process.wait_for(|line| line["message"] == "listening");
    let beside = path.parent().unwrap().join("state");
    assert_eq!(started["config"], path.display().to_string());
    assert_eq!(started["models"], "fast");
    assert_eq!(started["providers"], "demo");
    assert_eq!(
        started["state"],
        format!("embedded in {}", beside.display())
    );
    assert!(
        beside.join("usage.lock").exists(),
        "the state is beside the config"
    );
    process.terminate();
    let (code, _) = process.finish();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn sigterm_drains_a_stream_in_flight_then_exits_0() {
    let path = write_config(
        "drain",
        "providers:\n  demo: { kind: mock, latency: { first_token: 10ms, per_chunk: 150ms } }\nmodels:\n  - { name: slow, targets: [ { provider: demo, model: m } ] }\n",
    );
    let mut process = Process::start(&path, &[("RUST_LOG", "info")]);
    let mut response = client()
        .post(process.url("/v1/chat/completions"))
        .json(&json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "one two three four five six"}]}))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    process.terminate();
    process.wait_for(|line| line["message"] == "shutting down: draining in-flight requests");
    let ready = client().get(process.url("/ready")).send().await;
    assert!(
        ready.is_err() || ready.unwrap().status() == 503,
        "not ready while draining"
    );
    let mut rest = Vec::from(&first[..]);
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    let events = sse_data(&String::from_utf8(rest).unwrap());
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "the stream finished: {events:?}"
    );
    let (code, _) = tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

/// `check` validates the config of a gateway that is running on it: it neither takes the state
/// directory's lock nor writes anything there.
#[tokio::test]
async fn check_runs_beside_a_serving_gateway_and_leaves_its_state_alone() {
    let data_dir = crate::common::temp_dir();
    let state = format!(
        "state: {{ data_dir: {:?} }}\n",
        data_dir.display().to_string()
    );
    let keyed = format!(
        "providers:\n  demo: {{ kind: mock }}\nkeys:\n  - {{ name: a, key: sk-check-a }}\n{state}"
    );
    let path = write_config("check-live", &keyed);
    let fresh = data_dir.join("fresh");
    let untouched = write_config(
        "check-fresh",
        &format!(
            "providers:\n  demo: {{ kind: mock }}\nkeys:\n  - {{ name: a, key: sk-check-a }}\nstate: {{ data_dir: {:?} }}\n",
            fresh.display().to_string()
        ),
    );
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&untouched)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!fresh.exists(), "check created the state directory");

    let process = Process::start(&path, &[]);
    let output = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "check beside a running gateway: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, _) = tokio::task::spawn_blocking(move || {
        process.terminate();
        process.finish()
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0));
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A second signal is an operator who will not wait: the gateway exits at once with 130, even
/// with a stream that would take minutes.
/// `SIGHUP` reloads the file: a good one serves at once, a bad one is logged with its paths and
/// changes nothing.
#[tokio::test]
async fn sighup_reloads_the_config_file() {
    let config = |model: &str| {
        format!(
            "providers:\n  demo: {{ kind: mock }}\nmodels:\n  - {{ name: {model}, targets: [ {{ provider: demo, model: m }} ] }}\n"
        )
    };
    let path = write_config("sighup", &config("before"));
    let mut process = Process::start(&path, &[("RUST_LOG", "info")]);
    let chat = async |process: &Process, model: &str| {
        client()
            .post(process.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
    };
    let hangup = |process: &Process| {
        let sent = Command::new("kill")
            .args(["-HUP", &process.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    std::fs::write(&path, config("after")).unwrap();
    hangup(&process);
    process
        .wait_for(|line| line["message"] == "configuration reloaded" && line["cause"] == "SIGHUP");
    assert_eq!(chat(&process, "after").await, 200);
    assert_eq!(chat(&process, "before").await, 404);

    std::fs::write(&path, config("after").replace("kind: mock", "kind: mok")).unwrap();
    hangup(&process);
    let refused = process.wait_for(|line| {
        line["message"] == "configuration not reloaded" && line["cause"] == "SIGHUP"
    });
    assert!(
        refused["problem"]
            .as_str()
            .unwrap()
            .starts_with("providers.demo.kind"),
        "{refused}"
    );
    assert_eq!(chat(&process, "after").await, 200);
    process.terminate();
    let (code, _) = tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn a_second_sigterm_exits_at_once() {
    let path = write_config(
        "twice",
        "providers:\n  demo: { kind: mock, latency: { per_chunk: 10s } }\nmodels:\n  - { name: slow, targets: [ { provider: demo, model: m } ] }\n",
    );
    let mut process = Process::start(&path, &[("RUST_LOG", "info")]);
    let mut response = client()
        .post(process.url("/v1/chat/completions"))
        .json(&json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "a b c d e f g h i j"}]}))
        .send()
        .await
        .unwrap();
    response.chunk().await.unwrap();
    process.terminate();
    process.wait_for(|line| line["message"] == "shutting down: draining in-flight requests");
    process.terminate();
    let (code, _) = tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(130));
}

#[tokio::test]
async fn logs_never_contain_secrets() {
    let fake = FakeOpenAi::start().await;
    let client_key = "sk-client-key-that-must-not-be-logged";
    let path = write_config(
        "secrets",
        &format!(
            "providers:\n  up: {{ kind: openai, base_url: \"{}\", api_key: \"${{SB_TEST_PROVIDER_KEY}}\", headers: {{ x-secret-header: \"${{SB_TEST_HEADER}}\" }} }}\nmodels:\n  - {{ name: gpt, targets: [ {{ provider: up, model: ok }} ] }}\nkeys:\n  - {{ name: team, key: \"{client_key}\" }}\n",
            fake.base_url()
        ),
    );
    let header_secret = "header-secret-value-42";
    let process = Process::start(
        &path,
        &[
            ("RUST_LOG", "trace"),
            ("SB_TEST_PROVIDER_KEY", KEY),
            ("SB_TEST_HEADER", header_secret),
        ],
    );
    for model in [
        "gpt",
        "up/error-401",
        "up/error-500",
        "up/cut",
        "up/stream-error",
    ] {
        for stream in [false, true] {
            let response = client()
                .post(process.url("/v1/chat/completions"))
                .bearer_auth(client_key)
                .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
                .await
                .unwrap();
            let text = response.text().await.unwrap_or_default();
            assert!(!text.contains(KEY), "{text}");
        }
    }
    assert_eq!(fake.received()[0].headers["x-secret-header"], header_secret);
    process.terminate();
    let (code, log) = tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    let log = log.join("\n");
    assert!(
        log.contains("\"level\":\"TRACE\"") || log.contains("\"level\":\"DEBUG\""),
        "verbose logging was on"
    );
    for secret in [KEY, client_key, header_secret] {
        assert!(!log.contains(secret), "secret {secret} leaked into the log");
    }
    // A failed try is logged with its cause (the provider's message, scrubbed), not only the
    // status the client got.
    assert!(
        log.lines().any(|line| line.contains("try failed")
            && line.contains("fake failure 500 for key")
            && line.contains("up/error-500")),
        "{log}"
    );
}

#[tokio::test]
async fn with_a_proxy_in_the_environment_every_upstream_goes_through_it() {
    // The gateway relays plain-HTTP upstreams itself unless a proxy is configured; then reqwest
    // carries everything, as it does HTTPS. The fake stands in for the proxy: it gets requests
    // in absolute form for a host that does not exist, and answers them by path.
    let fake = FakeOpenAi::start().await;
    let proxy = fake.base_url().trim_end_matches("/v1").to_owned();
    let path = write_config(
        "proxy",
        &format!(
            "server: {{ max_answer: 16KiB }}\nproviders:\n  up: {{ kind: openai, base_url: \"http://llm.upstream.invalid/v1\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: gpt, targets: [ {{ provider: up, model: ok }} ] }}\n"
        ),
    );
    let process = Process::start(&path, &[("HTTP_PROXY", &proxy), ("NO_PROXY", "")]);
    let ask = async |model: &str, stream: bool| {
        client()
            .post(process.url("/v1/chat/completions"))
            .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap()
    };
    let whole = ask("gpt", false).await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "Hello! How can I assist you today?"
    );
    let streamed = ask("gpt", true).await;
    assert_eq!(streamed.status(), 200);
    let events = sse_data(&streamed.text().await.unwrap());
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let received = fake.received();
    assert_eq!(received.len(), 2, "both reached the proxy");
    assert!(received.iter().all(|r| r.path == "/v1/chat/completions"));
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    // reqwest's path bounds an answer as hyper's does.
    let bloated = ask("up/bloated", false).await;
    assert_eq!(bloated.status(), 503);
    let error: Value = bloated.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than 16.0 KiB"), "{message}");
    process.terminate();
    let (code, _) = tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_system_trust_store() {
    // reqwest carries every `https://` upstream. It trusts what the system trusts, which
    // `SSL_CERT_FILE` replaces here with a test CA; the key must never reach a server it cannot
    // verify.
    const TLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/fixtures/tls");
    let fake = FakeOpenAi::start_tls(
        include_bytes!("fixtures/tls/upstream.pem"),
        include_bytes!("fixtures/tls/upstream.key"),
    )
    .await;
    let path = write_config(
        "https",
        &format!(
            "providers:\n  up: {{ kind: openai, base_url: \"https://{}/v1\", api_key: \"{KEY}\" }}\nmodels:\n  - {{ name: gpt, targets: [ {{ provider: up, model: ok }} ] }}\n",
            fake.addr
        ),
    );
    let ask = async |process: &Process, stream: bool| {
        client()
            .post(process.url("/v1/chat/completions"))
            .json(&json!({"model": "gpt", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap()
    };

    let trusting = Process::start(&path, &[("SSL_CERT_FILE", &format!("{TLS}/ca.pem"))]);
    let whole = ask(&trusting, false).await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "Hello! How can I assist you today?"
    );
    let streamed = ask(&trusting, true).await;
    assert_eq!(streamed.status(), 200);
    let events = sse_data(&streamed.text().await.unwrap());
    assert!(events.len() > 2, "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let received = fake.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    drop(trusting);

    let doubting = Process::start(&path, &[("SSL_CERT_FILE", &format!("{TLS}/other-ca.pem"))]);
    let refused = ask(&doubting, false).await;
    assert_eq!(refused.status(), 503, "the only target failed");
    let error: Value = refused.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("TLS with provider 'up' failed: certificate not trusted (unknown issuer)"),
        "{message}"
    );
    assert!(!message.contains(KEY), "{message}");
    assert_eq!(
        fake.received().len(),
        2,
        "nothing was sent to the untrusted server"
    );
}
