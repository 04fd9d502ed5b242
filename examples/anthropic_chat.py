"""Talk to Switchboard with the official anthropic SDK: a plain answer, a stream, a tool call
answered with its result, and a token count, all on Anthropic's Messages API.

Start the gateway first (`cargo run --release`), then, from another terminal:
    ./scripts/example.sh anthropic_chat
(which sets up .venv with the SDK the first time).
Set SWITCHBOARD_KEY when config.yaml has keys; the shipped config has none.
"""

import os

import anthropic

# The Anthropic SDK's base URL is the gateway's root: it adds /v1/messages itself.
base_url = os.environ.get("SWITCHBOARD_BASE_URL", "http://127.0.0.1:8080/v1").removesuffix("/v1")
client = anthropic.Anthropic(base_url=base_url, api_key=os.environ.get("SWITCHBOARD_KEY", "no-key-needed"))

message = client.messages.create(
    model="fast",
    max_tokens=256,
    system="You are brief.",
    messages=[{"role": "user", "content": "What is a switchboard?"}],
)
print("answer:", message.content[0].text)
print("usage: ", message.usage.model_dump(exclude_none=True))

print("stream:", end=" ", flush=True)
with client.messages.stream(
    model="smart", max_tokens=256, messages=[{"role": "user", "content": "Stream this back to me"}]
) as stream:
    for text in stream.text_stream:
        print(text, end="", flush=True)
print()

weather = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
question = {"role": "user", "content": "What is the weather in Paris?"}
asked = client.messages.create(model="fast", max_tokens=256, tools=[weather], messages=[question])
call = next(block for block in asked.content if block.type == "tool_use")
print("tool call:", call.name, call.input)
answered = client.messages.create(
    model="fast",
    max_tokens=256,
    tools=[weather],
    messages=[
        question,
        {"role": "assistant", "content": asked.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}]},
    ],
)
print("after the tool:", answered.content[0].text)

counted = client.messages.count_tokens(model="fast", messages=[question])
print("prompt tokens:", counted.input_tokens)
