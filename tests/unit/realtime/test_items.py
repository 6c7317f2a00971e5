"""The conversation items of a connection on a real (SQLite) store: add, retrieve, delete
and truncate, and the events each returns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from orchestrator.errors import Conflict, InvalidRequest, NotFound
from orchestrator.realtime.items import ConversationItems
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.client_events import ItemCreate, client_event_decoder
from orchestrator.realtime.protocol.item_types import FunctionCall, assistant_item
from orchestrator.realtime.protocol.server_events import ItemCreated, ItemDeleted, ItemTruncated
from orchestrator.realtime.reply.plan import ReplyPlan
from orchestrator.realtime.reply.playback import Playback, SpokenSentence
from orchestrator.realtime.reply.stages import Reply
from orchestrator.realtime.reply.stored import text_turn_row
from storage.conversations import ConversationStore
from storage.database import Database
from storage.migrate import upgrade


class _Memory:
    def __init__(self) -> None:
        self.forgotten: list[list[int]] = []

    async def remember(self, turns: list) -> None:
        pass

    async def forget(self, turn_ids: list[int]) -> None:
        self.forgotten.append(turn_ids)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'items.db'}"
    upgrade(url)
    return url


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[ConversationStore]:
    database = Database(sqlite_url)
    yield ConversationStore(database)
    await database.close()


@pytest.fixture
async def items(store: ConversationStore) -> AsyncIterator[ConversationItems]:
    session = await store.create_session("user_1", language="en", voice=None)
    spawned: list[asyncio.Task] = []
    memory = _Memory()
    ports = VoicePorts(stt=None, llm=None, tts=None, memory=memory,  # type: ignore[arg-type]
                       prompt=None, decode_audio=None, encode_audio=None)  # type: ignore[arg-type]
    made = ConversationItems(session.id, store=store, ports=ports,
                             spawn=lambda coro, name: spawned.append(
                                 asyncio.ensure_future(coro)) or spawned[-1])
    made.memory = memory  # type: ignore[attr-defined]
    yield made
    await asyncio.gather(*spawned, return_exceptions=True)


def create(item: dict, previous: str | None = None) -> ItemCreate:
    event = {"type": "conversation.item.create", "item": item}
    if previous is not None:
        event["previous_item_id"] = previous
    decoded = client_event_decoder.decode(msgspec.json.encode(event))
    assert isinstance(decoded, ItemCreate)
    return decoded


def message(text: str, role: str = "user", item_id: str | None = None) -> dict:
    part = "input_text" if role == "user" else "text"
    item = {"type": "message", "role": role, "content": [{"type": part, "text": text}]}
    return item | ({"id": item_id} if item_id else {})


async def test_added_items_are_stored_in_order_and_retrieved(
        items: ConversationItems, store: ConversationStore) -> None:
    first = await items.add(create(message("hello", item_id="item_a")))
    assert isinstance(first, ItemCreated)
    assert first.item.id == "item_a" and first.previous_item_id is None
    second = await items.add(create(message("hi there", "assistant"), previous="item_a"))
    assert second.previous_item_id == "item_a"
    assert items.last_item_id == second.item.id
    turns = await store.recent_turns(items.session_id)
    assert [(t.role, t.text) for t in turns] == [("user", "hello"), ("assistant", "hi there")]
    retrieved = await items.retrieve("item_a")
    assert retrieved.item.id == "item_a" and retrieved.item.content[0]["text"] == "hello"


async def test_items_are_only_appended_and_ids_are_unique(items: ConversationItems) -> None:
    await items.add(create(message("one", item_id="item_a")))
    await items.add(create(message("two", item_id="item_b")))
    with pytest.raises(InvalidRequest) as bad:
        await items.add(create(message("three"), previous="item_a"))
    assert bad.value.param == "previous_item_id"
    with pytest.raises(Conflict):
        await items.add(create(message("again", item_id="item_b")))
    with pytest.raises(InvalidRequest):
        await items.add(create(message("   ")))


async def test_a_call_output_needs_its_call(items: ConversationItems) -> None:
    output = {"type": "function_call_output", "call_id": "call_1", "output": "{}"}
    with pytest.raises(InvalidRequest) as missing:
        await items.add(create(output))
    assert missing.value.param == "item.call_id"
    await items.add(create({"type": "function_call", "call_id": "call_1", "name": "f",
                            "arguments": "{}"}))
    created = await items.add(create(output))
    assert created.item.call_id == "call_1"


async def test_deleting_an_item_forgets_its_whole_turn(
        items: ConversationItems, store: ConversationStore) -> None:
    await items.add(create(message("keep me", item_id="item_a")))
    record = await store.add_turn(items.session_id, text_turn_row("assistant", "words"))
    items.keep(record.id, assistant_item("item_words", "words", False))
    items.keep(record.id, FunctionCall(id="item_call", call_id="call_9", name="f",
                                       arguments="{}"))
    with pytest.raises(Conflict):
        await items.delete("item_words", generating="item_words")
    deleted = await items.delete("item_call")
    assert all(isinstance(event, ItemDeleted) for event in deleted)
    assert [event.item_id for event in deleted] == ["item_call", "item_words"]
    assert "item_words" not in items and "item_call" not in items and "item_a" in items
    assert [t.text for t in await store.recent_turns(items.session_id)] == ["keep me"]
    await asyncio.sleep(0)
    assert items.memory.forgotten == [[record.id]]  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await items.delete("item_call")
    with pytest.raises(NotFound):
        await items.retrieve("item_call")


def spoken_reply(item_id: str, audio: bool = True) -> Reply:
    plan = ReplyPlan(response_id="resp_1", item_id=item_id, messages=[], params=None,
                     audio=audio)
    reply = Reply(plan, llm=None, tts=None, outbound=None)  # type: ignore[arg-type]
    reply.playback = Playback([SpokenSentence("One two three four.", 0.0, 1000.0),
                               SpokenSentence("Five six.", 1000.0, 2000.0)], sent_ms=2000.0)
    return reply


async def test_truncating_a_delivered_reply_cuts_its_stored_turn(
        items: ConversationItems, store: ConversationStore) -> None:
    record = await store.add_turn(items.session_id, text_turn_row(
        "assistant", "One two three four. Five six."))
    items.keep(record.id, assistant_item("item_r", record.text, True))
    items.keep_delivered("item_r", record.id, spoken_reply("item_r"))
    truncated = await items.truncate("item_r", 500.0)
    assert isinstance(truncated, ItemTruncated)
    assert (truncated.item_id, truncated.audio_end_ms) == ("item_r", 500)
    assert (await store.get_turn(record.id)).text == "One two"
    retrieved = await items.retrieve("item_r")
    assert retrieved.item.content[0]["transcript"] == "One two"
    assert retrieved.item.status == "incomplete"
    # Past what was sent: clamped to it.
    assert (await items.truncate("item_r", 99_000.0)).audio_end_ms == 2000
    with pytest.raises(NotFound):
        await items.truncate("item_unknown", 10.0)
    items.keep_delivered("item_t", record.id, spoken_reply("item_t", audio=False))
    with pytest.raises(InvalidRequest):
        await items.truncate("item_t", 10.0)


async def test_only_a_spoken_reply_still_playing_is_playing(items: ConversationItems) -> None:
    assert items.still_playing() is None
    reply = spoken_reply("item_p")
    reply.playback.started = 100.0
    items.keep_delivered("item_p", 1, reply)
    assert items.still_playing(101.0) == ("item_p", items.delivered["item_p"])
    assert items.still_playing(102.5) is None  # its 2 s of audio have played
    text_only = spoken_reply("item_q", audio=False)
    text_only.playback.started = 100.0
    items.keep_delivered("item_q", 2, text_only)
    assert items.still_playing(101.0) is None  # the latest reply has no audio
