"""Upstream sessions through the gateway, with the official `mcp` SDK in both protocol revisions
(driven by tests/gateway/mcp_upstreams.rs, which owns the upstream processes).

- Per-session state: the fake's `count` tool counts per upstream session. Each client session
  (two of one key, one of another) and each key of the sessionless 2026-07-28 revision counts
  from 1, over HTTP (`up`) and over stdio (`local`).
- Discovery: `modern` is the same HTTP server with `discover` on (`up` has it off). Session-era
  clients still get sessions of their own; sessionless clients reach its 2026-07-28 face, which
  keeps no session: the fake counts all their calls under one key, as for clients connected to
  it directly. There, a call's log messages reach its own caller when it set a log level.
- A 20 MiB result fails its own call at once with a message naming max_result, while a call
  beside it on the same session succeeds and the server's tools stay listed.
- The HTTP upstream restarted at once with its `echo` renamed `echo_v2` (RESTART_RENAMED on
  stdout; the driver answers on stdin): the new tool is listed and callable, the old one gone,
  and the client heard `notifications/tools/list_changed`.
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
OTHER_KEY = os.environ["SWITCHBOARD_OTHER_KEY"]
BIG = 20 * 1024 * 1024


@asynccontextmanager
async def connect(key, message_handler=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def modern(key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as client:
            yield client


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def counts(session, server, times=2):
    seen = []
    for _ in range(times):
        result = await session.call_tool(f"{server}__count", {})
        assert not result.is_error, result
        seen.append(int(text_of(result)))
    return seen


async def names(session):
    return {tool.name for tool in (await session.list_tools()).tools}


async def step(command):
    print(command, flush=True)
    answer = await anyio.to_thread.run_sync(sys.stdin.readline)
    assert answer.strip(), f"no answer to {command}"


async def until_listed(wanted):
    """Waits until every tool in `wanted` is listed, woken by each list_changed."""
    changes = anyio.Event()

    async def heard(message):
        if isinstance(message, types.ToolListChangedNotification):
            changes.set()

    async with connect(KEY, heard) as session:
        with anyio.fail_after(30):
            while not wanted <= await names(session):
                await changes.wait()
                changes = anyio.Event()


async def isolated_state():
    for server in ("up", "local"):
        async with connect(KEY) as first, connect(KEY) as second, connect(OTHER_KEY) as other:
            for session, times, wanted in [
                (first, 2, [1, 2]),
                (second, 2, [1, 2]),
                (other, 2, [1, 2]),
                (first, 1, [3]),
            ]:
                seen = await counts(session, server, times)
                assert seen == wanted, (server, seen, wanted)
        # Sessionless clients: one upstream session per key, never another key's.
        for key, times, wanted in [(KEY, 2, [1, 2]), (OTHER_KEY, 2, [1, 2]), (KEY, 1, [3])]:
            async with modern(key) as client:
                seen = await counts(client, server, times)
                assert seen == wanted, (server, "sessionless", seen, wanted)


async def discovered_face():
    async with connect(KEY) as session:
        seen = await counts(session, "modern", 2)
        assert seen == [1, 2], ("modern", "session", seen)
    seen = []
    for key in (KEY, OTHER_KEY):
        async with modern(key) as client:
            seen += await counts(client, "modern", 2)
    assert seen == [1, 2, 3, 4], ("modern", "sessionless", seen)

    # On that face, a call's log messages (the client opted in with its log level) and its
    # progress reach the caller before the result; a client that did not opt in hears none.
    for level, wanted in (("info", ["did step 1", "did step 2"]), (None, [])):
        heard, progress = [], []

        async def on_log(params):
            heard.append(params.data)

        async def on_progress(done, total, message):
            progress.append(message)

        http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        transport = streamable_http_client(MCP_URL, http_client=http)
        async with http, Client(transport, cache=None, log_level=level, logging_callback=on_log) as client:
            result = await client.call_tool("modern__work", {"steps": 2}, progress_callback=on_progress)
            assert text_of(result) == "worked 2 steps", result
        assert heard == wanted, (level, heard)
        assert progress == ["step 1", "step 2"], progress


async def oversized():
    async with connect(KEY) as session:
        for server in ("up", "local"):
            refused, beside = [], []

            async def big():
                try:
                    await session.call_tool(f"{server}__big", {"size": BIG})
                    refused.append(None)
                except MCPError as error:
                    refused.append(str(error))

            async def sleep():
                beside.append(await session.call_tool(f"{server}__sleep", {"seconds": 1}))

            with anyio.fail_after(20):
                async with anyio.create_task_group() as group:
                    group.start_soon(big)
                    group.start_soon(sleep)
            assert refused[0] and "max_result" in refused[0], (server, refused)
            assert f"'{server}'" in refused[0], refused
            assert text_of(beside[0]) == "slept 1.0", beside
            assert {f"{server}__echo", f"{server}__big"} <= await names(session), server
            echoed = await session.call_tool(f"{server}__echo", {"text": "still here"})
            assert text_of(echoed) == "still here", echoed


async def restarted():
    changes, ever = anyio.Event(), anyio.Event()

    async def heard(message):
        if isinstance(message, types.ToolListChangedNotification):
            changes.set()
            ever.set()

    async with connect(KEY, heard) as session:
        assert await counts(session, "up", 1) == [1]
        await step("RESTART_RENAMED")
        with anyio.fail_after(30):
            while True:
                listed = await names(session)
                if "up__echo_v2" in listed and "up__echo" not in listed:
                    break
                await changes.wait()
                changes = anyio.Event()
            await ever.wait()
        echoed = await session.call_tool("up__echo_v2", {"text": "renamed"})
        assert text_of(echoed) == "renamed", echoed
        try:
            await session.call_tool("up__echo", {"text": "x"})
            raise AssertionError("a tool the restarted server no longer has was called")
        except MCPError as error:
            assert "up__echo" in str(error), error
        # The session the server forgot was replaced: the state starts over.
        assert await counts(session, "up", 1) == [1]


async def main():
    await until_listed({"up__count", "local__count", "modern__count"})
    await isolated_state()
    await discovered_face()
    await oversized()
    await restarted()
    print("mcp upstream sessions: all checks passed", flush=True)


anyio.run(main)
