"""The MCP calls of a session's responses: run (with a spoken filler while they are slow,
:mod:`.filler`), stopped at once by a cancel, and stored as the assistant's calls and
their results, which the answer's prompt reads.

The responder decides when calls run (after a reply that made them, or once the client
approved one) and what follows; this owns the calls in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.realtime.ports import ReplySink, TextToSpeech
from orchestrator.realtime.protocol.item_types import McpCall
from orchestrator.realtime.reply.filler import Filler, FillerVoice, filler_phrase
from orchestrator.realtime.reply.stored import text_turn_row
from storage.conversations import ConversationStore

RunCalls = Callable[[asyncio.Event], Awaitable[list[Any]]]
"""Runs the calls (``McpServers.run_calls`` or ``.run_approved``) until the event is set;
returns their items."""


class McpCalls:
    def __init__(self, *, session_id: str, store: ConversationStore,
                 keep: Callable[[int, Any], None], tts: TextToSpeech | None,
                 filler_s: float = 0.0) -> None:
        self.session_id, self.store, self.keep, self.tts = session_id, store, keep, tts
        """``keep``: the session's conversation items keep an item of a stored turn."""
        self.filler_s = filler_s
        """A spoken response whose calls run this long says a filler (0: never)."""
        self.calling: str | None = None
        """The response whose calls are running."""
        self._stopped = asyncio.Event()

    def stop(self, response_id: str) -> bool:
        """A cancel of ``response_id``: its calls in flight end now. False when none run."""
        if self.calling != response_id:
            return False
        self._stopped.set()
        return True

    async def run(self, run: RunCalls, out: ReplySink, response_id: str,
                  voice: FillerVoice | None, said: str, filler_index: int) -> list[Any]:
        """Run the calls of ``response_id`` and store those that ran; a filler in the
        language of ``said`` (the user's last words) is output item ``filler_index`` when
        ``voice`` speaks and the calls are slow. Returns the calls' items."""
        self.calling, self._stopped = response_id, asyncio.Event()
        calls = run(self._stopped)
        phrase = filler_phrase(said, voice) if voice is not None and self.filler_s > 0 \
            else None
        try:
            if phrase is None or voice is None or self.tts is None:
                items, filler = await calls, None
            else:
                filler = Filler(phrase, voice, self.tts, out, response_id, filler_index,
                                self.filler_s)
                items = await filler.around(calls)
                if filler.item is not None:
                    await out.settled(response_id)  # what is stored is what was heard
        finally:
            self.calling = None
        await self._store(items, filler)
        return items

    async def _store(self, items: list[Any], filler: Filler | None) -> None:
        """Each call that ran is stored as the assistant's call and its result. A filler
        heard while they ran is the text of the first call's turn, as a model that speaks
        before it calls has it."""
        said = filler.spoken if filler is not None else ""
        for item in items:
            if not isinstance(item, McpCall):
                continue
            call = {"call_id": item.id, "name": item.name, "arguments": item.arguments,
                    "item_id": item.id}
            record = await self.store.add_turn(self.session_id, text_turn_row(
                "assistant", said, tool_calls=[call]))
            if said and filler is not None and filler.item is not None:
                self.keep(record.id, filler.item)
            said = ""
            self.keep(record.id, item)
            result = item.output if item.error is None else \
                f"error: {item.error.get('message', 'the call failed')}"
            await self.store.add_turn(self.session_id, text_turn_row(
                "tool", result or "", tool_call_id=item.id))

    async def said_last(self) -> str:
        """The user's last words in this conversation (a filler speaks their language)."""
        turns = await self.store.recent_turns(self.session_id, 8)
        return next((t.text for t in reversed(turns) if t.role == "user"), "")


def ran(items: list[Any]) -> bool:
    """Some call ran (an answer that reads its result follows)."""
    return any(isinstance(item, McpCall) for item in items)
