"""``bench voice`` speaks its next question only once the reply has been heard: reply audio
plays in real time from its first delta, and speaking over it would be a barge-in."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from bench import voice, voice_client, voice_report


class ScriptedSocket:
    """Sends one second of reply audio, then response.done; counts what it is sent."""

    def __init__(self) -> None:
        second = base64.b64encode(bytes(voice_client.RATE * 2)).decode()
        self.events = [{"type": "response.audio.delta", "delta": second},
                       {"type": "response.done", "response": {"status": "completed",
                                                              "text": "Hi."}}]
        self.sent = 0

    async def send(self, data) -> None:  # type: ignore[no-untyped-def]
        self.sent += 1

    async def recv(self) -> str:
        await asyncio.sleep(0.01)
        return json.dumps(self.events.pop(0))


@pytest.mark.asyncio
async def test_the_next_question_waits_for_the_reply_to_be_heard() -> None:
    socket = ScriptedSocket()
    started = time.perf_counter()
    figures = await voice.one_turn(socket, bytes(480 * 2), pace=4.0, wait_s=10)
    listened = time.perf_counter() - started
    assert figures["reply_audio_s"] == 1.0 and figures["status"] == "completed"
    assert listened >= 0.25 - 0.02  # one second of audio at 4x pace, from its first delta
    assert socket.sent > 1  # the microphone kept sending silence meanwhile


class StarvingSocket(ScriptedSocket):
    """0.1 s of audio, then 0.3 s of nothing, then 0.1 s more: the player starves."""

    def __init__(self) -> None:
        super().__init__()
        tenth = base64.b64encode(bytes(voice_client.RATE * 2 // 10)).decode()
        self.events = [{"type": "response.audio.delta", "delta": tenth},
                       {"type": "response.audio.delta", "delta": tenth, "wait": 0.3},
                       {"type": "response.done", "response": {"status": "completed",
                                                              "text": "Hi."}}]

    async def recv(self) -> str:
        event = self.events.pop(0)
        await asyncio.sleep(event.pop("wait", 0.0))
        return json.dumps(event)


@pytest.mark.asyncio
async def test_playback_gaps_are_the_time_the_player_waited_for_audio() -> None:
    figures = await voice.one_turn(StarvingSocket(), bytes(480 * 2), pace=1.0, wait_s=10)
    assert figures["playback_gap_ms"] == pytest.approx(200, abs=60)  # 300 ms wait - 100 played
    smooth = await voice.one_turn(ScriptedSocket(), bytes(480 * 2), pace=4.0, wait_s=10)
    assert smooth["playback_gap_ms"] == 0


def test_a_korean_run_names_its_language_where_each_protocol_takes_it() -> None:
    """/ws refuses an unknown ``language`` field (the first Korean run failed on it); the
    language goes inside the transcription settings on both paths."""
    ws = voice_client.session_update({"language": "ko", "temperature": 0.6}, "ws")
    assert "language" not in ws and ws["input_audio_transcription"] == {"language": "ko"}
    assert ws["temperature"] == 0.6
    openai = voice_client.session_update({"language": "ko"}, "openai")
    assert openai["audio"]["input"]["transcription"] == {"language": "ko"}


def test_heard_time_skips_a_deltas_leading_silence() -> None:
    import base64

    import numpy as np

    pcm = np.zeros(2400, dtype="<i2")  # 100 ms at 24 kHz
    pcm[1200:] = 3000  # sound from 50 ms in
    delta = base64.b64encode(pcm.tobytes()).decode()
    assert voice_client.leading_silence_s(delta) == 0.05
    assert voice_client.leading_silence_s(base64.b64encode(bytes(480)).decode()) is None


class EndlessSocket(ScriptedSocket):
    """One second of reply audio, then a reply that never finishes."""

    async def recv(self) -> str:
        if self.events[0]["type"] == "response.done":
            await asyncio.sleep(3600)
        return await super().recv()


@pytest.mark.asyncio
async def test_a_reply_not_done_in_time_is_a_timed_out_turn_not_a_crash() -> None:
    """A long reply on a slow host once outlasted --wait, and the whole run, with every
    finished turn, was lost to the TimeoutError."""
    figures = await voice.one_turn(EndlessSocket(), bytes(480 * 2), pace=4.0, wait_s=0.3)
    assert figures["status"] == "timed_out"
    assert figures["reply_audio_s"] == 1.0 and figures["client_v2v_ms"] > 0


@pytest.mark.asyncio
async def test_a_session_stops_at_its_timed_out_turn_and_keeps_the_others(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    turns = iter([{"status": "completed", "client_v2v_ms": 900.0},
                  {"status": "timed_out", "client_v2v_ms": 1500.0}])

    async def one_turn(*args, **kwargs) -> dict:  # type: ignore[no-untyped-def]
        return dict(next(turns))

    class Connection:
        async def __aenter__(self) -> ScriptedSocket:
            socket = ScriptedSocket()
            socket.events = [{"type": "session.created", "session": {"id": "s"}}]
            return socket

        async def __aexit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(voice, "one_turn", one_turn)
    monkeypatch.setattr(voice, "connection", lambda *args: Connection())
    results, _ = await voice.one_session("ws://x/ws/s/u", [b"q"] * 3, 1, 0.0, 0.3, None, {},
                                         resume="ws://x/ws/s/u")
    assert [r["status"] for r in results] == ["completed", "timed_out"]  # no third turn
    summary = voice_report.summarise(results)
    assert summary["timed_out"] == 1
    # a level with a timed-out turn does not count towards capacity, however fast
    assert voice_report.capacity({1: summary}, p95_ms=5000, gap_ms=5000) == 0
    summary["timed_out"] = 0
    assert voice_report.capacity({1: summary}, p95_ms=5000, gap_ms=5000) == 1
