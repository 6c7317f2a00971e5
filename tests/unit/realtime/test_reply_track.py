"""The reply's track on a WebRTC call (:class:`~orchestrator.realtime.transports.webrtc.media.
ReplyTrack`): Opus packets stamped on the wall clock, 20 ms apart; a stall in silence skips
the missed time instead of sending it in a burst; a reply loses no audio to a stall; between
replies the track goes quiet as Opus DTX does."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from prometheus_client import REGISTRY

from orchestrator.realtime.audio import encode_output
from orchestrator.realtime.transports.webrtc.media import (
    FRAME_SAMPLES,
    PLAYOUT_RATE,
    QUIET_AFTER_FRAMES,
    QUIET_KEEPALIVE_S,
    REBASE_PLAYING_S,
    ReplyTrack,
)


def track() -> ReplyTrack:
    return ReplyTrack(on_drained=lambda: None)


def tone(seconds: float, rate: int = 24000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return encode_output((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), "pcm16")


def stall(seconds: float) -> None:
    """Block the event loop, as one busy with a reply does."""
    time.sleep(seconds)


def heard(packets: list) -> np.ndarray:  # type: ignore[type-arg]
    """The packets decoded as a caller would: mono samples at 48 kHz."""
    decoder = OpusDecoder()
    out = [f.to_ndarray().reshape(-1, 2)[:, 0]  # stereo, interleaved
           for p in packets for f in decoder.decode(JitterFrame(bytes(p), p.pts))]
    return np.concatenate(out).astype(np.float32) / 32768


async def test_packets_are_opus_stamped_20_ms_apart() -> None:
    reply = track()
    packets = [await reply.recv() for _ in range(5)]
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(5)]
    assert all(p.time_base == Fraction(1, PLAYOUT_RATE) for p in packets)
    assert np.abs(heard(packets)).max() < 0.01  # nothing queued: silence


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(f"voicechat_webrtc_reply_{name}") or 0.0


async def test_a_stall_in_silence_skips_the_missed_time() -> None:
    frames, skipped = metric("frame_late_seconds_count"), metric("skipped_seconds_total")
    reply = track()
    await reply.recv()
    await reply.recv()
    stall(0.1)
    after = await reply.recv()
    # stamped with the time it left: the 100 ms read as a pause, not as a late burst
    assert after.pts >= 5 * FRAME_SAMPLES and reply.rebased_s >= 0.06
    nxt = await reply.recv()
    assert nxt.pts == after.pts + FRAME_SAMPLES
    # what an operator scrapes: every frame after the first, and the time skipped
    assert metric("frame_late_seconds_count") - frames == 3
    assert metric("skipped_seconds_total") - skipped == pytest.approx(reply.rebased_s)


async def test_a_reply_loses_no_audio_to_stalls() -> None:
    reply = track()
    await reply.recv()
    reply.push(tone(1.0), "pcm16", 24000)
    packets = []
    while reply.queued_s > 0:
        if len(packets) == 10:
            stall(REBASE_PLAYING_S / 2)  # shorter than the ride-out: no skip
        if len(packets) == 20:
            stall(0.2)  # longer: the clock moves on, the audio does not
        packets.append(await reply.recv())
    steps = np.diff([p.pts for p in packets]) // FRAME_SAMPLES
    assert steps[9] == 1  # rode out the short stall
    assert steps[19] >= 5 and reply.rebased_s >= 0.1  # skipped ahead after the long one
    assert reply.played_s == pytest.approx(1.0, abs=0.002)  # the resampler's tail aside
    loud = np.abs(heard(packets)) > 0.05
    # every 20 ms of the second of tone was sent (Opus's own delay aside)
    assert 0.97 <= loud.reshape(-1, FRAME_SAMPLES).any(axis=1).sum() / 50 <= 1.0


async def test_between_replies_the_track_goes_quiet_and_wakes_for_the_next() -> None:
    reply = track()
    await reply.recv()
    reply.push(tone(0.1), "pcm16", 24000)
    packets = [await reply.recv() for _ in range(5 + QUIET_AFTER_FRAMES)]
    # the reply, then 200 ms of silence sent 20 ms apart (the decoder's tail ends on it)
    assert np.diff([p.pts for p in packets]).tolist() == [FRAME_SAMPLES] * (len(packets) - 1)
    started = time.monotonic()
    keepalive = await reply.recv()  # quiet: one silent packet per keep-alive interval
    waited = time.monotonic() - started
    assert QUIET_KEEPALIVE_S - 0.03 <= waited < QUIET_KEEPALIVE_S + 0.3
    # stamped with the slot it left in: the gap reads as a pause, not as a late packet
    gap = (keepalive.pts - packets[-1].pts) / PLAYOUT_RATE
    assert gap >= QUIET_KEEPALIVE_S - 0.04, gap
    assert np.abs(heard([keepalive])).max() < 0.01

    pushed: list[float] = []

    def next_reply() -> None:
        pushed.append(time.monotonic())
        reply.push(tone(0.2), "pcm16", 24000)

    asyncio.get_running_loop().call_later(0.1, next_reply)
    first = await reply.recv()  # the next reply wakes the track at once
    assert time.monotonic() - pushed[0] < QUIET_KEEPALIVE_S / 2
    rest = [first]
    while reply.queued_s > 0:
        rest.append(await reply.recv())
    assert np.diff([p.pts for p in rest]).tolist() == [FRAME_SAMPLES] * (len(rest) - 1)
    loud = np.abs(heard(rest)) > 0.05
    assert loud.reshape(-1, FRAME_SAMPLES).any(axis=1).sum() >= 9  # the 0.2 s all went out


async def test_a_stopped_track_releases_a_reply_waiting_for_its_clock() -> None:
    """A call that ends stops its track; the reply waiting for the playout clock (which
    no longer runs) goes on, and what it still sends is not kept."""
    reply = track()
    reply.push(tone(5.0), "pcm16", 24000)
    waiting = asyncio.create_task(reply.wait_below(0.3))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 5 s queued, nobody playing it
    reply.stop()
    await asyncio.wait_for(waiting, 1)
    assert reply.queued_s == 0
    reply.push(tone(1.0), "pcm16", 24000)
    assert reply.queued_s == 0
    await asyncio.wait_for(reply.wait_below(0.3), 1)
