"""The official `mcp` Python SDK (v2) and tools registered at run time through /admin/tools.

Run by tests/gateway/mcp_registry.rs, which starts the gateway and a fake echo service and passes:
SWITCHBOARD_MCP_URL, SWITCHBOARD_ADMIN_URL (/admin/tools), SWITCHBOARD_ADMIN_KEY,
SWITCHBOARD_KEY (every tool), SWITCHBOARD_TEAM_KEY (tools ["team_*"]), SWITCHBOARD_SERVICE_URL
(GET /echo/{city}) and SWITCHBOARD_SERVICE_KEY (the x-api-key it requires).
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

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
ADMIN_URL = os.environ["SWITCHBOARD_ADMIN_URL"]
ADMIN_KEY = os.environ["SWITCHBOARD_ADMIN_KEY"]
KEY = os.environ["SWITCHBOARD_KEY"]
TEAM_KEY = os.environ["SWITCHBOARD_TEAM_KEY"]
SERVICE_URL = os.environ["SWITCHBOARD_SERVICE_URL"]
SERVICE_KEY = os.environ["SWITCHBOARD_SERVICE_KEY"]


class Changes:
    """Counts `notifications/tools/list_changed` and lets a test wait for the next one."""

    def __init__(self):
        self.count = 0
        self.event = anyio.Event()

    async def handler(self, message):
        if isinstance(message, types.ToolListChangedNotification):
            self.count += 1
            self.event.set()

    async def reach(self, count, seconds=10):
        """Waits until `count` notifications have arrived in all."""
        with anyio.fail_after(seconds):
            while self.count < count:
                await self.event.wait()
                self.event = anyio.Event()


@asynccontextmanager
async def connect(key, changes):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=changes.handler) as session:
            result = await session.initialize()
            assert result.capabilities.tools.list_changed is True, result.capabilities
            yield session


def register(name, ttl):
    tool = {
        "name": name,
        "description": f"{name}: weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "http": {"method": "GET", "url": f"{SERVICE_URL}/echo/{{city}}", "headers": {"x-api-key": SERVICE_KEY}},
        "ttl": ttl,
    }
    request = urllib.request.Request(
        ADMIN_URL,
        data=json.dumps(tool).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201), response.status


async def names(session):
    return {tool.name for tool in (await session.list_tools()).tools}


async def main():
    changes, team_changes = Changes(), Changes()
    async with connect(KEY, changes) as session, connect(TEAM_KEY, team_changes) as team:
        assert "team_weather" not in await names(session)

        register("team_weather", "60s")
        await changes.reach(1)
        await team_changes.reach(1)
        assert "team_weather" in await names(session)
        assert await names(team) == {"team_weather"}, await names(team)

        result = await session.call_tool("team_weather", {"city": "Paris"})
        assert not result.is_error, result
        assert result.structured_content == {"city": "Paris", "temp": 18}, result.structured_content
        bad = await team.call_tool("team_weather", {})
        assert bad.is_error and "'city' is required" in bad.content[0].text, bad

        # Outside the team key's globs: only the session that may use it hears of it; the team
        # session's next notice is the one for the tool after it, so it heard nothing in between.
        register("brief", "1s")
        await changes.reach(2)
        assert "brief" in await names(session)
        register("team_later", "60s")
        await team_changes.reach(2)
        assert team_changes.count == 2, team_changes.count
        assert await names(team) == {"team_weather", "team_later"}

        # The sweep removes "brief" when its second is up and tells the session unasked.
        await changes.reach(4)
        assert "brief" not in await names(session)
        assert "team_later" in await names(session)
        assert team_changes.count == 2, team_changes.count
    print("mcp registry: all checks passed")


anyio.run(main)
