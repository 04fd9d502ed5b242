"""The reference filesystem and memory MCP servers (from npm) behind the gateway, compared with
the same servers called directly through the official `mcp` SDK (driven by
tests/gateway/mcp_upstreams.rs, which configures them as `files` and `memory`).

Each server is started directly with the same command and a state of its own (a directory, a
memory file) that starts as the gateway's does, so the same calls must give the same results:
tool listings (name prefixed, every field the gateway models), then a sequence of calls whose
content, structuredContent and isError are compared.
"""

import json
import os

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
AGENTS = os.environ["SWITCHBOARD_AGENTS"]
DIRECT_FILES = os.environ["DIRECT_FILES_ROOT"]
GATEWAY_FILES = os.environ["GATEWAY_FILES_ROOT"]
DIRECT_MEMORY = os.environ["DIRECT_MEMORY_FILE"]

# Compared fields of a listed tool: what the gateway forwards (docs/mcp.md).
TOOL_FIELDS = ("title", "description", "inputSchema", "outputSchema", "annotations")


def files_calls(root):
    return [
        ("list_allowed_directories", {}),
        ("write_file", {"path": f"{root}/notes.txt", "content": "one\ntwo\nthree\n"}),
        ("read_text_file", {"path": f"{root}/notes.txt"}),
        ("read_text_file", {"path": f"{root}/notes.txt", "head": 2}),
        ("create_directory", {"path": f"{root}/sub"}),
        ("list_directory", {"path": root}),
        ("edit_file", {"path": f"{root}/notes.txt",
                       "edits": [{"oldText": "two", "newText": "TWO"}], "dryRun": False}),
        ("read_text_file", {"path": f"{root}/notes.txt"}),
        ("search_files", {"path": root, "pattern": "*.txt"}),
        ("read_text_file", {"path": "/etc/passwd"}),
    ]


MEMORY_CALLS = [
    ("read_graph", {}),
    ("create_entities", {"entities": [
        {"name": "ana", "entityType": "person", "observations": ["likes tea"]},
        {"name": "switchboard", "entityType": "project", "observations": ["a gateway"]},
    ]}),
    ("create_relations", {"relations": [{"from": "ana", "to": "switchboard", "relationType": "builds"}]}),
    ("add_observations", {"observations": [{"entityName": "ana", "contents": ["writes Rust"]}]}),
    ("search_nodes", {"query": "Rust"}),
    ("open_nodes", {"names": ["switchboard"]}),
    ("read_graph", {}),
]


def normal(result, root_from=None, root_to=None):
    """A call's result as comparable JSON, with the direct server's root written as the gateway's."""
    text = json.dumps({
        "content": [block.model_dump(mode="json", exclude_none=True) for block in result.content],
        "structuredContent": result.structured_content,
        "isError": bool(result.is_error),
    }, sort_keys=True)
    if root_from:
        text = text.replace(root_from, root_to)
    return text


async def compare(name, direct, gateway, direct_calls, gateway_calls, roots=(None, None)):
    direct_tools = {t.name: t for t in (await direct.list_tools()).tools}
    gateway_tools = {t.name: t for t in (await gateway.list_tools()).tools
                     if t.name.startswith(f"{name}__")}
    assert {f"{name}__{tool}" for tool in direct_tools} == set(gateway_tools), (
        sorted(direct_tools), sorted(gateway_tools))
    for tool, listed in direct_tools.items():
        through = gateway_tools[f"{name}__{tool}"].model_dump(mode="json", by_alias=True)
        listed = listed.model_dump(mode="json", by_alias=True)
        for field in TOOL_FIELDS:
            assert through.get(field) == listed.get(field), (tool, field, through, listed)
    errors = 0
    for (tool, direct_args), (_, gateway_args) in zip(direct_calls, gateway_calls):
        expected = normal(await direct.call_tool(tool, direct_args), *roots)
        got = normal(await gateway.call_tool(f"{name}__{tool}", gateway_args))
        assert got == expected, (tool, got, expected)
        errors += json.loads(got)["isError"]
    print(f"{name}: {len(direct_tools)} tools and {len(direct_calls)} calls alike, "
          f"{errors} of them errors", flush=True)


async def main():
    changes = anyio.Event()

    async def heard(message):
        nonlocal changes
        if isinstance(message, types.ToolListChangedNotification):
            changes.set()

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, message_handler=heard) as gateway:
            await gateway.initialize()
            with anyio.fail_after(60):
                while not {"files__read_text_file", "memory__read_graph"} <= {
                        t.name for t in (await gateway.list_tools()).tools}:
                    await changes.wait()
                    changes = anyio.Event()

            files = StdioServerParameters(
                command=f"{AGENTS}/mcp-server-filesystem", args=[DIRECT_FILES])
            async with stdio_client(files) as (r, w), ClientSession(r, w) as direct:
                await direct.initialize()
                await compare("files", direct, gateway, files_calls(DIRECT_FILES),
                              files_calls(GATEWAY_FILES), (DIRECT_FILES, GATEWAY_FILES))

            memory = StdioServerParameters(
                command=f"{AGENTS}/mcp-server-memory",
                env={"MEMORY_FILE_PATH": DIRECT_MEMORY, "PATH": os.environ["PATH"]})
            async with stdio_client(memory) as (r, w), ClientSession(r, w) as direct:
                await direct.initialize()
                await compare("memory", direct, gateway, MEMORY_CALLS, MEMORY_CALLS)
    print("mcp reference servers: all checks passed", flush=True)


anyio.run(main)
