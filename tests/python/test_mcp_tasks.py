"""The official `mcp` Python SDK runs 2025-11-25 tasks of upstream tools through Switchboard's /mcp.

Run by tests/gateway/mcp_upstreams.rs, with a gateway whose `mcp.servers` are `tasks` (stdio) and
`web` (Streamable HTTP), both fake_task_server.py. Environment: SWITCHBOARD_MCP_URL,
SWITCHBOARD_KEY. The SDK carries the task types but has no helper for them: `tasks/*` requests
go through `send_request`; a task-augmented `tools/call` through the session's dispatcher, the
layer beneath `send_request`, because `send_request` holds every `tools/call` answer to
`CallToolResult`.
"""

import os
import sys
from contextlib import asynccontextmanager

import anyio
import mcp_types as t
from mcp.client.extension import NotificationBinding
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

MCP_URL = os.environ["SWITCHBOARD_MCP_URL"]
KEY = os.environ["SWITCHBOARD_KEY"]


@asynccontextmanager
async def connect(statuses=None):
    bindings = []
    if statuses is not None:
        bindings.append(NotificationBinding(
            method="notifications/tasks/status",
            params_type=t.TaskStatusNotificationParams,
            handler=statuses.heard,
        ))
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {KEY}"})
    async with http, streamable_http_client(MCP_URL, http_client=http) as (read, write):
        async with ClientSession(read, write, notification_bindings=bindings) as session:
            session.opened = await session.initialize()
            yield session


class Statuses:
    def __init__(self):
        self.seen = []
        self.event = anyio.Event()

    async def heard(self, params):
        self.seen.append(params)
        self.event.set()


async def call_as_task(session, tool, arguments):
    params = t.CallToolRequestParams(name=tool, arguments=arguments, task=t.TaskMetadata(ttl=60000))
    params = params.model_dump(by_alias=True, mode="json", exclude_none=True)
    raw = await session._dispatcher.send_raw_request("tools/call", params, {})
    return t.CreateTaskResult.model_validate(raw).task


async def get(session, task_id):
    request = t.GetTaskRequest(params=t.GetTaskRequestParams(task_id=task_id))
    return await session.send_request(request, t.GetTaskResult)


async def run_tasks(session, server, statuses=None):
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    tool = tools[f"{server}__slow_sum"]
    assert tool.execution is not None and tool.execution.task_support == "required", tool
    assert tool.output_schema is not None and tool.title == "Slow sum", tool
    assert tools[f"{server}__quick"].execution.task_support == "forbidden"

    # Called plainly, a tool that requires a task is refused by its server, as it would be directly.
    try:
        await session.call_tool(f"{server}__slow_sum", {"a": 1, "b": 2})
        raise AssertionError("a plain call of a task-only tool succeeded")
    except MCPError as error:
        assert "requires task augmentation" in str(error), error

    task = await call_as_task(session, f"{server}__slow_sum", {"a": 20, "b": 22, "ms": 300})
    assert task.status == "working" and task.ttl == 60000, task
    got = await get(session, task.task_id)
    assert got.task_id == task.task_id and got.status in ("working", "completed"), got
    request = t.GetTaskPayloadRequest(params=t.GetTaskPayloadRequestParams(task_id=task.task_id))
    result = await session.send_request(request, t.CallToolResult)
    assert result.structured_content == {"sum": 42}, result
    related = (result.meta or {}).get("io.modelcontextprotocol/related-task")
    assert related == {"taskId": task.task_id}, result.meta
    assert (await get(session, task.task_id)).status == "completed"
    if statuses is not None:
        with anyio.fail_after(10):
            while not any(s.task_id == task.task_id for s in statuses.seen):
                await statuses.event.wait()
                statuses.event = anyio.Event()
        heard = next(s for s in statuses.seen if s.task_id == task.task_id)
        assert heard.status == "completed", heard

    # A long task cancelled; the list holds both.
    long = await call_as_task(session, f"{server}__maybe", {"a": 1, "b": 1, "ms": 60000})
    cancel = t.CancelTaskRequest(params=t.CancelTaskRequestParams(task_id=long.task_id))
    cancelled = await session.send_request(cancel, t.CancelTaskResult)
    assert cancelled.status == "cancelled", cancelled
    listed = await session.send_request(t.ListTasksRequest(), t.ListTasksResult)
    ids = {task.task_id for task in listed.tasks}
    assert {task.task_id, long.task_id} <= ids, listed
    return task.task_id


async def main():
    statuses = Statuses()
    async with connect(statuses) as session:
        capabilities = session.opened.capabilities
        tasks = capabilities.model_dump(by_alias=True, exclude_none=True).get("tasks")
        assert tasks == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}, capabilities
        stdio_task = await run_tasks(session, "tasks", statuses)
        await run_tasks(session, "web")

        # Another session (of the same key) cannot reach this session's task.
        async with connect() as other:
            try:
                await get(other, stdio_task)
                raise AssertionError("another session read the task")
            except MCPError as error:
                assert "Task not found" in str(error), error

        # A task of the gateway's own tools cannot be had.
        try:
            await call_as_task(session, "context_get", {"namespace": "n", "key": "k"})
            raise AssertionError("a gateway tool ran as a task")
        except MCPError as error:
            assert "does not support task-augmented execution" in str(error), error
    print("mcp tasks: all checks passed")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except Exception as error:
        print(f"FAILED: {error!r}", file=sys.stderr)
        raise
