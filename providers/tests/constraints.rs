//! Property: every request OpenAI accepts is either encoded into one the provider's documented
//! rules accept, or refused by the adapter as a 400 naming the field. The generator leans on the
//! edges where translations break: foreign and overlong tool-call ids, empty strings everywhere,
//! array schemas without `items` or with tuples, every content-part type in every role, images
//! declared `image/jpg` or with a type their bytes contradict, refusals in the history.
//!
//! The rules are the constraint tables of `CONSTRAINTS.md`, checked here independently of the
//! adapters' code.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::Adapter;
use switchboard_providers::Endpoint;
use switchboard_providers::chat::ChatRequest;

// ---- generators of edgy OpenAI requests, as JSON ----

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        "[a-zA-Z0-9 ,.!?é]{1,12}",
    ]
}

fn tool_call_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "call_[a-zA-Z0-9]{8}",
        "toolu_[a-zA-Z0-9]{8}",
        "functions\\.[a-z_]{1,8}:[0-9]",
        "[a-zA-Z0-9]{9}",
        "call_[a-z0-9]{4}__thought__[A-Za-z0-9+/=]{100,300}",
        "[ -~]{1,80}",
    ]
}

/// Base64 data of a JPEG, a PNG, or bytes of no known format.
fn image_data() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/9j/4AAQSkZJRgABAQEASABIAAD".to_owned()),
        Just("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB".to_owned()),
        "[A-Za-z0-9+/]{4,24}",
    ]
}

fn image_part() -> impl Strategy<Value = Value> {
    let data_url = (
        prop_oneof![
            Just("image/jpg"),
            Just("image/jpeg"),
            Just("image/png"),
            Just("image/webp")
        ],
        image_data(),
    )
        .prop_map(|(mime, data)| format!("data:{mime};base64,{data}"));
    prop_oneof![data_url, Just("https://images.test/cat.jpg".to_owned())]
        .prop_map(|url| json!({"type": "image_url", "image_url": {"url": url}}))
}

fn part() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        text().prop_map(|t| json!({"type": "refusal", "refusal": t})),
        image_part(),
    ]
}

fn content() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::from),
        prop::collection::vec(part(), 1..3).prop_map(Value::from),
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"type": "string"})),
        Just(json!({"type": "array"})),
        Just(json!({"type": "array", "items": {"type": "array"}})),
        Just(json!({"type": "array", "items": [{"type": "string"}, {"type": "integer"}]})),
        Just(json!({"type": ["array", "null"]})),
        Just(json!({"type": "object", "properties": {"tags": {"type": "array"}}})),
    ]
}

fn tool() -> impl Strategy<Value = Value> {
    (
        "[a-z_]{1,10}",
        prop::option::of(text()),
        prop::collection::btree_map("[a-z]{1,6}", schema(), 0..3),
    )
        .prop_map(|(name, description, properties)| {
            let mut function = json!({"name": name,
                "parameters": {"type": "object", "properties": properties}});
            if let Some(description) = description {
                function["description"] = description.into();
            }
            json!({"type": "function", "function": function})
        })
}

/// One turn of a conversation: a user or system message, or an assistant turn whose tool calls
/// are all answered by the tool messages that follow.
fn turn() -> impl Strategy<Value = Vec<Value>> {
    prop_oneof![
        content().prop_map(|c| vec![json!({"role": "user", "content": c})]),
        text().prop_map(|t| vec![json!({"role": "system", "content": t})]),
        text().prop_map(|t| vec![json!({"role": "developer", "content": t})]),
        (
            prop::option::of(content()),
            prop::option::of(text()),
            prop::collection::vec(tool_call_id(), 0..3),
        )
            .prop_map(|(content, refusal, ids)| {
                let mut assistant = json!({"role": "assistant", "content": content});
                if let Some(refusal) = refusal {
                    assistant["refusal"] = refusal.into();
                }
                if !ids.is_empty() {
                    assistant["tool_calls"] = ids
                        .iter()
                        .map(|id| json!({"id": id, "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}))
                        .collect();
                }
                let results = ids.iter().map(
                    |id| json!({"role": "tool", "tool_call_id": id, "content": "18C"}),
                );
                std::iter::once(assistant).chain(results).collect()
            }),
    ]
}

fn request() -> impl Strategy<Value = ChatRequest> {
    (
        prop::collection::vec(turn(), 1..6),
        prop::collection::vec(tool(), 0..3),
    )
        .prop_map(|(turns, mut tools)| {
            let mut messages: Vec<Value> = turns.into_iter().flatten().collect();
            messages.push(json!({"role": "user", "content": "Go on."}));
            // Tool calls need the tool they call declared.
            tools.push(
                json!({"type": "function", "function": {"name": "get_weather",
                "description": "Weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}}}}),
            );
            serde_json::from_value(json!({"model": "m", "max_tokens": 64,
                "messages": messages, "tools": tools}))
            .expect("a valid OpenAI request")
        })
}

// ---- the providers' documented rules ----

fn pattern_id(id: &Value, max: usize) -> Result<(), String> {
    let id = id.as_str().unwrap_or_default();
    let valid = (1..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then_some(()).ok_or(format!("id {id:?}"))
}

fn non_empty_text(text: &Value) -> Result<(), String> {
    match text.as_str() {
        Some(t) if !t.is_empty() => Ok(()),
        _ => Err(format!("empty text {text}")),
    }
}

/// Anthropic Messages: non-empty content and text, ids `^[a-zA-Z0-9_-]+$`, four image types.
fn anthropic(body: &Value) -> Result<(), String> {
    for message in body["messages"].as_array().ok_or("messages")? {
        if message["content"].is_string() {
            non_empty_text(&message["content"])?;
            continue;
        }
        let blocks = message["content"].as_array().ok_or("content")?;
        if blocks.is_empty() {
            return Err("a message without content".into());
        }
        for block in blocks {
            match block["type"].as_str() {
                Some("text") => non_empty_text(&block["text"])?,
                Some("tool_use") => pattern_id(&block["id"], usize::MAX)?,
                Some("tool_result") => pattern_id(&block["tool_use_id"], usize::MAX)?,
                Some("image") if block["source"]["type"] == "base64" => {
                    let media = block["source"]["media_type"].as_str().unwrap_or_default();
                    if !["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&media) {
                        return Err(format!("media type {media}"));
                    }
                }
                _ => {}
            }
        }
    }
    for block in body["system"].as_array().into_iter().flatten() {
        non_empty_text(&block["text"])?;
    }
    Ok(())
}

/// Bedrock Converse: minimum lengths of 1 (system text, tool descriptions, text blocks, content),
/// ids `[a-zA-Z0-9_-]{1,64}`, four image formats.
fn bedrock(body: &Value) -> Result<(), String> {
    for block in body["system"].as_array().into_iter().flatten() {
        non_empty_text(&block["text"])?;
    }
    for tool in body["toolConfig"]["tools"].as_array().into_iter().flatten() {
        if let Some(description) = tool["toolSpec"].get("description") {
            non_empty_text(description)?;
        }
    }
    for message in body["messages"].as_array().ok_or("messages")? {
        let blocks = message["content"].as_array().ok_or("content")?;
        if blocks.is_empty() {
            return Err("a message without content".into());
        }
        for block in blocks {
            if let Some(text) = block.get("text") {
                non_empty_text(text)?;
            }
            if let Some(tool_use) = block.get("toolUse") {
                pattern_id(&tool_use["toolUseId"], 64)?;
            }
            if let Some(result) = block.get("toolResult") {
                pattern_id(&result["toolUseId"], 64)?;
            }
            if let Some(image) = block.get("image") {
                let format = image["format"].as_str().unwrap_or_default();
                if !["png", "jpeg", "gif", "webp"].contains(&format) {
                    return Err(format!("image format {format}"));
                }
            }
        }
    }
    Ok(())
}

/// Every array node of a Gemini schema has an `items` object.
fn gemini_schema(schema: &Value) -> Result<(), String> {
    match schema {
        Value::Object(object) => {
            let array = object.get("type").and_then(Value::as_str) == Some("array");
            if array && !object.get("items").is_some_and(Value::is_object) {
                return Err(format!("array without items: {schema}"));
            }
            object.values().try_for_each(gemini_schema)
        }
        Value::Array(items) => items.iter().try_for_each(gemini_schema),
        _ => Ok(()),
    }
}

/// Gemini generateContent: parts in every content, `items` on every array, its image types.
fn gemini(body: &Value) -> Result<(), String> {
    for content in body["contents"].as_array().ok_or("contents")? {
        let parts = content["parts"].as_array().ok_or("parts")?;
        if parts.is_empty() {
            return Err("a content without parts".into());
        }
        for part in parts {
            if let Some(mime) = part["inlineData"]["mimeType"].as_str()
                && ![
                    "image/png",
                    "image/jpeg",
                    "image/webp",
                    "image/heic",
                    "image/heif",
                ]
                .contains(&mime)
            {
                return Err(format!("MIME type {mime}"));
            }
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        for declaration in tool["functionDeclarations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            gemini_schema(&declaration["parameters"])?;
        }
    }
    Ok(())
}

/// Mistral: tool-call ids of exactly nine letters or digits, in calls and results.
fn mistral(body: &Value) -> Result<(), String> {
    let nine = |id: &Value| {
        let id = id.as_str().unwrap_or_default();
        (id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then_some(())
            .ok_or(format!("id {id:?}"))
    };
    for message in body["messages"].as_array().ok_or("messages")? {
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            nine(&call["id"])?;
        }
        if let Some(id) = message.get("tool_call_id") {
            nine(id)?;
        }
    }
    Ok(())
}

/// Cohere Chat v2: `tool_choice` only `REQUIRED` or `NONE`; an assistant message with content or
/// tool calls; every tool message answering a call of the assistant message before it.
fn cohere(body: &Value) -> Result<(), String> {
    if let Some(choice) = body.get("tool_choice")
        && !matches!(choice.as_str(), Some("REQUIRED" | "NONE"))
    {
        return Err(format!("tool_choice {choice}"));
    }
    let mut open_calls: Vec<&str> = Vec::new();
    for message in body["messages"].as_array().ok_or("messages")? {
        match message["role"].as_str() {
            Some("system" | "user") => {}
            Some("assistant") => {
                open_calls = message["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["id"].as_str())
                    .collect();
                if message.get("content").is_none() && message.get("tool_calls").is_none() {
                    return Err("an assistant message with neither content nor tool calls".into());
                }
            }
            Some("tool") => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                if !open_calls.contains(&id) {
                    return Err(format!("tool_call_id {id:?} answers no call"));
                }
            }
            other => return Err(format!("role {other:?}")),
        }
    }
    Ok(())
}

type Rules = fn(&Value) -> Result<(), String>;

fn check(adapter: &dyn Adapter, rules: Rules, request: &ChatRequest) -> Result<(), TestCaseError> {
    let endpoint = Endpoint {
        base_url: "https://provider.test/v1".into(),
        ..Endpoint::default()
    };
    match adapter.chat_request(&endpoint, request) {
        Ok(http) => {
            let body: Value = serde_json::from_slice(http.body()).expect("a JSON body");
            rules(&body).map_err(|why| TestCaseError::fail(format!("{why}\nin {body}")))
        }
        // A refusal is allowed when it is the client's 400 naming the field: Bedrock cannot
        // fetch an image by URL, nor Anthropic read an image of no known type.
        Err(error) => {
            prop_assert_eq!(error.status, 400, "{:?}", error);
            prop_assert!(error.param.is_some(), "{:?}", error);
            Ok(())
        }
    }
}

fn bedrock_adapter() -> switchboard_providers::bedrock::Bedrock {
    switchboard_providers::bedrock::Bedrock::new(
        switchboard_providers::bedrock::AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        },
        "us-east-1",
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn anthropic_requests_keep_anthropics_rules(request in request()) {
        check(&switchboard_providers::anthropic::Anthropic, anthropic, &request)?;
    }

    #[test]
    fn bedrock_requests_keep_bedrocks_rules(request in request()) {
        check(&bedrock_adapter(), bedrock, &request)?;
    }

    #[test]
    fn gemini_requests_keep_geminis_rules(request in request()) {
        check(&switchboard_providers::gemini::Gemini, gemini, &request)?;
    }

    #[test]
    fn mistral_requests_keep_mistrals_rules(request in request()) {
        check(&switchboard_providers::mistral::Mistral, mistral, &request)?;
    }

    #[test]
    fn cohere_requests_keep_coheres_rules(request in request()) {
        check(&switchboard_providers::cohere::Cohere, cohere, &request)?;
    }
}
