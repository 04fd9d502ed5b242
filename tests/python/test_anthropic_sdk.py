"""The official anthropic SDK against the gateway's /v1/messages.

SCENARIO picks the upstream behind model `claude`: `mock` (the built-in model), `anthropic` (a
fake Anthropic, reached natively), `openai` (a fake OpenAI-compatible server, translated).
"""

import os
import sys

import anthropic

scenario = os.environ["SCENARIO"]
base = os.environ["SWITCHBOARD_BASE_URL"].removesuffix("/v1")
key = os.environ["SWITCHBOARD_KEY"]
client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)

weather = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


# Plain, with a system prompt given as blocks with cache_control.
message = client.messages.create(
    model="claude",
    max_tokens=64,
    system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    messages=[{"role": "user", "content": "Say hello"}],
)
check(message.type == "message" and message.role == "assistant", f"message shape: {message}")
check(message.stop_reason == "end_turn", f"stop_reason: {message.stop_reason}")
text = "".join(b.text for b in message.content if b.type == "text")
check(text, f"text answer: {message.content}")
check(message.usage.input_tokens > 0 and message.usage.output_tokens > 0, f"usage: {message.usage}")

# Streamed with the helper: text as it comes, and the final message assembled.
with client.messages.stream(
    model="claude", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
# The fake OpenAI-compatible server words its streamed answer differently.
check(streamed == text or (scenario == "openai" and streamed), f"streamed {streamed!r}, plain {text!r}")
check(final.stop_reason == "end_turn", f"final stop_reason: {final.stop_reason}")
check(final.usage.output_tokens > 0, f"final usage: {final.usage}")

# Tools, then the tool's result sent back.
first = client.messages.create(
    model="claude",
    max_tokens=256,
    tools=[weather],
    messages=[{"role": "user", "content": "Weather in Paris?"}],
)
check(first.stop_reason == "tool_use", f"tool stop_reason: {first.stop_reason}")
call = next(b for b in first.content if b.type == "tool_use")
check(call.name == "get_weather" and isinstance(call.input.get("city"), str), f"call: {call}")
second = client.messages.create(
    model="claude",
    max_tokens=256,
    tools=[weather],
    messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}],
        },
    ],
)
check(second.stop_reason == "end_turn", f"after the result: {second.stop_reason}")

# A streamed tool call assembles to the same call.
with client.messages.stream(
    model="claude",
    max_tokens=256,
    tools=[weather],
    messages=[{"role": "user", "content": "Weather in Paris?"}],
) as stream:
    streamed_call = next(b for b in stream.get_final_message().content if b.type == "tool_use")
check(streamed_call.input == call.input, f"streamed call {streamed_call.input} == {call.input}")

# An image, base64.
pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
seen = client.messages.create(
    model="claude",
    max_tokens=64,
    messages=[
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": pixel}},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ],
)
check(seen.content, "an answer about an image")

# Token counting.
counted = client.messages.count_tokens(
    model="claude", messages=[{"role": "user", "content": "Hello there, how are you?"}]
)
if scenario == "anthropic":
    check(counted.input_tokens == 42, f"Anthropic's own count: {counted.input_tokens}")
else:
    check(counted.input_tokens > 0, f"local count: {counted.input_tokens}")

# Thinking, with the signed block sent back in the next turn (Anthropic checks the signature).
if scenario == "anthropic":
    thought = client.messages.create(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[weather],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    thinking = next(b for b in thought.content if b.type == "thinking")
    check(thinking.signature, f"signed thinking: {thinking}")
    tool = next(b for b in thought.content if b.type == "tool_use")
    client.messages.create(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[weather],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in thought.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "18C"}]},
        ],
    )
    with client.messages.stream(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think first"}],
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    check(block.type == "thinking" and block.signature == thinking.signature, f"streamed thinking: {final.content}")

# Typed errors.
try:
    anthropic.Anthropic(base_url=base, api_key="wrong", max_retries=0).messages.create(
        model="claude", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    check(False, "a wrong key is refused")
except anthropic.AuthenticationError as e:
    check(e.body["error"]["type"] == "authentication_error", f"auth error body: {e.body}")
try:
    client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    check(False, "an unknown model is refused")
except anthropic.NotFoundError as e:
    check(e.body["error"]["type"] == "not_found_error", f"not found body: {e.body}")
try:
    client.messages.create(model="claude", max_tokens=5, messages=[])
    check(False, "no messages is refused")
except anthropic.BadRequestError as e:
    check(e.body["error"]["type"] == "invalid_request_error", f"bad request body: {e.body}")
limited = anthropic.Anthropic(base_url=base, api_key=os.environ["LIMITED_KEY"], max_retries=0)
limited.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
try:
    limited.messages.create(model="claude", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    check(False, "the second request in a minute is refused")
except anthropic.RateLimitError as e:
    check(e.body["error"]["type"] == "rate_limit_error", f"rate limit body: {e.body}")
    check(int(e.response.headers["retry-after"]) >= 1, f"retry-after: {e.response.headers}")

print("ok")
