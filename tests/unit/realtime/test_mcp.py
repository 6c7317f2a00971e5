"""MCP tool rules (:mod:`orchestrator.realtime.mcp`): which listed tools are offered,
which need approval, and what a session reports of a server."""

from __future__ import annotations

import msgspec
import pytest

from orchestrator.realtime.mcp import McpServers, _allowed, _Server, public
from orchestrator.realtime.protocol.item_types import McpListedTool
from orchestrator.realtime.protocol.session_types import McpTool

READER = McpListedTool(name="read", input_schema={}, annotations={"readOnlyHint": True})
WRITER = McpListedTool(name="write", input_schema={"type": "object"})


def tool(**fields) -> McpTool:  # type: ignore[no-untyped-def]
    return msgspec.convert({"type": "mcp", "server_label": "s",
                            "server_url": "http://x/mcp", **fields}, McpTool)


@pytest.mark.parametrize(("allowed", "offered"), [
    (None, ["read", "write"]),
    (["write"], ["write"]),
    ({"read_only": True}, ["read"]),
    ({"tool_names": ["read", "write"], "read_only": False}, ["write"]),
])
def test_allowed_tools(allowed, offered) -> None:  # type: ignore[no-untyped-def]
    server = tool(allowed_tools=allowed)
    assert [t.name for t in (READER, WRITER) if _allowed(server, t)] == offered


@pytest.mark.parametrize(("rule", "approval"), [
    (None, [True, True]),
    ("always", [True, True]),
    ("never", [False, False]),
    ({"never": {"read_only": True}}, [False, True]),
    ({"never": {"tool_names": ["write"]}}, [True, False]),
    ({"always": {"tool_names": ["write"]}}, [True, True]),
])
def test_require_approval(rule, approval) -> None:  # type: ignore[no-untyped-def]
    server = _Server(tool(require_approval=rule))
    assert [server.needs_approval(t) for t in (READER, WRITER)] == approval


def test_the_session_reports_no_headers_or_token() -> None:
    secret = tool(headers={"X-Key": "k-123456"}, authorization="tok-123456")
    servers = McpServers()
    (reported,) = servers.configure([secret])
    assert reported == public(secret)
    assert "123456" not in msgspec.json.encode(reported).decode()
    assert servers.servers["s"].tool.authorization == "tok-123456"  # kept to connect


def test_offered_names_do_not_shadow_function_tools() -> None:
    servers = McpServers()
    servers.configure([tool()])
    servers.servers["s"].listed = [READER, WRITER]
    assert [t.name for t in servers.function_tools({"read"})] == ["write"]
    assert [t.name for t in servers.function_tools(set())] == ["read", "write"]
