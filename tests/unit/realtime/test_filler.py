"""The filler said while MCP calls run (:mod:`orchestrator.realtime.reply.filler`): which
phrase, when it starts, and that a started filler is said to its end; and a stopped call
(:func:`orchestrator.realtime.mcp._unless_stopped`)."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.realtime.mcp import McpFailure, _unless_stopped
from orchestrator.realtime.protocol.server_events import (
    OutputItemAdded,
    OutputItemDone,
    ResponseAudioDelta,
)
from orchestrator.realtime.reply.filler import Filler, FillerVoice, filler_phrase
from tests.support.fake_voice import FakeTTS

pytestmark = pytest.mark.asyncio


def voice(languages: frozenset[str] | None) -> FillerVoice:
    return FillerVoice("v", 1.0, 24000, "pcm16", languages)


@pytest.mark.parametrize(("said", "languages", "phrase"), [
    ("What is the weather?", None, "One moment, please."),
    ("날씨 어때요?", None, "잠시만요, 확인해 볼게요."),
    ("날씨 어때요?", frozenset({"en"}), None),  # the voice cannot say it
    ("", frozenset({"ko"}), "잠시만요, 확인해 볼게요."),  # unknown: the voice's one language
    ("Hi", frozenset({"en", "ko"}), "One moment, please."),
])
async def test_phrase_in_the_conversations_language(said, languages, phrase) -> None:  # type: ignore[no-untyped-def]
    assert filler_phrase(said, voice(languages)) == phrase


class Sink:
    def __init__(self) -> None:
        self.events: list = []

    async def put(self, event, *, response_id=None, on_sent=None) -> None:  # type: ignore[no-untyped-def]
        self.events.append(event)
        if on_sent is not None:
            on_sent()

    async def drop_response(self, response_id: str) -> int:
        return 0

    async def settled(self, response_id: str) -> None:
        return None


def filler(sink: Sink, after_s: float, tts: FakeTTS | None = None) -> Filler:
    return Filler("One moment, please.", voice(None), tts or FakeTTS(), sink, "resp_1", 1,
                  after_s)


async def test_work_faster_than_the_wait_says_nothing() -> None:
    sink = Sink()
    spoken = filler(sink, 0.5)
    assert await spoken.around(asyncio.sleep(0.01, result="ok")) == "ok"
    assert sink.events == [] and spoken.item is None and spoken.spoken == ""


async def test_slow_work_is_filled_and_a_begun_filler_ends_before_the_result() -> None:
    sink = Sink()
    spoken = filler(sink, 0.05, FakeTTS(delay=0.2))  # the voice outlasts the work
    result = await spoken.around(asyncio.sleep(0.1, result="ok"))
    assert result == "ok" and spoken.spoken == "One moment, please."
    kinds = [type(e) for e in sink.events]
    assert kinds[0] is OutputItemAdded and kinds[-1] is OutputItemDone
    assert ResponseAudioDelta in kinds
    assert all(e.output_index == 1 for e in sink.events)
    assert sink.events[-1].item.status == "completed"


async def test_a_voice_that_fails_ends_the_item_and_the_work_goes_on() -> None:
    class Broken(FakeTTS):
        async def stream(self, text, *, voice=None, speed=1.0):  # type: ignore[no-untyped-def, override]
            raise RuntimeError("tts down")
            yield  # pragma: no cover

    sink = Sink()
    spoken = filler(sink, 0.01, Broken())
    assert await spoken.around(asyncio.sleep(0.05, result="ok")) == "ok"
    assert spoken.spoken == ""
    assert sink.events[-1].item.status == "incomplete"


async def test_a_stopped_call_fails_at_once_as_cancelled() -> None:
    stopped = asyncio.Event()
    ran = asyncio.Event()

    async def call() -> str:
        ran.set()
        await asyncio.sleep(10)
        return "late"

    task = asyncio.ensure_future(_unless_stopped(call(), stopped))
    await ran.wait()
    stopped.set()
    with pytest.raises(McpFailure) as failure:
        await asyncio.wait_for(task, 1)
    assert failure.value.error["message"].startswith("cancelled")
    with pytest.raises(McpFailure):  # stopped before it began: it never runs
        await _unless_stopped(call(), stopped)
    assert await _unless_stopped(asyncio.sleep(0, result="now"), asyncio.Event()) == "now"
