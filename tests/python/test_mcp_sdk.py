"""The official `mcp` Python SDK (v2) against Switchboard's MCP server at /mcp.

Run by tests/gateway/mcp.rs, which starts the gateway and a fake weather service and passes:
SWITCHBOARD_MCP_URL, SWITCHBOARD_CONTEXT_URL (the /v1/context base), SWITCHBOARD_KEY (a key with
every tool and namespace) and SWITCHBOARD_TEAM_KEY (tools ["context_*"], context ["team-*"]).
"""

import json
import os
import urllib.request
from contextlib import asynccontextmanager

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
CONTEXT_URL = os.environ["SWITCHBOARD_CONTEXT_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
TEAM_KEY = os.environ["SWITCHBOARD_TEAM_KEY"]


@asynccontextmanager
async def connect(key, message_handler=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler) as session:
            await session.initialize()
            yield session


def rest_put(path, document, key=KEY):
    request = urllib.request.Request(
        f"{CONTEXT_URL}/{path}",
        data=json.dumps(document).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201), response.status
        return response.headers["ETag"]


def text_of(result):
    return "\n".join(block.text for block in result.content if block.type == "text")


async def http_tools():
    async with connect(KEY) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"get_weather", "context_get", "context_put", "context_list", "context_delete"} <= names, names
        weather = next(t for t in (await session.list_tools()).tools if t.name == "get_weather")
        assert weather.input_schema["required"] == ["city"]
        assert weather.annotations.read_only_hint is True

        result = await session.call_tool("get_weather", {"city": "Paris", "units": "metric"})
        assert not result.is_error, text_of(result)
        assert result.structured_content == {"city": "Paris", "temp": 21.5, "units": "metric"}
        assert json.loads(text_of(result)) == result.structured_content

        result = await session.call_tool("get_weather", {"city": 5})
        assert result.is_error
        assert "'city'" in text_of(result), text_of(result)
        result = await session.call_tool("get_weather", {})
        assert result.is_error and "'city' is required" in text_of(result), text_of(result)

        result = await session.call_tool("get_weather", {"city": "Atlantis"})
        assert result.is_error
        assert "HTTP 404" in text_of(result), text_of(result)
        assert "svc-secret" not in text_of(result), text_of(result)


async def context_and_notifications():
    rest_put("team-a/plan", {"step": 1})
    updated = anyio.Event()
    seen = []

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            seen.append(message.params.uri)
            updated.set()

    async with connect(KEY, on_message) as session:
        templates = await session.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "context://{namespace}/{key}"
        read = await session.read_resource("context://team-a/plan")
        assert json.loads(read.contents[0].text) == {"step": 1}
        assert read.contents[0].mime_type == "application/json"

        await session.subscribe_resource("context://team-a/plan")
        rest_put("team-a/plan", {"step": 2})
        with anyio.fail_after(10):
            await updated.wait()
        assert seen == ["context://team-a/plan"], seen
        read = await session.read_resource("context://team-a/plan")
        assert json.loads(read.contents[0].text) == {"step": 2}

        for i in range(120):
            rest_put(f"team-list/doc-{i:03}", i)
        uris, cursor = [], None
        while True:
            page = await session.list_resources(params=types.PaginatedRequestParams(cursor=cursor))
            assert len(page.resources) <= 100
            uris += [r.uri for r in page.resources]
            cursor = page.next_cursor
            if cursor is None:
                break
        listed = [u for u in uris if u.startswith("context://team-list/")]
        assert listed == [f"context://team-list/doc-{i:03}" for i in range(120)], len(listed)

        try:
            await session.read_resource("context://team-a/missing")
            raise AssertionError("a missing document was read")
        except MCPError as error:
            assert "missing" in str(error), error


async def context_tools_and_refusals():
    rest_put("finance/budget", {"usd": 100})
    async with connect(TEAM_KEY) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert names == {"context_get", "context_put", "context_list", "context_delete"}, names
        try:
            await session.call_tool("get_weather", {"city": "Paris"})
            raise AssertionError("a tool outside the key's globs was called")
        except MCPError as error:
            assert "may not use" in str(error), error

        put = await session.call_tool("context_put", {"namespace": "team-b", "key": "k", "value": {"a": 1}})
        assert not put.is_error, text_of(put)
        version = put.structured_content["version"]
        got = await session.call_tool("context_get", {"namespace": "team-b", "key": "k"})
        assert got.structured_content["value"] == {"a": 1}
        stale = await session.call_tool(
            "context_put", {"namespace": "team-b", "key": "k", "value": 2, "if_match": version + 1}
        )
        assert stale.is_error and "version" in text_of(stale), text_of(stale)
        listed = await session.call_tool("context_list", {"namespace": "team-b"})
        assert [item["key"] for item in listed.structured_content["items"]] == ["k"]
        deleted = await session.call_tool("context_delete", {"namespace": "team-b", "key": "k", "if_match": version})
        assert not deleted.is_error, text_of(deleted)
        gone = await session.call_tool("context_get", {"namespace": "team-b", "key": "k"})
        assert gone.is_error and "no document" in text_of(gone).lower(), text_of(gone)
        bad = await session.call_tool("context_put", {"namespace": "team-b", "key": "k"})
        assert bad.is_error and "'value' is required" in text_of(bad), text_of(bad)

        refused = await session.call_tool("context_get", {"namespace": "finance", "key": "budget"})
        assert refused.is_error and "finance" in text_of(refused), text_of(refused)
        for attempt in (
            session.read_resource("context://finance/budget"),
            session.subscribe_resource("context://finance/budget"),
        ):
            try:
                await attempt
                raise AssertionError("a namespace outside the key's globs was used")
            except MCPError as error:
                assert "finance" in str(error), error
        resources = await session.list_resources()
        assert all(r.uri.startswith("context://team-") for r in resources.resources), resources


async def main():
    await http_tools()
    await context_and_notifications()
    await context_tools_and_refusals()
    print("mcp sdk: all checks passed")


anyio.run(main)
