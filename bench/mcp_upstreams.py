"""What upstream MCP sessions cost and how fast the gateway reacts, measured through the gateway
with the official SDK (run by bench/mcp_upstreams.sh, which starts the gateway; this script owns
the HTTP upstream so it can restart it):

- a client session's first call of a server's tool (which opens its upstream session: an
  initialize over HTTP, a process over stdio, or takes the stdio server's spare) against its
  second call, median of ROUNDS sessions PAUSE seconds apart (0: back to back);
- a 20 MiB text refused (max_result 16 MiB) against a 256 KiB one delivered (the
  Python client reads no SSE event over 1 MiB);
- a quick restart of the HTTP upstream with a renamed tool: from the new process answering to
  the client hearing list_changed.
"""

import os
import socket
import statistics
import subprocess
import sys
import time

import anyio
import mcp.types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]
FAKE = os.environ["FAKE_MCP_SERVER"]
PORT = int(os.environ["UPSTREAM_PORT"])
ROUNDS = int(os.environ.get("ROUNDS", "20"))
# Seconds between two clients' sessions: a stdio server's spare session is ready by then.
PAUSE = float(os.environ.get("PAUSE", "1"))


class Session:
    def __init__(self, handler=None):
        self.handler = handler

    async def __aenter__(self):
        self.http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
        self.stack = [self.http, streamable_http_client(URL, http_client=self.http)]
        await self.http.__aenter__()
        read, write = await self.stack[1].__aenter__()
        self.session = ClientSession(read, write, message_handler=self.handler)
        await self.session.__aenter__()
        await self.session.initialize()
        return self.session

    async def __aexit__(self, *exc):
        await self.session.__aexit__(*exc)
        await self.stack[1].__aexit__(*exc)
        await self.http.__aexit__(*exc)


def upstream(renamed=False):
    env = dict(os.environ, FAKE_MCP_RENAMED="1" if renamed else "0")
    return subprocess.Popen([sys.executable, FAKE, "http", str(PORT)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def answering():
    """Waits until the upstream accepts connections; the time it did."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return time.monotonic()
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("the upstream did not come up")


async def timed(call):
    started = time.perf_counter()
    await call
    return (time.perf_counter() - started) * 1000


async def sessions(tool, arguments):
    first, second = [], []
    for _ in range(ROUNDS):
        await anyio.sleep(PAUSE)
        async with Session() as session:
            first.append(await timed(session.call_tool(tool, arguments)))
            second.append(await timed(session.call_tool(tool, arguments)))
    a, b = statistics.median(first), statistics.median(second)
    print(f"| {tool} | {a:.1f} ms | {b:.1f} ms | {a / b:.1f}x |", flush=True)


async def sizes(server):
    async with Session() as session:
        async def refused():
            try:
                await session.call_tool(f"{server}__big", {"size": 20 * 1024 * 1024})
            except MCPError:
                return
            raise AssertionError("20 MiB delivered")
        no = await timed(refused())
        yes = await timed(session.call_tool(f"{server}__big", {"size": 256 * 1024}))
        print(f"| {server} | {no:.0f} ms | {yes:.0f} ms | {no / yes:.2f}x |", flush=True)


async def restart(process):
    heard = anyio.Event()

    async def handler(message):
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    async with Session(handler) as session:
        await session.call_tool("up__count", {})
        process.kill()
        process.wait()
        process = upstream(renamed=True)
        up = answering()
        while True:
            await heard.wait()
            heard = anyio.Event()
            names = {t.name for t in (await session.list_tools()).tools}
            if "up__echo_v2" in names:
                break
        print(f"restart noticed and announced {(time.monotonic() - up) * 1000:.0f} ms after "
              "the new process answered", flush=True)
    return process


async def main():
    process = upstream()
    answering()
    try:
        async with Session() as session:
            with anyio.fail_after(30):
                while "up__count" not in {t.name for t in (await session.list_tools()).tools}:
                    await anyio.sleep(0.1)
        print("| first call of a session | first | second | ratio |\n| --- | --- | --- | --- |")
        await sessions("up__count", {})
        await sessions("local__count", {})
        await sessions("files__list_allowed_directories", {})
        print("\n| server | 20 MiB refused | 256 KiB delivered | ratio |\n| --- | --- | --- | --- |")
        await sizes("up")
        await sizes("local")
        print()
        process = await restart(process)
    finally:
        process.kill()


anyio.run(main)
