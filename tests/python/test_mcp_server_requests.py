"""Requests from upstream MCP servers reach the official `mcp` Python SDK through Switchboard.

Run by tests/gateway/mcp_upstreams.rs, with the gateway of test_mcp_upstreams.py: `up`
(Streamable HTTP) and `local` (stdio), both fake_mcp_server.py. A tool of either server asks the
client to sample its model, to elicit from its user and to list its roots; the client's own
callbacks answer, each for its own session. A call the client gives up on is cancelled at the
server. Environment: SWITCHBOARD_MCP_URL, SWITCHBOARD_KEY.
"""

import os
import sys
from contextlib import asynccontextmanager

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


class Answers:
    """One client's callbacks: its model, its user and its roots."""

    def __init__(self, who):
        self.who = who
        self.asked = []

    async def sample(self, context, params):
        self.asked.append(("sampling", params.messages[0].content.text))
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"hello from {self.who}"),
            model=f"model-of-{self.who}",
        )

    async def elicit(self, context, params):
        self.asked.append(("elicitation", params.message))
        return types.ElicitResult(action="accept", content={"name": self.who})

    async def roots(self, context):
        self.asked.append(("roots", None))
        return types.ListRootsResult(roots=[types.Root(uri=f"file:///home/{self.who}", name="home")])


@asynccontextmanager
async def connect(answers=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    callbacks = {}
    if answers is not None:
        callbacks = dict(sampling_callback=answers.sample, elicitation_callback=answers.elicit,
                         list_roots_callback=answers.roots)
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, **callbacks) as session:
            await session.initialize()
            yield session


async def until_listed(session, names):
    with anyio.fail_after(30):
        while not names <= {tool.name for tool in (await session.list_tools()).tools}:
            await anyio.sleep(0.1)


async def asked_through(session, answers, prefix):
    result = await session.call_tool(f"{prefix}__ask_model", {"question": "hi?"})
    assert not result.is_error, result
    assert text_of(result) == f"model-of-{answers.who} said hello from {answers.who}", result
    result = await session.call_tool(f"{prefix}__ask_user", {})
    assert text_of(result) == f"accept {answers.who}", result
    result = await session.call_tool(f"{prefix}__roots", {})
    assert result.structured_content == {"result": [f"file:///home/{answers.who}"]}, result
    assert answers.asked[-3:] == [("sampling", "hi?"), ("elicitation", "Who is there?"),
                                  ("roots", None)], answers.asked


async def main():
    alice, bob = Answers("alice"), Answers("bob")
    async with connect(alice) as one, connect(bob) as two:
        await until_listed(one, {"up__ask_model", "local__ask_model"})
        for prefix in ("up", "local"):
            await asked_through(one, alice, prefix)
            await asked_through(two, bob, prefix)

    # A client that answers nothing: it refuses its server's request, and the call fails with
    # the client's own words.
    async with connect() as plain:
        try:
            result = await plain.call_tool("local__ask_model", {"question": "hi?"})
            assert result.is_error and "Sampling not supported" in text_of(result), result
        except MCPError as error:
            assert "Sampling not supported" in str(error), error

    # A call its client gives up on is cancelled at the server, not left to run.
    async with connect() as session:
        for prefix in ("up", "local"):
            # The client's upstream session opened first (a stdio server's process may take
            # longer to start than the client waits).
            await session.call_tool(f"{prefix}__cancelled", {})
            try:
                await session.call_tool(f"{prefix}__sleep", {"seconds": 30}, read_timeout_seconds=0.5)
                raise AssertionError("the call did not time out")
            except MCPError as error:
                assert "timed out" in str(error), error
            with anyio.fail_after(10):
                while True:
                    seen = await session.call_tool(f"{prefix}__cancelled", {})
                    if 30 in (seen.structured_content or {}).get("result", []):
                        break
                    await anyio.sleep(0.1)
    print("mcp server requests: all checks passed")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Exception as error:
        print(f"FAILED: {error!r}", file=sys.stderr)
        raise
