"""The official `mcp` Python SDK calls tools of upstream MCP servers through Switchboard's /mcp.

Run by tests/gateway/mcp_upstreams.rs, with a gateway whose `mcp.servers` are `up` (Streamable
HTTP, configured header `Authorization: Bearer up-token`) and `local` (stdio), both running
fake_mcp_server.py. Environment: SWITCHBOARD_MCP_URL, SWITCHBOARD_KEY (every tool),
SWITCHBOARD_LOCAL_KEY (tools ["local__*"]). It asks the test to stop and restart the HTTP
upstream by printing KILL / RESTART and waits for a line on stdin after each.
"""

import os
import sys
from contextlib import asynccontextmanager

import anyio
import mcp.types as types
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
LOCAL_KEY = os.environ["SWITCHBOARD_LOCAL_KEY"]
UPSTREAM_TOOLS = {"echo", "add", "sleep", "fail", "seen_auth", "count", "big", "work", "ask_model",
                  "ask_user", "roots", "cancelled", "touch", "interrupted"}


@asynccontextmanager
async def connect(key, message_handler=None, logging_callback=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler,
                                 logging_callback=logging_callback) as session:
            await session.initialize()
            yield session


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def names(session):
    return {tool.name for tool in (await session.list_tools()).tools}


class Changes:
    """Counts notifications/tools/list_changed and wakes whoever waits for one."""

    def __init__(self):
        self.count = 0
        self.event = anyio.Event()

    async def __call__(self, message):
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()

    async def until(self, session, wanted, notified_after=None):
        """Lists until `wanted(names)` holds; if `notified_after` is given, also until a
        notification arrived after that count. Each wait is cut short by a notification."""
        with anyio.fail_after(30):
            while True:
                current = await names(session)
                notified = notified_after is None or self.count > notified_after
                if wanted(current) and notified:
                    return current
                self.event = anyio.Event()
                with anyio.move_on_after(0.5):
                    await self.event.wait()


async def step(word):
    print(word, flush=True)
    line = await anyio.to_thread.run_sync(sys.stdin.readline)
    assert line.strip(), f"no answer to {word}"


def prefixed(prefix):
    return {f"{prefix}__{tool}" for tool in UPSTREAM_TOOLS}


async def prompt_names(session):
    return {prompt.name for prompt in (await session.list_prompts()).prompts}


async def prompt_over(session, prefix):
    got = await session.get_prompt(f"{prefix}__greet", {"name": "Ana"})
    assert [m.content.text for m in got.messages] == ["Hello, Ana!"], got
    ref = types.PromptReference(type="ref/prompt", name=f"{prefix}__greet")
    completed = await session.complete(ref, {"name": "name", "value": "An"})
    assert completed.completion.values == ["Ana", "Andrés"], completed


class Heard:
    """Log messages a client heard; each wakes whoever waits."""

    def __init__(self):
        self.logs = []
        self.event = anyio.Event()

    async def __call__(self, params):
        self.logs.append(params.data)
        self.event.set()

    async def until(self, enough):
        with anyio.move_on_after(10):
            while not enough():
                await self.event.wait()
                self.event = anyio.Event()
        assert enough(), f"heard logs {self.logs}"


async def logs_over(session, heard, prefix):
    """The log messages a tool's server sends on the client's upstream session reach it, and the
    call's progress reaches the caller under its own token, every step before the result."""
    heard.logs.clear()
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    result = await session.call_tool(f"{prefix}__work", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "worked 3 steps", result
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")], progress
    await heard.until(lambda: len(heard.logs) >= 3)
    assert heard.logs == ["did step 1", "did step 2", "did step 3"], heard.logs


async def calls_over(session, prefix):
    result = await session.call_tool(f"{prefix}__echo", {"text": "hello"})
    assert not result.is_error and text_of(result) == "hello", result
    result = await session.call_tool(f"{prefix}__add", {"a": 2, "b": 3})
    assert not result.is_error, result
    assert result.structured_content == {"result": 5}, result.structured_content
    result = await session.call_tool(f"{prefix}__fail", {})
    assert result.is_error and "upstream says no" in text_of(result), result


async def main():
    changes = Changes()
    heard = Heard()
    async with connect(KEY, changes, heard) as session:
        listed = await changes.until(session, lambda n: prefixed("up") | prefixed("local") <= n)
        assert not any("bad name" in name for name in listed), listed
        await calls_over(session, "up")
        await calls_over(session, "local")
        assert await prompt_names(session) == {"up__greet", "local__greet"}
        await prompt_over(session, "up")
        await prompt_over(session, "local")
        await logs_over(session, heard, "up")
        await logs_over(session, heard, "local")

        # The server closes a call's stream halfway (SEP-1699 polling): the gateway resumes it
        # with Last-Event-ID and the answer, and the progress after the break, arrive.
        progress = []

        async def on_progress(done, total, message):
            progress.append(message)

        result = await session.call_tool("up__interrupted", {"text": "x"}, progress_callback=on_progress)
        assert text_of(result) == "resumed x", result
        assert progress == ["before the break", "after the break"], progress

        seen = await session.call_tool("up__seen_auth", {})
        assert seen.structured_content == {"result": ["Bearer up-token"]}, seen.structured_content

        before = changes.count
        await step("KILL")
        listed = await changes.until(session, lambda n: not n & prefixed("up"), before)
        assert prefixed("local") <= listed, listed
        down = await session.call_tool("up__echo", {"text": "x"})
        assert down.is_error and "unavailable" in text_of(down), down
        assert await prompt_names(session) == {"local__greet"}
        await calls_over(session, "local")

        before = changes.count
        await step("RESTART")
        await changes.until(session, lambda n: prefixed("up") <= n, before)
        await calls_over(session, "up")
        await prompt_over(session, "up")

    # The stateless 2026-07-28 revision requires `resultType` on every result; the upstreams
    # speak a session-era revision and send none, so the gateway adds it.
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as modern:
            await calls_over(modern, "up")
            await calls_over(modern, "local")
            await prompt_over(modern, "local")

    async with connect(LOCAL_KEY) as session:
        listed = await names(session)
        assert listed == prefixed("local"), listed
        assert await prompt_names(session) == {"local__greet"}
        hidden = types.PromptReference(type="ref/prompt", name="up__greet")
        completed = await session.complete(hidden, {"name": "name", "value": "An"})
        assert completed.completion.values == [], completed
        try:
            await session.get_prompt("up__greet", {"name": "x"})
            raise AssertionError("a prompt outside the key's globs was got")
        except MCPError as error:
            assert "may not use" in str(error), error
        try:
            await session.call_tool("up__echo", {"text": "x"})
            raise AssertionError("a tool outside the key's globs was called")
        except MCPError as error:
            assert "may not use" in str(error), error
        await calls_over(session, "local")
    print("mcp upstreams: all checks passed", flush=True)


anyio.run(main)
