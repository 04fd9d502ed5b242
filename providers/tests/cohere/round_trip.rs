//! Random canonical requests encoded for Cohere and decoded back by a test-only reader of
//! Cohere's request format: every field Cohere can express survives.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use switchboard_providers::Adapter;
use switchboard_providers::chat::ChatRequest;
use switchboard_providers::cohere::Cohere;

/// Reads a Cohere `/v2/chat` body back into OpenAI's request shape.
fn decode(body: &Value) -> Value {
    let mut out = Map::new();
    out.insert("model".into(), body["model"].clone());
    let messages: Vec<Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(decode_message)
        .collect();
    out.insert("messages".into(), json!(messages));
    if let Some(tools) = body.get("tools") {
        let strict = body.get("strict_tools") == Some(&json!(true));
        let tools: Vec<Value> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                if strict {
                    t["function"]["strict"] = json!(true);
                }
                t
            })
            .collect();
        out.insert("tools".into(), json!(tools));
    }
    if let Some(choice) = body.get("tool_choice") {
        let mode = match choice.as_str().unwrap() {
            "REQUIRED" => "required",
            "NONE" => "none",
            other => panic!("unknown tool_choice {other}"),
        };
        out.insert("tool_choice".into(), json!(mode));
    }
    if let Some(format) = body.get("response_format") {
        let openai = match format.get("json_schema") {
            Some(schema) => {
                json!({"type": "json_schema", "json_schema": {"name": "schema", "schema": schema}})
            }
            None => format.clone(),
        };
        out.insert("response_format".into(), openai);
    }
    let renames = [
        ("temperature", "temperature"),
        ("p", "top_p"),
        ("k", "top_k"),
        ("max_tokens", "max_tokens"),
        ("seed", "seed"),
        ("stop_sequences", "stop"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("stream", "stream"),
    ];
    for (cohere, openai) in renames {
        if let Some(value) = body.get(cohere) {
            out.insert(openai.into(), value.clone());
        }
    }
    Value::Object(out)
}

fn decode_message(m: &Value) -> Value {
    match m["role"].as_str().unwrap() {
        "assistant" => {
            let mut out = json!({"role": "assistant"});
            if let Some(calls) = m.get("tool_calls") {
                out["tool_calls"] = calls.clone();
                out["content"] = m.get("tool_plan").cloned().unwrap_or(Value::Null);
            } else {
                out["content"] = m["content"].clone();
            }
            out
        }
        _ => m.clone(),
    }
}

/// What Cohere can say of `request`, in OpenAI's shape: the developer role is the system
/// prompt, tool results and system prompts are text, a plan without calls is absent, and the
/// schema's name is not carried.
fn expressible(request: &Value) -> Value {
    let mut out = request.clone();
    let out_map = out.as_object_mut().unwrap();
    if let Some(max) = out_map.remove("max_completion_tokens") {
        out_map.insert("max_tokens".into(), max);
    }
    if out_map.get("tool_choice") == Some(&json!("auto")) {
        out_map.remove("tool_choice");
    }
    if let Some(schema) = out_map
        .get_mut("response_format")
        .and_then(|f| f.get_mut("json_schema"))
    {
        schema["name"] = json!("schema");
    }
    if out_map.get("tools").is_none() {
        out_map.remove("tool_choice");
    }
    if let Some(tools) = out_map.get_mut("tools") {
        let strict = tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["strict"] == json!(true));
        for tool in tools.as_array_mut().unwrap() {
            let function = tool["function"].as_object_mut().unwrap();
            function.remove("strict");
            if strict {
                function.insert("strict".into(), json!(true));
            }
        }
    }
    for m in out_map["messages"].as_array_mut().unwrap() {
        if m["role"] == "developer" {
            m["role"] = json!("system");
        }
        if m["role"] == "assistant" && m["content"] == json!("") && m.get("tool_calls").is_some() {
            m["content"] = Value::Null;
        }
    }
    out
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 {}\":,.é]{0,12}"
}

fn nonempty() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ]{1,12}"
}

fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"role": "system", "content": t})),
        text().prop_map(|t| json!({"role": "developer", "content": t})),
        text().prop_map(|t| json!({"role": "user", "content": t})),
        (nonempty(), "https://img\\.test/[a-z]{1,6}\\.png", proptest::option::of(prop_oneof!["low", "high", "auto"]))
            .prop_map(|(t, url, detail)| {
                let mut image = json!({"url": url});
                if let Some(detail) = detail {
                    image["detail"] = json!(detail);
                }
                json!({"role": "user", "content": [{"type": "text", "text": t}, {"type": "image_url", "image_url": image}]})
            }),
        text().prop_map(|t| json!({"role": "assistant", "content": t})),
        (text(), proptest::collection::vec(("[a-z0-9_]{1,10}", "[a-z_]{1,8}", text()), 1..3)).prop_map(
            |(plan, calls)| {
                let calls: Vec<Value> = calls
                    .into_iter()
                    .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
                    .collect();
                json!({"role": "assistant", "content": plan, "tool_calls": calls})
            }
        ),
        ("[a-z0-9_]{1,10}", text()).prop_map(|(id, t)| json!({"role": "tool", "tool_call_id": id, "content": t})),
    ]
}

fn tenth() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of((0u32..20).prop_map(|n| f64::from(n) / 10.0))
}

fn request() -> impl Strategy<Value = Value> {
    let tools = proptest::option::of(proptest::collection::vec(
        (
            "[a-z_]{1,8}",
            proptest::option::of(text()),
            proptest::option::of(any::<bool>()),
        ),
        1..3,
    ));
    let sampling = (
        tenth(),
        tenth(),
        tenth(),
        tenth(),
        proptest::option::of(1u32..4096),
        proptest::option::of(any::<i64>()),
        proptest::option::of(proptest::collection::vec(nonempty(), 1..3)),
        proptest::option::of(1u32..500),
    );
    let format = proptest::option::of(prop_oneof![
        Just(json!({"type": "json_object"})),
        Just(json!({"type": "text"})),
        Just(
            json!({"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}})
        ),
    ]);
    (
        proptest::collection::vec(message(), 1..6),
        tools,
        proptest::option::of(prop_oneof!["auto", "none", "required"]),
        sampling,
        format,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(messages, tools, choice, sampling, format, stream, new_max)| {
                let mut r = json!({"model": "command-a-03-2025", "messages": messages});
                if let Some(tools) = tools {
                    let tools: Vec<Value> = tools
                        .into_iter()
                        .map(|(name, description, strict)| {
                            let mut f = json!({"name": name, "parameters": {"type": "object"}});
                            if let Some(d) = description {
                                f["description"] = json!(d);
                            }
                            if let Some(s) = strict {
                                f["strict"] = json!(s);
                            }
                            json!({"type": "function", "function": f})
                        })
                        .collect();
                    r["tools"] = json!(tools);
                }
                if let Some(choice) = choice {
                    r["tool_choice"] = json!(choice);
                }
                let (temperature, top_p, fp, pp, max, seed, stop, k) = sampling;
                let numbers = [
                    ("temperature", temperature),
                    ("top_p", top_p),
                    ("frequency_penalty", fp),
                    ("presence_penalty", pp),
                ];
                for (key, value) in numbers {
                    if let Some(value) = value {
                        r[key] = json!(value);
                    }
                }
                if let Some(max) = max {
                    r[if new_max {
                        "max_completion_tokens"
                    } else {
                        "max_tokens"
                    }] = json!(max);
                }
                if let Some(seed) = seed {
                    r["seed"] = json!(seed);
                }
                if let Some(stop) = stop {
                    r["stop"] = json!(stop);
                }
                if let Some(k) = k {
                    r["top_k"] = json!(k);
                }
                if let Some(format) = format {
                    r["response_format"] = format;
                }
                if stream {
                    r["stream"] = json!(true);
                }
                r
            },
        )
}

proptest! {
    #[test]
    fn requests_survive_encode_then_decode(openai in request()) {
        let request: ChatRequest = serde_json::from_value(openai.clone()).unwrap();
        let endpoint = switchboard_providers::Endpoint {
            base_url: "https://api.cohere.com".into(),
            ..Default::default()
        };
        let http = Cohere.chat_request(&endpoint, &request).unwrap();
        let body: Value = serde_json::from_slice(http.body()).unwrap();
        prop_assert_eq!(decode(&body), expressible(&openai));
    }
}
