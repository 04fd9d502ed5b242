//! Traces exported over OTLP to a real receiver: the suite's collector (`otlp_collector.py`, on
//! the official `opentelemetry-proto` messages) decodes what the gateway sends over HTTP and
//! over gRPC. A retried request is one trace continued from the client's `traceparent`: the
//! request's span with the GenAI attributes and token counts, and a span per try, the failed one
//! with its error; the provider is sent the same trace. Gateways run as processes of their own:
//! the exporter is global to a process.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::fake_openai::{FakeOpenAi, KEY};
use crate::common::process::Process;
use crate::common::{client, python, temp_dir};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
const COLLECTOR_KEY: &str = "sk-collector-0123456789";

/// The collector: its ports, and the spans it prints, as they come.
struct Collector {
    child: Child,
    _stdin: ChildStdin,
    spans: mpsc::Receiver<Value>,
    http: u64,
    grpc: u64,
}

impl Collector {
    fn start() -> Collector {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/otlp_collector.py"
        );
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the collector starts (run scripts/test.sh for the venv)");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ports: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let (sender, spans) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(span) = serde_json::from_str(&line) {
                    let _ = sender.send(span);
                }
            }
        });
        Collector {
            child,
            _stdin: stdin,
            spans,
            http: ports["http"].as_u64().unwrap(),
            grpc: ports["grpc"].as_u64().unwrap(),
        }
    }

    /// The spans of `trace` received until `done` says the trace is complete; panics after 20 s.
    fn trace(&self, trace: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(20);
        let mut spans = Vec::new();
        while !done(&spans) {
            let left = until.saturating_duration_since(Instant::now());
            match self.spans.recv_timeout(left) {
                Ok(span) if span["trace_id"] == trace => spans.push(span),
                Ok(_) => {}
                Err(_) => panic!("the trace is incomplete: {spans:#?}"),
            }
        }
        spans
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(fake: &FakeOpenAi, endpoint: &str, protocol: &str, capture: bool) -> Process {
    let dir = temp_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    let yaml = format!(
        r#"
providers:
  up: {{ kind: openai, base_url: "{}", api_key: {KEY} }}
models:
  - name: m
    targets: [ {{ provider: up, model: fail-first-1 }} ]
    retry: {{ attempts: 3, backoff: 10ms }}
keys:
  - {{ name: team, key: sk-traces-team }}
telemetry:
  service_name: switchboard-under-test
  capture_content: {capture}
  otlp:
    endpoint: "{endpoint}"
    protocol: {protocol}
    headers: {{ x-collector-key: {COLLECTOR_KEY} }}
state: {{ data_dir: {:?} }}
"#,
        fake.base_url(),
        dir.join("data").display().to_string()
    );
    std::fs::write(&config, yaml).unwrap();
    // Spans leave in batches; a short delay keeps the test short.
    Process::start(&config, &[("OTEL_BSP_SCHEDULE_DELAY", "100")])
}

async fn chat(process: &Process) -> reqwest::Response {
    client()
        .post(process.url("/v1/chat/completions"))
        .bearer_auth("sk-traces-team")
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

/// The request's span and its tries, once all three have arrived.
fn complete(spans: &[Value]) -> bool {
    spans.iter().any(|s| s["kind"] == 2) && spans.iter().filter(|s| s["kind"] == 3).count() >= 2
}

#[tokio::test]
async fn a_retried_request_is_one_trace_over_otlp_http_with_genai_attributes() {
    let collector = Collector::start();
    let fake = FakeOpenAi::start().await;
    let endpoint = format!("http://127.0.0.1:{}/v1/traces", collector.http);
    let process = gateway(&fake, &endpoint, "http", false);
    let answer = chat(&process).await;
    assert_eq!(answer.status(), 200);
    // Without an id of its own, the request is known by its trace.
    assert_eq!(answer.headers()["x-request-id"], TRACE);

    let spans = tokio::task::spawn_blocking(move || {
        let spans = collector.trace(TRACE, complete);
        (spans, collector)
    })
    .await
    .unwrap();
    let (spans, _collector) = spans;
    let server = spans.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(
        server["parent_span_id"], CLIENT_SPAN,
        "continued from the client"
    );
    assert_eq!(server["service"], "switchboard-under-test");
    assert_eq!(server["protocol"], "http");
    assert_eq!(server["headers"]["x-collector-key"], COLLECTOR_KEY);
    assert_eq!(server["name"], "POST /v1/chat/completions");
    let attributes = &server["attributes"];
    assert_eq!(attributes["gen_ai.operation.name"], "chat");
    assert_eq!(attributes["gen_ai.request.model"], "m");
    assert_eq!(attributes["gen_ai.response.model"], "fail-first-1");
    assert_eq!(attributes["gen_ai.provider.name"], "up");
    assert_eq!(attributes["switchboard.key"], "team");
    assert_eq!(attributes["http.response.status_code"], 200);
    assert!(
        attributes["gen_ai.usage.input_tokens"].as_i64().unwrap() > 0,
        "{server}"
    );
    assert!(
        attributes["gen_ai.usage.output_tokens"].as_i64().unwrap() > 0,
        "{server}"
    );
    assert_eq!(
        attributes["gen_ai.response.finish_reasons"],
        json!(["stop"])
    );
    assert!(
        !server.to_string().contains("hello there"),
        "no prompt without capture_content"
    );

    let mut tries: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    tries.sort_by_key(|s| s["attributes"]["switchboard.try"].as_i64());
    assert_eq!(tries.len(), 2, "{spans:#?}");
    for (n, attempt) in tries.iter().enumerate() {
        assert_eq!(attempt["parent_span_id"], server["span_id"]);
        assert_eq!(attempt["name"], "chat fail-first-1");
        assert_eq!(attempt["attributes"]["switchboard.try"], n as i64 + 1);
        assert_eq!(attempt["attributes"]["server.address"], "127.0.0.1");
    }
    assert_eq!(
        tries[0]["status"], 2,
        "the failed try is an error: {}",
        tries[0]
    );
    assert_eq!(tries[0]["attributes"]["error.type"], "500");
    assert_eq!(tries[1]["status"], 0);

    // The provider was sent the trace, each try as its parent.
    let received = fake.received();
    assert_eq!(received.len(), 2);
    for (request, attempt) in received.iter().zip(&tries) {
        let traceparent = request.headers["traceparent"].to_str().unwrap();
        let span_id = attempt["span_id"].as_str().unwrap();
        assert_eq!(traceparent, format!("00-{TRACE}-{span_id}-01"));
    }
    process.terminate();
    tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
}

#[tokio::test]
async fn spans_travel_over_otlp_grpc_with_the_configured_metadata_and_content_when_asked() {
    let collector = Collector::start();
    let fake = FakeOpenAi::start().await;
    let endpoint = format!("http://127.0.0.1:{}", collector.grpc);
    let process = gateway(&fake, &endpoint, "grpc", true);
    assert_eq!(chat(&process).await.status(), 200);
    let (spans, _collector) = tokio::task::spawn_blocking(move || {
        let spans = collector.trace(TRACE, complete);
        (spans, collector)
    })
    .await
    .unwrap();
    let server = spans.iter().find(|s| s["kind"] == 2).unwrap();
    assert_eq!(server["protocol"], "grpc");
    assert_eq!(server["headers"]["x-collector-key"], COLLECTOR_KEY);
    assert_eq!(server["attributes"]["gen_ai.request.model"], "m");
    // With capture_content, the prompt and the answer are on the request's span.
    let input = server["attributes"]["gen_ai.input.messages"]
        .as_str()
        .unwrap();
    assert!(input.contains("hello there"), "{input}");
    let output = server["attributes"]["gen_ai.output.messages"]
        .as_str()
        .unwrap();
    assert!(output.contains("content"), "{output}");
    process.terminate();
    tokio::task::spawn_blocking(move || process.finish())
        .await
        .unwrap();
}
