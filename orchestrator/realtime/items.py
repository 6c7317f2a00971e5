"""The conversation items of one connection: add, delete, retrieve, truncate.

Every stored turn is also a conversation item (its id is what the client saw), so
``conversation.item.retrieve`` / ``delete`` / ``truncate`` find it. The store remembers
the latest items, the function calls made here (their outputs may follow) and the
spoken replies already delivered (truncating one cuts its stored turn to what was heard).
Its methods return the server events to send; they send nothing themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import Conflict, InvalidRequest, NotFound
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.client_events import (
    ItemCreate,
    NewFunctionCall,
    NewFunctionCallOutput,
)
from orchestrator.realtime.protocol.item_types import (
    FunctionCall,
    FunctionCallOutput,
    Item,
    McpCall,
    assistant_item,
)
from orchestrator.realtime.protocol.server_events import (
    ItemCreated,
    ItemDeleted,
    ItemRetrieved,
    ItemTruncated,
)
from orchestrator.realtime.protocol.session_types import new_id
from orchestrator.realtime.reply.stages import Reply
from orchestrator.realtime.reply.stored import (
    item_status,
    remember_later,
    text_turn_row,
    tool_call_rows,
)
from storage.conversations import ConversationStore

KEEP_ITEMS = 32  # assistant items remembered for conversation.item.truncate
KEEP_CONVERSATION_ITEMS = 512  # items (any role) remembered for retrieve / delete
Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task]


def keep_latest(items: dict, key: str, value: object, keep: int = KEEP_ITEMS) -> None:
    """Set ``items[key]``, forgetting the oldest entries beyond ``keep``."""
    items[key] = value
    while len(items) > keep:
        items.pop(next(iter(items)))


@dataclass(slots=True)
class Delivered:
    """A reply that was stored: its turn and what was spoken (for truncation)."""

    turn_id: int
    reply: Reply


@dataclass(slots=True)
class _Entry:
    turn_id: int
    item: Item | FunctionCall | FunctionCallOutput | McpCall


class ConversationItems:
    def __init__(self, session_id: str, *, store: ConversationStore, ports: VoicePorts,
                 spawn: Spawn) -> None:
        self.session_id, self.store, self.ports, self.spawn = session_id, store, ports, spawn
        self.items: OrderedDict[str, _Entry] = OrderedDict()
        """This connection's stored conversation items, oldest first."""
        self.delivered: OrderedDict[str, Delivered] = OrderedDict()
        """The latest stored replies by item id."""
        self._calls: set[str] = set()
        """call_ids of function calls made in this connection (their outputs may follow)."""

    def keep(self, turn_id: int,
             item: Item | FunctionCall | FunctionCallOutput | McpCall) -> None:
        keep_latest(self.items, item.id, _Entry(turn_id, item), KEEP_CONVERSATION_ITEMS)
        if isinstance(item, FunctionCall):
            self._calls.add(item.call_id)

    def keep_delivered(self, item_id: str, turn_id: int, reply: Reply) -> None:
        keep_latest(self.delivered, item_id, Delivered(turn_id, reply))

    @property
    def last_item_id(self) -> str | None:
        return next(reversed(self.items), None)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.items

    async def add(self, event: ItemCreate) -> ItemCreated:
        """``conversation.item.create``: a text message, a function call or a call's output,
        stored as a turn; the reply waits for ``response.create``, as in OpenAI's API."""
        item = event.item
        if event.previous_item_id not in (None, self.last_item_id):
            raise InvalidRequest("items can only be appended: previous_item_id must be the "
                                 f"conversation's last item ({self.last_item_id!r}) or null",
                                 param="previous_item_id")
        item_id = item.id or new_id("item")
        if item_id in self.items:
            raise Conflict(f"item {item_id!r} already exists", param="item.id")
        previous = self.last_item_id
        stored: Item | FunctionCall | FunctionCallOutput
        if isinstance(item, NewFunctionCallOutput):
            if not await self._call_made(item.call_id):
                raise InvalidRequest(f"no function call {item.call_id!r} in this conversation "
                                     "to take an output", param="item.call_id")
            record = await self.store.add_turn(self.session_id, text_turn_row(
                "tool", item.output, tool_call_id=item.call_id))
            stored = FunctionCallOutput(id=item_id, call_id=item.call_id, output=item.output)
        elif isinstance(item, NewFunctionCall):
            stored = FunctionCall(id=item_id, call_id=item.call_id, name=item.name,
                                  arguments=item.arguments)
            record = await self.store.add_turn(self.session_id, text_turn_row(
                "assistant", "", tool_calls=tool_call_rows([stored])))
            self._calls.add(item.call_id)
        else:
            text = item.text()
            if not text.strip():
                raise InvalidRequest("the item has no text", param="item.content")
            record = await self.store.add_turn(self.session_id, text_turn_row(item.role, text))
            part = {"type": "input_text", "text": text} if item.role == "user" else \
                {"type": "text", "text": text}
            stored = Item(id=item_id, role=item.role, content=[part])
            remember_later(self.ports, [record], self.spawn)
        self.keep(record.id, stored)
        return ItemCreated(item=stored, previous_item_id=previous)

    async def _call_made(self, call_id: str) -> bool:
        """A call of this connection, or of the stored session (a continued one)."""
        if call_id in self._calls:
            return True
        turns = await self.store.recent_turns(self.session_id, KEEP_CONVERSATION_ITEMS)
        return any(c["call_id"] == call_id for t in turns for c in t.tool_calls or ())

    async def delete(self, item_id: str, generating: str | None = None) -> list[ItemDeleted]:
        """``conversation.item.delete``: the turn leaves the stored conversation (and the
        prompt of later replies, and memory). ``generating``: the item of the reply in
        flight, which cannot go yet."""
        entry = self.items.get(item_id)
        if entry is None:
            raise NotFound(f"no item {item_id!r} in this conversation", param="item_id")
        if generating == item_id:
            raise Conflict(f"item {item_id!r} is being generated; cancel the response first",
                           param="item_id")
        await self.store.delete_turn(self.session_id, entry.turn_id)
        if isinstance(entry.item, McpCall):  # the server ran it: its result goes with it
            for turn in await self.store.recent_turns(self.session_id, KEEP_CONVERSATION_ITEMS):
                if turn.role == "tool" and turn.tool_call_id == entry.item.id:
                    await self.store.delete_turn(self.session_id, turn.id)
        # A reply's words and its calls are one stored turn: its items all go with it.
        gone = [key for key, e in self.items.items() if e.turn_id == entry.turn_id]
        for key in gone:
            del self.items[key]
            self.delivered.pop(key, None)
        forget = getattr(self.ports.memory, "forget", None)
        if forget is not None:
            self.spawn(forget([entry.turn_id]), "memory forget")
        return [ItemDeleted(item_id=key) for key in [item_id, *(k for k in gone
                                                                 if k != item_id)]]

    async def retrieve(self, item_id: str) -> ItemRetrieved:
        entry = self.items.get(item_id)
        if entry is None:
            raise NotFound(f"no item {item_id!r} in this conversation", param="item_id")
        turn = await self.store.get_turn(entry.turn_id)  # truncation may have cut it since
        item = entry.item
        if isinstance(item, Item) and item.role == "assistant":
            item = assistant_item(item.id, turn.text, item.content[0]["type"] == "audio",
                                  item_status(turn))
        return ItemRetrieved(item=item)

    # --- delivered replies -----------------------------------------------------------------

    def still_playing(self, at: float | None = None) -> tuple[str, Delivered] | None:
        """The last stored spoken reply, when the client is still playing it at ``at``
        (all its audio was sent, but it plays in real time); ``at``: now by default."""
        if not self.delivered:
            return None
        at = time.perf_counter() if at is None else at
        item_id, delivered = next(reversed(self.delivered.items()))
        reply = delivered.reply
        return (item_id, delivered) if reply.plan.audio and reply.playback.playing_at(at) else None

    async def truncate(self, item_id: str, audio_end_ms: float) -> ItemTruncated:
        """``conversation.item.truncate`` of a reply already stored."""
        delivered = self.delivered.get(item_id)
        if delivered is None:
            raise NotFound(f"no assistant item {item_id!r} in this connection")
        if not delivered.reply.plan.audio:
            raise InvalidRequest(f"item {item_id!r} has no audio to truncate")
        return await self.cut(item_id, delivered, audio_end_ms)

    async def cut(self, item_id: str, delivered: Delivered, audio_end_ms: float,
                  ) -> ItemTruncated:
        """Cut a stored spoken reply to its first ``audio_end_ms`` (at most what was sent);
        the event tells the client where."""
        clamped = min(audio_end_ms, delivered.reply.playback.sent_ms)
        await self.store.truncate_turn(delivered.turn_id,
                                       delivered.reply.playback.text(clamped))
        return ItemTruncated(item_id=item_id, audio_end_ms=int(clamped))
