//! Property: any canonical request Anthropic can express survives encoding to a Messages request
//! and decoding back (with a test-only decoder of Anthropic's request format) unchanged in every
//! field Anthropic carries. Roles are merged and system messages lifted, so conversations are
//! compared as the sequence of what each side said.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_providers::Adapter;
use switchboard_providers::Endpoint;
use switchboard_providers::anthropic::Anthropic;
use switchboard_providers::chat::{
    AssistantMessage, ChatRequest, Content, ContentPart, FunctionCall, FunctionDef, FunctionName,
    FunctionType, ImageUrl, InstructionMessage, Message, NamedToolChoice, Stop, Tool, ToolCall,
    ToolChoice, ToolChoiceMode, ToolMessage, UserMessage,
};

// ---- generators of canonical requests ----

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?é]{1,16}"
}

fn image() -> impl Strategy<Value = ContentPart> {
    prop_oneof![
        "[A-Za-z0-9+/]{4,16}".prop_map(|d| format!("data:image/png;base64,{d}")),
        "[a-z]{1,8}".prop_map(|p| format!("https://images.test/{p}.jpg")),
    ]
    .prop_map(|url| ContentPart::ImageUrl {
        image_url: ImageUrl { url, detail: None },
    })
}

fn user_content() -> impl Strategy<Value = Content> {
    prop_oneof![
        text().prop_map(Content::Text),
        prop::collection::vec(
            prop_oneof![text().prop_map(|text| ContentPart::Text { text }), image()],
            1..4
        )
        .prop_map(Content::Parts),
    ]
}

fn arguments() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![
            text().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
        ],
        0..3,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()).to_string())
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    ("toolu_[a-z0-9]{6}", "[a-z_]{1,10}", arguments()).prop_map(|(id, name, arguments)| ToolCall {
        id,
        kind: FunctionType::Function,
        function: FunctionCall { name, arguments },
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        text().prop_map(|t| Message::System(instruction(t))),
        text().prop_map(|t| Message::Developer(instruction(t))),
        user_content().prop_map(|content| Message::User(UserMessage {
            content,
            name: None,
            extra: Default::default()
        })),
        (
            prop::option::of(text()),
            prop::collection::vec(tool_call(), 0..3)
        )
            .prop_filter("an assistant says something", |(t, c)| t.is_some()
                || !c.is_empty())
            .prop_map(|(text, calls)| Message::Assistant(AssistantMessage {
                content: text.map(Content::Text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..AssistantMessage::default()
            })),
        ("toolu_[a-z0-9]{6}", text()).prop_map(|(id, t)| Message::Tool(ToolMessage {
            content: Content::Text(t),
            tool_call_id: id,
            extra: Default::default()
        })),
    ]
}

fn instruction(text: String) -> InstructionMessage {
    InstructionMessage {
        content: Content::Text(text),
        name: None,
        extra: Default::default(),
    }
}

fn tool() -> impl Strategy<Value = Tool> {
    ("[a-z_]{1,10}", prop::option::of(text())).prop_map(|(name, description)| Tool::Function {
        function: FunctionDef {
            name,
            description,
            parameters: Some(json!({"type": "object", "properties": {"city": {"type": "string"}}})),
            strict: None,
        },
    })
}

/// Sampling values as clients write them. serde_json (without `float_roundtrip`) may read a
/// 17-digit float back one ulp off; that is the parser's, not the translation's.
fn hundredths() -> impl Strategy<Value = f64> {
    (0..=100u32).prop_map(|n| f64::from(n) / 100.0)
}

prop_compose! {
    fn request()(
        messages in prop::collection::vec(message(), 1..8),
        tools in prop::collection::vec(tool(), 0..3),
        choice in 0..5u8,
        parallel in prop::option::of(any::<bool>()),
        temperature in prop::option::of(hundredths()),
        top_p in prop::option::of(hundredths()),
        stop in prop::option::of(prop::collection::vec(text(), 1..3)),
        max_tokens in prop::option::of(1..100_000u32),
        user in prop::option::of("[a-z0-9-]{1,12}"),
        stream in any::<bool>(),
    ) -> ChatRequest {
        let tool_choice = match (choice, tools.first()) {
            (0, _) => None,
            (1, _) => Some(ToolChoice::Mode(ToolChoiceMode::Auto)),
            (2, _) => Some(ToolChoice::Mode(ToolChoiceMode::None)),
            (3, _) => Some(ToolChoice::Mode(ToolChoiceMode::Required)),
            (_, Some(Tool::Function { function })) => Some(ToolChoice::Named(NamedToolChoice {
                kind: FunctionType::Function,
                function: FunctionName { name: function.name.clone() },
            })),
            (_, None) => None,
        };
        ChatRequest {
            model: "claude-sonnet-4-5".into(),
            messages,
            tools: (!tools.is_empty()).then_some(tools),
            tool_choice,
            parallel_tool_calls: parallel,
            temperature,
            top_p,
            stop: stop.map(Stop::Many),
            max_tokens,
            user,
            stream: stream.then_some(true),
            ..ChatRequest::default()
        }
    }
}

// ---- the test-only decoder: an Anthropic request body back to canonical form ----

fn decode(body: &Value) -> ChatRequest {
    let mut messages: Vec<Message> = body["system"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| Message::System(instruction(b["text"].as_str().unwrap().to_owned())))
        .collect();
    for turn in body["messages"].as_array().unwrap() {
        let blocks = match &turn["content"] {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            other => panic!("content must be a string or blocks, got {other}"),
        };
        match turn["role"].as_str().unwrap() {
            "user" => messages.extend(decode_user(&blocks)),
            "assistant" => messages.extend(decode_assistant(&blocks)),
            role => panic!("unexpected role {role}"),
        }
    }
    let tools: Option<Vec<Tool>> = body.get("tools").map(|tools| {
        tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| Tool::Function {
                function: FunctionDef {
                    name: t["name"].as_str().unwrap().to_owned(),
                    description: t["description"].as_str().map(str::to_owned),
                    parameters: Some(t["input_schema"].clone()),
                    strict: None,
                },
            })
            .collect()
    });
    let choice = &body["tool_choice"];
    let tool_choice = match choice["type"].as_str() {
        None => None,
        Some("auto") => Some(ToolChoice::Mode(ToolChoiceMode::Auto)),
        Some("none") => Some(ToolChoice::Mode(ToolChoiceMode::None)),
        Some("any") => Some(ToolChoice::Mode(ToolChoiceMode::Required)),
        Some("tool") => Some(ToolChoice::Named(NamedToolChoice {
            kind: FunctionType::Function,
            function: FunctionName {
                name: choice["name"].as_str().unwrap().to_owned(),
            },
        })),
        Some(other) => panic!("unexpected tool_choice {other}"),
    };
    ChatRequest {
        model: body["model"].as_str().unwrap().to_owned(),
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: (choice["disable_parallel_tool_use"] == json!(true)).then_some(false),
        temperature: body["temperature"].as_f64(),
        top_p: body["top_p"].as_f64(),
        stop: body
            .get("stop_sequences")
            .map(|s| Stop::Many(serde_json::from_value(s.clone()).unwrap())),
        max_tokens: body["max_tokens"].as_u64().map(|n| n as u32),
        user: body["metadata"]["user_id"].as_str().map(str::to_owned),
        stream: body["stream"].as_bool(),
        ..ChatRequest::default()
    }
}

fn decode_user(blocks: &[Value]) -> Vec<Message> {
    blocks
        .iter()
        .map(|block| match block["type"].as_str().unwrap() {
            "tool_result" => Message::Tool(ToolMessage {
                content: Content::Text(block["content"].as_str().unwrap().to_owned()),
                tool_call_id: block["tool_use_id"].as_str().unwrap().to_owned(),
                extra: Default::default(),
            }),
            _ => Message::User(UserMessage {
                content: Content::Parts(vec![decode_part(block)]),
                name: None,
                extra: Default::default(),
            }),
        })
        .collect()
}

fn decode_part(block: &Value) -> ContentPart {
    match block["type"].as_str().unwrap() {
        "text" => ContentPart::Text {
            text: block["text"].as_str().unwrap().to_owned(),
        },
        "image" => {
            let source = &block["source"];
            let url = match source["type"].as_str().unwrap() {
                "url" => source["url"].as_str().unwrap().to_owned(),
                "base64" => format!(
                    "data:{};base64,{}",
                    source["media_type"].as_str().unwrap(),
                    source["data"].as_str().unwrap()
                ),
                other => panic!("unexpected source {other}"),
            };
            ContentPart::ImageUrl {
                image_url: ImageUrl { url, detail: None },
            }
        }
        other => panic!("unexpected user block {other}"),
    }
}

/// Canonical assistant messages put text before tool calls; a turn whose text follows a call is
/// split where it does, so block order survives.
fn decode_assistant(blocks: &[Value]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut current = AssistantMessage::default();
    for block in blocks {
        match block["type"].as_str().unwrap() {
            "text" => {
                if current.tool_calls.is_some() {
                    messages.push(Message::Assistant(std::mem::take(&mut current)));
                }
                let text = block["text"].as_str().unwrap().to_owned();
                let Content::Parts(parts) =
                    current.content.get_or_insert(Content::Parts(Vec::new()))
                else {
                    unreachable!("built as parts")
                };
                parts.push(ContentPart::Text { text });
            }
            "tool_use" => current
                .tool_calls
                .get_or_insert_with(Vec::new)
                .push(ToolCall {
                    id: block["id"].as_str().unwrap().to_owned(),
                    kind: FunctionType::Function,
                    function: FunctionCall {
                        name: block["name"].as_str().unwrap().to_owned(),
                        arguments: block["input"].to_string(),
                    },
                }),
            other => panic!("unexpected assistant block {other}"),
        }
    }
    messages.push(Message::Assistant(current));
    messages
}

// ---- what Anthropic can express, for comparison ----

#[derive(Debug, PartialEq)]
enum Said {
    System(String),
    Text(&'static str, String),
    Image(String),
    Call(String, String, Value),
    Result(String, String),
}

/// The conversation as what was said in order, by Anthropic's two roles, system text apart.
fn said(request: &ChatRequest) -> (Vec<Said>, Vec<Said>) {
    let (mut system, mut turns) = (Vec::new(), Vec::new());
    for message in &request.messages {
        match message {
            Message::System(m) | Message::Developer(m) => {
                system.push(Said::System(m.content.text()))
            }
            Message::User(m) => turns.extend(parts("user", &m.content)),
            Message::Tool(m) => turns.push(Said::Result(m.tool_call_id.clone(), m.content.text())),
            Message::Assistant(m) => {
                turns.extend(m.content.iter().flat_map(|c| parts("assistant", c)));
                for call in m.tool_calls.iter().flatten() {
                    let args = serde_json::from_str(&call.function.arguments).unwrap();
                    turns.push(Said::Call(
                        call.id.clone(),
                        call.function.name.clone(),
                        args,
                    ));
                }
            }
            Message::Function(_) => panic!("the generator makes no legacy function messages"),
        }
    }
    (system, turns)
}

fn parts(role: &'static str, content: &Content) -> Vec<Said> {
    match content {
        Content::Text(t) => vec![Said::Text(role, t.clone())],
        Content::Parts(parts) => parts
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => Said::Text(role, text.clone()),
                ContentPart::ImageUrl { image_url } => Said::Image(image_url.url.clone()),
                other => panic!("not generated: {other:?}"),
            })
            .collect(),
    }
}

/// Tool choice as Anthropic means it: with no tools there is none, `auto` is the default, and
/// parallelism only matters when a tool may be called.
fn choice(request: &ChatRequest) -> (Option<ToolChoice>, bool) {
    if request.tools.is_none() {
        return (None, true);
    }
    let choice = request
        .tool_choice
        .clone()
        .unwrap_or(ToolChoice::Mode(ToolChoiceMode::Auto));
    let parallel = choice == ToolChoice::Mode(ToolChoiceMode::None)
        || request.parallel_tool_calls != Some(false);
    (Some(choice), parallel)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn encode_then_decode_keeps_what_anthropic_expresses(original in request()) {
        let http = Anthropic.chat_request(&Endpoint::default(), &original).unwrap();
        let body: Value = serde_json::from_slice(http.body()).unwrap();
        let decoded = decode(&body);

        prop_assert_eq!(said(&decoded), said(&original));
        prop_assert_eq!(&decoded.tools, &original.tools);
        prop_assert_eq!(choice(&decoded), choice(&original));
        prop_assert_eq!(decoded.temperature, original.temperature);
        prop_assert_eq!(decoded.top_p, original.top_p);
        prop_assert_eq!(&decoded.stop, &original.stop);
        prop_assert_eq!(&decoded.user, &original.user);
        prop_assert_eq!(decoded.stream, original.stream);
        if original.max_tokens.is_some() {
            prop_assert_eq!(decoded.max_tokens, original.max_tokens);
        }
        // Anthropic's role rule: no two consecutive turns share a role.
        let roles: Vec<&str> = body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "roles alternate: {:?}", roles);
    }
}
