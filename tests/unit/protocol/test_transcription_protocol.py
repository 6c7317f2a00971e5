"""Transcription sessions and the idle timeout on ``WS /v1/realtime``, protocol only (fake
models: the event shapes, refusals and timing rules; the real models' run is in
``tests/integration/realtime/test_transcription_triton.py``). Server events are validated
against the ``openai`` SDK's own event unions."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import openai.types.beta.realtime as beta_types
import openai.types.realtime as ga_types
import pytest
from pydantic import TypeAdapter

from tests.support.fake_voice import FakeLLM, fake_services, silence, speak
from tests.support.realtime import RealtimeClient, events_within, live_server, stored_turns

pytestmark = pytest.mark.asyncio
GA_EVENTS = TypeAdapter(ga_types.RealtimeServerEvent)
BETA_EVENTS = TypeAdapter(beta_types.RealtimeServerEvent)
BETA = {"additional_headers": {"OpenAI-Beta": "realtime=v1"}}
RATE = 24000
GA_TRANSCRIPTION = {"type": "transcription", "audio": {"input": {
    "format": {"type": "audio/pcm", "rate": RATE},
    "transcription": {"model": "whisper-1", "language": "en"},
    "turn_detection": None}}}


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, realtime_turn_detection="server_vad") as server:
        yield server


def connect(live, query: str = "", **options: Any) -> RealtimeClient:  # type: ignore[no-untyped-def]
    return RealtimeClient(f"{live.ws_url}/v1/realtime?model=llm{query}", **options)


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def valid(adapter: TypeAdapter, event: dict) -> dict:
    if adapter is BETA_EVENTS and isinstance(event.get("session"), dict):
        session = {**event["session"], "model": "gpt-realtime"}
        if event["type"].startswith("transcription_session."):
            # no ephemeral client secret here (the beta type requires one)
            session["client_secret"] = {"value": "", "expires_at": 0}
        event = {**event, "session": session}
    adapter.validate_python(event)
    return event




# --- transcription sessions ---------------------------------------------------------------

async def test_ga_transcription_session_transcribes_stores_and_never_replies(live) -> None:
    llm = FakeLLM()
    live.use(fake_services(llm=llm))
    async with connect(live) as client:
        created = await client.next()
        session_id = created["session"]["id"]
        await client.send("session.update", session=GA_TRANSCRIPTION)
        updated = valid(GA_EVENTS, await client.next())
        assert updated["type"] == "session.updated"
        session = updated["session"]
        assert session["type"] == "transcription"
        assert session["audio"]["input"]["transcription"]["language"] == "en"
        assert session["audio"]["input"]["turn_detection"] is None
        assert "output_modalities" not in session and "instructions" not in session
        await client.append(tone(0.8), RATE)
        await client.send("input_audio_buffer.commit")
        events = await client.until("conversation.item.input_audio_transcription.completed")
        events += await events_within(client, 1.0)
    for event in events:
        valid(GA_EVENTS, event)
    types = [e["type"] for e in events]
    assert types[:2] == ["input_audio_buffer.committed", "conversation.item.added"]
    assert "conversation.item.input_audio_transcription.delta" in types
    assert not [t for t in types if t.startswith("response.")]
    completed = next(e for e in events
                     if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "what is the weather like"
    assert llm.requests == []
    assert await stored_turns(live, session_id) == [("user", "what is the weather like")]


async def test_beta_transcription_session_update_is_answered_in_kind(live) -> None:
    live.use(fake_services())
    async with connect(live, "&intent=transcription", **BETA) as client:
        await client.next()
        # ?intent=transcription: a transcription session from the start
        assert valid(BETA_EVENTS, await client.next())["type"] == \
            "transcription_session.updated"
        await client.send("transcription_session.update", session={
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
            "input_audio_noise_reduction": None, "include": []})
        updated = valid(BETA_EVENTS, await client.next())
        assert updated["type"] == "transcription_session.updated"
        assert updated["session"]["turn_detection"]["silence_duration_ms"] == 300
        assert updated["session"]["input_audio_transcription"]["language"] == "en"
        await client.send("input_audio_buffer.commit")  # nothing spoken yet
        assert (await client.next())["type"] == "error"
        await client.append(np.concatenate([silence(0.3, RATE), tone(0.8), silence(1.0, RATE)]),
                            RATE)
        events = await client.until("conversation.item.input_audio_transcription.completed")
        events += await events_within(client, 1.0)
    types = [e["type"] for e in events]
    assert types[:3] == ["input_audio_buffer.speech_started",
                         "input_audio_buffer.speech_stopped",
                         "input_audio_buffer.committed"]
    assert not [t for t in types if t.startswith("response.")]


async def test_intent_transcription_starts_a_ga_transcription_session(live) -> None:
    live.use(fake_services())
    async with connect(live, "&intent=transcription") as client:
        assert (await client.next())["type"] == "session.created"
        updated = valid(GA_EVENTS, await client.next())
        assert updated["type"] == "session.updated"
        assert updated["session"]["type"] == "transcription"
    async with connect(live, "&intent=translation") as client:
        error = await client.next()
        assert error["type"] == "error" and error["error"]["param"] == "intent"


async def test_response_create_is_refused_in_a_transcription_session(live) -> None:
    live.use(fake_services())
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session=GA_TRANSCRIPTION)
        await client.next()
        await client.send("response.create", event_id="r1")
        error = valid(GA_EVENTS, await client.next())
    assert error["type"] == "error"
    assert error["error"]["param"] == "type" and error["error"]["event_id"] == "r1"
    assert "response.create" in error["error"]["message"]
    assert "transcription" in error["error"]["message"]


@pytest.mark.parametrize(("beta", "event", "session", "param"), [
    (False, "session.update", {**GA_TRANSCRIPTION,
                               "include": ["item.input_audio_transcription.logprobs"]},
     "session.include"),
    (False, "session.update", {"type": "realtime",
                               "include": ["item.input_audio_transcription.logprobs"]},
     "session.include"),
    (True, "transcription_session.update",
     {"include": ["item.input_audio_transcription.logprobs"]}, "session.include"),
    (True, "transcription_session.update",
     {"input_audio_noise_reduction": {"type": "loud"}},
     "session.input_audio_noise_reduction.type"),
    (False, "session.update", {**GA_TRANSCRIPTION, "instructions": "Be brief."},
     "session.instructions"),
])
async def test_what_a_transcription_session_cannot_honour_is_refused_by_name(
        live, beta, event, session, param) -> None:
    live.use(fake_services())
    async with connect(live, **(BETA if beta else {})) as client:
        await client.next()
        await client.send(event, session=session)
        error = await client.next()
    assert error["type"] == "error" and error["error"]["param"] == param
    if "include" in param:
        assert "log-probabilities" in error["error"]["message"]


async def test_without_the_llm_the_session_is_a_transcription_session(live) -> None:
    services = fake_services()
    del services["llm"]
    live.use(services)
    async with connect(live) as client:
        created = valid(GA_EVENTS, await client.next())
        assert created["session"]["type"] == "transcription"
        await client.send("session.update", session={"type": "realtime"})
        error = await client.next()
        assert error["error"]["param"] == "session.type"
        assert "LLM" in error["error"]["message"]
        await client.send("session.update", session=GA_TRANSCRIPTION)  # manual turns
        assert (await client.next())["type"] == "session.updated"
        await client.append(tone(0.8), RATE)
        await client.send("input_audio_buffer.commit")
        events = await client.until("conversation.item.input_audio_transcription.completed")
    assert events[-1]["transcript"] == "what is the weather like"


async def test_switching_type_is_allowed_when_idle_and_refused_mid_response(live) -> None:
    live.use(fake_services(llm=FakeLLM(delay=0.3)))
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session=GA_TRANSCRIPTION)
        assert (await client.next())["session"]["type"] == "transcription"
        await client.send("session.update", session={"type": "realtime",
                                                     "output_modalities": ["text"]})
        assert (await client.next())["session"]["type"] == "realtime"
        await client.send("conversation.item.create", item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}]})
        await client.until("conversation.item.done")
        await client.send("response.create")
        await client.send("session.update", session=GA_TRANSCRIPTION, event_id="u1")
        events = await client.until("error")
        error = events[-1]["error"]
        assert error["param"] == "session.type" and error["event_id"] == "u1"
        events = await client.until("response.done")
        assert events[-1]["response"]["status"] == "completed"  # the reply went on
        await client.send("session.update", session=GA_TRANSCRIPTION)
        assert (await client.until("session.updated"))[-1]["session"]["type"] == \
            "transcription"


# --- idle timeout --------------------------------------------------------------------------

@pytest.mark.parametrize(("turn_detection", "message"), [
    ({"type": "server_vad", "idle_timeout_ms": 4999}, "5000 to 30000"),
    ({"type": "server_vad", "idle_timeout_ms": 30001}, "5000 to 30000"),
    ({"type": "server_vad", "idle_timeout_ms": "6000"}, "5000 to 30000"),
    ({"type": "semantic_vad", "idle_timeout_ms": 6000}, "server_vad only"),
])
async def test_idle_timeout_out_of_range_is_refused_by_name(live, turn_detection,
                                                            message) -> None:
    live.use(fake_services())
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session={
            "type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}})
        error = await client.next()
    assert error["type"] == "error"
    assert error["error"]["param"] == "session.audio.input.turn_detection.idle_timeout_ms"
    assert message in error["error"]["message"]


async def test_idle_timeout_is_refused_in_a_transcription_session(live) -> None:
    live.use(fake_services())
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session={**GA_TRANSCRIPTION, "audio": {"input": {
            "turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}}}})
        error = await client.next()
    assert error["error"]["param"] == "session.audio.input.turn_detection.idle_timeout_ms"


async def text_reply(client: RealtimeClient, text: str = "Hi") -> list[dict]:
    await client.send("conversation.item.create", item={
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    await client.send("response.create", response={"output_modalities": ["text"]})
    return await client.until("response.done")


IDLE = {"type": "realtime", "audio": {"input": {"turn_detection": {
    "type": "server_vad", "idle_timeout_ms": 5000}}}}  # the least OpenAI allows


async def test_idle_timeout_fires_once_after_a_reply_and_a_response_follows(live) -> None:
    llm = FakeLLM()
    live.use(fake_services(llm=llm))
    async with connect(live) as client:
        created = await client.next()
        await client.send("session.update", session=IDLE)
        updated = valid(GA_EVENTS, await client.next())
        td = updated["session"]["audio"]["input"]["turn_detection"]
        assert td["idle_timeout_ms"] == 5000
        await text_reply(client)
        loop = asyncio.get_running_loop()
        replied = loop.time()
        # a silent microphone: 6.5 s of silence at real time
        mic = asyncio.create_task(client.append(silence(6.5, RATE), RATE, pace=1.0))
        before = await client.until("input_audio_buffer.timeout_triggered", wait_s=10)
        fired = loop.time()
        events = await client.until("response.done", wait_s=10)
        await mic
        later = await events_within(client, 6.0)  # the reply it made does not start it again
    assert 4.9 <= fired - replied <= 6.5
    assert not [e for e in before if e["type"] == "response.created"]
    triggered = valid(GA_EVENTS, before[-1])
    assert set(triggered) == {"type", "event_id", "audio_start_ms", "audio_end_ms", "item_id"}
    assert 0 <= triggered["audio_start_ms"] <= triggered["audio_end_ms"]
    assert 3500 <= triggered["audio_end_ms"] - triggered["audio_start_ms"] <= 6500
    types = [e["type"] for e in events]
    assert types[0] == "input_audio_buffer.committed"
    assert events[0]["item_id"] == triggered["item_id"]
    assert "response.created" in types and events[-1]["response"]["status"] == "completed"
    assert len(llm.requests) == 2  # the user's turn, then the nudge
    assert not [e for e in later if e["type"] == "input_audio_buffer.timeout_triggered"]
    # nothing was said: no user turn stored for the silence
    roles = [role for role, _ in await stored_turns(live, created["session"]["id"])]
    assert roles == ["user", "assistant", "assistant"]


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About seven seconds of speech (espeak), longer than the least idle timeout."""
    return speak("Let me tell you about my day. I woke up early, made some coffee, read the "
                 "news, and then I walked to the station to catch the morning train to work.",
                 tmp_path_factory.mktemp("idle"), rate=RATE)


async def test_idle_timeout_does_not_fire_while_the_user_keeps_talking(live,
                                                                      long_speech) -> None:
    assert len(long_speech) / RATE > 6.0
    live.use(fake_services())
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session={"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000,
                               "create_response": False}}}})
        await client.next()
        await text_reply(client)
        # speech longer than the timeout, at real time, right after the reply
        await client.append(long_speech, RATE, pace=1.0)
        events = await events_within(client, 0.5)
    assert not [e for e in client.seen if e["type"] == "input_audio_buffer.timeout_triggered"]
    assert "input_audio_buffer.speech_started" in [e["type"] for e in events + client.seen]


async def test_a_client_event_that_starts_a_response_resets_the_idle_clock(live) -> None:
    live.use(fake_services())
    async with connect(live) as client:
        await client.next()
        await client.send("session.update", session=IDLE)
        await client.next()
        await text_reply(client)
        await asyncio.sleep(3.0)
        await text_reply(client, "Again")  # its reply starts the clock anew
        await asyncio.sleep(3.5)  # 6.5 s after the first reply, 3.5 s after the second
        assert not [e for e in client.seen
                    if e["type"] == "input_audio_buffer.timeout_triggered"]
        events = await client.until("input_audio_buffer.timeout_triggered", wait_s=5)
    assert events[-1]["type"] == "input_audio_buffer.timeout_triggered"
