"""The WebRTC media loop (:class:`~orchestrator.realtime.transports.webrtc.media_loop.
MediaLoop`): a reply paced on it keeps its clock while the sessions' loop is busy; work
handed over runs there, in order, with its result, error or cancellation coming back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from orchestrator.realtime.audio import encode_output
from orchestrator.realtime.transports.webrtc.media import ReplyTrack
from orchestrator.realtime.transports.webrtc.media_loop import (
    MediaLoop,
    MediaLoopClosed,
    hand_to,
)

BUSY_S = 0.5


@pytest.fixture
async def media() -> AsyncIterator[MediaLoop]:
    loop = MediaLoop()
    yield loop
    await loop.close()


def busy(seconds: float) -> None:
    """Hold the calling loop with Python work (the interpreter lock switches threads)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


async def play(reply: ReplyTrack, frames: int) -> None:
    await reply.recv()
    t = np.arange(24000 * 2) / 24000
    reply.push(encode_output((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
                             "pcm16"), "pcm16", 24000)
    for _ in range(frames):
        await reply.recv()


async def test_a_busy_sessions_loop_does_not_hold_up_the_reply(media: MediaLoop) -> None:
    """The same reply paced on the loop that is kept busy falls ``BUSY_S`` behind; on the
    media loop it keeps its 20 ms slots."""
    here = ReplyTrack(on_drained=lambda: None)
    playing = asyncio.ensure_future(play(here, 40))
    await asyncio.sleep(0.1)
    busy(BUSY_S)
    await playing
    assert max(here.late_ms) >= BUSY_S * 1000 - 50

    there = await media.run(_track())
    playing = asyncio.ensure_future(media.run(play(there, 40)))
    await asyncio.sleep(0.1)
    busy(BUSY_S)
    await playing
    assert max(there.late_ms) < BUSY_S * 1000 / 2, list(there.late_ms)
    assert there.rebased_s == 0.0


async def _track() -> ReplyTrack:
    return ReplyTrack(on_drained=lambda: None)


async def test_run_returns_raises_and_runs_on_the_media_thread(media: MediaLoop) -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert await media.run(where()) == "webrtc-media"

    async def fail() -> None:
        raise ValueError("bad offer")

    with pytest.raises(ValueError, match="bad offer"):
        await media.run(fail())


async def test_cancelling_the_wait_cancels_the_work(media: MediaLoop) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def long() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(media.run(long()))
    await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await asyncio.to_thread(cancelled.wait, 5)


async def test_callbacks_keep_their_order_both_ways(media: MediaLoop) -> None:
    home = hand_to(asyncio.get_running_loop())
    seen: list[int] = []
    done = asyncio.Event()

    def back(i: int) -> None:
        seen.append(i)
        if i == 99:
            done.set()

    for i in range(100):
        media.call_soon(home, back, i)
    await asyncio.wait_for(done.wait(), 5)
    assert seen == list(range(100))


async def test_a_closed_media_loop_refuses_work_without_leaking_it() -> None:
    media = MediaLoop()
    await media.close()
    assert not media.running

    async def never() -> None:
        raise AssertionError("ran on a closed loop")

    with pytest.raises(MediaLoopClosed):
        await media.run(never())
    media.call_soon(print, "dropped")  # no error: the calls went with the loop
