"""A fake upstream MCP server, built on the official `mcp` SDK, for tests/gateway/mcp_upstreams.rs.

    fake_mcp_server.py stdio
    fake_mcp_server.py http PORT [REQUIRED_AUTHORIZATION]

Over HTTP it serves Streamable HTTP at /mcp on 127.0.0.1:PORT, answers 401 to a request whose
Authorization header is not REQUIRED_AUTHORIZATION (when given), and records every Authorization
header it saw; the `seen_auth` tool returns them, so a test can prove which credentials arrived.

With FAKE_MCP_RENAMED=1 in its environment, its `echo` tool is called `echo_v2`: a new version of
the server, for a test that restarts it.
"""

import asyncio
import json
import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.types import (
    Completion,
    EmptyResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SubscribeRequestParams,
    TextContent,
    UnsubscribeRequestParams,
)
from pydantic import BaseModel

SEEN_AUTH = set()
CANCELLED = []
# Calls of `count` per session: state a stateful server keeps for each of its sessions.
COUNTS = {}

server = MCPServer("fake-upstream")
ECHO = "echo_v2" if os.environ.get("FAKE_MCP_RENAMED") == "1" else "echo"


@server.tool(name=ECHO)
def echo(text: str) -> str:
    """Returns its text."""
    return text


@server.tool()
def count(ctx: Context) -> int:
    """How many times this session has called `count`, this call included."""
    key = session_of(ctx.request_context)
    COUNTS[key] = COUNTS.get(key, 0) + 1
    return COUNTS[key]


@server.tool()
async def work(steps: int, ctx: Context) -> str:
    """Reports progress and logs a message at each of its steps (the gateway relays the logs)."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"did step {step}")
    return f"worked {steps} steps"


@server.prompt()
def greet(name: str) -> str:
    """Greets someone by name."""
    return f"Hello, {name}!"


@server.completion()
async def complete(ref, argument, context):
    """Names for `greet`'s argument, and for the `fake://notes/{name}` template's, that start
    with what was typed."""
    if isinstance(ref, PromptReference) and ref.name == "greet" and argument.name == "name":
        return Completion(values=[n for n in ("Ana", "Andrés", "Bo") if n.startswith(argument.value)])
    if isinstance(ref, ResourceTemplateReference) and ref.uri == "fake://notes/{name}":
        return Completion(values=[n for n in ("alice", "albert", "bob") if n.startswith(argument.value)])
    return None


# Resources: a fixed note, a template of notes, and subscriptions (per session) that `touch`
# honours. Their text says which transport served them.
MODE = sys.argv[1] if len(sys.argv) > 1 else "stdio"
SUBSCRIPTIONS = {}


@server.resource("fake://notes/readme", mime_type="text/plain")
def readme() -> str:
    return f"readme over {MODE}"


@server.resource("fake://notes/{name}", mime_type="text/plain")
def note(name: str) -> str:
    return f"note {name} over {MODE}"


def session_of(request_context):
    """The session a request belongs to: its header over HTTP; over stdio, the process."""
    request = request_context.request
    return request.headers.get("mcp-session-id") if request is not None else "stdio"


async def on_subscribe(ctx, params):
    SUBSCRIPTIONS.setdefault(session_of(ctx), set()).add(str(params.uri))
    return EmptyResult()


async def on_unsubscribe(ctx, params):
    SUBSCRIPTIONS.get(session_of(ctx), set()).discard(str(params.uri))
    return EmptyResult()


server._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, on_subscribe)
server._lowlevel_server.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, on_unsubscribe)


@server.tool()
async def touch(name: str, ctx: Context) -> bool:
    """Says the note `name` changed: to `subscriptions/listen` streams that asked for it, and to
    this session if it subscribed to it (the answer says whether it had)."""
    uri = f"fake://notes/{name}"
    await ctx.notify_resource_updated(uri)
    if uri not in SUBSCRIPTIONS.get(session_of(ctx.request_context), set()):
        return False
    await ctx.session.send_resource_updated(uri)
    return True


@server.tool()
def big(size: int) -> str:
    """A text of `size` bytes: a result larger than a gateway may take."""
    return "x" * size


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
async def sleep(seconds: float) -> str:
    """Answers after `seconds`: a long-running tool. A call its client cancels is counted."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.append(seconds)
        raise
    return f"slept {seconds}"


@server.tool()
def cancelled() -> list[float]:
    """The `seconds` of every `sleep` call its client cancelled."""
    return CANCELLED


@server.tool()
def fail() -> str:
    """Always fails, as a tool error."""
    raise ToolError("upstream says no")


@server.tool()
def seen_auth() -> list[str]:
    """Every Authorization header this server received (HTTP only)."""
    return sorted(SEEN_AUTH)


@server.tool()
async def ask_model(question: str, ctx: Context) -> str:
    """Asks the client's model (sampling) and says what it answered."""
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    answer = await ctx.session.create_message([message], max_tokens=20, related_request_id=ctx.request_id)
    return f"{answer.model} said {answer.content.text}"


class Name(BaseModel):
    name: str


@server.tool()
async def ask_user(ctx: Context) -> str:
    """Asks the client's user for a name (elicitation)."""
    answer = await ctx.elicit("Who is there?", Name)
    return f"{answer.action} {answer.data.name}" if answer.action == "accept" else answer.action


@server.tool()
async def roots(ctx: Context) -> list[str]:
    """The client's roots, as it lists them."""
    listed = await ctx.session.list_roots()
    return [str(root.uri) for root in listed.roots]


@server.tool()
async def interrupted(text: str, ctx: Context) -> str:
    """Closes its own response stream halfway and answers after: the client must resume the
    stream (Last-Event-ID) to hear the answer. Without an event store (stdio), it just answers."""
    await ctx.report_progress(1, 2, "before the break")
    await ctx.close_sse_stream()
    await asyncio.sleep(0.3)
    await ctx.report_progress(2, 2, "after the break")
    return f"resumed {text}"


class Events(EventStore):
    """Every event of every stream, in memory: enough for a test server to be resumable."""

    def __init__(self):
        self.events = []

    async def store_event(self, stream_id, message):
        self.events.append((stream_id, message))
        return str(len(self.events))

    async def replay_events_after(self, last_event_id, send_callback):
        index = int(last_event_id)
        if not 0 < index <= len(self.events):
            return None
        stream_id = self.events[index - 1][0]
        for number, (stream, message) in enumerate(self.events[index:], start=index + 1):
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, str(number)))
        return stream_id


@server.tool(name="bad name!")
def bad_name() -> str:
    """A name outside the MCP tool-name characters; a gateway must not offer it as is."""
    return "unreachable"


def checking_auth(app, required):
    """ASGI middleware: records Authorization and refuses a request without the required one."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode()
            if auth:
                SEEN_AUTH.add(auth)
            if required and auth != required:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return wrapped


def refusing_initialize(app):
    """ASGI middleware: a server of the sessionless 2026-07-28 revision alone, which refuses
    `initialize` (HTTP 400, -32022) and serves requests that carry their own `_meta`."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            method = json.loads(body).get("method")
        except (ValueError, AttributeError):
            method = None
        if method == "initialize":
            error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32022, "message": "2026-07-28 only"}}
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": 400, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(error).encode()})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return wrapped


def main():
    mode = sys.argv[1]
    if mode == "stdio":
        server.run("stdio")
        return
    import uvicorn

    port = int(sys.argv[2])
    required = sys.argv[3] if len(sys.argv) > 3 else None
    resumable = server.streamable_http_app(event_store=Events(), retry_interval=100)
    app = checking_auth(resumable, required)
    if mode == "http-modern":
        app = refusing_initialize(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
