"""The official openai SDK's Responses API against the gateway's /v1/responses.

SCENARIO picks the upstream behind model `agent`: `mock` (the built-in model), `openai` (a fake
OpenAI-compatible server, translated to chat), `openai-native` (a fake OpenAI with the Responses
API, passed through), `anthropic` (a fake Anthropic). OTHER_KEY is a second key.
"""

import os
import sys

import openai
from pydantic import BaseModel

scenario = os.environ["SCENARIO"]
base = os.environ["SWITCHBOARD_BASE_URL"]
client = openai.OpenAI(base_url=base, api_key=os.environ["SWITCHBOARD_KEY"], max_retries=0)
other = openai.OpenAI(base_url=base, api_key=os.environ["OTHER_KEY"], max_retries=0)

weather = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


# Plain.
first = client.responses.create(model="agent", instructions="Be brief.", input="Say hello")
check(first.object == "response" and first.status == "completed", f"response: {first}")
check(first.id.startswith("resp_"), f"id: {first.id}")
check(first.output_text, f"output_text: {first.output}")
check(first.usage.input_tokens > 0 and first.usage.output_tokens > 0, f"usage: {first.usage}")

# Streamed with the helper: events as they come, and the final response.
deltas = []
with client.responses.stream(model="agent", input="Say hello") as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
    final = stream.get_final_response()
check("".join(deltas) == final.output_text, f"streamed {deltas} make {final.output_text!r}")
check(final.status == "completed" and final.usage.output_tokens > 0, f"final: {final}")

# A function call, answered with its output through previous_response_id.
called = client.responses.create(model="agent", tools=[weather], input="Weather in Paris?")
call = next(item for item in called.output if item.type == "function_call")
check(call.name == "get_weather" and "city" in call.arguments, f"call: {call}")
after = client.responses.create(
    model="agent",
    tools=[weather],
    previous_response_id=called.id,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}],
)
check(after.output_text and after.previous_response_id == called.id, f"after the call: {after}")

# The same round trip without storing: the client sends the whole conversation back.
unstored = client.responses.create(model="agent", tools=[weather], input="Weather in Paris?", store=False)
call = next(item for item in unstored.output if item.type == "function_call")
again = client.responses.create(
    model="agent",
    tools=[weather],
    store=False,
    input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
    ],
)
check(again.output_text, f"stateless round trip: {again}")
try:
    client.responses.retrieve(unstored.id)
    check(False, "a response with store=false is not kept")
except openai.NotFoundError:
    pass

# A streamed function call ends in the same call.
with client.responses.stream(model="agent", tools=[weather], input="Weather in Paris?") as stream:
    streamed = stream.get_final_response()
streamed_call = next(item for item in streamed.output if item.type == "function_call")
check(streamed_call.arguments == call.arguments, f"streamed call {streamed_call.arguments}")

# Two turns through previous_response_id.
one = client.responses.create(model="agent", input="My name is Ada.")
two = client.responses.create(model="agent", previous_response_id=one.id, input="What is my name?")
check(two.status == "completed", f"second turn: {two}")

# Structured output.
if scenario == "mock":
    class City(BaseModel):
        name: str
        population: int

    parsed = client.responses.parse(model="agent", input="Name a city", text_format=City)
    check(isinstance(parsed.output_parsed, City), f"parsed: {parsed.output_parsed}")

# Retrieve and delete, for this key only.
kept = client.responses.retrieve(one.id)
check(kept.id == one.id and kept.output_text == one.output_text, f"retrieved: {kept}")
try:
    other.responses.retrieve(one.id)
    check(False, "another key cannot read the response")
except openai.NotFoundError:
    pass
try:
    other.responses.create(model="agent", previous_response_id=one.id, input="Hi")
    check(False, "another key cannot continue the response")
except openai.BadRequestError as e:
    check(e.body["param"] == "previous_response_id", f"error: {e.body}")
client.responses.delete(one.id)
try:
    client.responses.retrieve(one.id)
    check(False, "a deleted response is gone")
except openai.NotFoundError:
    pass

if scenario == "openai-native":
    # OpenAI runs its built-in tools: nothing is left out, and a forced one runs.
    raw = client.responses.with_raw_response.create(
        model="agent", tools=[{"type": "web_search"}, weather], input="Weather in Paris?"
    )
    check(raw.headers.get("x-switchboard-dropped-tools") is None, f"headers: {raw.headers}")
    searched = client.responses.create(
        model="agent", tools=[{"type": "web_search"}], tool_choice={"type": "web_search"}, input="News?"
    )
    check(searched.output[0].type == "web_search_call", f"searched: {searched.output}")
    check(searched.output_text == "Searched the web.", f"searched: {searched.output_text}")
else:
    # Built-in tools are left out for providers that cannot run them, and named.
    raw = client.responses.with_raw_response.create(
        model="agent", tools=[{"type": "web_search"}, weather], input="Weather in Paris?"
    )
    check(raw.headers.get("x-switchboard-dropped-tools") == "web_search", f"headers: {raw.headers}")
    check(any(item.type == "function_call" for item in raw.parse().output), "the function tool stayed")
    try:
        client.responses.create(
            model="agent", tools=[{"type": "web_search"}], tool_choice={"type": "web_search"}, input="News?"
        )
        check(False, "forcing a built-in tool is refused")
    except openai.BadRequestError as e:
        check(e.body["param"] == "tool_choice", f"error: {e.body}")

# A function_call_output whose call is unknown.
try:
    client.responses.create(
        model="agent", input=[{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]
    )
    check(False, "an unknown call id is refused")
except openai.BadRequestError as e:
    check(e.body["param"] == "input[0].call_id", f"error: {e.body}")

print("ok")
