"""Function calling: OpenAI ``tools`` through the served model's own chat template.

A model offers tools when its chat template takes a ``tools`` variable and writes calls
in the Hermes form Qwen2.5 uses::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

For such a request the orchestrator renders the template itself (with the tools, the
assistant's past ``tool_calls`` and the ``tool`` results) and sends the llm model the
rendered prompt; the reply's ``<tool_call>`` blocks become OpenAI tool calls, streamed or
not. ``tool_choice`` ``required`` or a named function is honoured by starting the reply
with the call's opening (the model writes the rest), ``none`` by leaving the tools out.
A model whose template has no tools is a 400 naming ``tools``, never an ignored field.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidRequest

OPEN, CLOSE = "<tool_call>", "</tool_call>"
DROPPED = object()


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str
    """JSON text, as OpenAI gives it."""
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")


@dataclass(frozen=True)
class ToolTemplate:
    """The served llm version's chat template, where it offers tools."""

    template: str
    bos_token: str | None
    eos_token: str | None
    adds_bos: bool
    """The tokenizer adds special tokens itself (the prompt path encodes with them)."""

    @classmethod
    def load(cls, version_dir: Path) -> ToolTemplate | None:
        from export.llm.generation import (
            GENERATION_FILE,
            TEMPLATE_FILE,
            TOKENIZER_FILE,
            GenerationAssets,
        )

        path = version_dir / TEMPLATE_FILE
        if not path.is_file() or not (version_dir / GENERATION_FILE).is_file():
            return None
        template = path.read_text(encoding="utf-8")
        if "tools" not in template or OPEN not in template:
            return None
        assets = GenerationAssets.load(version_dir)
        adds_bos = False
        if (version_dir / TOKENIZER_FILE).is_file():
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(version_dir / TOKENIZER_FILE))
            adds_bos = tokenizer.encode("a").ids != tokenizer.encode(
                "a", add_special_tokens=False).ids
        return cls(template, assets.bos_token, assets.eos_token, adds_bos)

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
               opening: str = "") -> str:
        """The prompt the llm model gets as is (its ``prompt`` input); ``opening``: the
        start of the reply, already written (a forced call)."""
        from export.llm.generation import render_chat

        text = render_chat(self.template, messages, bos_token=self.bos_token,
                           eos_token=self.eos_token, tools=tools)
        if self.adds_bos and self.bos_token and text.startswith(self.bos_token):
            text = text[len(self.bos_token):]  # the tokenizer puts it back
        return text + opening


def opening_for(tool_choice: Any) -> str:
    """What the reply starts with to force a call (``required`` or a named function)."""
    if tool_choice == "required":
        return f'{OPEN}\n{{"name": "'
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        return f'{OPEN}\n{{"name": {json.dumps(name)}, "arguments": '
    return ""


def template_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """OpenAI messages as chat templates take them: a past call's arguments as an object
    (templates write them with ``tojson``), ``developer`` as ``system``."""
    return [_template_entry("system" if m.role == "developer" else m.role, m.text(),
                            [(c.id, c.function.name, c.function.arguments)
                             for c in m.tool_calls or ()], m.tool_call_id)
            for m in messages]


def stored_template_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Stored conversation messages (``orchestrator.chat.service.ChatMessage``, as the
    realtime prompt has them) as chat templates take them."""
    return [_template_entry(m.role, m.content,
                            [(c["call_id"], c["name"], c["arguments"]) for c in m.tool_calls],
                            m.tool_call_id)
            for m in messages]


def _template_entry(role: str, content: str, calls: list[tuple[str, str, str]],
                    tool_call_id: str | None) -> dict[str, Any]:
    """One message for a chat template; ``calls``: (id, name, JSON arguments)."""
    entry: dict[str, Any] = {"role": role, "content": content}
    if calls:
        entry["tool_calls"] = [{"id": call_id, "type": "function", "function": {
            "name": name, "arguments": _arguments(arguments)}}
            for call_id, name, arguments in calls]
    if tool_call_id is not None:
        entry["tool_call_id"] = tool_call_id
    return entry


def no_tool_calling(param: str) -> InvalidRequest:
    """The 400 for tools asked of a model whose template cannot call them."""
    return InvalidRequest(f"{param}: the served llm version's chat template has no tool "
                          "calling; serve a model whose template has (Qwen2.5's does)",
                          param=param)


def check_tool_choice(names: set[str], forced: bool, named: str | None, param: str,
                      name_param: str) -> None:
    """A choice that forces a call (``required`` or ``named``) needs tools, and a named one
    must be among them; ``param`` / ``name_param``: where the client wrote it."""
    if forced and not names:
        raise InvalidRequest(f"{param} needs tools to choose from", param=param)
    if named is not None and named not in names:
        raise InvalidRequest(f"{param} names {named!r}, which is not one of the tools",
                             param=name_param)


def tool_prompt(template: ToolTemplate, messages: list[dict[str, Any]],
                offered: list[dict[str, Any]] | None, choice: Any,
                limit: int | None = None) -> tuple[str, ToolCallParser]:
    """The prompt rendered with ``offered`` tools (chat-completions shape; None: no tools
    this reply, past calls still rendered) and the parser of its reply; ``choice`` as
    chat completions writes it (``required``, ``{"function": {"name"}}``, …)."""
    opening = opening_for(choice) if offered else ""
    names = {t["function"]["name"] for t in offered or ()}
    return (template.render(messages, offered, opening),
            ToolCallParser(names, opening, limit))


def _object(text: str) -> Any:
    """The JSON object ``text`` holds; small models often drop the call's last brace or
    two (``{"name": …, "arguments": {…}``), which is all this repairs."""
    for tail in ("", "}", "}}"):
        try:
            return json.loads(text + tail)
        except ValueError:
            continue
    return None


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # the template writes it as given


def _call(block: str) -> ToolCall | None:
    data = _object(block)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    return ToolCall(data["name"], arguments if isinstance(arguments, str)
                    else json.dumps(arguments, ensure_ascii=False))


class ToolCallParser:
    """Splits a reply, delta by delta, into content and tool calls. Text that may be the
    start of ``<tool_call>`` is held back until it is known; a block that does not parse
    as a call is content after all (the model's words, not silently lost)."""

    def __init__(self, names: set[str], opening: str = "", limit: int | None = None) -> None:
        self.names = names
        self.limit = limit
        self.calls: list[ToolCall] = []
        self._pending = opening[len(OPEN):]  # a forced call's opening: inside the block
        self._in_call = bool(opening)
        self._bare: bool | None = None
        """The reply opens with "{": it may be a call without its tags (small models drop
        them), so it is held to the end."""

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        """A whole reply: its content and calls."""
        content, calls = self.feed(text)
        rest, more = self.finish()
        return content + rest, calls + more

    def feed(self, text: str) -> tuple[str, list[ToolCall]]:
        """Content to emit now and calls completed by ``text``."""
        self._pending += text
        if self._bare is None:  # a reply opening with "{" may be a call without its tags
            stripped = self._pending.lstrip()
            if not stripped:
                return "", []
            self._bare = stripped.startswith("{") and not self._in_call
        if self._bare:
            return "", []  # held to the end: finish() decides
        content, done = [], []
        while True:
            if self._in_call:
                end = self._pending.find(CLOSE)
                if end < 0:
                    break
                block, self._pending = self._pending[:end], self._pending[end + len(CLOSE):]
                self._in_call = False
                call = self._accept(block)
                if call is None:
                    content.append(OPEN + block + CLOSE)
                elif call is not DROPPED:
                    done.append(call)
                continue
            start = self._pending.find(OPEN)
            if start >= 0:
                content.append(self._pending[:start])
                self._pending = self._pending[start + len(OPEN):]
                self._in_call = True
                continue
            keep = _partial_suffix(self._pending, OPEN)
            content.append(self._pending[:len(self._pending) - keep])
            self._pending = self._pending[len(self._pending) - keep:]
            break
        return "".join(content), done

    def finish(self) -> tuple[str, list[ToolCall]]:
        """At the end of the reply: what was held back (an unclosed block is a call when it
        parses, as when a stop sequence cut the closing tag). A reply that is nothing but
        a call's JSON, without the tags, is a call too (small models drop them)."""
        if self._bare:
            self._bare = False
            call = self._accept(self._pending.strip())
            if call is not None:
                self._pending = ""
                return "", [] if call is DROPPED else [call]
            return self.parse("")  # not a bare call: parse it as any reply
        pending, self._pending = self._pending, ""
        if not self._in_call:
            return pending, []
        self._in_call = False
        call = self._accept(pending)
        if call is None:
            return OPEN + pending, []
        return "", [] if call is DROPPED else [call]

    def _accept(self, block: str) -> Any:
        """The call ``block`` makes; None: it is none (content then); DROPPED: a call past
        ``parallel_tool_calls=false``'s one."""
        call = _call(block.strip())
        if call is None or call.name not in self.names:
            return None
        if self.limit is not None and len(self.calls) >= self.limit:
            return DROPPED
        self.calls.append(call)
        return call


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that begins ``marker``."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0
