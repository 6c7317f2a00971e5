"""The held sink of a speculative turn: nothing leaves before release, everything after
it leaves in order, and a cancelled reply's held deltas are dropped."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.realtime.turns.speculation import HeldSink

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.events: list[str] = []
        self.dropped: list[str] = []
        self.delay = delay

    async def put(self, event, *, response_id=None, on_sent=None):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        self.events.append(event)
        if on_sent is not None:
            on_sent()

    async def drop_response(self, response_id: str) -> int:
        self.dropped.append(response_id)
        return 0

    async def settled(self, response_id: str) -> None:
        return None


def spawner(tasks: list):  # type: ignore[no-untyped-def]
    def spawn(coro, name):  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(coro)
        tasks.append(task)
        return task
    return spawn


async def test_nothing_leaves_before_release_then_all_in_order() -> None:
    target, tasks = Recorder(delay=0.001), []
    sink = HeldSink(target, spawner(tasks))
    sent: list[str] = []
    for name in ("a", "b", "c"):
        await sink.put(name, response_id="r", on_sent=lambda n=name: sent.append(n))
    await asyncio.sleep(0.01)
    assert target.events == [] and sent == [] and sink.holding
    sink.release()
    await sink.put("d")  # arrives while the held ones are still being forwarded
    await asyncio.gather(*tasks)
    assert target.events == ["a", "b", "c", "d"] and sent == ["a", "b", "c"]
    assert sink.released_at is not None and not sink.holding
    await sink.put("e")
    assert target.events[-1] == "e"


async def test_dropping_a_response_forgets_its_held_events() -> None:
    target, tasks = Recorder(), []
    sink = HeldSink(target, spawner(tasks))
    await sink.put("created")
    await sink.put("delta", response_id="r1")
    assert await sink.drop_response("r1") == 1 and target.dropped == ["r1"]
    sink.release()
    await asyncio.gather(*tasks)
    assert target.events == ["created"]
