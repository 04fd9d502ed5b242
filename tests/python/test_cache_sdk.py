"""The official openai SDK against a gateway with the response cache on: a plain miss is replayed
as a stream the SDK's own iterator and stream helper parse, and a streamed miss as plain JSON.

Run by tests/gateway/python.rs with SWITCHBOARD_BASE_URL and SWITCHBOARD_KEY set.
"""

import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["SWITCHBOARD_BASE_URL"], api_key=os.environ["SWITCHBOARD_KEY"], max_retries=0)
MESSAGES = [{"role": "user", "content": "cache me if you can"}]


def plain(messages):
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=messages)
    return raw.headers["x-switchboard-cache"], raw.parse()


def streamed(messages, include_usage):
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=messages, stream=True, stream_options={"include_usage": include_usage}
    )
    text, usage = "", None
    for chunk in raw.parse():
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
    return raw.headers["x-switchboard-cache"], text, usage


status, first = plain(MESSAGES)
assert status == "miss", status
status, text, usage = streamed(MESSAGES, include_usage=True)
assert status == "hit", status
assert text == first.choices[0].message.content, (text, first)
assert usage == first.usage, (usage, first.usage)
status, text, usage = streamed(MESSAGES, include_usage=False)
assert (status, usage) == ("hit", None), (status, usage)

tool = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
tool_messages = [{"role": "user", "content": "find it"}]
helper = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
with helper(model="fast", messages=tool_messages, tools=[tool]) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
assert final.choices[0].message.tool_calls[0].function.arguments == '{"q":"find it"}', final
raw = client.chat.completions.with_raw_response.create(model="fast", messages=tool_messages, tools=[tool], stream=True)
assert raw.headers["x-switchboard-cache"] == "hit", "the helper's streamed miss was stored"
list(raw.parse())

status, text, _ = streamed([{"role": "user", "content": "stream first"}], include_usage=False)
assert status == "miss"
status, answer = plain([{"role": "user", "content": "stream first"}])
assert status == "hit" and answer.choices[0].message.content == text, (status, answer)
print("openai SDK with cache: all checks passed")
