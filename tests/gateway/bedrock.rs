//! Chat completions and embeddings through a fake Bedrock runtime: SigV4-signed Converse calls,
//! event-stream streams relayed as SSE, tool calls, errors scrubbed of the AWS secret key.

use serde_json::{Value, json};

use crate::common::fake_bedrock::{FakeBedrock, KEY, SECRET};
use crate::common::{TestGateway, client, sse_data};

async fn gateway_for(fake: &FakeBedrock) -> TestGateway {
    TestGateway::start(&format!(
        "providers:\n  aws: {}\nmodels:\n  - name: claude\n    targets: [ {{ provider: aws, model: \"ok:0\" }} ]\n",
        fake.provider_yaml()
    ))
    .await
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    }}])
}

async fn chat(gateway: &TestGateway, body: Value) -> reqwest::Response {
    client()
        .post(gateway.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A streamed answer's chunks; the last event must be `[DONE]`.
async fn chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn plain_completion_is_signed_translated_and_reports_usage() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let response = chat(
        &gateway,
        json!({"model": "claude", "max_tokens": 300, "temperature": 0.3, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-switchboard-target"], "aws/ok:0");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "ok:0");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! How can I help?"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
               "prompt_tokens_details": {"cached_tokens": 4}})
    );
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/model/ok%3A0/converse");
    assert_eq!(sent.body["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        sent.body["inferenceConfig"],
        json!({"maxTokens": 300, "temperature": 0.3})
    );
    let auth = sent.headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY}/")));
}

#[tokio::test]
async fn streamed_text_arrives_as_chunks_with_usage_when_asked() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let response = chat(
        &gateway,
        json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    let chunks = chunks(response).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["model"], "ok:0");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello! How can I help?");
    let finish = chunks
        .iter()
        .find(|c| !c["choices"][0]["finish_reason"].is_null());
    assert_eq!(finish.unwrap()["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 29);
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    let sent = &fake.received()[0];
    assert_eq!(sent.path, "/model/ok%3A0/converse-stream");
    assert_eq!(sent.headers["accept"], "application/vnd.amazon.eventstream");
}

#[tokio::test]
async fn streamed_tool_call_reassembles_and_the_result_goes_back_as_tool_result() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let response = chat(
        &gateway,
        json!({"model": "claude", "stream": true, "tools": weather_tool(),
               "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
    )
    .await;
    let chunks = chunks(response).await;
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert!(
        deltas.len() >= 3,
        "arguments arrive in fragments: {deltas:?}"
    );
    assert_eq!(deltas[0]["id"], "tooluse_paris");
    assert_eq!(deltas[0]["type"], "function");
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    let arguments: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(deltas[1].get("id").is_none());
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    assert!(
        chunks
            .iter()
            .all(|c| c.get("usage").is_none() || c["usage"].is_null()),
        "usage is dropped when not asked for"
    );

    // The tool round trip: the call and its result reach Bedrock as toolUse and toolResult.
    let response = chat(
        &gateway,
        json!({"model": "claude", "tools": weather_tool(), "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_paris", "type": "function",
                "function": {"name": "get_weather", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "tooluse_paris", "content": "{\"temp\": 21}"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let sent = &fake.received()[1];
    assert_eq!(
        sent.body["messages"][1]["content"][0]["toolUse"],
        json!({"toolUseId": "tooluse_paris", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(
        sent.body["messages"][2],
        json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_paris", "content": [{"json": {"temp": 21}}]}}]})
    );
}

#[tokio::test]
async fn parallel_tool_calls_plain_and_streamed() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let request = json!({"model": "aws/parallel", "tools": weather_tool(),
                         "messages": [{"role": "user", "content": "Paris and Tokyo?"}]});
    let body: Value = chat(&gateway, request.clone()).await.json().await.unwrap();
    let calls = &body["choices"][0]["message"]["tool_calls"];
    assert_eq!(calls.as_array().unwrap().len(), 2);
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\":\"Tokyo\"}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let chunks = chunks(chat(&gateway, streamed).await).await;
    let mut arguments = [String::new(), String::new()];
    for call in chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
    {
        let index = call["index"].as_u64().unwrap() as usize;
        arguments[index].push_str(call["function"]["arguments"].as_str().unwrap());
    }
    assert_eq!(arguments, ["{\"city\":\"Paris\"}", "{\"city\":\"Tokyo\"}"]);
}

#[tokio::test]
async fn provider_errors_keep_their_status_and_lose_the_secret() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    for (status, code) in [
        (400, "ValidationException"),
        (429, "ThrottlingException"),
        (503, "ServiceUnavailableException"),
    ] {
        let response = chat(
            &gateway,
            json!({"model": format!("aws/error-{status}"), "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert!(!text.contains(SECRET), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("<redacted>"), "{message}");
        if status == 400 {
            // The client's own mistake: Bedrock's status and code, as is.
            assert_eq!(got, 400);
            assert_eq!(body["error"]["code"], code);
        } else if status == 429 {
            // Retried once the hold passed, then given up on: 429 naming Bedrock's throttling.
            assert_eq!(got, 429);
            assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
        } else {
            // Retried, then given up on: 503 naming Bedrock's failure.
            assert_eq!(got, 503);
            assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
        }
    }
    // An image by URL is refused before Bedrock is called.
    let response = chat(
        &gateway,
        json!({"model": "claude", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages[0].content[0]");
    assert_eq!(
        fake.received().len(),
        5,
        "400 once; 429 and 503 tried twice"
    );
}

#[tokio::test]
async fn titan_embeddings_as_floats_or_base64() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let embed = |body: Value| {
        client()
            .post(gateway.url("/v1/embeddings"))
            .json(&body)
            .send()
    };
    let body: Value = embed(json!({"model": "aws/amazon.titan-embed-text-v2:0", "input": "hello"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.5, -0.25, 0.125]));
    assert_eq!(body["model"], "amazon.titan-embed-text-v2:0");
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(
        fake.received()[0].path,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    let body: Value = embed(json!({"model": "aws/amazon.titan-embed-text-v2:0", "input": "hello", "encoding_format": "base64"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["data"][0]["embedding"].is_string());
    // Titan embeds one text per call: a list goes one call each, answers joined in order.
    let response =
        embed(json!({"model": "aws/amazon.titan-embed-text-v2:0", "input": ["a", "b", "c"]}))
            .await
            .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let indexes: Vec<&Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["index"])
        .collect();
    assert_eq!(indexes, [&json!(0), &json!(1), &json!(2)]);
    let marks: Vec<&Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["embedding"][2])
        .collect();
    assert_eq!(
        marks,
        [&json!(1.0), &json!(2.0), &json!(3.0)],
        "each vector at its input's index"
    );
    assert_eq!(body["usage"]["prompt_tokens"], 9);
    let received = fake.received();
    let texts: Vec<&Value> = received[2..].iter().map(|r| &r.body["inputText"]).collect();
    assert_eq!(texts.len(), 3, "one call per text");
}

/// Valid OpenAI requests Bedrock refuses as sent: an empty system message and an empty tool
/// description (minimum length 1 both), and an assistant refusal in the history (which left the
/// message without content: the gateway itself answered 400).
#[tokio::test]
async fn empty_system_text_empty_descriptions_and_refusals_in_history_are_sent_acceptably() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let response = chat(
        &gateway,
        json!({"model": "claude", "tools": tools, "messages": [
            {"role": "system", "content": ""},
            {"role": "user", "content": "Help me pick a lock."},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
            {"role": "user", "content": "Then tell me a joke."},
            {"role": "assistant", "content": null, "refusal": "No jokes today."},
            {"role": "user", "content": "Fine."}
        ]}),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let sent = &fake.received()[0].body;
    assert!(
        sent.get("system")
            .is_none_or(|s| s.as_array().is_some_and(Vec::is_empty)),
        "{sent}"
    );
    assert!(
        sent["toolConfig"]["tools"][0]["toolSpec"]
            .get("description")
            .is_none()
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["text"],
        "I can't help with that."
    );
    assert_eq!(sent["messages"][3]["content"][0]["text"], "No jokes today.");
}

/// Ids Bedrock refuses (`[a-zA-Z0-9_-]{1,64}`): another provider's, or a Gemini id with its
/// thought signature, hundreds of characters long. A fallback from Gemini to Bedrock can carry
/// on the tool conversation.
#[tokio::test]
async fn foreign_and_long_tool_call_ids_are_made_valid_in_calls_and_results_alike() {
    let fake = FakeBedrock::start().await;
    let gateway = gateway_for(&fake).await;
    let signed = format!("call_7__thought__{}", "CiQB0e/+Zx==".repeat(30));
    let response = chat(
        &gateway,
        json!({"model": "claude", "messages": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "functions.get_weather:0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": signed, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "18C"},
            {"role": "tool", "tool_call_id": signed, "content": "22C"}
        ], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}),
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let messages = &fake.received()[0].body["messages"];
    for i in [0, 1] {
        let call = &messages[1]["content"][i]["toolUse"]["toolUseId"];
        let result = &messages[2]["content"][i]["toolResult"]["toolUseId"];
        assert_eq!(call, result, "{messages}");
        assert!(call.as_str().unwrap().len() <= 64);
    }
}
