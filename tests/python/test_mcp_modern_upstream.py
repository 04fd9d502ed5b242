"""A server of the sessionless 2026-07-28 revision alone behind the gateway (the fake started
with `http-modern`, which refuses `initialize`): reached by `server/discover`, its tools listed
and called by clients of both revisions, each call on its own (the fake's `count` sees no
session). Driven by tests/gateway/mcp_upstreams.rs.
"""

import os
from contextlib import asynccontextmanager

import anyio
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]


@asynccontextmanager
async def connect():
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def modern():
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as client:
            yield client


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def listed(session):
    with anyio.fail_after(30):
        while True:
            names = {tool.name for tool in (await session.list_tools()).tools}
            if "only__echo" in names:
                return names
            await anyio.sleep(0.1)


async def calls(session):
    result = await session.call_tool("only__echo", {"text": "hello"})
    assert not result.is_error and text_of(result) == "hello", result
    result = await session.call_tool("only__add", {"a": 2, "b": 3})
    assert result.structured_content == {"result": 5}, result
    counted = []
    for _ in range(2):
        result = await session.call_tool("only__count", {})
        counted.append(int(text_of(result)))
    return counted


async def main():
    async with connect() as session:
        names = await listed(session)
        assert {"only__echo", "only__add", "only__count"} <= names, names
        first = await calls(session)
    async with modern() as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"only__echo", "only__add", "only__count"} <= names, names
        second = await calls(client)
    # No session anywhere: the server counts every call under one key.
    assert first + second == [1, 2, 3, 4], (first, second)
    print("mcp 2026-only upstream: all checks passed", flush=True)


anyio.run(main)
