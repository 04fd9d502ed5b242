"""The official `mcp` Python SDK (v2) against Switchboard's /mcp on the stateless 2026-07-28
revision: the SDK's `Client` probes `server/discover` and speaks per-request `_meta` from then on.

Run by tests/gateway/mcp.rs, which starts the gateway and a fake weather service and passes:
SWITCHBOARD_MCP_URL, SWITCHBOARD_CONTEXT_URL, SWITCHBOARD_ADMIN_URL (the /admin base),
SWITCHBOARD_ADMIN_KEY, SWITCHBOARD_KEY (every tool and namespace) and SWITCHBOARD_TEAM_KEY
(tools ["context_*"], context ["team-*"]).
"""

import json
import os
import urllib.request
from contextlib import asynccontextmanager

import anyio
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ResourceUpdated, ToolsListChanged

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
CONTEXT_URL = os.environ["SWITCHBOARD_CONTEXT_URL"]
ADMIN_URL = os.environ["SWITCHBOARD_ADMIN_URL"]
ADMIN_KEY = os.environ["SWITCHBOARD_ADMIN_KEY"]
KEY = os.environ["SWITCHBOARD_KEY"]
TEAM_KEY = os.environ["SWITCHBOARD_TEAM_KEY"]


@asynccontextmanager
async def connect(key):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as client:
            yield client


def send(url, key, method, document=None):
    request = urllib.request.Request(
        url,
        data=None if document is None else json.dumps(document).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert 200 <= response.status < 300, response.status


def rest_put(path, document):
    send(f"{CONTEXT_URL}/{path}", KEY, "PUT", document)


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def next_event(subscription):
    with anyio.fail_after(10):
        return await subscription.__anext__()


async def stateless_tools_and_hints():
    async with connect(KEY) as client:
        assert client.protocol_version == "2026-07-28", client.protocol_version
        tools = await client.list_tools()
        names = {tool.name for tool in tools.tools}
        assert {"get_weather", "context_get", "context_put"} <= names, names
        result = await client.call_tool("get_weather", {"city": "Paris", "units": "metric"})
        assert not result.is_error, text_of(result)
        assert result.structured_content == {"city": "Paris", "temp": 21.5, "units": "metric"}
        bad = await client.call_tool("get_weather", {"city": 5})
        assert bad.is_error and "'city'" in text_of(bad), text_of(bad)

        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "context://{namespace}/{key}"
        # The one list that is the same for every key and for the life of the process.
        assert (templates.ttl_ms, templates.cache_scope) == (3_600_000, "public"), templates


async def listen_hears_documents_and_tools():
    rest_put("team-a/plan", {"step": 1})
    async with connect(KEY) as client:
        read = await client.read_resource("context://team-a/plan")
        assert json.loads(read.contents[0].text) == {"step": 1}
        async with client.listen(
            tools_list_changed=True,
            resources_list_changed=True,
            resource_subscriptions=["context://team-a/plan"],
        ) as subscription:
            assert subscription.honored.tools_list_changed, subscription.honored
            assert subscription.honored.resource_subscriptions == ["context://team-a/plan"]

            rest_put("team-a/plan", {"step": 2})
            assert await next_event(subscription) == ResourceUpdated(uri="context://team-a/plan")
            read = await client.read_resource("context://team-a/plan")
            assert json.loads(read.contents[0].text) == {"step": 2}

            rest_put("team-a/new-doc", {"fresh": True})
            assert await next_event(subscription) == ResourcesListChanged()

            tool = {
                "name": "ping_service",
                "input_schema": {"type": "object"},
                "http": {"method": "GET", "url": "http://127.0.0.1:9/ping"},
                "ttl": "60s",
            }
            send(f"{ADMIN_URL}/tools", ADMIN_KEY, "POST", tool)
            assert await next_event(subscription) == ToolsListChanged()
            names = {t.name for t in (await client.list_tools()).tools}
            assert "ping_service" in names, names


async def listen_stays_inside_the_keys_globs():
    async with connect(TEAM_KEY) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"context_get", "context_put", "context_list", "context_delete"}, names
        try:
            await client.read_resource("context://finance/budget")
            raise AssertionError("a namespace outside the key's globs was read")
        except MCPError as error:
            assert "finance" in str(error), error
        async with client.listen(
            tools_list_changed=True,
            resource_subscriptions=["context://finance/budget", "context://team-b/notes"],
        ) as subscription:
            # A change outside the globs, then one inside: the first one heard is the second.
            rest_put("finance/budget", {"usd": 1})
            send(
                f"{ADMIN_URL}/tools",
                ADMIN_KEY,
                "POST",
                {"name": "hidden_tool", "input_schema": {"type": "object"},
                 "http": {"url": "http://127.0.0.1:9/x"}, "ttl": "60s"},
            )
            rest_put("team-b/notes", {"n": 1})
            assert await next_event(subscription) == ResourceUpdated(uri="context://team-b/notes")


async def main():
    await stateless_tools_and_hints()
    await listen_hears_documents_and_tools()
    await listen_stays_inside_the_keys_globs()
    print("mcp sdk 2026-07-28: all checks passed")


anyio.run(main)
