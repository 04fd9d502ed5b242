//! Every provider adapter runs the same scenarios through the gateway, from one list: a scenario
//! is a function over a [`Kind`], and `scenarios!` makes one test of each scenario for each
//! provider in its row. Each fake holds the gateway to its provider's documented wire format, so a scenario
//! passing means the translation both ways is right for that provider.
//!
//! What is particular to one provider (its request fields, media, ids, embeddings) stays in that
//! provider's own test file.

use serde_json::{Value, json};

use crate::common::{
    TestGateway, client, fake_anthropic, fake_azure, fake_bedrock, fake_cohere, fake_gemini,
    fake_mistral, fake_openai, finish_reasons, sse_data, text_of,
};

/// A provider behind the gateway, each through its fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    OpenAi,
    Anthropic,
    Gemini,
    Cohere,
    Mistral,
    Azure,
    Bedrock,
}

/// A gateway in front of one fake, which lives as long as it does.
struct Running {
    gateway: TestGateway,
    /// The credential the fake echoes in its errors, which must never reach the client.
    secret: &'static str,
    _fake: Box<dyn std::any::Any + Send>,
}

impl Kind {
    /// Starts the fake and a gateway with it as provider `p`; `p/<behaviour>` picks what the
    /// fake does.
    async fn start(self) -> Running {
        let (provider, secret, fake): (String, &str, Box<dyn std::any::Any + Send>) = match self {
            Kind::OpenAi => {
                let fake = fake_openai::FakeOpenAi::start().await;
                let yaml = http_yaml("openai", &fake.base_url(), fake_openai::KEY);
                (yaml, fake_openai::KEY, Box::new(fake))
            }
            Kind::Anthropic => {
                let fake = fake_anthropic::FakeAnthropic::start().await;
                let yaml = http_yaml("anthropic", &fake.base_url(), fake_anthropic::KEY);
                (yaml, fake_anthropic::KEY, Box::new(fake))
            }
            Kind::Gemini => {
                let fake = fake_gemini::FakeGemini::start().await;
                let yaml = http_yaml("gemini", &fake.base_url(), fake_gemini::KEY);
                (yaml, fake_gemini::KEY, Box::new(fake))
            }
            Kind::Cohere => {
                let fake = fake_cohere::FakeCohere::start().await;
                let yaml = http_yaml("cohere", &fake.base_url(), fake_cohere::KEY);
                (yaml, fake_cohere::KEY, Box::new(fake))
            }
            Kind::Mistral => {
                let fake = fake_mistral::FakeMistral::start().await;
                let yaml = http_yaml("mistral", &fake.base_url(), fake_mistral::KEY);
                (yaml, fake_mistral::KEY, Box::new(fake))
            }
            Kind::Azure => {
                let fake = fake_azure::FakeAzure::start().await;
                let yaml = format!(
                    "{{ kind: azure, base_url: \"{}\", api_key: \"{}\", api_version: \"{}\" }}",
                    fake.base_url(),
                    fake_azure::KEY,
                    fake_azure::API_VERSION
                );
                (yaml, fake_azure::KEY, Box::new(fake))
            }
            Kind::Bedrock => {
                let fake = fake_bedrock::FakeBedrock::start().await;
                (fake.provider_yaml(), fake_bedrock::SECRET, Box::new(fake))
            }
        };
        let gateway = TestGateway::start(&format!("providers:\n  p: {provider}\n")).await;
        Running {
            gateway,
            secret,
            _fake: fake,
        }
    }

    /// The provider a test module is named for.
    fn named(name: &str) -> Kind {
        match name {
            "openai" => Kind::OpenAi,
            "anthropic" => Kind::Anthropic,
            "gemini" => Kind::Gemini,
            "cohere" => Kind::Cohere,
            "mistral" => Kind::Mistral,
            "azure" => Kind::Azure,
            "bedrock" => Kind::Bedrock,
            other => panic!("no provider named {other}"),
        }
    }
}

fn http_yaml(kind: &str, base_url: &str, key: &str) -> String {
    format!("{{ kind: {kind}, base_url: \"{base_url}\", api_key: \"{key}\" }}")
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

fn request(behaviour: &str) -> Value {
    json!({"model": format!("p/{behaviour}"), "messages": [{"role": "user", "content": "Hi"}]})
}

async fn post(running: &Running, body: &Value) -> (u16, String) {
    let response = client()
        .post(running.gateway.url("/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    assert!(
        !text.contains(running.secret),
        "the provider's credential reached the client: {text}"
    );
    (status, text)
}

async fn whole(running: &Running, body: Value) -> Value {
    let (status, text) = post(running, &body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON answer")
}

/// A streamed answer's chunks, and whether it ended with `[DONE]`.
async fn streamed(running: &Running, mut body: Value) -> (Vec<Value>, bool) {
    body["stream"] = json!(true);
    let (status, text) = post(running, &body).await;
    assert_eq!(status, 200, "{text}");
    let data = sse_data(&text);
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("each event is JSON"))
        .collect();
    (chunks, done)
}

/// The chunks that carry a choice: Azure's prompt-filter annotations (no choices) and the usage
/// chunk are relayed too, but are no part of the answer.
fn with_choices(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .filter(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
        .collect()
}

/// The calls a stream spells out, by index: (id, name, arguments).
fn streamed_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for call in chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
    {
        let index = call["index"]
            .as_u64()
            .expect("every call delta has an index") as usize;
        if calls.len() <= index {
            calls.resize(index + 1, Default::default());
        }
        let entry = &mut calls[index];
        if let Some(id) = call["id"].as_str() {
            entry.0.push_str(id);
        }
        if let Some(name) = call["function"]["name"].as_str() {
            entry.1.push_str(name);
        }
        if let Some(arguments) = call["function"]["arguments"].as_str() {
            entry.2.push_str(arguments);
        }
    }
    calls
}

fn assert_usage(usage: &Value) {
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt_tokens");
    let completion = usage["completion_tokens"]
        .as_u64()
        .expect("completion_tokens");
    assert!(prompt > 0 && completion > 0, "{usage}");
    assert_eq!(usage["total_tokens"], prompt + completion, "{usage}");
}

async fn plain_text(kind: Kind) {
    let running = kind.start().await;
    let answer = whole(&running, request("ok")).await;
    assert_eq!(answer["object"], "chat.completion");
    let choice = &answer["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap_or_default();
    assert!(!content.is_empty(), "{answer}");
    assert_eq!(choice["finish_reason"], "stop");
    assert_usage(&answer["usage"]);
}

async fn streamed_text(kind: Kind) {
    let running = kind.start().await;
    let (chunks, done) = streamed(&running, request("ok")).await;
    assert!(done, "the stream ends with [DONE]");
    let answer = with_choices(&chunks);
    assert!(
        answer
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(answer[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(!text_of(&chunks).is_empty());
    assert_eq!(finish_reasons(&chunks), ["stop"]);
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "no usage unless asked"
    );
}

async fn streamed_usage_when_asked(kind: Kind) {
    let running = kind.start().await;
    let mut body = request("ok");
    body["stream_options"] = json!({"include_usage": true});
    let (chunks, done) = streamed(&running, body).await;
    assert!(done);
    let last = chunks.last().expect("chunks");
    assert_eq!(
        last["choices"],
        json!([]),
        "usage comes in a chunk of its own"
    );
    assert_usage(&last["usage"]);
}

async fn streamed_tool_call(kind: Kind) {
    let running = kind.start().await;
    let mut body = request("ok");
    body["tools"] = weather_tool();
    let (chunks, done) = streamed(&running, body).await;
    assert!(done);
    let calls = streamed_calls(&chunks);
    assert_eq!(calls.len(), 1, "{chunks:?}");
    let (id, name, arguments) = &calls[0];
    assert!(!id.is_empty());
    assert_eq!(name, "get_weather");
    let arguments: Value = serde_json::from_str(arguments).expect("arguments are JSON");
    assert_eq!(arguments, json!({"city": "Paris"}));
    assert_eq!(finish_reasons(&chunks), ["tool_calls"]);
}

async fn parallel_tool_calls(kind: Kind) {
    let running = kind.start().await;
    let mut body = request("parallel");
    body["tools"] = weather_tool();
    let answer = whole(&running, body).await;
    let choice = &answer["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{answer}");
    assert_ne!(calls[0]["id"], calls[1]["id"], "each call has its own id");
    let cities: Vec<Value> = calls
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "function");
            assert_eq!(c["function"]["name"], "get_weather");
            let arguments = c["function"]["arguments"].as_str().expect("a string");
            serde_json::from_str::<Value>(arguments).expect("JSON")["city"].clone()
        })
        .collect();
    assert_eq!(cities, [json!("Paris"), json!("Tokyo")]);
}

/// The client's own mistake keeps its status; a rate limit is retried once the provider's hold
/// passes, then answered 429; anything else is retried, then answered 503. Every
/// answer is in OpenAI's shape and scrubbed of the credential the provider echoed. Each class
/// gets a gateway of its own, as failures of one would open the instance's breaker for the next.
async fn error_classes(kind: Kind) {
    for (upstream, expected) in [(400, 400), (401, 503), (429, 429), (500, 503), (503, 503)] {
        let running = kind.start().await;
        let (status, text) = post(&running, &request(&format!("error-{upstream}"))).await;
        assert_eq!(status, expected, "upstream {upstream}: {text}");
        let body: Value = serde_json::from_str(&text).expect("JSON error");
        let error = &body["error"];
        for field in ["message", "type", "param", "code"] {
            assert!(error.get(field).is_some(), "{field} missing: {body}");
        }
        let message = error["message"].as_str().expect("a message");
        assert!(message.contains("<redacted>"), "{message}");
        match upstream {
            // OpenAI-compatible upstreams' own types pass through; the others are translated.
            400 => assert!(
                error["type"].as_str().is_some_and(|t| !t.is_empty()),
                "{body}"
            ),
            401 => assert!(
                message.contains("refused the gateway's credentials"),
                "{message}"
            ),
            429 => assert_eq!(error["code"], "rate_limit_exceeded", "{body}"),
            _ => assert_eq!(error["code"], "upstream_unavailable", "{body}"),
        }
    }
}

async fn cut_stream_ends_with_an_error_event(kind: Kind) {
    let running = kind.start().await;
    let (chunks, done) = streamed(&running, request("cut")).await;
    assert!(!done, "a cut stream is not complete");
    assert!(
        chunks.last().expect("chunks")["error"]["message"].is_string(),
        "{chunks:?}"
    );
    let answer = with_choices(&chunks);
    assert_eq!(answer[0]["choices"][0]["delta"]["role"], "assistant");
}

async fn unknown_events_are_skipped(kind: Kind) {
    let running = kind.start().await;
    let (chunks, done) = streamed(&running, request("unknown-event")).await;
    assert!(done);
    assert!(!text_of(&chunks).is_empty());
    assert_eq!(finish_reasons(&chunks), ["stop"]);
}

async fn a_refusal_is_a_content_filter(kind: Kind) {
    let running = kind.start().await;
    let answer = whole(&running, request("refusal")).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "content_filter");
    let (chunks, done) = streamed(&running, request("refusal")).await;
    assert!(done);
    assert_eq!(finish_reasons(&chunks), ["content_filter"]);
}

/// One module per scenario, one test per provider in its row: `providers::streamed_text::gemini`.
macro_rules! scenarios {
    ($($scenario:ident: [$($provider:ident),* $(,)?];)*) => {$(
        mod $scenario {
            $(
                #[tokio::test]
                async fn $provider() {
                    super::$scenario(super::Kind::named(stringify!($provider))).await;
                }
            )*
        }
    )*};
}

scenarios! {
    plain_text: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    streamed_text: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    streamed_usage_when_asked: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    streamed_tool_call: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    parallel_tool_calls: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    error_classes: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    cut_stream_ends_with_an_error_event: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    unknown_events_are_skipped: [openai, anthropic, gemini, cohere, mistral, azure, bedrock];
    // Mistral documents no safety stop.
    a_refusal_is_a_content_filter: [openai, anthropic, gemini, cohere, azure, bedrock];
}
