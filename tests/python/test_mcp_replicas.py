"""The official `mcp` Python SDK through nginx, round-robin over three Switchboard replicas that
share one Redis, with no stickiness: each request may reach another replica.

Run by tests/gateway/replicas_mcp.rs, which passes SWITCHBOARD_MCP_URL (nginx's /mcp),
SWITCHBOARD_CONTEXT_URLS and SWITCHBOARD_ADMIN_URLS (each replica's /v1/context and /admin,
comma-separated), SWITCHBOARD_ADMIN_KEY and SWITCHBOARD_KEY.
"""

import json
import os
import urllib.request
from contextlib import asynccontextmanager

import anyio
import mcp.types as types
from mcp.client import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import ToolsListChanged

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
CONTEXT_URLS = os.environ["SWITCHBOARD_CONTEXT_URLS"].split(",")
ADMIN_URLS = os.environ["SWITCHBOARD_ADMIN_URLS"].split(",")
ADMIN_KEY = os.environ["SWITCHBOARD_ADMIN_KEY"]
KEY = os.environ["SWITCHBOARD_KEY"]


def send(url, key, method, document=None):
    request = urllib.request.Request(
        url,
        data=None if document is None else json.dumps(document).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert 200 <= response.status < 300, response.status


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def session_era_across_replicas():
    """initialize, tools, a context document and a subscription, each request wherever nginx
    sends it; the update comes from a REST write to one replica in particular."""
    send(f"{CONTEXT_URLS[0]}/team/plan", KEY, "PUT", {"step": 1})
    heard = {}

    def event_for(uri):
        return heard.setdefault(uri, anyio.Event())

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            event_for(str(message.params.uri)).set()

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"context_get", "context_put"} <= names, names
            for _ in range(3):
                result = await session.call_tool("context_get", {"namespace": "team", "key": "plan"})
                assert not result.is_error, text_of(result)
                assert result.structured_content["value"] == {"step": 1}, text_of(result)
            read_back = await session.read_resource("context://team/plan")
            assert json.loads(read_back.contents[0].text) == {"step": 1}
            await session.subscribe_resource("context://team/plan")
            # The session's event stream is open on one replica; the write goes to another.
            for url in CONTEXT_URLS:
                send(f"{url}/team/plan", KEY, "PUT", {"step": 2})
            with anyio.fail_after(10):
                await event_for("context://team/plan").wait()
            read_back = await session.read_resource("context://team/plan")
            assert json.loads(read_back.contents[0].text) == {"step": 2}

            # A document's TTL runs out: whichever replica's sweep removes it, the subscriber
            # hears it on the stream another replica holds.
            send(f"{CONTEXT_URLS[1]}/team/brief?ttl=1s", KEY, "PUT", {"short": True})
            await session.subscribe_resource("context://team/brief")
            with anyio.fail_after(10):
                await event_for("context://team/brief").wait()
            gone = await session.call_tool("context_get", {"namespace": "team", "key": "brief"})
            assert gone.is_error, text_of(gone)


async def stateless_listen_hears_a_registration_on_another_replica():
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as client:
            async with client.listen(tools_list_changed=True) as subscription:
                tool = {
                    "name": "replica_tool",
                    "input_schema": {"type": "object"},
                    "http": {"method": "GET", "url": "http://127.0.0.1:9/ping"},
                    "ttl": "60s",
                }
                # Registered through each replica in turn: whichever holds the stream hears it.
                send(f"{ADMIN_URLS[2]}/tools", ADMIN_KEY, "POST", tool)
                with anyio.fail_after(10):
                    assert await subscription.__anext__() == ToolsListChanged()
            # Every replica lists it within a second; nginx may send this to any of them.
            with anyio.fail_after(3):
                while True:
                    names = {t.name for t in (await client.list_tools()).tools}
                    if "replica_tool" in names:
                        break
                    await anyio.sleep(0.05)


async def main():
    await session_era_across_replicas()
    await stateless_listen_hears_a_registration_on_another_replica()
    print("mcp through replicas: ok")


anyio.run(main)
