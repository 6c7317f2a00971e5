"""Transcription sessions and the idle timeout on ``WS /v1/realtime`` over the real Triton
server: Whisper tiny.en as ``stt`` (its transcripts are compared with a one-shot
transcription of the same audio) and the tiny random Llama as ``llm`` (the idle timeout's
reply; text only, text-to-speech off)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from orchestrator.realtime.audio import float_to_pcm16, pcm16_to_float
from tests.support import llm_fixtures
from tests.support.fake_voice import silence, speak
from tests.support.realtime import RealtimeClient, events_within, live_server, stored_turns

pytestmark = [pytest.mark.asyncio, pytest.mark.triton]
RATE = 24000
BETA = {"additional_headers": {"OpenAI-Beta": "realtime=v1"}}
TRANSCRIBED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture
async def live(triton_server, tiny_en_stt, tiny_llm, tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, triton_url=triton_server.grpc_url,
                           model_repository=str(triton_server.repository),
                           memory_enabled=False, tts_enabled=False, llm_max_tokens=16,
                           realtime_turn_detection="server_vad") as server:
        assert {"stt", "llm"} <= set(server.runtime.services.available())
        server.runtime.triton.default_versions.update(
            stt=str(tiny_en_stt), llm=str(llm_fixtures.TINY_VERSION))
        yield server


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """Spoken at 16 kHz (the STT's rate: no resampling between the two paths)."""
    return speak("What is the capital of France?", tmp_path_factory.mktemp("tx"), rate=16000)


def connect(live, query: str = "", **options) -> RealtimeClient:  # type: ignore[no-untyped-def]
    return RealtimeClient(f"{live.ws_url}/v1/realtime?model=llm{query}", **options)


async def one_shot(live, audio: np.ndarray) -> str:  # type: ignore[no-untyped-def]
    result = await live.runtime.services.stt.transcribe(audio, language="en")
    return result.text.strip()




async def test_ga_transcription_session_with_server_vad_matches_one_shot_stt(
        live, question) -> None:
    async with connect(live) as client:
        session_id = (await client.next())["session"]["id"]
        await client.send("session.update", session={"type": "transcription", "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 16000},
                      "transcription": {"model": "whisper-1", "language": "en"},
                      "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}})
        updated = await client.next()
        assert updated["session"]["type"] == "transcription", updated
        spoken = np.concatenate([silence(0.5), question, silence(1.5)])
        await client.append(spoken, 16000, chunk_ms=20, pace=2.0)
        events = await client.until(TRANSCRIBED, wait_s=120)
        events += await events_within(client, 2.0)
    types = [e["type"] for e in events]
    for kind in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                 "input_audio_buffer.committed",
                 "conversation.item.input_audio_transcription.delta", TRANSCRIBED):
        assert kind in types, types
    assert not [t for t in types if t.startswith("response.")], types
    completed = next(e for e in events if e["type"] == TRANSCRIBED)
    transcript = completed["transcript"]
    assert "capital" in transcript.lower() and "france" in transcript.lower()
    assert transcript == await one_shot(live, question)
    assert await stored_turns(live, session_id) == [("user", transcript)]


async def test_beta_transcription_session_manual_commit_is_the_one_shot_transcript(
        live, question) -> None:
    pcm = float_to_pcm16(question)
    async with connect(live, "&intent=transcription", **BETA) as client:
        session_id = (await client.next())["session"]["id"]
        await client.send("transcription_session.update", session={
            "input_audio_format": "pcm16", "input_sample_rate": 16000,
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": None})
        updated = await client.next()
        assert updated["type"] == "transcription_session.updated", updated
        await client.append(question, 16000)
        await client.send("input_audio_buffer.commit")
        events = await client.until(TRANSCRIBED, wait_s=120)
        await client.send("response.create", event_id="r1")
        refused = await client.until("error")
        events += await events_within(client, 1.0)
    deltas = [e["delta"] for e in events
              if e["type"] == "conversation.item.input_audio_transcription.delta"]
    transcript = next(e for e in events if e["type"] == TRANSCRIBED)["transcript"]
    assert deltas and "".join(deltas) == transcript  # no partials here: one delta, the text
    # the committed buffer is exactly these PCM16 samples: the same transcript as one shot
    assert transcript == await one_shot(live, pcm16_to_float(pcm))
    assert refused[-1]["error"]["param"] == "type"
    assert refused[-1]["error"]["event_id"] == "r1"
    assert not [e for e in events if e["type"].startswith("response.")]
    assert await stored_turns(live, session_id) == [("user", transcript)]


async def test_idle_timeout_fires_once_after_a_reply_then_the_model_replies(live) -> None:
    async with connect(live) as client:
        session_id = (await client.next())["session"]["id"]
        await client.send("session.update", session={
            "type": "realtime", "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                   "idle_timeout_ms": 5000}}}})
        updated = await client.next()
        assert updated["session"]["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 5000
        await client.send("conversation.item.create", item={
            "type": "message", "role": "user", "content": [{"type": "input_text",
                                                            "text": "Hello"}]})
        await client.send("response.create")
        await client.until("response.done", wait_s=120)
        loop = asyncio.get_running_loop()
        replied = loop.time()
        mic = asyncio.create_task(client.append(silence(7.0, RATE), RATE, pace=1.0))
        before = await client.until("input_audio_buffer.timeout_triggered", wait_s=30)
        fired = loop.time()
        events = await client.until("response.done", wait_s=120)
        await mic
        later = await events_within(client, 7.0)
    assert 4.9 <= fired - replied <= 7.0
    assert not [e for e in before if e["type"].startswith("response.")]
    triggered = before[-1]
    assert set(triggered) == {"type", "event_id", "audio_start_ms", "audio_end_ms", "item_id"}
    assert 0 <= triggered["audio_start_ms"] <= triggered["audio_end_ms"]
    assert events[0]["type"] == "input_audio_buffer.committed"
    assert events[0]["item_id"] == triggered["item_id"]
    assert "response.created" in [e["type"] for e in events]
    assert events[-1]["response"]["status"] in ("completed", "incomplete")
    assert not [e for e in later if e["type"] == "input_audio_buffer.timeout_triggered"]
    roles = [role for role, _ in await stored_turns(live, session_id)]
    assert roles[0] == "user" and roles.count("user") == 1  # the silence is not stored


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About seven seconds of speech at 24 kHz, longer than the least idle timeout."""
    return speak("Let me tell you about my day. I woke up early, made some coffee, read the "
                 "news, and then I walked to the station to catch the morning train to work.",
                 tmp_path_factory.mktemp("tx"), rate=RATE)


async def test_idle_timeout_does_not_fire_while_the_user_keeps_talking(live,
                                                                      long_speech) -> None:
    assert len(long_speech) / RATE > 6.0
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session={
            "type": "realtime", "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                   "silence_duration_ms": 800,
                                                   "idle_timeout_ms": 5000}}}})
        await client.next()
        await client.send("conversation.item.create", item={
            "type": "message", "role": "user", "content": [{"type": "input_text",
                                                            "text": "Hello"}]})
        await client.send("response.create")
        await client.until("response.done", wait_s=120)
        # right after the reply the user talks for longer than the timeout, then stops:
        # the turn is answered, and nothing timed out meanwhile
        await client.append(np.concatenate([long_speech, silence(1.5, RATE)]), RATE,
                            chunk_ms=20, pace=1.0)
        events = await client.until("response.done", wait_s=120)
    types = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" in types
    assert TRANSCRIBED in types and "response.created" in types
    assert "input_audio_buffer.timeout_triggered" not in types


async def test_semantic_vad_transcription_session_takes_turn_after_turn(
        live, question, tmp_path) -> None:
    second = speak("Please remind me to buy coffee tomorrow morning.", tmp_path, rate=RATE)
    async with connect(live) as client:
        session_id = (await client.next())["session"]["id"]
        await client.send("session.update", session={"type": "transcription", "audio": {
            "input": {"transcription": {"language": "en"},
                      "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}})
        updated = await client.next()
        assert updated["session"]["audio"]["input"]["turn_detection"]["type"] == \
            "semantic_vad", updated
        first = np.concatenate([silence(0.3, RATE), speak_24k(question), silence(4.5, RATE)])
        await client.append(first, RATE, chunk_ms=20, pace=2.0)
        events = await client.until(TRANSCRIBED, wait_s=120)
        await client.append(np.concatenate([second, silence(4.5, RATE)]), RATE,
                            chunk_ms=20, pace=2.0)
        events += await client.until(TRANSCRIBED, wait_s=120)
        events += await events_within(client, 2.0)
    transcripts = [e["transcript"] for e in events if e["type"] == TRANSCRIBED]
    # tiny.en hears espeak's "France" as "friends" once resampled: the words it is sure of
    assert len(transcripts) == 2 and "capital" in transcripts[0].lower()
    assert "coffee" in transcripts[1].lower()
    assert not [e for e in events if e["type"].startswith("response.")]
    assert await stored_turns(live, session_id) == [("user", t) for t in transcripts]


def speak_24k(audio_16k: np.ndarray) -> np.ndarray:
    from orchestrator.realtime.audio import resample

    return resample(audio_16k, 16000, RATE)
