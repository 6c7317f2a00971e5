"""The realtime load generator against a tiny fake server speaking the WebSocket protocol."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from websockets.asyncio.server import serve

from bench.e2e import (
    STAGES,
    LevelSummary,
    Turn,
    most_sustained,
    run_level,
    summarize,
    sweep_sessions,
)
from bench.speech import espeak
from bench.stats import Summary

RATE = 16_000
SILENCE_MS_TO_END = 200  # the fake VAD's silence window


class FakeRealtimeServer:
    """Server VAD on energy; after a turn it answers with the real event sequence.
    Every ``fail_every``-th turn (counted across sessions) gets an ``error`` event."""

    def __init__(self, fail_every: int = 0) -> None:
        self.fail_every = fail_every
        self.turns = 0
        self.updates: list[dict] = []

    async def handler(self, ws) -> None:  # type: ignore[no-untyped-def]
        await ws.send(json.dumps({"type": "session.created", "session": {"id": "s"}}))
        speaking, silent_ms = False, 0
        async for message in ws:
            event = json.loads(message)
            if event["type"] == "session.update":
                self.updates.append(event["session"])
                await ws.send(json.dumps({"type": "session.updated", "session": {}}))
                continue
            assert event["type"] == "input_audio_buffer.append"
            pcm = np.frombuffer(base64.b64decode(event["audio"]), dtype="<i2")
            chunk_ms = pcm.size * 1000 // RATE
            if np.abs(pcm).max(initial=0) > 300:
                speaking, silent_ms = True, 0
            elif speaking:
                silent_ms += chunk_ms
                if silent_ms >= SILENCE_MS_TO_END:
                    speaking = False
                    await self.answer(ws)

    async def answer(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.turns += 1
        send = lambda e: ws.send(json.dumps(e))  # noqa: E731
        await send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1, "item_id": "i"})
        await send({"type": "input_audio_buffer.committed", "item_id": "i"})
        if self.fail_every and self.turns % self.fail_every == 0:
            await send({"type": "error", "error": {"type": "server_error",
                                                  "message": "llm unavailable"}})
            return
        await asyncio.sleep(0.002)
        await send({"type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "i", "transcript": "hello there"})
        await send({"type": "response.created", "response": {"id": "r"}})
        await asyncio.sleep(0.002)
        await send({"type": "response.audio_transcript.delta", "response_id": "r",
                    "item_id": "a", "delta": "Hi"})
        await asyncio.sleep(0.002)
        await send({"type": "response.audio.delta", "response_id": "r", "item_id": "a",
                    "delta": base64.b64encode(b"\0\0" * 480).decode()})
        await send({"type": "response.done", "response": {
            "id": "r", "status": "completed",
            "timings": {"stt_ms": 12.5, "llm_first_token_ms": 30.0, "voice_to_voice_ms": 50}}})


@pytest.fixture(scope="module")
def speech() -> bytes:
    return espeak("Hello there.", RATE)


async def _with_server(fake: FakeRealtimeServer, body):  # type: ignore[no-untyped-def]
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]

        async def connect_url() -> str:
            return f"ws://127.0.0.1:{port}/ws/u/s"

        return await body(connect_url)


async def test_sessions_measure_voice_to_voice_and_each_stage(speech) -> None:
    fake = FakeRealtimeServer()
    level = await _with_server(fake, lambda url: run_level(
        url, 3, speech, ramp_s=0.05, progress=False, rate=RATE, turns=2, chunk_ms=40,
        pace=0.1, pause_s=0.1, turn_timeout_s=20,
        session={"turn_detection": {"type": "server_vad"}}))
    assert fake.updates[0]["input_sample_rate"] == RATE
    assert fake.updates[0]["turn_detection"] == {"type": "server_vad"}
    assert (level.sessions, level.turns, level.errors) == (3, 6, 0)
    assert fake.turns == 6
    v2v = level.voice_to_voice_ms
    assert v2v.count == 6 and v2v.min > 0
    # the stages telescope: they add up to the mean voice-to-voice latency
    assert set(level.stages_ms) == set(STAGES)
    assert sum(level.stages_ms.values()) == pytest.approx(v2v.mean)
    assert level.server_timings_ms == {"llm_first_token_ms": 30.0, "stt_ms": 12.5,
                                       "voice_to_voice_ms": 50.0}


async def test_error_events_fail_their_turn_and_stop_the_sweep(speech) -> None:
    fake = FakeRealtimeServer(fail_every=2)
    levels = await _with_server(fake, lambda url: sweep_sessions(
        url, speech, (1, 2, 4), target_ms=60_000, ramp_s=0.0, progress=False, rate=RATE,
        turns=2, chunk_ms=40, pace=0.1, pause_s=0.05, turn_timeout_s=20))
    # level 1: turn 2 fails -> not sustained -> the sweep stops there
    assert len(levels) == 1
    assert (levels[0].turns, levels[0].errors) == (2, 1)
    assert levels[0].error_samples == ["server error: llm unavailable"]
    assert levels[0].voice_to_voice_ms.count == 1


async def test_connection_failures_are_errors_not_crashes(speech) -> None:
    async def refused() -> str:
        return "ws://127.0.0.1:9/ws/u/s"

    level = await run_level(refused, 2, speech, ramp_s=0.0, progress=False, pace=0.1)
    assert level.errors == 2 and level.turns == 0
    assert "Error" in level.error_samples[0]


def test_stages_need_every_event_in_order() -> None:
    turn = Turn(speech_end=1.0, speech_stopped=1.5, transcript_done=1.6, first_text=1.9,
                first_audio=2.0, done=2.5)
    assert turn.voice_to_voice_ms == pytest.approx(1000)
    assert turn.stages_ms() == pytest.approx({"vad": 500, "stt": 100, "llm": 300, "tts": 100})
    turn.first_text = 2.1  # text after audio: no breakdown, latency still counts
    assert turn.stages_ms() is None and turn.voice_to_voice_ms == pytest.approx(1000)
    summary = summarize(1, [])
    assert summary.turns == 0 and summary.stages_ms == {}


def test_most_sustained_sessions_within_target() -> None:
    def level(n: int, p90s: list[float], errors: int = 0) -> LevelSummary:
        return LevelSummary(n, len(p90s), errors, Summary.of(p90s), {}, {}, [])

    levels = [level(1, [800, 900]), level(2, [900, 1000]), level(4, [1200, 1400]),
              level(8, [1000, 1100], errors=1)]
    assert most_sustained(levels, 1500) == 4
    assert most_sustained(levels, 1000) == 2  # p90 of [900, 1000] is 990
    assert most_sustained(levels, 500) == 0


def test_espeak_speech_is_pcm16_at_the_rate_and_ends_with_speech(speech) -> None:
    pcm = np.frombuffer(speech, dtype="<i2")
    assert 0.3 < pcm.size / RATE < 5.0
    assert abs(int(pcm[-1])) > 0.01 * 32767 * 0.5 or np.abs(pcm[-160:]).max() > 300
    assert np.abs(pcm[:160]).max() > 300
