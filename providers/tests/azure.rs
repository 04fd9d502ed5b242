//! The Azure OpenAI adapter: deployment URLs, `api-version`, the `api-key` header, OpenAI's
//! bodies unchanged, and Azure's content-filter answers and errors.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::azure::{Azure, DEFAULT_API_VERSION};
use switchboard_providers::chat::{ChatRequest, FinishReason};
use switchboard_providers::embeddings::EmbeddingsRequest;
use switchboard_providers::{Adapter, ChatAnswer, Endpoint, ErrorKind, StreamItem};

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "https://my-resource.openai.azure.com".into(),
        api_key: Some("az-test-key".into()),
        headers: Default::default(),
    }
}

fn azure() -> Azure {
    Azure::new(DEFAULT_API_VERSION)
}

#[test]
fn chat_goes_to_the_deployment_with_api_key() {
    let request: ChatRequest = serde_json::from_value(json!({"model": "gpt-4o-prod", "stream": true,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}],
        "response_format": {"type": "json_object"}, "tools": [{"type": "function", "function": {"name": "f"}}]}))
    .unwrap();
    let http = azure().chat_request(&endpoint(), &request).unwrap();
    assert_eq!(
        http.uri(),
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(http.headers()["api-key"], "az-test-key");
    assert!(http.headers().get("authorization").is_none(), "not Bearer");
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        body["messages"],
        serde_json::to_value(&request.messages).unwrap()
    );
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
}

#[test]
fn deployment_names_cannot_reshape_the_url() {
    for bad in ["", "a/b", "a?x=1", "a b", ".", ".."] {
        let request: ChatRequest = serde_json::from_value(
            json!({"model": bad, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        let err = azure().chat_request(&endpoint(), &request).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("model")),
            "{bad}"
        );
    }
}

#[test]
fn embeddings_go_to_the_deployment() {
    let request: EmbeddingsRequest =
        serde_json::from_value(json!({"model": "embed-small", "input": "x"})).unwrap();
    let http = Azure::new("2024-06-01")
        .embeddings_request(&endpoint(), &request)
        .unwrap();
    assert_eq!(
        http.uri(),
        "https://my-resource.openai.azure.com/openai/deployments/embed-small/embeddings?api-version=2024-06-01"
    );
    assert_eq!(http.headers()["api-key"], "az-test-key");
}

#[test]
fn content_filter_error_is_a_400_with_its_code() {
    let err = azure().error_response(
        400,
        include_bytes!("fixtures/azure/error_content_filter.json"),
    );
    assert_eq!((err.status, err.kind), (400, ErrorKind::InvalidRequest));
    assert_eq!(err.code.as_deref(), Some("content_filter"));
    assert_eq!(err.param.as_deref(), Some("prompt"));
    assert!(err.message.starts_with("The response was filtered"));
    let err = azure().error_response(
        401,
        br#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}"#,
    );
    assert_eq!((err.status, err.kind), (401, ErrorKind::Authentication));
    let err = azure().error_response(
        404,
        br#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#,
    );
    assert_eq!(err.code.as_deref(), Some("DeploymentNotFound"));
}

#[test]
fn filtered_answers_pass_through_with_their_finish_reason() {
    let body = include_str!("fixtures/azure/response_content_filter.json");
    let ChatAnswer::Verbatim {
        body: forwarded,
        usage,
    } = azure().chat_response(Bytes::from(body)).unwrap()
    else {
        panic!("verbatim")
    };
    assert_eq!(&forwarded[..], body.as_bytes());
    assert_eq!(usage.unwrap().total_tokens, 25);

    let mut decoder = azure().chat_stream();
    let mut items = Vec::new();
    for block in include_str!("fixtures/azure/stream.sse")
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
    {
        items.extend(
            decoder
                .decode("", block.strip_prefix("data: ").unwrap())
                .unwrap(),
        );
    }
    assert_eq!(items.last(), Some(&StreamItem::Done));
    let StreamItem::Verbatim(finish) = &items[3] else {
        panic!("verbatim chunk")
    };
    assert_eq!(
        finish.parse().unwrap().choices[0].finish_reason,
        Some(FinishReason::ContentFilter)
    );
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            "[a-z ]{0,10}",
            prop_oneof!["system", "developer", "user", "assistant"]
        )
            .prop_map(|(t, role)| json!({"role": role, "content": t})),
        ("[a-zA-Z0-9_]{1,12}", "[a-z ]{0,10}")
            .prop_map(|(id, t)| json!({"role": "tool", "tool_call_id": id, "content": t})),
    ]
}

proptest! {
    /// Azure takes OpenAI's body: what the client sent arrives unchanged.
    #[test]
    fn requests_survive_encode_then_decode(
        messages in proptest::collection::vec(message(), 1..5),
        temperature in proptest::option::of((0u32..20).prop_map(|n| f64::from(n) / 10.0)),
        max in proptest::option::of(1u32..4096),
        extra in proptest::option::of("[a-z]{1,8}"),
    ) {
        let mut openai = json!({"model": "gpt-4o", "messages": messages});
        if let Some(t) = temperature { openai["temperature"] = json!(t); }
        if let Some(m) = max { openai["max_completion_tokens"] = json!(m); }
        if let Some(e) = extra { openai["reasoning_effort"] = json!(e); }
        let request: ChatRequest = serde_json::from_value(openai.clone()).unwrap();
        let http = azure().chat_request(&endpoint(), &request).unwrap();
        let decoded: ChatRequest = serde_json::from_slice(http.body()).unwrap();
        prop_assert_eq!(decoded, request);
    }
}
