"""The official openai SDK against a running gateway (the mock provider behind it).

Run by tests/gateway/python.rs with SWITCHBOARD_BASE_URL and SWITCHBOARD_KEY set. Every check is an
assert: a failure exits non-zero with the traceback.
"""

import json
import os
from enum import Enum
from typing import Optional

import openai
import pydantic
from openai import OpenAI

BASE_URL = os.environ["SWITCHBOARD_BASE_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
client = OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def plain_chat():
    completion = client.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "Hello gateway"}]
    )
    assert completion.choices[0].message.content == "Mock answer to: Hello gateway", completion
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    return completion


def streamed_chat(plain):
    stream = client.chat.completions.create(
        model="fast",
        messages=[{"role": "user", "content": "Hello gateway"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, chunks = [], None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    assert chunks > 3, chunks
    assert "".join(pieces) == plain.choices[0].message.content
    assert usage == plain.usage, (usage, plain.usage)


def tool_round_trip():
    messages = [{"role": "user", "content": "Paris"}]
    first = client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}', call.function.arguments
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
    second = client.chat.completions.create(model="fast", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "The tool returned: sunny, 21C", second


def streamed_tool_call_with_sdk_helper():
    # The SDK's own stream helper reassembles tool-call deltas into a final completion.
    helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
    with helper(
        model="fast", messages=[{"role": "user", "content": "Berlin"}], tools=[WEATHER_TOOL]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Berlin"}'


def embeddings():
    # The SDK asks for base64 by default and decodes it itself.
    result = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) == 1536
    norm = sum(v * v for v in result.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3, norm
    again = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    # JSON floats print the shortest decimal of each f32; base64 carries the exact bits.
    assert all(abs(a - b) < 1e-6 for a, b in zip(again.data[0].embedding, result.data[0].embedding))


def models():
    ids = sorted(m.id for m in client.models.list())
    assert ids == ["fast", "text-embedding-3-small"], ids
    assert client.models.retrieve("fast").id == "fast"


def errors():
    bad_key = OpenAI(base_url=BASE_URL, api_key="sk-wrong", max_retries=0)
    try:
        bad_key.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected AuthenticationError")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key", e
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected NotFoundError")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e
    try:
        client.chat.completions.create(model="fast", messages=[])
        raise AssertionError("expected BadRequestError")
    except openai.BadRequestError as e:
        assert e.param == "messages", e
    try:
        client.chat.completions.create(model="forbidden", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected PermissionDeniedError")
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403, e


def rate_limited():
    # A key allowed one request a minute: the second raises the SDK's own RateLimitError.
    limited = OpenAI(base_url=BASE_URL, api_key="sk-sdk-limited", max_retries=0)
    raw = limited.chat.completions.with_raw_response.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-ratelimit-limit-requests"] == "1", raw.headers
    assert raw.headers["x-ratelimit-remaining-requests"] == "0", raw.headers
    try:
        limited.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
        raise AssertionError("expected RateLimitError")
    except openai.RateLimitError as e:
        assert e.code == "rate_limit_exceeded", e
        assert int(e.response.headers["retry-after"]) >= 1, e.response.headers
        assert e.response.headers["x-ratelimit-limit-requests"] == "1"


def token_quota():
    # A key with 2,000 tokens a minute and 100 a day: the first call reserves its prompt plus
    # max_tokens, and its headers report what is left after what it used (a few tokens, not the
    # 90 reserved); the second would pass the daily quota.
    quota = OpenAI(base_url=BASE_URL, api_key="sk-sdk-tokens", max_retries=0)
    messages = [{"role": "user", "content": "x"}]
    raw = quota.chat.completions.with_raw_response.create(model="fast", max_tokens=90, messages=messages)
    assert raw.headers["x-ratelimit-limit-tokens"] == "2000", raw.headers
    remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
    assert 2000 - 90 < remaining < 2000, raw.headers
    assert raw.headers["x-ratelimit-reset-tokens"].endswith("s"), raw.headers
    try:
        quota.chat.completions.create(model="fast", max_tokens=90, messages=messages)
        raise AssertionError("expected RateLimitError")
    except openai.RateLimitError as e:
        assert e.code == "insufficient_quota", e
        assert "tokens_per_day is 100" in e.message, e.message
        assert int(e.response.headers["retry-after"]) >= 1, e.response.headers


class Mood(str, Enum):
    calm = "calm"
    stormy = "stormy"


class Step(pydantic.BaseModel):
    explanation: str
    output: str


class Forecast(pydantic.BaseModel):
    city: str
    days: int
    mood: Mood
    steps: list[Step]
    note: Optional[str]


def structured_output():
    """The shipped mock answers what `.parse()` and JSON mode need: JSON fitting the schema."""
    messages = [{"role": "user", "content": "Forecast for Paris"}]
    parsed = client.chat.completions.parse(model="fast", messages=messages, response_format=Forecast)
    forecast = parsed.choices[0].message.parsed
    assert isinstance(forecast, Forecast), parsed
    assert forecast.mood == Mood.calm and forecast.steps, forecast
    with client.chat.completions.stream(model="fast", messages=messages, response_format=Forecast) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == forecast, final
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="fast", messages=messages, response_format={"type": "json_object"}, stream=True
        )
        if chunk.choices
    )
    assert isinstance(json.loads(text), dict), text


if __name__ == "__main__":
    plain = plain_chat()
    streamed_chat(plain)
    tool_round_trip()
    streamed_tool_call_with_sdk_helper()
    embeddings()
    models()
    errors()
    rate_limited()
    token_quota()
    structured_output()
    print("openai SDK: all checks passed")
