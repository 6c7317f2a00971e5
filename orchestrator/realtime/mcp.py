"""MCP tools of a realtime session (OpenAI's ``{"type": "mcp", ...}`` tools).

At ``session.update`` the server connects to each MCP server (the official ``mcp``
SDK's client: streamable HTTP, or SSE for a URL whose path ends in ``/sse``) and lists its
tools: ``mcp_list_tools.in_progress``, the ``mcp_list_tools`` item, then
``mcp_list_tools.completed`` (or ``.failed``, with an ``error`` event saying why: the
session goes on without that server). The tools ``allowed_tools`` lets through are
offered to the llm as functions. When the model calls one, the call is an ``mcp_call``
item of the response (``response.mcp_call_arguments.delta`` / ``.done``,
``response.mcp_call.in_progress``, then ``.completed`` or ``.failed``) and runs here;
the responder stores it with its result and answers again, reading the result. A tool
that needs approval (``require_approval``: ``always``, the default, or a filter) is an
``mcp_approval_request`` item instead; the client's ``mcp_approval_response`` item
runs it (approved) or not.

Each operation opens its own connection (no connection outlives a listing or a call).
``headers`` and ``authorization`` (``Authorization: Bearer``) go to the MCP server only:
the session's echo leaves them out, and error messages and logs have them masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

from orchestrator.chat.tools import no_tool_calling
from orchestrator.errors import InvalidRequest, websocket_error_event
from orchestrator.realtime.protocol.client_events import NewMcpApprovalResponse
from orchestrator.realtime.protocol.item_types import (
    McpApprovalRequest,
    McpApprovalResponse,
    McpCall,
    McpListedTool,
    McpListTools,
    OutputItem,
)
from orchestrator.realtime.protocol.outbound import emit
from orchestrator.realtime.protocol.server_events import (
    ItemCreated,
    McpCallArgumentsDelta,
    McpCallArgumentsDone,
    McpCallCompleted,
    McpCallFailed,
    McpCallInProgress,
    McpListToolsCompleted,
    McpListToolsFailed,
    McpListToolsInProgress,
    OutputItemAdded,
    OutputItemDone,
)
from orchestrator.realtime.protocol.session_types import (
    FunctionTool,
    McpTool,
    McpToolFilter,
    new_id,
)
from orchestrator.realtime.reply.tools import tool_template
from orchestrator.redaction import MASK, redact

log = logging.getLogger(__name__)
LIST_TIMEOUT_S = 10.0
"""How long listing a server's tools may take (connecting included)."""
CALL_TIMEOUT_S = 30.0
"""How long one tool call may take."""
KEEP_APPROVALS = 64  # approval requests waiting for an answer, per session
CANCELLED = {"type": "tool_execution_error",
             "message": "cancelled: the response was cancelled while the call ran"}


class McpFailure(Exception):
    """A listing or a call that did not work; ``error`` is OpenAI's error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


@dataclass(slots=True)
class _Server:
    tool: McpTool
    """As the client set it, headers and authorization included."""
    item_id: str = field(default_factory=lambda: new_id("mcpl"))
    listed: list[McpListedTool] | None = None
    """The tools offered (None: not listed, or the listing failed)."""
    listing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def label(self) -> str:
        return self.tool.server_label

    def secrets(self) -> list[str]:
        values = [*(self.tool.headers or {}).values(), self.tool.authorization or ""]
        return [v for v in values if len(v) >= 4]

    def needs_approval(self, tool: McpListedTool) -> bool:
        rule = self.tool.require_approval
        if rule is None or rule == "always":
            return True
        if rule == "never":
            return False
        # named by "always", or by nothing: OpenAI's default is approval
        return not (rule.never is not None and _matches(rule.never, tool))


def check_mcp(llm: Any, version: str, tools: list[McpTool]) -> None:
    """MCP tools need an llm that can call tools, as function tools do."""
    if tools and tool_template(llm, version) is None:
        raise no_tool_calling("session.tools")


def public(tool: McpTool) -> McpTool:
    """The tool as the session reports it: no headers, no authorization."""
    return msgspec.structs.replace(tool, headers=None, authorization=None)


class McpServers:
    """The MCP servers of one session, their listed tools, and the approvals waited for."""

    def __init__(self) -> None:
        self.servers: dict[str, _Server] = {}
        self.approvals: dict[str, tuple[_Server, McpApprovalRequest]] = {}

    def configure(self, tools: list[McpTool]) -> list[McpTool]:
        """The session's MCP tools from now on (each listed again by :meth:`list_tools`);
        returns them as the session reports them."""
        self.servers = {tool.server_label: _Server(tool) for tool in tools}
        return [public(tool) for tool in tools]

    async def list_tools(self, out: Any) -> None:
        """List every configured server's tools, concurrently, with their events."""
        servers = list(self.servers.values())
        await asyncio.gather(*(self._list(server, out) for server in servers))

    async def ready(self) -> None:
        """Wait for the listings under way (a reply offers what they found)."""
        for server in list(self.servers.values()):
            if not server.listing.is_set():
                try:
                    async with asyncio.timeout(LIST_TIMEOUT_S + 1):
                        await server.listing.wait()
                except TimeoutError:
                    pass

    def function_tools(self, taken: set[str]) -> list[FunctionTool]:
        """The listed tools as functions for the llm (a name ``taken`` by a function tool
        or an earlier server stays the first one's)."""
        offered = []
        for _, tool in self._tools():
            if tool.name in taken:
                continue
            taken.add(tool.name)
            offered.append(FunctionTool(name=tool.name, description=tool.description,
                                        parameters=tool.input_schema or None))
        return offered

    # --- calls ---------------------------------------------------------------------------

    async def run_calls(self, calls: list[Any], out: Any, response_id: str,
                        first_index: int, *,
                        stopped: asyncio.Event | None = None) -> list[OutputItem]:
        """The model's calls of MCP tools: each runs now (``mcp_call``) or waits for the
        client's approval (``mcp_approval_request``). Returns the items, in order.
        ``stopped``: set when the response is cancelled; a call in flight then ends as
        failed at once, and no later call starts."""
        items: list[OutputItem] = []
        for index, call in enumerate(calls, first_index):
            found = self._find(call.name)
            if found is None:
                continue
            server, tool = found
            if server.needs_approval(tool):
                request = McpApprovalRequest(id=new_id("mcpr"), server_label=server.label,
                                             name=call.name, arguments=call.arguments)
                for event in (OutputItemAdded(response_id=response_id, output_index=index,
                                              item=request),
                              OutputItemDone(response_id=response_id, output_index=index,
                                             item=request)):
                    await emit(out, event)
                self.approvals[request.id] = (server, request)
                while len(self.approvals) > KEEP_APPROVALS:
                    self.approvals.pop(next(iter(self.approvals)))
                items.append(request)
            else:
                items.append(await self._run(server, call.name, call.arguments, out,
                                             response_id, index, stopped=stopped))
        return items

    def answer(self, item: NewMcpApprovalResponse) -> ItemCreated:
        """``conversation.item.create`` of an ``mcp_approval_response``: it must answer a
        request still waiting (:meth:`run_approved` runs an approved one)."""
        if item.approval_request_id not in self.approvals:
            raise InvalidRequest(f"no MCP approval request {item.approval_request_id!r} "
                                 "is waiting for an answer", param="item.approval_request_id")
        if not item.approve:
            self.approvals.pop(item.approval_request_id)
        return ItemCreated(item=McpApprovalResponse(
            id=item.id or new_id("item"), approval_request_id=item.approval_request_id,
            approve=item.approve, reason=item.reason))

    async def run_approved(self, request_id: str, out: Any, response_id: str, *,
                           stopped: asyncio.Event | None = None) -> McpCall | None:
        waiting = self.approvals.pop(request_id, None)
        if waiting is None:
            return None
        server, request = waiting
        return await self._run(server, request.name, request.arguments, out, response_id, 0,
                               approval_request_id=request_id, stopped=stopped)

    async def _run(self, server: _Server, name: str, arguments: str, out: Any,
                   response_id: str, index: int, *, approval_request_id: str | None = None,
                   stopped: asyncio.Event | None = None) -> McpCall:
        item = McpCall(id=new_id("mcp"), server_label=server.label, name=name, arguments="",
                       approval_request_id=approval_request_id)
        part = {"item_id": item.id, "output_index": index}
        for event in (OutputItemAdded(response_id=response_id, output_index=index, item=item),
                      McpCallArgumentsDelta(**part, response_id=response_id, delta=arguments),
                      McpCallArgumentsDone(**part, response_id=response_id,
                                           arguments=arguments),
                      McpCallInProgress(**part)):
            await emit(out, event)
        item = msgspec.structs.replace(item, arguments=arguments)
        try:
            item.output = await _unless_stopped(self._call(server, name, arguments), stopped)
            await emit(out, McpCallCompleted(**part))
        except McpFailure as failure:
            item.error = failure.error
            await emit(out, McpCallFailed(**part))
        await emit(out, OutputItemDone(response_id=response_id, output_index=index, item=item))
        return item

    async def _call(self, server: _Server, name: str, arguments: str) -> str:
        try:
            parsed = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise McpFailure({"type": "protocol_error", "code": -32602,
                              "message": "the model's arguments are not a JSON object"})
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S), _connect(server.tool) as client:
                result = await client.call_tool(name, parsed)
        except TimeoutError:
            raise McpFailure(self._failed(server, "call", f"no answer in {CALL_TIMEOUT_S:g} s",
                                          None)) from None
        except Exception as exc:
            raise McpFailure(self._failed(server, "call", None, exc)) from None
        text = _result_text(result)
        if getattr(result, "is_error", False):
            raise McpFailure({"type": "tool_execution_error", "message": text})
        return text

    # --- listing -------------------------------------------------------------------------

    async def _list(self, server: _Server, out: Any) -> None:
        await emit(out, McpListToolsInProgress(item_id=server.item_id))
        try:
            async with asyncio.timeout(LIST_TIMEOUT_S), _connect(server.tool) as client:
                listed = await client.list_tools()
        except Exception as exc:  # dead server, refused, timed out: the session goes on
            reason = f"no answer in {LIST_TIMEOUT_S:g} s" if isinstance(exc, TimeoutError) \
                else None
            error = self._failed(server, "list", reason, exc)
            server.listing.set()
            await emit(out, McpListToolsFailed(item_id=server.item_id))
            await emit(out, websocket_error_event(InvalidRequest(
                error["message"], param="session.tools")))
            return
        tools = [_listed(tool) for tool in listed.tools]
        server.listed = [tool for tool in tools if _allowed(server.tool, tool)]
        server.listing.set()
        await emit(out, ItemCreated(item=McpListTools(
            id=server.item_id, server_label=server.label, tools=server.listed)))
        await emit(out, McpListToolsCompleted(item_id=server.item_id))

    def _failed(self, server: _Server, what: str, reason: str | None,
                exc: BaseException | None) -> dict[str, Any]:
        if reason is None and exc is not None:
            leaf = _leaf(exc)
            reason = f"{type(leaf).__name__}: {leaf}".rstrip(": ")
        message = f"MCP server {server.label!r}: {what} failed: {reason}"
        for secret in server.secrets():
            message = message.replace(secret, MASK)
        message = redact(message)
        log.warning("%s", message)
        status = getattr(getattr(_leaf(exc), "response", None), "status_code", None) \
            if exc is not None else None
        if isinstance(status, int):
            return {"type": "http_error", "code": status, "message": message}
        return {"type": "protocol_error", "code": -32000, "message": message}

    def _tools(self) -> list[tuple[_Server, McpListedTool]]:
        return [(server, tool) for server in self.servers.values()
                for tool in server.listed or ()]

    def _find(self, name: str) -> tuple[_Server, McpListedTool] | None:
        return next(((s, t) for s, t in self._tools() if t.name == name), None)


async def _unless_stopped(call: Awaitable[str], stopped: asyncio.Event | None) -> str:
    """The call's result, unless ``stopped`` is set first: then the call is cancelled
    (its connection closed) and it fails as cancelled."""
    if stopped is None:
        return await call
    if stopped.is_set():
        if inspect.iscoroutine(call):
            call.close()  # never awaited: say so to Python, not as a warning
        raise McpFailure(CANCELLED)
    task, waiter = asyncio.ensure_future(call), asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        raise McpFailure(CANCELLED)
    return task.result()


@asynccontextmanager
async def _connect(tool: McpTool) -> AsyncIterator[Any]:
    """A connected ``mcp`` client of the server (imported here: only sessions with MCP
    tools load the SDK)."""
    import httpx2
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    headers = dict(tool.headers or {})
    if tool.authorization:
        headers["Authorization"] = f"Bearer {tool.authorization}"
    if urlsplit(tool.server_url).path.rstrip("/").endswith("/sse"):
        async with Client(sse_client(tool.server_url, headers=headers,
                                     timeout=LIST_TIMEOUT_S)) as client:
            yield client
        return
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(
            LIST_TIMEOUT_S, read=CALL_TIMEOUT_S)) as http, \
            Client(streamable_http_client(tool.server_url, http_client=http)) as client:
        yield client


def _listed(tool: Any) -> McpListedTool:
    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {}
    annotations = getattr(tool, "annotations", None)
    if annotations is not None and hasattr(annotations, "model_dump"):
        annotations = annotations.model_dump(exclude_none=True, by_alias=True) or None
    return McpListedTool(name=tool.name, input_schema=dict(schema),
                         description=getattr(tool, "description", None),
                         annotations=annotations)


def _read_only(tool: McpListedTool) -> bool:
    notes = tool.annotations or {}
    return bool(notes.get("readOnlyHint", notes.get("read_only_hint", False)))


def _matches(rule: McpToolFilter, tool: McpListedTool) -> bool:
    if rule.tool_names is not None and tool.name not in rule.tool_names:
        return False
    return rule.read_only is None or _read_only(tool) == rule.read_only


def _allowed(server: McpTool, tool: McpListedTool) -> bool:
    allowed = server.allowed_tools
    if allowed is None:
        return True
    if isinstance(allowed, list):
        return tool.name in allowed
    return _matches(allowed, tool)


def _result_text(result: Any) -> str:
    """A call's result as the conversation keeps it: its text, else its structured
    content as JSON."""
    texts = [part.text for part in getattr(result, "content", None) or ()
             if getattr(part, "type", None) == "text"]
    if texts:
        return "\n".join(texts)
    structured = getattr(result, "structured_content", None)
    return json.dumps(structured) if structured is not None else ""


def _leaf(exc: BaseException | None) -> BaseException | None:
    """The first real error inside exception groups (anyio wraps transport failures)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
