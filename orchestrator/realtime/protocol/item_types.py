"""Conversation items as the server reports them: messages, function calls and their
outputs, MCP calls, approval requests and tool listings (OpenAI's beta shapes;
:mod:`.openai_server` renames assistant content for GA clients)."""

from __future__ import annotations

from typing import Literal

import msgspec


class FunctionCall(msgspec.Struct, omit_defaults=False):
    """A function call item: the model asks the client to run ``name``; the client
    answers with a ``function_call_output`` item of the same ``call_id``."""

    id: str
    call_id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it."""
    type: str = "function_call"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


class FunctionCallOutput(msgspec.Struct, omit_defaults=False):
    id: str
    call_id: str
    output: str
    type: str = "function_call_output"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


class McpCall(msgspec.Struct, omit_defaults=False):
    """A call of an MCP server's tool, which the server ran (``output``) or could not
    (``error``: OpenAI's ``tool_execution_error``, ``protocol_error`` or ``http_error``)."""

    id: str
    server_label: str
    name: str
    arguments: str
    type: str = "mcp_call"
    approval_request_id: str | None = None
    output: str | None = None
    error: dict | None = None


class McpApprovalRequest(msgspec.Struct, omit_defaults=False):
    """The model wants to call an MCP tool that needs the client's approval."""

    id: str
    server_label: str
    name: str
    arguments: str
    type: str = "mcp_approval_request"


class McpApprovalResponse(msgspec.Struct, omit_defaults=False):
    id: str
    approval_request_id: str
    approve: bool
    reason: str | None = None
    type: str = "mcp_approval_response"


class McpListedTool(msgspec.Struct, omit_defaults=False):
    name: str
    input_schema: dict
    description: str | None = None
    annotations: dict | None = None


class McpListTools(msgspec.Struct, omit_defaults=False):
    """The tools an MCP server listed (those ``allowed_tools`` lets through)."""

    id: str
    server_label: str
    tools: list[McpListedTool]
    type: str = "mcp_list_tools"


OutputItem = FunctionCall | McpCall | McpApprovalRequest


class Item(msgspec.Struct, omit_defaults=False):
    """A conversation item as the server reports it (a message; content as OpenAI's beta
    names it: ``input_text`` / ``input_audio`` for the user, ``text`` / ``audio`` for the
    assistant)."""

    id: str
    role: Literal["user", "assistant"]
    content: list[dict]
    type: str = "message"
    object: str = "realtime.item"
    status: Literal["completed", "incomplete", "in_progress"] = "completed"


def assistant_part(text: str, audio: bool) -> dict:
    """The content part of an assistant message: its transcript, or its text."""
    return {"type": "audio", "transcript": text} if audio else {"type": "text", "text": text}


def assistant_item(item_id: str, text: str, audio: bool, status: str = "completed") -> Item:
    """An assistant message; ``in_progress`` ones have no content yet."""
    content = [] if status == "in_progress" else [assistant_part(text, audio)]
    return Item(id=item_id, role="assistant", content=content, status=status)  # type: ignore[arg-type]


def user_audio_item(item_id: str, transcript: str | None) -> Item:
    return Item(id=item_id, role="user",
                content=[{"type": "input_audio", "transcript": transcript}])


AnyItem = (Item | FunctionCall | FunctionCallOutput | McpCall | McpApprovalRequest
           | McpApprovalResponse | McpListTools)
