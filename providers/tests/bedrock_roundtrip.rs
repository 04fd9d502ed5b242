//! Random canonical requests that Converse can express survive encoding as a signed Bedrock
//! request and decoding back (URL and body) with a test-only decoder of the Converse format.

use std::sync::Arc;
use std::time::SystemTime;

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::Adapter;
use switchboard_providers::Endpoint;
use switchboard_providers::bedrock::wire::{
    ContentBlock, ConverseRequest, Role, ToolChoice, ToolResultContent,
};
use switchboard_providers::bedrock::{AwsCredentials, Bedrock};
use switchboard_providers::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName,
    FunctionType, ImageUrl, InstructionMessage, Message, NamedToolChoice, Stop, Tool, ToolCall,
    ToolChoice as ChatToolChoice, ToolChoiceMode, ToolMessage, UserMessage,
};

fn words() -> impl Strategy<Value = String> {
    "[a-z][a-z ]{0,15}"
}

fn user_part() -> impl Strategy<Value = ContentPart> {
    prop_oneof![
        words().prop_map(|text| ContentPart::Text { text }),
        (
            prop_oneof![Just("png"), Just("jpeg"), Just("webp")],
            "[A-Za-z0-9]{4}"
        )
            .prop_map(|(format, data)| ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: format!("data:image/{format};base64,{data}"),
                    detail: None,
                },
            }),
    ]
}

fn user() -> impl Strategy<Value = Message> {
    prop::collection::vec(user_part(), 1..4).prop_map(|parts| {
        Message::User(UserMessage {
            content: Content::Parts(parts),
            name: None,
            extra: Default::default(),
        })
    })
}

/// An assistant turn and the tool messages answering its calls (none when it made no call).
fn assistant(round: usize) -> impl Strategy<Value = Vec<Message>> {
    (
        proptest::option::of(words()),
        prop::collection::vec(("[a-z_]{1,8}", words()), 0..3),
    )
        .prop_filter("a turn says something", |(text, calls)| {
            text.is_some() || !calls.is_empty()
        })
        .prop_map(move |(text, calls)| {
            let tool_calls: Vec<ToolCall> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, city))| ToolCall {
                    id: format!("tooluse_{round}_{i}"),
                    kind: FunctionType::Function,
                    function: FunctionCall {
                        name: name.clone(),
                        arguments: json!({"city": city}).to_string(),
                    },
                })
                .collect();
            let mut turn = vec![Message::Assistant(AssistantMessage {
                content: text.map(Content::Text),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls.clone()),
                ..AssistantMessage::default()
            })];
            turn.extend(tool_calls.iter().map(|call| {
                Message::Tool(ToolMessage {
                    content: Content::Text(format!("result of {}", call.function.name)),
                    tool_call_id: call.id.clone(),
                    extra: Default::default(),
                })
            }));
            turn
        })
}

/// A conversation that alternates as Bedrock needs: a user turn, then assistant turns each
/// followed by their tool results or by a user turn.
fn conversation() -> impl Strategy<Value = Vec<Message>> {
    (
        prop::collection::vec(words(), 0..3),
        user(),
        prop::collection::vec((0..1000usize, user()), 0..4),
    )
        .prop_flat_map(|(system, first, rounds)| {
            let turns: Vec<_> = rounds
                .into_iter()
                .map(|(round, next_user)| (assistant(round), Just(next_user)))
                .collect();
            (Just(system), Just(first), turns)
        })
        .prop_map(|(system, first, rounds)| {
            let mut messages: Vec<Message> = system
                .into_iter()
                .map(|text| {
                    Message::System(InstructionMessage {
                        content: Content::Text(text),
                        name: None,
                        extra: Default::default(),
                    })
                })
                .collect();
            messages.push(first);
            for (turn, next_user) in rounds {
                let called = turn.len() > 1;
                messages.extend(turn);
                if !called {
                    messages.push(next_user);
                }
            }
            messages
        })
}

fn tools() -> impl Strategy<Value = (Vec<Tool>, ChatToolChoice)> {
    (
        prop::collection::vec(("[a-z_]{1,8}", proptest::option::of(words())), 1..3),
        0..3usize,
    )
        .prop_map(|(specs, choice)| {
            let tools: Vec<Tool> = specs
                .iter()
                .map(|(name, description)| Tool::Function {
                    function: FunctionDef {
                        name: name.clone(),
                        description: description.clone(),
                        parameters: Some(
                            json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                        ),
                        strict: None,
                    },
                })
                .collect();
            let choice = match choice {
                0 => ChatToolChoice::Mode(ToolChoiceMode::Auto),
                1 => ChatToolChoice::Mode(ToolChoiceMode::Required),
                _ => ChatToolChoice::Named(NamedToolChoice {
                    kind: FunctionType::Function,
                    function: FunctionName {
                        name: specs[0].0.clone(),
                    },
                }),
            };
            (tools, choice)
        })
}

prop_compose! {
    fn request()(
        model in "[a-z]{2,6}\\.[a-z0-9-]{1,10}(:[0-9])?",
        messages in conversation(),
        tools in proptest::option::of(tools()),
        max_tokens in 1u32..10_000,
        // Two decimals: serde_json parses short decimals exactly, long ones to within an ulp.
        temperature in proptest::option::of((0u32..200).prop_map(|n| f64::from(n) / 100.0)),
        top_p in proptest::option::of((0u32..100).prop_map(|n| f64::from(n) / 100.0)),
        stop in proptest::option::of(prop::collection::vec(words(), 1..3)),
    ) -> ChatRequest {
        // Bedrock takes tool blocks only beside a `toolConfig` (without one they are sent as
        // text, which does not round-trip): a history with calls always offers tools.
        let calls = messages
            .iter()
            .any(|m| matches!(m, Message::Assistant(a) if a.tool_calls.is_some()));
        let tools = tools.or_else(|| calls.then(|| {
            let tool = Tool::Function {
                function: FunctionDef {
                    name: "a".into(),
                    description: None,
                    parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
                    strict: None,
                },
            };
            (vec![tool], ChatToolChoice::Mode(ToolChoiceMode::Auto))
        }));
        let (tools, tool_choice) = tools.unzip();
        ChatRequest {
            model,
            messages,
            tools,
            tool_choice,
            max_tokens: Some(max_tokens),
            temperature,
            top_p,
            stop: stop.map(Stop::Many),
            ..ChatRequest::default()
        }
    }
}

/// Percent-decodes a path segment.
fn unescape(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The test-only decoder: a Converse call back into a canonical request.
fn decode(http: &http::Request<bytes::Bytes>) -> ChatRequest {
    let path = http.uri().path();
    let model = path
        .strip_prefix("/model/")
        .and_then(|rest| rest.strip_suffix("/converse"))
        .expect("a converse path");
    let body: ConverseRequest = serde_json::from_slice(http.body()).unwrap();
    let mut messages: Vec<Message> = body
        .system
        .into_iter()
        .map(|block| {
            Message::System(InstructionMessage {
                content: Content::Text(block.text),
                name: None,
                extra: Default::default(),
            })
        })
        .collect();
    for message in body.messages {
        match message.role {
            Role::User => decode_user(message.content, &mut messages),
            Role::Assistant => messages.push(decode_assistant(message.content)),
        }
    }
    let (tools, tool_choice) = match body.tool_config {
        None => (None, None),
        Some(config) => {
            let tools = config
                .tools
                .into_iter()
                .map(|entry| Tool::Function {
                    function: FunctionDef {
                        name: entry.tool_spec.name,
                        description: entry.tool_spec.description,
                        parameters: Some(entry.tool_spec.input_schema.json),
                        strict: None,
                    },
                })
                .collect();
            let choice = config.tool_choice.map(|choice| match choice {
                ToolChoice::Auto(_) => ChatToolChoice::Mode(ToolChoiceMode::Auto),
                ToolChoice::Any(_) => ChatToolChoice::Mode(ToolChoiceMode::Required),
                ToolChoice::Tool(named) => ChatToolChoice::Named(NamedToolChoice {
                    kind: FunctionType::Function,
                    function: FunctionName { name: named.name },
                }),
            });
            (Some(tools), choice)
        }
    };
    let config = body.inference_config;
    ChatRequest {
        model: unescape(model),
        messages,
        tools,
        tool_choice,
        max_tokens: Some(config.max_tokens),
        temperature: config.temperature,
        top_p: config.top_p,
        stop: (!config.stop_sequences.is_empty()).then_some(Stop::Many(config.stop_sequences)),
        ..ChatRequest::default()
    }
}

fn decode_user(blocks: Vec<ContentBlock>, messages: &mut Vec<Message>) {
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(text) => parts.push(ContentPart::Text { text }),
            ContentBlock::Image(image) => parts.push(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: format!("data:image/{};base64,{}", image.format, image.source.bytes),
                    detail: None,
                },
            }),
            ContentBlock::ToolResult(result) => {
                let text = match &result.content[..] {
                    [ToolResultContent::Text(text)] => text.clone(),
                    [ToolResultContent::Json(value)] => value.to_string(),
                    other => panic!("one result block expected: {other:?}"),
                };
                messages.push(Message::Tool(ToolMessage {
                    content: Content::Text(text),
                    tool_call_id: result.tool_use_id,
                    extra: Default::default(),
                }));
            }
            ContentBlock::ToolUse(_) => panic!("a user turn cannot use tools"),
        }
    }
    if !parts.is_empty() {
        messages.push(Message::User(UserMessage {
            content: Content::Parts(parts),
            name: None,
            extra: Default::default(),
        }));
    }
}

fn decode_assistant(blocks: Vec<ContentBlock>) -> Message {
    let mut text = None;
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => text = Some(Content::Text(t)),
            ContentBlock::ToolUse(tool) => calls.push(ToolCall {
                id: tool.tool_use_id,
                kind: FunctionType::Function,
                function: FunctionCall {
                    name: tool.name,
                    arguments: tool.input.to_string(),
                },
            }),
            other => panic!("an assistant turn cannot hold {other:?}"),
        }
    }
    Message::Assistant(AssistantMessage {
        content: text,
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..AssistantMessage::default()
    })
}

fn adapter() -> Bedrock {
    let credentials = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: None,
    };
    Bedrock::new(credentials, "us-east-1").with_clock(Arc::new(SystemTime::now))
}

proptest! {
    #[test]
    fn converse_requests_round_trip(original in request()) {
        let endpoint = Endpoint {
            base_url: "https://bedrock-runtime.us-east-1.amazonaws.com".into(),
            ..Endpoint::default()
        };
        let http = adapter().chat_request(&endpoint, &original).unwrap();
        let decoded = decode(&http);
        let as_json = |r: &ChatRequest| -> Value { serde_json::to_value(r).unwrap() };
        prop_assert_eq!(as_json(&decoded), as_json(&original));
    }
}
