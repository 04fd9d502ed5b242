"""Upstream servers' resources through Switchboard's /mcp, with the official `mcp` Python SDK.

Run by tests/gateway/mcp_upstreams.rs, with the gateway of test_mcp_upstreams.py: `up`
(Streamable HTTP) and `local` (stdio), both fake_mcp_server.py, which serve `fake://notes/readme`
and the template `fake://notes/{name}`, say in each text which transport served it, and tell a
subscribed session when `touch` is called. Environment: SWITCHBOARD_MCP_URL, SWITCHBOARD_KEY
(every resource), SWITCHBOARD_LOCAL_KEY (`resources: ["fake://notes/readme"]`).
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
from mcp.shared.subscriptions import ResourceUpdated

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
LOCAL_KEY = os.environ["SWITCHBOARD_LOCAL_KEY"]


class Updates:
    def __init__(self):
        self.uris = []
        self.event = anyio.Event()

    async def __call__(self, message):
        if isinstance(message, types.ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))
            self.event.set()


@asynccontextmanager
async def connect(key, message_handler=None):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=message_handler) as session:
            await session.initialize()
            yield session


async def text_at(session, uri):
    read = await session.read_resource(uri)
    return read.contents[0].text


async def main():
    updates = Updates()
    async with connect(KEY, updates) as session:
        with anyio.fail_after(30):
            while not {"up__touch", "local__touch"} <= {t.name for t in (await session.list_tools()).tools}:
                await anyio.sleep(0.1)
        listed = [str(r.uri) for r in (await session.list_resources()).resources]
        # Both servers list it: listed once, served by the first configured (`up`, over HTTP).
        assert listed.count("fake://notes/readme") == 1, listed
        got = await text_at(session, "fake://notes/readme")
        assert got == "readme over http", (got, listed)
        # The stdio server's copy is offered under an alias that leads back to it, read and
        # subscribed to there, its update named as the client named it.
        alias = "switchboard://local/fake%3A%2F%2Fnotes%2Freadme"
        assert alias in listed, listed
        read = await session.read_resource(alias)
        assert read.contents[0].text == "readme over stdio", read
        assert str(read.contents[0].uri) == alias, read
        await session.subscribe_resource(alias)
        touched = await session.call_tool("local__touch", {"name": "readme"})
        assert touched.structured_content == {"result": True}, touched
        with anyio.fail_after(10):
            while alias not in updates.uris:
                await updates.event.wait()
                updates.event = anyio.Event()
        assert "fake://notes/readme" not in updates.uris, updates.uris
        await session.unsubscribe_resource(alias)

        templates = [t.uri_template for t in (await session.list_resource_templates()).resource_templates]
        assert "context://{namespace}/{key}" in templates and "fake://notes/{name}" in templates, templates
        # A URI no list holds, made from a template, is read where the template is.
        assert await text_at(session, "fake://notes/alice") == "note alice over http"

        ref = types.ResourceTemplateReference(type="ref/resource", uri="fake://notes/{name}")
        completed = await session.complete(ref, {"name": "name", "value": "al"})
        assert completed.completion.values == ["alice", "albert"], completed

        await session.subscribe_resource("fake://notes/readme")
        touched = await session.call_tool("up__touch", {"name": "readme"})
        assert touched.structured_content == {"result": True}, touched
        with anyio.fail_after(10):
            while "fake://notes/readme" not in updates.uris:
                await updates.event.wait()
                updates.event = anyio.Event()
        await session.unsubscribe_resource("fake://notes/readme")
        touched = await session.call_tool("up__touch", {"name": "readme"})
        assert touched.structured_content == {"result": False}, touched

        try:
            await session.read_resource("fake://nowhere/at-all")
            raise AssertionError("read a resource no server has")
        except MCPError as error:
            assert "fake://nowhere/at-all" in str(error), error

    # A client of the sessionless revision hears of an upstream resource on its
    # `subscriptions/listen` stream: the gateway listens at the server's 2026-07-28 face. That
    # upstream stream opens just after the client's is acknowledged, so the note is touched until
    # the first update comes.
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, Client(streamable_http_client(MCP_URL, http_client=http), cache=None) as client:
        async with client.listen(resource_subscriptions=["fake://notes/readme"]) as subscription:
            honored = subscription.honored.resource_subscriptions
            assert honored == ["fake://notes/readme"], subscription.honored
            event = None
            with anyio.fail_after(10):
                while event is None:
                    await client.call_tool("up__touch", {"name": "readme"})
                    with anyio.move_on_after(0.5):
                        event = await subscription.__anext__()
            assert event == ResourceUpdated(uri="fake://notes/readme"), event

    # A key's `resources:` globs decide what it lists, reads and subscribes to.
    async with connect(LOCAL_KEY) as session:
        listed = {str(r.uri) for r in (await session.list_resources()).resources}
        assert "fake://notes/readme" in listed, listed
        templates = [t.uri_template for t in (await session.list_resource_templates()).resource_templates]
        assert "fake://notes/{name}" not in templates, templates
        got = await text_at(session, "fake://notes/readme")
        assert got == "readme over http", (got, listed)
        for refused in (session.read_resource("fake://notes/alice"),
                        session.subscribe_resource("fake://notes/alice")):
            try:
                await refused
                raise AssertionError("a resource outside the key's globs was reached")
            except MCPError as error:
                assert "fake://notes/alice" in str(error), error
    print("mcp upstream resources: all checks passed")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Exception as error:
        print(f"FAILED: {error!r}", file=sys.stderr)
        raise
