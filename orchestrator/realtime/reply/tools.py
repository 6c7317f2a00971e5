"""Function calling in a realtime reply: which tools the served llm version can call,
and the prompt rendered with its tool template."""

from __future__ import annotations

from typing import Any

from orchestrator.chat.tools import (
    ToolCallParser,
    ToolTemplate,
    check_tool_choice,
    no_tool_calling,
    stored_template_messages,
    tool_prompt,
)
from orchestrator.realtime.protocol.session_types import FunctionTool


def tool_template(llm: Any, version: str) -> ToolTemplate | None:
    """The tool template of ``version`` of the served llm (None: it cannot call tools)."""
    find = getattr(llm, "tool_template", None)
    return find(version) if find is not None else None


def check_tools(llm: Any, version: str, tools: list[FunctionTool] | None, choice: Any,
                path: str) -> None:
    """Tools the served llm version cannot call are refused when they are set."""
    if tools and tool_template(llm, version) is None:
        raise no_tool_calling(f"{path}.tools")
    named = None if choice is None or isinstance(choice, str) else choice.name
    check_tool_choice({t.name for t in tools or []},
                      choice == "required" or named is not None, named,
                      f"{path}.tool_choice", f"{path}.tool_choice")


def prompt_with_tools(llm: Any, messages: list[Any], tools: list[FunctionTool], choice: Any,
                      version: str) -> tuple[str | None, ToolCallParser | None]:
    """The prompt rendered with the model's tool template and the parser of its reply,
    when the reply may call tools or the history holds calls; else (None, None)."""
    holds_calls = any(getattr(m, "tool_calls", ()) or getattr(m, "tool_call_id", None)
                      for m in messages)
    offered = [t.chat_shape() for t in tools] if tools and choice != "none" else None
    if not offered and not holds_calls:
        return None, None
    template = tool_template(llm, version)
    if template is None:
        if offered:
            raise no_tool_calling("session.tools")
        return None, None  # past calls leave the prompt (the plain template has no place)
    chosen = choice if isinstance(choice, str) else {"function": {"name": choice.name}}
    return tool_prompt(template, stored_template_messages(messages), offered, chosen)
