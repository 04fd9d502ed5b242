"""The official openai SDK against the gateway in front of each provider's fake (Anthropic, Gemini,
Cohere, Mistral, Azure, Bedrock): an SDK user must not be able to tell which provider answered.

Run by tests/gateway/python.rs with SWITCHBOARD_BASE_URL, SWITCHBOARD_KEY and SWITCHBOARD_MODELS
(comma-separated `provider` names; each is addressed as `<provider>/ok` and `<provider>/parallel`).
"""

import json
import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ["SWITCHBOARD_BASE_URL"], api_key=os.environ["SWITCHBOARD_KEY"], max_retries=0
)
PROVIDERS = [p for p in os.environ["SWITCHBOARD_MODELS"].split(",") if p]

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
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}]


def plain(provider):
    completion = client.chat.completions.create(model=f"{provider}/ok", messages=MESSAGES)
    choice = completion.choices[0]
    assert choice.message.role == "assistant", completion
    assert choice.message.content, completion
    assert choice.finish_reason == "stop", completion
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0, completion
    return choice.message.content


def streamed(provider, expected):
    stream = client.chat.completions.create(
        model=f"{provider}/ok", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces) == expected, (provider, pieces, expected)
    assert finish == "stop", (provider, finish)
    assert usage is not None and usage.total_tokens > 0, (provider, usage)


def streamed_tool_call(provider):
    # The SDK's own helper reassembles tool-call deltas into a final completion.
    helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
    with helper(model=f"{provider}/ok", messages=MESSAGES, tools=[WEATHER_TOOL]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls", (provider, final)
    call = choice.message.tool_calls[0]
    assert call.id, (provider, call)
    assert call.function.name == "get_weather", (provider, call)
    assert json.loads(call.function.arguments) == {"city": "Paris"}, (provider, call)
    return call


def parallel_tool_calls(provider):
    completion = client.chat.completions.create(
        model=f"{provider}/parallel", messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Tokyo"], (provider, calls)
    assert len({c.id for c in calls}) == 2, (provider, calls)


def tool_result_round_trip(provider, call):
    # The call goes back with its result, as an agent loop sends it: the provider must accept it.
    messages = MESSAGES + [
        {"role": "assistant", "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    completion = client.chat.completions.create(model=f"{provider}/ok", messages=messages, tools=[WEATHER_TOOL])
    assert completion.choices[0].message is not None, (provider, completion)


if __name__ == "__main__":
    assert PROVIDERS, "SWITCHBOARD_MODELS names no provider"
    for provider in PROVIDERS:
        text = plain(provider)
        streamed(provider, text)
        call = streamed_tool_call(provider)
        parallel_tool_calls(provider)
        tool_result_round_trip(provider, call)
        print(f"{provider}: ok")
    print("providers via the openai SDK: all checks passed")
