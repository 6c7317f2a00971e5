"""The prefill stage alone: one at a time, quiet failures, a bounded wait for the reply."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from orchestrator.chat.service import SamplingParams
from orchestrator.realtime.reply import prefill as prefill_module
from orchestrator.realtime.reply.prefill import Prefill, can_prefill

pytestmark = pytest.mark.asyncio


class SlowLLM:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.calls: list[tuple[list, object]] = []

    async def prefill(self, messages, params, prompt=None):  # type: ignore[no-untyped-def]
        self.calls.append((messages, params))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("triton is gone")
        return SimpleNamespace(cached_tokens=7)


def spawn(coro, name):  # type: ignore[no-untyped-def]
    return asyncio.create_task(coro, name=name)


def plan_of(text: str, seed: int | None = None):  # type: ignore[no-untyped-def]
    async def build():  # type: ignore[no-untyped-def]
        return SimpleNamespace(messages=[text], params=SamplingParams(seed=seed), prompt=None)
    return build


async def test_one_prefill_at_a_time_and_the_reply_waits_for_it() -> None:
    llm = SlowLLM(delay=0.05)
    prefill = Prefill(llm, spawn)
    assert prefill.start(plan_of("what is"))
    assert not prefill.start(plan_of("what is the"))  # the next partial brings newer words
    await prefill.settled()
    assert not prefill.running and prefill.cached_tokens == 7
    assert [messages for messages, _ in llm.calls] == [["what is"]]
    assert prefill.start(plan_of("what is the capital"))
    await prefill.settled()
    assert len(llm.calls) == 2


async def test_the_reply_waits_only_so_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefill_module, "SETTLE_TIMEOUT_S", 0.02)
    prefill = Prefill(SlowLLM(delay=5.0), spawn)
    prefill.start(plan_of("what is"))
    await asyncio.wait_for(prefill.settled(), 1.0)  # gave up waiting, well before 5 s
    assert prefill.running
    prefill._task.cancel()  # type: ignore[union-attr]


async def test_a_failed_prefill_is_quiet_and_a_seeded_reply_is_not_prefilled() -> None:
    failing = Prefill(SlowLLM(fail=True), spawn)
    failing.start(plan_of("what is"))
    await failing.settled()
    assert failing._task is not None and failing._task.exception() is None
    llm = SlowLLM()
    seeded = Prefill(llm, spawn)
    seeded.start(plan_of("what is", seed=3))
    await seeded.settled()
    assert llm.calls == []  # a seeded request never reuses the cache


async def test_a_model_port_without_prefill_gets_none() -> None:
    class StreamOnly:
        def stream(self, messages, params):  # type: ignore[no-untyped-def]
            raise AssertionError("no request may be sent")

    assert not can_prefill(StreamOnly()) and can_prefill(SlowLLM())
    assert not Prefill(StreamOnly(), spawn).start(plan_of("what is"))
