"""An MCP client of Switchboard with the official `mcp` SDK: list the tools, call one, and watch a
shared context document change.

Start the gateway first (`cargo run --release`), then, from another terminal:
    ./scripts/example.sh mcp_client
Set SWITCHBOARD_KEY when config.yaml has keys (the shipped config has none), and
SWITCHBOARD_BASE_URL when the gateway is not on 127.0.0.1:8080.
"""

import json
import os
import urllib.request

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BASE_URL = os.environ.get("SWITCHBOARD_BASE_URL", "http://127.0.0.1:8080/v1").removesuffix("/v1")
KEY = os.environ.get("SWITCHBOARD_KEY", "no-key-needed")
DOCUMENT = "context://examples/greeting"


def put_over_rest(value):
    """Another service writing the document through the REST view of the same store."""
    request = urllib.request.Request(
        f"{BASE_URL}/v1/context/examples/greeting",
        data=json.dumps(value).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return response.headers["ETag"]


async def main():
    changed = anyio.Event()

    async def on_message(message):
        if isinstance(message, types.ResourceUpdatedNotification) and str(message.params.uri) == DOCUMENT:
            changed.set()

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(f"{BASE_URL}/mcp", http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            print("tools:", ", ".join(sorted(tool.name for tool in tools)))

            # Write a document with a tool, then read it back as a resource.
            await session.call_tool(
                "context_put", {"namespace": "examples", "key": "greeting", "value": {"text": "hello"}}
            )
            read = await session.read_resource(DOCUMENT)
            print("read:", read.contents[0].text)

            # Watch it: a write by anyone else (here, over REST) is announced to this session.
            await session.subscribe_resource(DOCUMENT)
            put_over_rest({"text": "hello again"})
            with anyio.fail_after(10):
                await changed.wait()
            read = await session.read_resource(DOCUMENT)
            print("changed:", read.contents[0].text)


if __name__ == "__main__":
    anyio.run(main)
