"""The realtime pipeline on the real Triton server with real weights (Whisper tiny.en STT,
SmolLM2-135M-Instruct LLM, the Piper en_US-joe-medium voice), driven like a person
talking: spoken question -> transcript, reply text and audio, stored turns; barge-in;
disconnect mid-reply."""

from __future__ import annotations

import asyncio
import wave

import httpx
import numpy as np
import pytest

from bench.chromium import CHROMIUM, chromium_page
from orchestrator.realtime.audio import float_to_pcm16, resample
from orchestrator.speech.audio_format import MODEL_RATE
from tests.support import llm_fixtures
from tests.support.fake_voice import silence, speak
from tests.support.realtime import live_server
from tests.support.webrtc import RATE as CALL_RATE
from tests.support.webrtc import Caller, loud_seconds

pytestmark = [pytest.mark.asyncio, pytest.mark.triton, pytest.mark.realweights,
              pytest.mark.slow]
RATE = 24000




@pytest.fixture
async def live(triton_server, tiny_en_stt, smollm2, served_joe_voice, tmp_path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, triton_url=triton_server.grpc_url,
                           model_repository=str(triton_server.repository),
                           memory_enabled=False, default_voice="en_US-joe-medium",
                           llm_temperature=0.0) as server:  # greedy: the same reply each run
        assert {"stt", "llm", "tts"} <= set(server.runtime.services.available())
        # Other versions (tiny random models) are served beside the real ones: pin these.
        server.runtime.triton.default_versions.update(
            stt=str(tiny_en_stt), llm=str(llm_fixtures.REAL_VERSION),
            tts=str(served_joe_voice))
        yield server


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    return speak("What is the capital of France?", tmp_path_factory.mktemp("rw"), rate=RATE)


@pytest.fixture(scope="module")
def long_request(tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A request whose reply takes many seconds to generate, so that speaking again lands
    while the reply is still being produced (a short reply may be complete by then)."""
    return speak("Please tell me a long story about a brave knight and a dragon.",
                 tmp_path_factory.mktemp("rw"), rate=RATE)


async def talk(client, audio: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """At real-time pace, like a microphone."""
    await client.append(audio, RATE, chunk_ms=20, pace=1.0)


async def keep_quiet(client, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        await client.append(silence(0.1, RATE), RATE, chunk_ms=20, pace=1.0)


async def start_session(live, **session):  # type: ignore[no-untyped-def]
    session_id = await live.new_session("rw-user", language="en")
    client = live.connect("rw-user", session_id)
    await client.__aenter__()
    assert (await client.next())["type"] == "session.created"
    await client.send("session.update", session={"input_sample_rate": RATE,
                                                  "output_sample_rate": RATE, **session})
    await client.until("session.updated")
    return session_id, client


async def test_spoken_question_gets_transcript_text_audio_and_stored_turns(live,
                                                                           question) -> None:
    # Greedy decoding: at the default 0.7 SmolLM2 sometimes rambles into a loop that is
    # stopped ("incomplete", reason "repetition"), one run in four here.
    session_id, client = await start_session(live, temperature=0.0)
    stop = asyncio.Event()
    quiet = None
    try:
        await talk(client, question)
        quiet = asyncio.create_task(keep_quiet(client, stop))
        events = await client.until("response.done", wait_s=300)
    finally:
        stop.set()
        if quiet is not None:
            await quiet  # the microphone stops before the socket closes
        await client.__aexit__()
    types = [e["type"] for e in events]
    transcript = next(e for e in events if e["type"] ==
                      "conversation.item.input_audio_transcription.completed")["transcript"]
    assert "capital" in transcript.lower() and "france" in transcript.lower()
    assert "response.text.delta" in types and types.count("response.audio.delta") > 0
    done = events[-1]["response"]
    assert done["status"] == "completed", done
    assert "paris" in done["text"].lower()
    timings = done["timings"]
    assert timings["voice_to_voice_ms"] > 0 and timings["prompt_ms"] > 0
    # the LLM's own count of the prompt tokens it had cached (earlier turns, the prefill
    # while the question was spoken) and of those it read after the request
    assert timings["llm_cached_tokens"] + timings["llm_new_tokens"] == \
        done["usage"]["input_tokens"]
    assert done["usage"]["cached_tokens"] == timings["llm_cached_tokens"] > 0
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].text == done["text"]
    assert turns[0].stt_ms and turns[1].llm_first_token_ms and turns[1].tts_first_audio_ms
    assert turns[1].voice_to_voice_ms and not turns[1].interrupted


async def test_barge_in_on_real_services(live, question, long_request) -> None:
    session_id, client = await start_session(live)
    try:
        await talk(client, np.concatenate([long_request, silence(1.0, RATE)]))
        await client.until("response.audio.delta", wait_s=300)
        await asyncio.sleep(1.5)  # the user hears the start of the reply
        # 2.5 s of silence: enough to end the turn whatever Smart Turn judges.
        await talk(client, np.concatenate([question, silence(2.5, RATE)]))
        events = await client.until("input_audio_buffer.committed", wait_s=60)
        events += await client.until("response.created", wait_s=60)
    finally:
        await client.__aexit__()
    # Still generating: the reply is cancelled; all sent but still playing: it is cut
    # where the user began to speak. Either way the stored reply is what was heard.
    cancelled = [e for e in events if e["type"] == "response.done"
                 and e["response"]["status"] == "cancelled"]
    truncated = [e for e in events if e["type"] == "conversation.item.truncated"]
    assert cancelled or truncated
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assistant = next(t for t in turns if t.role == "assistant")
    assert assistant.interrupted


async def test_disconnect_mid_reply_on_real_services(live, question) -> None:
    _, client = await start_session(live)
    await talk(client, np.concatenate([question, silence(1.0, RATE)]))
    await client.until("response.audio.delta", wait_s=300)
    await client.__aexit__()
    for _ in range(200):
        if not [t for t in asyncio.all_tasks() if t.get_name().startswith("realtime ")]:
            break
        await asyncio.sleep(0.05)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("realtime ")]


# --- the official SDK on /v1/realtime ---------------------------------------------------

def sdk(live):  # type: ignore[no-untyped-def]
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key="sk-local",
                       websocket_base_url=f"{live.ws_url}/v1")


async def sdk_talk(conn, audio: np.ndarray, chunk_ms: int = 20) -> None:  # type: ignore[no-untyped-def]
    """At real-time pace, like a microphone, through the SDK's own append."""
    import base64

    from orchestrator.realtime.audio import float_to_pcm16

    pcm = float_to_pcm16(audio)
    step = RATE * chunk_ms // 1000 * 2
    for start in range(0, len(pcm), step):
        await conn.input_audio_buffer.append(
            audio=base64.b64encode(pcm[start:start + step]).decode())
        await asyncio.sleep(chunk_ms / 1000)


async def sdk_events(conn, *last: str, wait_s: float = 300) -> list:  # type: ignore[no-untyped-def]
    events = []
    while True:
        event = await asyncio.wait_for(conn.recv(), wait_s)
        events.append(event)
        if event.type in last:
            return events


async def test_ga_sdk_spoken_and_text_turns_on_real_services(live, question) -> None:
    async with sdk(live).realtime.connect(model="llm") as conn:
        created = await conn.recv()
        assert created.type == "session.created"
        await sdk_talk(conn, np.concatenate([question, silence(2.5, RATE)]))
        spoken = await sdk_events(conn, "response.done")
        await conn.conversation.item.create(item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Name one colour of the rainbow."}]})
        await conn.response.create(response={"output_modalities": ["text"]})
        written = await sdk_events(conn, "response.done")
    transcript = next(e for e in spoken if e.type ==
                      "conversation.item.input_audio_transcription.completed").transcript
    assert "capital" in transcript.lower() and "france" in transcript.lower()
    types = [e.type for e in spoken]
    assert "response.output_text.delta" not in types and "response.output_audio.delta" in types
    said = "".join(e.delta for e in spoken if e.type == "response.output_audio_transcript.delta")
    done = next(e for e in spoken if e.type == "response.output_audio_transcript.done")
    assert said.strip() and said == done.transcript
    # SmolLM2 samples at the session's temperature (0.7): a reply may run to its token
    # limit or into a loop that is stopped, both "incomplete" with OpenAI's reasons
    finished = {"completed": None, "incomplete": {"max_output_tokens", "content_filter"}}
    for response in (spoken[-1].response, written[-1].response):
        assert response.status in finished, response.status_details
        if response.status == "incomplete":
            assert response.status_details.reason in finished["incomplete"]
    reply = "".join(e.delta for e in written if e.type == "response.output_text.delta")
    kept = written[-1].response.output[0].content[0].text
    assert reply.strip() and kept.strip()
    if written[-1].response.status_details and \
            written[-1].response.status_details.reason == "content_filter":
        assert reply.startswith(kept) and len(kept) < len(reply)  # a loop's first copy
    else:
        assert kept == reply


async def test_beta_sdk_barge_in_on_real_services(live, question, long_request) -> None:
    async with sdk(live).beta.realtime.connect(model="llm") as conn:
        assert (await conn.recv()).type == "session.created"
        await sdk_talk(conn, np.concatenate([long_request, silence(1.0, RATE)]))
        await sdk_events(conn, "response.audio.delta")
        await asyncio.sleep(1.5)  # the user hears the start of the reply
        await sdk_talk(conn, np.concatenate([question, silence(2.5, RATE)]))
        events = await sdk_events(conn, "input_audio_buffer.committed", wait_s=60)
        events += await sdk_events(conn, "response.created", wait_s=60)
    cancelled = [e for e in events if e.type == "response.done"
                 and e.response.status == "cancelled"]
    truncated = [e for e in events if e.type == "conversation.item.truncated"]
    assert cancelled or truncated
    if cancelled:
        assert cancelled[0].response.status_details.reason == "turn_detected"


# --- WebRTC calls: Opus both ways, events on the data channel ------------------------------

async def start_call(live) -> tuple[Caller, str, str]:  # type: ignore[no-untyped-def]
    """A call with greedy decoding; returns (caller, session id, call path)."""
    caller = Caller()
    path = await caller.call(live.base_url)
    created = await caller.until("session.created")
    caller.send("session.update", session={"type": "realtime", "temperature": 0.0})
    await caller.until("session.updated")
    return caller, created[-1]["session"]["id"], path


async def test_a_call_hears_the_spoken_answer_on_real_services(live, question) -> None:
    caller, session_id, path = await start_call(live)
    try:
        caller.microphone.say(question, RATE)
        events = await caller.until("response.done", wait_s=300)
        events += await caller.until("output_audio_buffer.stopped", wait_s=120)
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            assert (await http.post(f"{path}/hangup")).status_code == 200
    finally:
        await caller.close()
    transcript = next(e for e in events if e["type"] ==
                      "conversation.item.input_audio_transcription.completed")["transcript"]
    assert "capital" in transcript.lower() and "france" in transcript.lower()
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["status"] == "completed", done
    said = done["output"][0]["content"][0]["transcript"]
    assert "paris" in said.lower()
    # What came through Opus is the answer: the served STT hears "Paris" in it.
    heard = caller.heard_audio()
    assert loud_seconds(heard) > 0.5
    stt = live.runtime.services.stt
    recognised = await stt.transcribe(resample(heard, CALL_RATE, MODEL_RATE), language="en")
    assert "paris" in recognised.text.lower(), recognised.text
    for _ in range(100):  # hung up: the slot is free and the turns are stored
        if live.runtime.live_sessions.count() == 0:
            break
        await asyncio.sleep(0.05)
    assert live.runtime.live_sessions.count() == 0
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].text == said


async def test_a_barge_in_on_a_call_stops_the_reply_audio(live, question,
                                                          long_request) -> None:
    caller, session_id, _ = await start_call(live)
    try:
        caller.microphone.say(long_request, RATE)
        await caller.until("output_audio_buffer.started", wait_s=300)
        await asyncio.sleep(1.5)  # the caller hears the start of the reply
        caller.microphone.say(question, RATE)
        events = await caller.until("input_audio_buffer.speech_started", wait_s=30)
        heard_at_speech = len(caller.heard_audio())
        events += await caller.until("output_audio_buffer.cleared", wait_s=30)
        heard_at_clear = len(caller.heard_audio())
        events += await caller.until("output_audio_buffer.started", wait_s=300)
        heard_at_next = len(caller.heard_audio())
    finally:
        await caller.close()
    between = caller.heard_audio()[heard_at_clear:heard_at_next]
    # The old reply stops within the VAD's wait for a real interruption, then silence
    # until the new turn's reply.
    assert loud_seconds(caller.heard_audio()[heard_at_speech:heard_at_clear]) < 1.5
    assert loud_seconds(between) <= 0.4
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert next(t for t in turns if t.role == "assistant").interrupted


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make system-deps)")
async def test_the_demo_page_in_chromium_holds_a_spoken_turn_over_webrtc(live, question,
                                                                        tmp_path) -> None:
    """The browser's own WebRTC stack (Opus, jitter buffer, echo cancellation on), a fake
    microphone playing the question, the real models behind the call."""
    microphone = tmp_path / "microphone.wav"
    with wave.open(str(microphone), "wb") as w:  # Chromium loops it: silence after
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(float_to_pcm16(np.concatenate([
            silence(1.5, 48000), resample(question, RATE, 48000), silence(30.0, 48000)])))
    calls_seen: set[str] = set()
    async with chromium_page(f"{live.base_url}/demo?autostart=1", microphone,
                             tmp_path / "profile") as page:
        state: dict = {}
        for _ in range(1200):
            if "webrtc" in live.runtime.transports:
                calls_seen.update(live.runtime.transports["webrtc"].calls)
            state = await page.evaluate("window.demoState") or {}  # None until it loads
            if state.get("timings") and state["assistantTexts"] and \
                    state["phase"] == "listening":
                break
            await asyncio.sleep(0.1)
    assert state["errors"] == [] and state["callId"] in calls_seen  # it was a WebRTC call
    heard = state["userTranscripts"][0].lower()
    assert "capital" in heard and "france" in heard
    assert "paris" in state["assistantTexts"][0].lower()
    timings = state["timings"][0]
    assert timings["voice_to_voice_ms"] > 0 and timings["stt_ms"] > 0
    assert state["replyLevel"] > 0.01  # the reply was heard on the remote track
    # The page timed the turn on its own audio clock: after the server sent the reply's
    # first audio, counted from the same end of speech (the way in and out on top).
    heard = state["heard"][0]
    assert timings["voice_to_voice_ms"] - 100 < heard < timings["voice_to_voice_ms"] + 1000
