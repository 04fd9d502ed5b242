//! Random canonical requests encoded for Gemini and decoded back by a test-only reader of
//! Gemini's request format: every field Gemini can express survives. Tool call ids cannot (Gemini
//! has none), so both sides number calls in order.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchboard_providers::adapter::{Adapter, Endpoint};
use switchboard_providers::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName,
    FunctionType, ImageUrl, InstructionMessage, JsonSchemaFormat, Message, NamedToolChoice,
    ResponseFormat, Stop, Tool, ToolCall, ToolChoice, ToolChoiceMode, ToolMessage, UserMessage,
};
use switchboard_providers::gemini::Gemini;
use switchboard_providers::gemini::wire::{self, GenerateContentRequest};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9 ,.!?]{0,20}"
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z_]{0,10}"
}

/// A JSON object as OpenAI sends it: a string, with keys Gemini will not confuse with a wrapper.
fn object_text() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        "k_[a-z]{1,4}",
        prop_oneof![
            text().prop_map(Value::from),
            any::<i32>().prop_map(Value::from)
        ],
        0..3,
    )
    .prop_map(|map| Value::Object(map.into_iter().collect()).to_string())
}

fn user() -> impl Strategy<Value = Message> {
    (text(), prop::option::of("[A-Za-z0-9+/]{4,12}")).prop_map(|(text, image)| {
        let content = match image {
            None => Content::Text(text),
            Some(data) => Content::Parts(vec![
                ContentPart::Text { text },
                ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url: format!("data:image/png;base64,{data}"),
                        detail: None,
                    },
                },
            ]),
        };
        Message::User(UserMessage {
            content,
            name: None,
            extra: Map::new(),
        })
    })
}

fn assistant(content: Option<String>, tool_calls: Option<Vec<ToolCall>>) -> Message {
    Message::Assistant(AssistantMessage {
        content: content.map(Content::Text),
        tool_calls,
        ..AssistantMessage::default()
    })
}

/// One exchange: a user message and the model's answer, possibly through tool calls.
fn turn() -> impl Strategy<Value = Vec<Message>> {
    let calls = prop::collection::vec(
        (name(), object_text(), prop_oneof![text(), object_text()]),
        1..3,
    );
    (
        user(),
        prop::option::of(text()),
        prop::option::of(calls),
        text(),
    )
        .prop_map(|(user, said, calls, after)| {
            let Some(calls) = calls else {
                return vec![
                    user,
                    assistant(Some(said.unwrap_or_else(|| "ok".into())), None),
                ];
            };
            let tool_calls: Vec<ToolCall> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments, _))| ToolCall {
                    id: format!("orig_{i}"),
                    kind: FunctionType::Function,
                    function: FunctionCall {
                        name: name.clone(),
                        arguments: arguments.clone(),
                    },
                })
                .collect();
            let mut messages = vec![user, assistant(said, Some(tool_calls))];
            for (i, (_, _, result)) in calls.into_iter().enumerate() {
                messages.push(Message::Tool(ToolMessage {
                    content: Content::Text(result),
                    tool_call_id: format!("orig_{i}"),
                    extra: Map::new(),
                }));
            }
            messages.push(assistant(Some(after), None));
            messages
        })
}

fn tool() -> impl Strategy<Value = Tool> {
    (name(), prop::option::of(text()), prop::collection::btree_set("[a-z]{1,6}", 1..4)).prop_map(
        |(name, description, properties)| {
            let props: Map<String, Value> =
                properties.iter().map(|p| (p.clone(), json!({"type": "string"}))).collect();
            Tool::Function {
                function: FunctionDef {
                    name,
                    description,
                    parameters: Some(json!({"type": "object", "properties": props, "required": [properties.iter().next()]})),
                    strict: None,
                },
            }
        },
    )
}

fn tool_choice() -> impl Strategy<Value = ToolChoice> {
    prop_oneof![
        Just(ToolChoice::Mode(ToolChoiceMode::Auto)),
        Just(ToolChoice::Mode(ToolChoiceMode::None)),
        Just(ToolChoice::Mode(ToolChoiceMode::Required)),
        name().prop_map(|name| ToolChoice::Named(NamedToolChoice {
            kind: FunctionType::Function,
            function: FunctionName { name },
        })),
    ]
}

fn response_format() -> impl Strategy<Value = ResponseFormat> {
    prop_oneof![
        Just(ResponseFormat::JsonObject),
        Just(ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: "response".into(),
                description: None,
                schema: Some(json!({"type": "object", "properties": {"a": {"type": "integer"}}})),
                strict: None,
            }
        }),
    ]
}

fn ratio() -> impl Strategy<Value = f64> {
    (0u8..=20).prop_map(|n| f64::from(n) / 10.0)
}

prop_compose! {
    fn chat_request()(
        system in prop::option::of(text()),
        turns in prop::collection::vec(turn(), 0..4),
        last in user(),
        tools in prop::option::of(prop::collection::vec(tool(), 1..3)),
        choice in prop::option::of(tool_choice()),
        format in prop::option::of(response_format()),
        temperature in prop::option::of(ratio()),
        top_p in prop::option::of(ratio()),
        max in prop::option::of(1u32..10_000),
        stop in prop::option::of(prop::collection::vec(text(), 1..3)),
        n in prop::option::of(1u32..4),
        seed in prop::option::of(any::<i32>()),
        presence in prop::option::of(ratio()),
        frequency in prop::option::of(ratio()),
    ) -> ChatRequest {
        let mut messages: Vec<Message> = system
            .map(|s| Message::System(InstructionMessage { content: Content::Text(s), name: None, extra: Map::new() }))
            .into_iter()
            .collect();
        messages.extend(turns.into_iter().flatten());
        messages.push(last);
        ChatRequest {
            model: "gemini-2.5-flash".into(),
            messages,
            tools,
            tool_choice: choice,
            response_format: format,
            temperature,
            top_p,
            max_completion_tokens: max,
            stop: stop.map(Stop::Many),
            n,
            seed: seed.map(i64::from),
            presence_penalty: presence,
            frequency_penalty: frequency,
            ..ChatRequest::default()
        }
    }
}

/// The test's reader of Gemini's format: a Gemini request back in canonical form.
fn decode(body: GenerateContentRequest) -> ChatRequest {
    let mut messages = Vec::new();
    if let Some(system) = body.system_instruction {
        let text = system
            .parts
            .into_iter()
            .filter_map(|p| p.text)
            .collect::<Vec<_>>()
            .join("");
        messages.push(Message::System(InstructionMessage {
            content: Content::Text(text),
            name: None,
            extra: Map::new(),
        }));
    }
    let mut next_id = 0;
    let mut pending: Vec<(String, String)> = Vec::new();
    for content in body.contents {
        if content.role.as_deref() == Some("model") {
            messages.push(decode_model(content.parts, &mut next_id, &mut pending));
        } else {
            decode_user(content.parts, &mut pending, &mut messages);
        }
    }
    let config = body.generation_config.unwrap_or_default();
    ChatRequest {
        model: "gemini-2.5-flash".into(),
        messages,
        tools: body.tools.map(|tools| {
            tools
                .into_iter()
                .flat_map(|t| t.function_declarations)
                .map(decode_tool)
                .collect()
        }),
        tool_choice: body
            .tool_config
            .map(|c| decode_choice(c.function_calling_config)),
        response_format: match (config.response_mime_type.as_deref(), config.response_schema) {
            (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
            (Some("application/json"), Some(schema)) => Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchemaFormat {
                    name: "response".into(),
                    description: None,
                    schema: Some(schema),
                    strict: None,
                },
            }),
            _ => None,
        },
        temperature: config.temperature,
        top_p: config.top_p,
        max_completion_tokens: config.max_output_tokens,
        stop: config.stop_sequences.map(Stop::Many),
        n: config.candidate_count,
        seed: config.seed,
        presence_penalty: config.presence_penalty,
        frequency_penalty: config.frequency_penalty,
        ..ChatRequest::default()
    }
}

fn decode_model(
    parts: Vec<wire::Part>,
    next_id: &mut usize,
    pending: &mut Vec<(String, String)>,
) -> Message {
    let mut text = None;
    let mut calls = Vec::new();
    for part in parts {
        if let Some(call) = part.function_call {
            let id = format!("call_{next_id}");
            *next_id += 1;
            pending.push((id.clone(), call.name.clone()));
            calls.push(ToolCall {
                id,
                kind: FunctionType::Function,
                function: FunctionCall {
                    name: call.name,
                    arguments: call.args.unwrap_or(json!({})).to_string(),
                },
            });
        } else if let Some(t) = part.text {
            text.get_or_insert_with(String::new).push_str(&t);
        }
    }
    assistant(text, (!calls.is_empty()).then_some(calls))
}

fn decode_user(
    parts: Vec<wire::Part>,
    pending: &mut Vec<(String, String)>,
    messages: &mut Vec<Message>,
) {
    let mut user_parts = Vec::new();
    for part in parts {
        if let Some(result) = part.function_response {
            let at = pending
                .iter()
                .position(|(_, name)| *name == result.name)
                .expect("a call to answer");
            let (id, _) = pending.remove(at);
            let text = match result.response {
                Value::Object(mut o) if o.len() == 1 && o.contains_key("result") => o
                    .remove("result")
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                other => other.to_string(),
            };
            messages.push(Message::Tool(ToolMessage {
                content: Content::Text(text),
                tool_call_id: id,
                extra: Map::new(),
            }));
        } else if let Some(text) = part.text {
            user_parts.push(ContentPart::Text { text });
        } else if let Some(blob) = part.inline_data {
            let url = format!("data:{};base64,{}", blob.mime_type, blob.data);
            user_parts.push(ContentPart::ImageUrl {
                image_url: ImageUrl { url, detail: None },
            });
        }
    }
    let content = match user_parts.as_slice() {
        [] => return,
        [ContentPart::Text { text }] => Content::Text(text.clone()),
        _ => Content::Parts(user_parts),
    };
    messages.push(Message::User(UserMessage {
        content,
        name: None,
        extra: Map::new(),
    }));
}

fn decode_tool(declaration: wire::FunctionDeclaration) -> Tool {
    Tool::Function {
        function: FunctionDef {
            name: declaration.name,
            description: declaration.description,
            parameters: declaration.parameters,
            strict: None,
        },
    }
}

fn decode_choice(config: wire::FunctionCallingConfig) -> ToolChoice {
    match (config.mode.as_str(), config.allowed_function_names) {
        ("ANY", Some(mut names)) if names.len() == 1 => ToolChoice::Named(NamedToolChoice {
            kind: FunctionType::Function,
            function: FunctionName {
                name: names.remove(0),
            },
        }),
        ("ANY", _) => ToolChoice::Mode(ToolChoiceMode::Required),
        ("NONE", _) => ToolChoice::Mode(ToolChoiceMode::None),
        _ => ToolChoice::Mode(ToolChoiceMode::Auto),
    }
}

/// The request as the decoder can see it: tool call ids numbered in order.
fn expressible(mut request: ChatRequest) -> ChatRequest {
    let mut next_id = 0;
    let mut renamed = std::collections::HashMap::new();
    for message in &mut request.messages {
        match message {
            Message::Assistant(m) => {
                for call in m.tool_calls.iter_mut().flatten() {
                    let id = format!("call_{next_id}");
                    next_id += 1;
                    renamed.insert(call.id.clone(), id.clone());
                    call.id = id;
                }
            }
            Message::Tool(m) => m.tool_call_id = renamed[&m.tool_call_id].clone(),
            _ => {}
        }
    }
    request
}

proptest! {
    #[test]
    fn requests_survive_encode_then_decode(request in chat_request()) {
        let endpoint = Endpoint { base_url: "https://g.test".into(), api_key: Some("k".into()), headers: Default::default() };
        let http = Gemini.chat_request(&endpoint, &request).unwrap();
        let body: GenerateContentRequest = serde_json::from_slice(http.body()).unwrap();
        let roles: Vec<_> = body.contents.iter().map(|c| c.role.clone()).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "roles alternate: {roles:?}");
        prop_assert_eq!(decode(body), expressible(request));
    }
}
