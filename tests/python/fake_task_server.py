"""An MCP server of the 2025-11-25 revision with task-augmented tools, written against the
specification's wire format (the official Python SDK carries the task types but does not serve
them).

    fake_task_server.py stdio        JSON-RPC lines on stdin/stdout
    fake_task_server.py http PORT    Streamable HTTP on 127.0.0.1:PORT/mcp, JSON answers
    fake_task_server.py tools        prints the tools/list result and exits

Tools: `slow_sum` (a + b after `ms` milliseconds; must run as a task), `quick` (never a task),
`maybe` (either). Over stdio a task's end is also told in `notifications/tasks/status`.
"""

import json
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "2025-11-25"
NUMBERS = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}, "ms": {"type": "integer"}},
    "required": ["a", "b"],
}
TOOLS = [
    {
        "name": "slow_sum",
        "title": "Slow sum",
        "description": "Adds two numbers, slowly.",
        "inputSchema": NUMBERS,
        "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}},
        "annotations": {"title": "Sum", "readOnlyHint": True, "x-cost": "cheap"},
        "execution": {"taskSupport": "required"},
        "icons": [{"src": "https://example.com/sum.png", "mimeType": "image/png"}],
        "_meta": {"example.com/owner": "math-team"},
        "x-vendor": {"tier": 2},
    },
    {
        "name": "quick",
        "description": "Adds two numbers at once.",
        "inputSchema": NUMBERS,
        "execution": {"taskSupport": "forbidden"},
    },
    {
        "name": "maybe",
        "description": "Adds two numbers, as a task if asked.",
        "inputSchema": NUMBERS,
        "execution": {"taskSupport": "optional"},
    },
]


def now():
    return datetime.now(timezone.utc).isoformat()


class Tasks:
    """The tasks of one session."""

    def __init__(self, notify):
        self.notify = notify
        self.lock = threading.Condition()
        self.tasks = {}

    def start(self, arguments, ttl):
        task_id = str(uuid.uuid4())
        task = {"taskId": task_id, "status": "working", "createdAt": now(),
                "lastUpdatedAt": now(), "ttl": ttl, "pollInterval": 50}
        with self.lock:
            self.tasks[task_id] = {"task": task, "result": None}
        threading.Thread(target=self.run, args=(task_id, arguments), daemon=True).start()
        return dict(task)

    def run(self, task_id, arguments):
        time.sleep(arguments.get("ms", 200) / 1000)
        total = arguments["a"] + arguments["b"]
        result = {"content": [{"type": "text", "text": str(total)}],
                  "structuredContent": {"sum": total}, "isError": False}
        with self.lock:
            entry = self.tasks[task_id]
            if entry["task"]["status"] != "working":
                return
            entry["task"].update(status="completed", lastUpdatedAt=now())
            entry["result"] = result
            self.lock.notify_all()
            task = dict(entry["task"])
        self.notify({"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": task})

    def get(self, task_id):
        with self.lock:
            entry = self.tasks.get(task_id)
            return dict(entry["task"]) if entry else None

    def result(self, task_id):
        with self.lock:
            entry = self.tasks.get(task_id)
            if entry is None:
                return None
            while entry["task"]["status"] == "working":
                self.lock.wait()
            related = {"io.modelcontextprotocol/related-task": {"taskId": task_id}}
            if entry["result"] is None:
                return {"content": [{"type": "text", "text": "cancelled"}], "isError": True,
                        "_meta": related}
            return dict(entry["result"], _meta=related)

    def cancel(self, task_id):
        with self.lock:
            entry = self.tasks.get(task_id)
            if entry is None or entry["task"]["status"] != "working":
                return entry and dict(entry["task"])
            entry["task"].update(status="cancelled", lastUpdatedAt=now())
            self.lock.notify_all()
            return dict(entry["task"])

    def all(self):
        with self.lock:
            return [dict(e["task"]) for e in self.tasks.values()]


def error(message_id, code, text):
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": text}}


def answer(message, tasks):
    """The answer to one message; None for a notification."""
    method, message_id = message.get("method"), message.get("id")
    params = message.get("params") or {}
    if message_id is None:
        return None

    def ok(result):
        return {"jsonrpc": "2.0", "id": message_id, "result": result}

    if method == "initialize":
        return ok({"protocolVersion": VERSION, "serverInfo": {"name": "fake-tasks", "version": "1"},
                   "capabilities": {"tools": {"listChanged": True},
                                    "tasks": {"list": {}, "cancel": {},
                                              "requests": {"tools": {"call": {}}}}}})
    if method == "ping":
        return ok({})
    if method == "tools/list":
        return ok({"tools": TOOLS})
    if method == "tools/call":
        tool = next((t for t in TOOLS if t["name"] == params.get("name")), None)
        if tool is None:
            return error(message_id, -32602, f"Unknown tool: {params.get('name')}")
        support = tool["execution"]["taskSupport"]
        arguments = params.get("arguments") or {}
        if "task" in params and support != "forbidden":
            return ok({"task": tasks.start(arguments, params["task"].get("ttl"))})
        if support == "required":
            return error(message_id, -32601, f"Tool {tool['name']} requires task augmentation")
        total = arguments["a"] + arguments["b"]
        return ok({"content": [{"type": "text", "text": str(total)}], "isError": False})
    if method in ("tasks/get", "tasks/result", "tasks/cancel"):
        task_id = params.get("taskId")
        found = {"tasks/get": tasks.get, "tasks/result": tasks.result,
                 "tasks/cancel": tasks.cancel}[method](task_id)
        if found is None:
            return error(message_id, -32602, f"Failed to retrieve task: Task not found ({task_id})")
        return ok(found)
    if method == "tasks/list":
        return ok({"tasks": tasks.all()})
    return error(message_id, -32601, f"Method not found: {method}")


def serve_stdio():
    out = threading.Lock()

    def send(message):
        with out:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    tasks = Tasks(send)
    for line in sys.stdin:
        message = json.loads(line)
        # tasks/result blocks until its task ends: never in the reading loop.
        threading.Thread(target=lambda m=message: send_answer(send, m, tasks), daemon=True).start()


def send_answer(send, message, tasks):
    reply = answer(message, tasks)
    if reply is not None:
        send(reply)


def serve_http(port):
    sessions = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body=None, headers=()):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            session = self.headers.get("Mcp-Session-Id")
            if message.get("method") == "initialize":
                session = str(uuid.uuid4())
                sessions[session] = Tasks(lambda _: None)
            elif session not in sessions:
                return self.reply(404, error(message.get("id"), -32001, "Session not found"))
            reply = answer(message, sessions[session])
            if reply is None:
                return self.reply(202)
            self.reply(200, reply, [("Mcp-Session-Id", session)])

        def do_GET(self):
            self.reply(405)

        def do_DELETE(self):
            sessions.pop(self.headers.get("Mcp-Session-Id"), None)
            self.reply(200)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        serve_stdio()
    elif sys.argv[1] == "http":
        serve_http(int(sys.argv[2]))
    else:
        print(json.dumps({"tools": TOOLS}))
