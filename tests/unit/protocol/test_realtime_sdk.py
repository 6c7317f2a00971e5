"""``WS /v1/realtime`` driven by the official ``openai`` SDK, unchanged but for the base
URL and key: the GA client (``client.realtime.connect``) and the beta one
(``client.beta.realtime.connect``), over a real uvicorn socket with fake models.

Every server event is validated against the SDK's own pydantic event union of that
protocol, and the lifecycle order is checked against OpenAI's reference order."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import openai.types.beta.realtime as beta_types
import openai.types.realtime as ga_types
import pytest
import websockets
from openai import AsyncOpenAI
from pydantic import TypeAdapter

from orchestrator.realtime.audio import float_to_pcm16, resample
from orchestrator.realtime.protocol import g711
from tests.support.fake_voice import FakeLLM, FakeMemory, FakeToolLLM, FakeTTS, fake_services
from tests.support.realtime import live_server, types_of

pytestmark = pytest.mark.asyncio
GA_EVENTS = TypeAdapter(ga_types.RealtimeServerEvent)
BETA_EVENTS = TypeAdapter(beta_types.RealtimeServerEvent)
REPLY = "Hello there. It is sunny. Bye!"
MANUAL = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}

# OpenAI's reference order of one reply (deltas collapsed to one entry per run).
GA_TEXT_REPLY = ["response.created", "response.output_item.added", "conversation.item.added",
                 "response.content_part.added", "response.output_text.delta",
                 "response.output_text.done", "response.content_part.done",
                 "response.output_item.done", "conversation.item.done", "response.done",
                 "rate_limits.updated"]
BETA_TEXT_REPLY = ["response.created", "response.output_item.added",
                   "conversation.item.created", "response.content_part.added",
                   "response.text.delta", "response.text.done", "response.content_part.done",
                   "response.output_item.done", "response.done", "rate_limits.updated"]


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, memory_enabled=True,
                           realtime_turn_detection="server_vad") as server:
        yield server


def sdk(live) -> AsyncOpenAI:  # type: ignore[no-untyped-def]
    return AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key="sk-local",
                       websocket_base_url=f"{live.ws_url}/v1")


def validate(adapter: TypeAdapter, event: dict) -> None:
    if adapter is BETA_EVENTS and isinstance(event.get("session"), dict):
        # the beta types list OpenAI's own model names only (GA takes any string, and the
        # SDK itself does not validate): check the rest of the session
        event = {**event, "session": {**event["session"], "model": "gpt-realtime"}}
    adapter.validate_python(event)


async def events_until(conn, last: str, adapter: TypeAdapter, wait_s: float = 20) -> list[dict]:  # type: ignore[no-untyped-def]
    """Raw server events up to ``last``, each one valid for the SDK's event union."""
    out = []
    while True:
        event = json.loads(await asyncio.wait_for(conn.recv_bytes(), wait_s))
        validate(adapter, event)
        out.append(event)
        if event["type"] == last:
            return out


def deltas(events: list[dict], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


async def stored(live, session_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    return [(t.role, t.text) for t in turns]


# --- GA ---------------------------------------------------------------------------------

async def test_ga_text_turn_follows_openai_order_and_is_stored(live) -> None:
    llm = FakeLLM()
    live.use(fake_services(llm=llm, memory=FakeMemory()))
    async with sdk(live).realtime.connect(model="llm") as conn:
        (created,) = await events_until(conn, "session.created", GA_EVENTS)
        session = created["session"]
        assert session["type"] == "realtime" and session["model"] == "llm"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert session["output_modalities"] == ["audio"]

        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Is it sunny?"}]})
        added, _ = await events_until(conn, "conversation.item.done", GA_EVENTS)
        assert added["type"] == "conversation.item.added"
        assert added["item"]["content"] == [{"type": "input_text", "text": "Is it sunny?"}]
        user_item = added["item"]["id"]

        await conn.response.create(response={"output_modalities": ["text"],
                                              "metadata": {"turn": "1"}})
        reply = await events_until(conn, "rate_limits.updated", GA_EVENTS)

    assert types_of(reply) == GA_TEXT_REPLY
    assert deltas(reply, "response.output_text.delta") == REPLY
    by_type = {e["type"]: e for e in reply}
    assert by_type["response.output_text.done"]["text"] == REPLY
    assert by_type["conversation.item.added"]["previous_item_id"] == user_item
    response = by_type["response.done"]["response"]
    assert response["status"] == "completed" and response["metadata"] == {"turn": "1"}
    assert response["output_modalities"] == ["text"]
    assert response["output"][0]["content"] == [{"type": "output_text", "text": REPLY}]
    assert response["usage"]["input_tokens"] == 11 and response["usage"]["output_tokens"] == 9
    # the user's text reached the LLM as the last message; both turns are stored
    assert llm.requests[-1][-1].content.endswith("Is it sunny?")
    assert await stored(live, session["id"]) == [("user", "Is it sunny?"),
                                                 ("assistant", REPLY)]



@pytest.mark.parametrize(("llm", "reason", "detail"), [
    (FakeLLM(finish="length"), "max_output_tokens", None),
    (FakeLLM(["Yes"] + [" they", " fit", " in", " a", " city", " block", ","] * 30),
     "content_filter", "repetition")])
async def test_an_unfinished_reply_is_incomplete_with_openais_reasons(live, llm, reason,
                                                                      detail) -> None:
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        (created,) = await events_until(conn, "session.created", GA_EVENTS)
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Tell me more."}]})
        await conn.response.create(response={"output_modalities": ["text"]})
        reply = await events_until(conn, "response.done", GA_EVENTS)  # valid for the SDK
        response = reply[-1]["response"]
        # Read back from storage, the item is still unfinished.
        await conn.conversation.item.retrieve(item_id=response["output"][0]["id"])
        retrieved = (await events_until(conn, "conversation.item.retrieved", GA_EVENTS))[-1]
    assert response["status"] == "incomplete"
    assert response["status_details"]["reason"] == reason
    assert response["status_details"].get("detail") == detail
    assert response["output"][0]["status"] == "incomplete"
    assert retrieved["item"]["status"] == "incomplete"
    turns, _ = await live.runtime.conversations.list_turns(created["session"]["id"])
    assert [(t.role, t.incomplete_reason) for t in turns] == [
        ("user", None), ("assistant", detail or reason)]


async def test_ga_spoken_turn_sends_transcript_and_audio_not_text(live) -> None:
    live.use(fake_services())
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session=MANUAL)
        (updated,) = await events_until(conn, "session.updated", GA_EVENTS)
        assert updated["session"]["audio"]["input"]["turn_detection"] is None
        pcm = float_to_pcm16(tone(0.8, 24000))
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        await conn.input_audio_buffer.commit()
        turn = await events_until(conn, "conversation.item.done", GA_EVENTS)
        await conn.response.create()
        reply = await events_until(conn, "rate_limits.updated", GA_EVENTS)

    assert types_of(turn) == ["input_audio_buffer.committed", "conversation.item.added",
                              "conversation.item.input_audio_transcription.delta",
                              "conversation.item.input_audio_transcription.completed",
                              "conversation.item.done"]
    completed = turn[-2]
    assert completed["transcript"] == "what is the weather like"
    assert completed["usage"]["type"] == "duration"
    assert completed["usage"]["seconds"] == pytest.approx(0.8, abs=0.03)  # resampler delay
    assert turn[-1]["item"]["content"][0]["transcript"] == "what is the weather like"
    kinds = set(types_of(reply))
    assert "response.output_text.delta" not in kinds  # the transcript says it, once
    assert {"response.output_audio.delta", "response.output_audio_transcript.delta",
            "response.output_audio.done", "response.output_audio_transcript.done"} <= kinds
    transcript = deltas(reply, "response.output_audio_transcript.delta")
    done = next(e for e in reply if e["type"] == "response.output_audio_transcript.done")
    assert transcript == done["transcript"] == REPLY
    audio = b"".join(base64.b64decode(e["delta"]) for e in reply
                     if e["type"] == "response.output_audio.delta")
    # FakeTTS: 20 ms of tone per character, resampled to the session's 24 kHz PCM16
    spoken_ms = len(audio) / 2 / 24
    assert abs(spoken_ms - 20 * len(REPLY.replace(" ", ""))) < 20 * 8
    item = reply[-2]["response"]["output"][0]
    assert item["content"] == [{"type": "output_audio", "transcript": REPLY}]


async def test_ga_barge_in_and_audio_clear_cancel_the_reply(live) -> None:
    live.use(fake_services(llm=FakeLLM(delay=0.05), tts=FakeTTS(delay=0.05)))
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Talk to me."}]})
        await events_until(conn, "conversation.item.done", GA_EVENTS)
        await conn.response.create()
        await events_until(conn, "response.output_audio.delta", GA_EVENTS)
        await conn.output_audio_buffer.clear()
        rest = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    cleared = next(e for e in rest if e["type"] == "output_audio_buffer.cleared")
    response = rest[-2]["response"]
    assert cleared["response_id"] == response["id"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"][0]["status"] == "incomplete"


# --- beta -------------------------------------------------------------------------------

async def test_beta_client_gets_beta_names_and_shapes(live) -> None:
    live.use(fake_services())
    async with sdk(live).beta.realtime.connect(model="llm") as conn:
        (created,) = await events_until(conn, "session.created", BETA_EVENTS)
        session = created["session"]
        assert session["modalities"] == ["text", "audio"]
        assert session["input_audio_format"] == "pcm16"
        assert session["turn_detection"]["type"] == "server_vad"
        await conn.session.update(session={"turn_detection": None,
                                           "max_response_output_tokens": "inf"})
        (updated,) = await events_until(conn, "session.updated", BETA_EVENTS)
        assert updated["session"]["max_response_output_tokens"] == 4096

        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}]})
        (item,) = await events_until(conn, "conversation.item.created", BETA_EVENTS)
        await conn.response.create(response={"modalities": ["text"]})
        text_reply = await events_until(conn, "rate_limits.updated", BETA_EVENTS)

        pcm = float_to_pcm16(tone(0.5, 24000))
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        await conn.input_audio_buffer.commit()
        await events_until(conn, "conversation.item.input_audio_transcription.completed",
                           BETA_EVENTS)
        await conn.response.create()
        spoken = await events_until(conn, "rate_limits.updated", BETA_EVENTS)

    assert item["item"]["content"] == [{"type": "input_text", "text": "Hi"}]
    assert types_of(text_reply) == BETA_TEXT_REPLY
    assert deltas(text_reply, "response.text.delta") == REPLY
    kinds = set(types_of(spoken))
    assert {"response.audio.delta", "response.audio_transcript.delta",
            "response.audio.done", "response.audio_transcript.done"} <= kinds
    assert "response.text.delta" not in kinds
    assert spoken[-2]["response"]["output"][0]["content"] == [
        {"type": "audio", "transcript": REPLY}]
    assert spoken[-2]["response"]["modalities"] == ["text", "audio"]


# --- items ------------------------------------------------------------------------------

async def test_items_are_retrieved_and_deleted_from_storage_and_memory(live) -> None:
    memory = FakeMemory()
    live.use(fake_services(memory=memory))
    async with sdk(live).realtime.connect(model="llm") as conn:
        (created,) = await events_until(conn, "session.created", GA_EVENTS)
        session_id = created["session"]["id"]
        for text in ("first", "second"):
            await conn.conversation.item.create(item={
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]})
            added, _ = await events_until(conn, "conversation.item.done", GA_EVENTS)
        second = added["item"]["id"]
        assert added["previous_item_id"] is not None
        await conn.conversation.item.retrieve(item_id=second)
        (retrieved,) = await events_until(conn, "conversation.item.retrieved", GA_EVENTS)
        assert retrieved["item"]["content"] == [{"type": "input_text", "text": "second"}]
        await conn.conversation.item.delete(item_id=second)
        (deleted,) = await events_until(conn, "conversation.item.deleted", GA_EVENTS)
        assert deleted["item_id"] == second
        await conn.conversation.item.retrieve(item_id=second, event_id="evt_again")
        (error,) = await events_until(conn, "error", GA_EVENTS)
    assert error["error"]["param"] == "item_id" and error["error"]["event_id"] == "evt_again"
    assert await stored(live, session_id) == [("user", "first")]
    for _ in range(50):
        if memory.forgotten:
            break
        await asyncio.sleep(0.02)
    assert len(memory.forgotten) == 1


# --- refusals: every field honoured or named ----------------------------------------------

@pytest.mark.parametrize(("event", "param"), [
    ({"type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "function", "name": "f", "parameters": {}}]}}, "session.tools"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "noise_reduction": {"type": "loud"}}}}}, "session.audio.input.noise_reduction.type"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 44100}}}}}, "session.audio.input.format.rate"),
    ({"type": "session.update", "session": {"type": "translation"}}, "session.type"),
    ({"type": "session.update", "session": {"type": "realtime", "frobnicate": 1}},
     "session.frobnicate"),
    ({"type": "session.update", "session": {"type": "realtime", "model": "gpt-4o"}},
     "session.model"),
    ({"type": "response.create", "response": {"conversation": "none"}},
     "response.conversation"),
    ({"type": "response.create", "response": {"tool_choice": "required"}},
     "response.tool_choice"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "system",
                                                   "content": [{"type": "input_text",
                                                                "text": "x"}]}},
     "item.role"),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                   "content": [{"type": "input_audio",
                                                                "audio": "AAAA"}]}},
     "item.content[0].type"),
    ({"type": "conversation.item.create", "item": {"type": "function_call_output",
                                                   "call_id": "c", "output": "{}"}},
     "item.call_id"),
    ({"type": "conversation.item.create", "item": {"type": "item_reference", "id": "x"}},
     "item.type"),
    ({"type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "mcp", "server_label": "x"}]}}, "session.tools[0].server_url"),
    ({"type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "mcp", "server_label": "x", "connector_id": "connector_gmail"}]}},
     "session.tools[0].connector_id"),
    ({"type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "mcp", "server_label": "x", "server_url": "ftp://x"}]}},
     "session.tools[0].server_url"),
    ({"type": "session.update", "session": {"type": "realtime", "tools": [
        {"type": "mcp", "server_label": "x", "server_url": "http://x",
         "require_approval": "sometimes"}]}}, "session.tools[0].require_approval"),
    ({"type": "response.create", "response": {"tools": [
        {"type": "mcp", "server_label": "x", "server_url": "http://x"}]}},
     "response.tools[0].type"),
    ({"type": "session.update", "session": {"type": "realtime", "tool_choice": "sometimes"}},
     "session.tool_choice"),
    ({"type": "session.update", "session": {"type": "realtime", "tool_choice": {
        "type": "function", "name": "get_weather"}}}, "session.tool_choice"),
])
async def test_unsupported_fields_are_refused_by_name(live, event, param) -> None:
    live.use(fake_services())
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({**event, "event_id": "evt_1"}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        GA_EVENTS.validate_python(error)
        assert error["type"] == "error", error
        assert error["error"]["param"] == param, error
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["event_id"] == "evt_1"
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "ok"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.updated"


@pytest.mark.parametrize(("model", "version"), [("llm", ""), ("llm:3", "3"),
                                                ("gpt-realtime", "")])
async def test_the_model_query_pins_the_llm(live, model, version) -> None:
    llm = FakeLLM()
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model=model) as conn:
        (created,) = await events_until(conn, "session.created", GA_EVENTS)
        assert created["session"]["model"] == model
        await conn.conversation.item.create(item={
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]})
        await conn.response.create()
        await events_until(conn, "response.done", GA_EVENTS)
    assert llm.params[-1].version == version


async def test_another_model_or_session_is_refused_with_a_close_code(live) -> None:
    live.use(fake_services())
    for query, code, error_code in (("model=stt", 4404, "not_found"),
                                    ("model=llm&session_id=nope", 4404, "not_found"),
                                    ("model=llm:0", 4400, "invalid_request")):
        async with websockets.connect(f"{live.ws_url}/v1/realtime?{query}") as ws:
            error = json.loads(await ws.recv())
            assert error["error"]["code"] == error_code, (query, error)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == code


async def test_session_id_continues_a_stored_session(live) -> None:
    llm = FakeLLM()
    live.use(fake_services(llm=llm))
    session_id = await live.new_session("alice")
    client = sdk(live)
    for text in ("my name is Ada", "what is my name"):
        async with client.realtime.connect(model="llm",
                                           extra_query={"session_id": session_id}) as conn:
            (created,) = await events_until(conn, "session.created", GA_EVENTS)
            assert created["session"]["id"] == session_id
            await conn.conversation.item.create(item={
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]})
            await conn.response.create()
            await events_until(conn, "response.done", GA_EVENTS)
    contents = [m.content for m in llm.requests[-1]]
    assert any("my name is Ada" in c for c in contents)  # the first connection's turn
    record = await live.runtime.conversations.get_session(session_id)
    assert record.user_id == "alice"


# --- telephony --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "law"), [("audio/pcmu", "ulaw"), ("audio/pcma", "alaw")])
async def test_g711_audio_in_and_out(live, name, law) -> None:
    live.use(fake_services())
    heard: list[int] = []
    stt = live.runtime.services.stt
    original = stt.transcribe

    async def transcribe(audio, **kwargs: Any):  # type: ignore[no-untyped-def]
        heard.append(len(audio))
        return await original(audio, **kwargs)

    stt.transcribe = transcribe
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={"type": "realtime", "audio": {
            "input": {"format": {"type": name}, "turn_detection": None},
            "output": {"format": {"type": name}}}})
        (updated,) = await events_until(conn, "session.updated", GA_EVENTS)
        assert updated["session"]["audio"]["output"]["format"] == {"type": name}
        speech = g711.encode(tone(1.0, 8000), law)
        await conn.input_audio_buffer.append(audio=base64.b64encode(speech).decode())
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        reply = await events_until(conn, "rate_limits.updated", GA_EVENTS)
    assert heard == [16000]  # one second of 8 kHz G.711, resampled for speech-to-text
    audio = b"".join(base64.b64decode(e["delta"]) for e in reply
                     if e["type"] == "response.output_audio.delta")
    samples = g711.decode(audio, law)
    spoken_ms = len(samples) / 8  # one byte per sample at 8 kHz
    assert abs(spoken_ms - 20 * len(REPLY.replace(" ", ""))) < 20 * 8
    # it is the TTS tone (220 Hz), not noise: compare with the reference resampled to 8 kHz
    reference = resample((0.3 * np.sin(2 * np.pi * 220 * np.arange(4410) / 22050))
                         .astype(np.float32), 22050, 8000)
    assert abs(float(np.abs(samples[200:1400]).mean())
               - float(np.abs(reference[200:1400]).mean())) < 0.02


# --- hostile frames in OpenAI's shapes ------------------------------------------------------

def ga_hostile_frames(seed: int, count: int) -> list[str]:
    """GA-shaped events with hostile values where the translator looks inside them."""
    import random

    from tests.unit.protocol.test_realtime_ws import VALUES

    rng = random.Random(seed)

    def value() -> Any:
        return rng.choice([*VALUES, {"type": {}}, {"type": "audio/pcm", "rate": []},
                           [{}], [["audio"]], {"id": {}}, {"type": "function"}])

    shapes = [
        lambda: {"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {rng.choice(["format", "turn_detection", "transcription",
                                  "noise_reduction"]): value()},
            "output": {rng.choice(["format", "voice", "speed"]): value()}}}},
        lambda: {"type": "session.update", "session": {
            rng.choice(["output_modalities", "max_output_tokens", "instructions", "tools",
                        "tool_choice", "include", "truncation", "model", "type"]): value()}},
        lambda: {"type": "session.update", "session": value()},
        lambda: {"type": "response.create", "response": {
            rng.choice(["output_modalities", "audio", "metadata", "conversation", "input",
                        "max_output_tokens", "instructions"]): value()}},
        lambda: {"type": "conversation.item.create", "item": {
            "type": rng.choice(["message", value()]), "role": value(), "content": value()}},
        lambda: {"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [value(), value()]}},
        lambda: {"type": "conversation.item.create", "item": value()},
        lambda: {"type": rng.choice(["conversation.item.delete", "conversation.item.retrieve",
                                     "output_audio_buffer.clear"]), "item_id": value()},
    ]
    return [json.dumps({**rng.choice(shapes)(), "event_id": value()}) for _ in range(count)]


@pytest.mark.parametrize("headers", [{}, {"OpenAI-Beta": "realtime=v1"}],
                         ids=["ga", "beta"])
async def test_hostile_openai_frames_get_error_events_never_a_server_error(live, caplog,
                                                                          headers) -> None:
    from tests.unit.protocol.test_realtime_ws import hostile_frames

    live.use(fake_services())
    frames = ga_hostile_frames(seed=20261202, count=300) + \
        [f for f in hostile_frames(seed=7, count=150) if isinstance(f, str)]
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm", max_size=None,
                                  additional_headers=headers) as ws:
        json.loads(await ws.recv())
        for frame in frames:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "session.update",
                                  "session": {"instructions": "still here"}}))
        seen = []
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 60))
            seen.append(event)
            if event["type"] == "session.updated" and \
                    event["session"]["instructions"] == "still here":
                break
    errors = [e for e in seen if e["type"] == "error"]
    assert len(errors) > 250
    assert {e["error"]["type"] for e in errors} <= {"invalid_request_error"}, \
        [e for e in errors if e["error"]["type"] != "invalid_request_error"][:3]
    assert "realtime event failed" not in caplog.text


@pytest.mark.parametrize(("item", "previous", "param", "code"), [
    ({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "  "}]},
     None, "item.content", "invalid_request"),
    ({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
     "item_not_last", "previous_item_id", "invalid_request"),
    ({"id": "item_dup", "type": "message", "role": "user",
      "content": [{"type": "input_text", "text": "hi"}]}, None, "item.id", "conflict"),
])
async def test_item_create_refusals_store_nothing(live, item, previous, param, code) -> None:
    live.use(fake_services())
    async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm") as ws:
        session_id = json.loads(await ws.recv())["session"]["id"]
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "id": "item_dup", "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "first"}]}}))
        assert [json.loads(await ws.recv())["type"] for _ in range(2)] == [
            "conversation.item.added", "conversation.item.done"]
        await ws.send(json.dumps({"type": "conversation.item.create", "item": item,
                                  "previous_item_id": previous}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert error["type"] == "error", error
    assert (error["error"]["param"], error["error"]["code"]) == (param, code)
    assert await stored(live, session_id) == [("user", "first")]


async def test_a_user_key_cannot_name_another_user_or_their_session(tmp_path) -> None:
    async with live_server(tmp_path, auth_mode="required") as live:
        live.use(fake_services())
        key = (await live.runtime.keys.create("alice")).secret
        bobs = await live.new_session("bob")
        auth = {"Authorization": f"Bearer {key}"}
        for query, code in (("user_id=bob", 4403), (f"session_id={bobs}", 4404)):
            async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm&{query}",
                                          additional_headers=auth) as ws:
                error = json.loads(await ws.recv())
                assert error["type"] == "error", error
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd.code == code
        async with websockets.connect(f"{live.ws_url}/v1/realtime?model=llm",
                                      additional_headers=auth) as ws:
            session_id = json.loads(await ws.recv())["session"]["id"]
        assert (await live.runtime.conversations.get_session(session_id)).user_id == "alice"


# --- function calling -------------------------------------------------------------------

WEATHER_TOOL = {"type": "function", "name": "get_weather",
                "description": "The weather in a city now.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}
CALL_REPLY = ["Let me check.", " <tool", "_call>\n{\"name\": \"get_weather\", ",
              "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"]
ANSWER = ["It is 18 degrees", " in Paris."]
GA_CALL_REPLY = [
    "response.created", "response.output_item.added", "conversation.item.added",
    "response.content_part.added", "response.output_text.delta",
    "response.output_item.added", "conversation.item.added",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.output_item.done", "conversation.item.done",
    "response.output_text.done", "response.content_part.done", "response.output_item.done",
    "conversation.item.done", "response.done", "rate_limits.updated"]


async def ask(conn, text: str, adapter: TypeAdapter, added: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """A user text item, then a reply: its events up to rate_limits.updated."""
    await conn.conversation.item.create(item={
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    await events_until(conn, added, adapter)
    await conn.response.create()
    return await events_until(conn, "rate_limits.updated", adapter)


async def test_ga_function_call_round_trip(live) -> None:
    """Words, then a call: the call comes as a function_call item; its output, added as a
    function_call_output item, reaches the next reply's prompt; all four turns stored."""
    llm = FakeToolLLM([CALL_REPLY, ANSWER])
    live.use(fake_services(llm=llm))
    async with sdk(live).realtime.connect(model="llm") as conn:
        (created,) = await events_until(conn, "session.created", GA_EVENTS)
        assert created["session"]["tools"] == [] and created["session"]["tool_choice"] == "auto"
        await conn.session.update(session={**MANUAL, "output_modalities": ["text"],
                                           "tools": [WEATHER_TOOL]})
        (updated,) = await events_until(conn, "session.updated", GA_EVENTS)
        assert updated["session"]["tools"] == [WEATHER_TOOL]
        reply = await ask(conn, "Weather in Paris?", GA_EVENTS, "conversation.item.done")

        assert types_of(reply) == GA_CALL_REPLY
        assert deltas(reply, "response.output_text.delta") == "Let me check. "
        (done_args,) = [e for e in reply if e["type"] == "response.function_call_arguments.done"]
        assert done_args["name"] == "get_weather"
        assert json.loads(done_args["arguments"]) == {"city": "Paris"}
        assert done_args["output_index"] == 1
        call_id = done_args["call_id"]
        output = {e["type"]: e for e in reply}["response.done"]["response"]["output"]
        assert [o["type"] for o in output] == ["message", "function_call"]
        assert output[1] == {"id": done_args["item_id"], "object": "realtime.item",
                             "type": "function_call", "status": "completed",
                             "call_id": call_id, "name": "get_weather",
                             "arguments": done_args["arguments"]}
        assert "get_weather" in llm.prompts[0] and "Weather in Paris?" in llm.prompts[0]

        await conn.conversation.item.create(item={
            "type": "function_call_output", "call_id": call_id, "output": '{"temp_c": 18}'})
        added, _ = await events_until(conn, "conversation.item.done", GA_EVENTS)
        assert added["item"]["type"] == "function_call_output"
        assert added["item"]["call_id"] == call_id
        assert added["previous_item_id"] == done_args["item_id"]
        await conn.response.create()
        answer = await events_until(conn, "rate_limits.updated", GA_EVENTS)

    assert deltas(answer, "response.output_text.delta") == "It is 18 degrees in Paris."
    second = llm.prompts[1]
    assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' \
        in second
    assert f'[tool] {{"temp_c": 18}} (for {call_id})' in second
    assert second.rstrip().endswith("[assistant]")  # no empty user message after the result
    turns, _ = await live.runtime.conversations.list_turns(created["session"]["id"])
    assert [(t.role, t.text, t.tool_call_id) for t in turns] == [
        ("user", "Weather in Paris?", None), ("assistant", "Let me check.", None),
        ("tool", '{"temp_c": 18}', call_id), ("assistant", "It is 18 degrees in Paris.", None)]
    assert turns[1].tool_calls == [{"call_id": call_id, "name": "get_weather",
                                    "arguments": done_args["arguments"],
                                    "item_id": done_args["item_id"]}]


async def test_beta_forced_call_and_retrieve(live) -> None:
    """tool_choice required starts the reply inside a call (the model writes the rest); the
    beta client gets beta names; the call item can be retrieved and deleted."""
    llm = FakeToolLLM([['get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>']])
    live.use(fake_services(llm=llm))
    async with sdk(live).beta.realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", BETA_EVENTS)
        await conn.session.update(session={"modalities": ["text"], "turn_detection": None,
                                           "tools": [WEATHER_TOOL], "tool_choice": "required"})
        await events_until(conn, "session.updated", BETA_EVENTS)
        reply = await ask(conn, "And Oslo?", BETA_EVENTS, "conversation.item.created")
        assert types_of(reply) == [
            "response.created", "response.output_item.added", "conversation.item.created",
            "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done", "response.done", "rate_limits.updated"]
        assert llm.prompts[0].endswith('[assistant]<tool_call>\n{"name": "')
        (call,) = {e["type"]: e for e in reply}["response.done"]["response"]["output"]
        assert json.loads(call["arguments"]) == {"city": "Oslo"}
        await conn.send({"type": "conversation.item.retrieve", "item_id": call["id"]})
        (retrieved,) = await events_until(conn, "conversation.item.retrieved", BETA_EVENTS)
        assert retrieved["item"] == call
        await conn.send({"type": "conversation.item.delete", "item_id": call["id"]})
        await events_until(conn, "conversation.item.deleted", BETA_EVENTS)
        await conn.send({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}})
        (added,) = await events_until(conn, "conversation.item.created", BETA_EVENTS)
        # the call's turn is gone, but the call was made in this connection
        assert added["item"]["output"] == "sunny"


async def test_tools_the_served_model_cannot_call_are_refused(live) -> None:
    live.use(fake_services())  # a FakeLLM: its template has no tools
    async with sdk(live).realtime.connect(model="llm") as conn:
        await events_until(conn, "session.created", GA_EVENTS)
        await conn.session.update(session={"type": "realtime", "tools": [WEATHER_TOOL]})
        (error,) = await events_until(conn, "error", GA_EVENTS)
        assert error["error"]["param"] == "session.tools"
        assert "no tool calling" in error["error"]["message"]
