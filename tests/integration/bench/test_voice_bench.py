"""The voice benchmark runs end to end against a live server on the tiny real voice stack
(Whisper tiny.en, SmolLM2-135M, the Piper voice)."""

from __future__ import annotations

import pytest

from bench import voice, voice_report
from tests.support.realtime import tiny_voice_server

pytestmark = pytest.mark.asyncio


@pytest.mark.triton
async def test_bench_voice_reports_percentiles_per_stage(tmp_path, capsys, tiny_voice) -> None:  # type: ignore[no-untyped-def]
    async with tiny_voice_server(tmp_path, tiny_voice,
                                 auth_mode="required") as live:  # as a deployment runs
        key = (await live.runtime.keys.create("bench")).secret
        every = await voice.measure(live.base_url, turns=2, text="Hello there, how are you",
                                   pace=0, wait_s=30, protocols=voice.PROTOCOLS,
                                   headers={"Authorization": f"Bearer {key}"})
        stats = await live.runtime.conversations.user_stats("bench")
    # /ws, /v1/realtime, WebRTC and Twilio calls alternate round by round, each continuing
    # its own session
    assert set(every) == {"ws", "openai", "webrtc", "twilio"}
    assert (stats.sessions, stats.user_turns) == (4, 8)
    for summary in every.values():
        assert summary["client_v2v_ms"]["n"] == 2
        # incomplete: a 16-token reply reached its limit
        assert set(summary["statuses"]) <= {"completed", "incomplete"}, summary["statuses"]
    summary = every["ws"]
    for stage in ("stt_ms", "llm_first_token_ms", "tts_first_audio_ms", "voice_to_voice_ms"):
        assert summary[stage]["n"] == 2 and summary[stage]["p50"] <= summary[stage]["p95"]
    # The calls' replies were heard on the track, on the phone line.
    assert every["webrtc"]["client_v2v_ms"]["p50"] > 0
    assert every["twilio"]["client_v2v_ms"]["p50"] > 0
    # What was heard against what was said: Whisper tiny.en hears the question.
    assert summary["wer"] <= 0.2, summary["wer"]
    assert "wer" not in every["twilio"]  # a phone stream carries no transcripts
    voice_report.print_summary(summary)
    out = capsys.readouterr().out
    assert "client_v2v_ms" in out and "transcripts WER against the questions" in out


def test_the_stage_plot_splits_voice_to_voice_where_stages_hand_over(tmp_path) -> None:
    level = {"llm_start_ms": {"p50": 300.0}, "first_chunk_ms": {"p50": 650.0},
             "voice_to_voice_ms": {"p50": 800.0},
             "client_v2v_ms": {"values": [850.0, 900.0, 1000.0]}}
    parts = voice_report.critical_path(level)
    assert list(parts.values()) == [300.0, 350.0, 150.0]
    assert sum(parts.values()) == level["voice_to_voice_ms"]["p50"]
    voice_report.plot({1: level}, tmp_path)
    assert (tmp_path / "voice-stages.png").stat().st_size > 0
    assert (tmp_path / "voice-latency.png").stat().st_size > 0


def _level(p95: float, gap_max: float) -> dict:
    return {"client_v2v_ms": {"p50": p95 / 2, "p95": p95},
            "playback_gap_ms": {"max": gap_max, "values": [0.0, gap_max]}}


def test_capacity_is_the_largest_level_held_counting_up(capsys) -> None:
    levels = {1: _level(700, 0), 2: _level(1100, 40), 4: _level(1500, 0), 8: _level(1000, 0)}
    assert voice_report.capacity(levels, p95_ms=1200, gap_ms=100) == 2  # 8 passing by chance: no
    assert voice_report.capacity(levels, p95_ms=1600, gap_ms=100) == 8
    assert voice_report.capacity(levels, p95_ms=1600, gap_ms=30) == 1  # a 40 ms gap at 2
    assert voice_report.capacity({1: _level(1300, 0)}, p95_ms=1200, gap_ms=100) == 0
    assert voice_report.print_capacity(levels, 1200, 100) == 2
    out = capsys.readouterr().out
    assert "capacity: 2 concurrent session(s)" in out and "1500" in out
