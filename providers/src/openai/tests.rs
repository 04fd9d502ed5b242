//! Tests of the parent module.

use super::*;
use crate::error::ErrorKind;
use serde_json::{Value, json};

fn endpoint() -> Endpoint {
    Endpoint {
        base_url: "http://up.test/v1".into(),
        api_key: Some("sk-test".into()),
        headers: Default::default(),
    }
}

/// OpenAI writes structured output in the schema's property order, so the order the client
/// wrote must reach the upstream.
#[test]
fn json_key_order_reaches_the_upstream_as_written() {
    let req: ChatRequest = serde_json::from_str(
        r#"{"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}],
        "zeta": 1, "alpha": {"z": 1, "a": 2},
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "strict": true,
        "schema": {"type": "object", "properties": {"reasoning": {"type": "string"},
        "answer": {"type": "string"}}}}}}"#,
    )
    .unwrap();
    let http = OpenAi.chat_request(&endpoint(), &req).unwrap();
    let body = std::str::from_utf8(http.body()).unwrap();
    let at = |needle: &str| body.find(needle).unwrap();
    assert!(at(r#""reasoning""#) < at(r#""answer""#), "{body}");
    assert!(at(r#""zeta""#) < at(r#""alpha""#), "{body}");
    assert!(at(r#""z":1"#) < at(r#""a":2"#), "{body}");
}

#[test]
fn streamed_request_always_asks_for_usage() {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "gpt-4.1", "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
        "custom_flag": 1
    }))
    .unwrap();
    let http = OpenAi.chat_request(&endpoint(), &req).unwrap();
    assert_eq!(http.uri(), "http://up.test/v1/chat/completions");
    assert_eq!(http.headers()[header::AUTHORIZATION], "Bearer sk-test");
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["custom_flag"], json!(1));
    assert_eq!(body["messages"][0]["content"], "hi");
    let mut req = req;
    req.stream_options = serde_json::from_value(json!({"include_usage": false, "x": 1})).unwrap();
    let http = OpenAi.chat_request(&endpoint(), &req).unwrap();
    let body: Value = serde_json::from_slice(http.body()).unwrap();
    assert_eq!(
        body["stream_options"],
        json!({"include_usage": true, "x": 1})
    );
}

#[test]
fn stream_events_decode_to_chunks_then_done() {
    let mut decoder = OpenAi.chat_stream();
    let items = decoder
        .decode("", r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#)
        .unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if c.has_choices && c.parse().unwrap().choices[0].delta.role.as_deref() == Some("assistant"))
    );
    assert_eq!(
        decoder.decode("", "[DONE]").unwrap(),
        vec![StreamItem::Done]
    );
}

#[test]
fn answers_are_forwarded_verbatim_with_their_usage() {
    let body = br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"vendor_field":{"a":1}}"#;
    let answer = OpenAi.chat_response(Bytes::from_static(body)).unwrap();
    assert_eq!(answer.usage().map(|u| u.total_tokens), Some(4));
    let ChatAnswer::Verbatim {
        body: forwarded, ..
    } = answer
    else {
        panic!("verbatim")
    };
    assert_eq!(&forwarded[..], &body[..]);
    for bad in [&b"{oops"[..], br#"{"id":"x"}"#, br#"{"choices":{}}"#] {
        let err = OpenAi.chat_response(Bytes::from_static(bad)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadResponse);
    }
}

#[test]
fn later_plain_chunks_skip_the_parse_but_usage_and_errors_do_not() {
    let mut decoder = OpenAi.chat_stream();
    let first = r#"{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}"#;
    let items = decoder.decode("", first).unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if c.has_choices && !c.has_role),
        "the first chunk is parsed: its missing role is seen"
    );
    let middle = r#"{"choices":[{"index":0,"delta":{"content":"b"}}],"usage":null}"#;
    let items = decoder.decode("", middle).unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if c.has_choices && c.usage.is_none() && &c.data[..] == middle.as_bytes())
    );
    let usage =
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let items = decoder.decode("", usage).unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if !c.has_choices && c.usage.as_ref().map(|u| u.total_tokens) == Some(5))
    );
    // Usage details survive the peek.
    let detailed = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":8}}}"#;
    let items = decoder.decode("", detailed).unwrap();
    let [StreamItem::Verbatim(chunk)] = &items[..] else {
        panic!("{items:?}")
    };
    let usage = chunk.usage.as_ref().unwrap();
    assert_eq!(usage.total_tokens, 13);
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(8)
    );
    assert_eq!(&chunk.data[..], detailed.as_bytes());
    // A usage nested elsewhere (Groq's `x_groq`) is not the chunk's: the full parse ignores it.
    let nested = r#"{"choices":[],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}"#;
    let items = decoder.decode("", nested).unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if !c.has_choices && c.usage.is_none()),
        "{items:?}"
    );
    // A usage that does not read as OpenAI's counts is no usage: the chunk still goes on,
    // and the gateway counts the text instead of failing an answer that is complete.
    for odd in [
        r#"{"choices":[],"usage":{"prompt_tokens":"many"}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5.0,"completion_tokens":2}}"#,
        r#"{"choices":[],"usage":{}}"#,
    ] {
        let items = decoder.decode("", odd).unwrap();
        assert!(
            matches!(&items[..], [StreamItem::Verbatim(c)] if c.usage.is_none() && &c.data[..] == odd.as_bytes()),
            "{items:?}"
        );
    }
    // Without its total, the total is the sum.
    let items = decoder
        .decode(
            "",
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
        )
        .unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if c.usage.as_ref().map(|u| u.total_tokens) == Some(7)),
        "{items:?}"
    );
    // A chunk without choices mid-stream goes on too.
    let items = decoder.decode("", r#"{"id":"x","foo":1}"#).unwrap();
    assert!(
        matches!(&items[..], [StreamItem::Verbatim(c)] if !c.has_choices),
        "{items:?}"
    );
    let err = decoder
        .decode(
            "",
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        )
        .unwrap_err();
    assert_eq!(err.message, "overloaded");
}

#[test]
fn peeked_usage_keeps_cached_and_reasoning_details() {
    let body = br#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":8,"x":1},"completion_tokens_details":{"reasoning_tokens":2},"cost":0.1}}"#;
    let answer = OpenAi.chat_response(Bytes::from_static(body)).unwrap();
    let usage = answer.usage().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (9, 4));
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        Some(8)
    );
    assert_eq!(
        usage
            .completion_tokens_details
            .as_ref()
            .unwrap()
            .reasoning_tokens,
        Some(2)
    );
}

#[test]
fn in_stream_error_and_garbage_are_errors() {
    let mut decoder = OpenAi.chat_stream();
    let err = decoder
        .decode(
            "",
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        )
        .unwrap_err();
    assert_eq!(err.message, "overloaded");
    let err = decoder.decode("", "{not json").unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadResponse);
}

#[test]
fn error_bodies_keep_status_and_vocabulary() {
    let err = OpenAi.error_response(
        429,
        br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded","param":null}}"#,
    );
    assert_eq!((err.status, err.kind), (429, ErrorKind::RateLimited));
    assert_eq!(err.code.as_deref(), Some("rate_limit_exceeded"));
    let err = OpenAi.error_response(503, b"<html>bad gateway</html>");
    assert_eq!(err.status, 503);
    assert_eq!(
        OpenAi.error_response(302, b"").status,
        502,
        "a redirect is not an answer"
    );
    assert!(!err.message.contains("html"));
}

#[test]
fn a_stream_without_done_is_complete_only_once_its_choices_finished() {
    let delta = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"finish_reason":null}]}"#;
    let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
    let usage = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    let ends = |chunks: &[&str]| {
        let mut decoder = OpenAiStream::default();
        for chunk in chunks {
            decoder.decode("", chunk).unwrap();
        }
        matches!(&decoder.finish().unwrap()[..], [StreamItem::Done])
    };
    assert!(ends(&[delta, last]));
    assert!(
        ends(&[delta, last, usage]),
        "the usage chunk has no choices"
    );
    assert!(!ends(&[delta]), "cut before the finish");
    assert!(!ends(&[]));
    assert!(!ends(&[delta, last, "[DONE]"]), "[DONE] already ended it");
}

#[test]
fn error_bodies_of_other_shapes_keep_their_message() {
    for (body, message) in [
        (
            &br#"{"object":"error","message":"maximum context length is 4096 tokens","type":"BadRequestError","code":400}"#[..],
            "maximum context length is 4096 tokens",
        ),
        (br#"{"error":"prompt is too long"}"#, "prompt is too long"),
        (br#"{"detail":"Not authenticated"}"#, "Not authenticated"),
        (
            br#"{"detail":[{"loc":["body","messages"],"msg":"field required"}]}"#,
            r#"[{"loc":["body","messages"],"msg":"field required"}]"#,
        ),
        (br#"{"unrelated":1}"#, "upstream returned HTTP 400"),
    ] {
        let err = OpenAi.error_response(400, body);
        assert_eq!((err.status, err.message.as_str()), (400, message));
    }
    let long = format!(r#"{{"error":"{}"}}"#, "é".repeat(5000));
    let err = OpenAi.error_response(400, long.as_bytes());
    assert_eq!(err.message.chars().count(), MAX_OTHER_MESSAGE);
}
