"""Memory writes of a realtime turn wait for the reply being spoken
(:func:`orchestrator.realtime.reply.stored.remember_later`): on two cores the embedder
would take CPU from the reply's first audio."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.realtime.reply import stored
from tests.support.fake_voice import FakeMemory

pytestmark = pytest.mark.asyncio


class Ports:
    def __init__(self) -> None:
        self.memory = FakeMemory()


async def test_a_write_waits_until_the_reply_has_ended() -> None:
    ports, quiet, tasks = Ports(), asyncio.Event(), []
    stored.remember_later(ports, ["turn"], lambda coro, _name: tasks.append(  # type: ignore[arg-type]
        asyncio.ensure_future(coro)), after=quiet.wait)
    await asyncio.sleep(0.05)
    assert ports.memory.remembered == []  # a reply is still being spoken
    quiet.set()
    await asyncio.wait_for(tasks[0], 1)
    assert ports.memory.remembered == ["turn"]


async def test_a_write_waits_at_most_the_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(stored, "MEMORY_WAIT_S", 0.05)
    ports, tasks = Ports(), []
    stored.remember_later(ports, ["turn"], lambda coro, _name: tasks.append(  # type: ignore[arg-type]
        asyncio.ensure_future(coro)), after=asyncio.Event().wait)  # never set
    await asyncio.wait_for(tasks[0], 1)
    assert ports.memory.remembered == ["turn"]
