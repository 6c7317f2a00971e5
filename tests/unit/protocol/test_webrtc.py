"""``POST /v1/realtime/calls``: a real aiortc caller against a real uvicorn server (fake
models behind the pipeline): SDP offer in, answer out, events on ``oai-events``, the
caller's voice on its track, the reply as Opus on ours; barge-in, hang-up, a caller that
goes quiet, bad offers, the key's concurrent sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI

from orchestrator.realtime.transports.webrtc.media import (
    FRAME_SAMPLES,
    QUIET_AFTER_FRAMES,
    QUIET_KEEPALIVE_S,
)
from tests.integration.auth.conftest import ADMIN_KEY
from tests.support.fake_voice import FakeLLM, FakeTTS, fake_services, speak
from tests.support.realtime import LiveServer, live_server
from tests.support.webrtc import Caller, dominant_hz, loud_part, loud_seconds

pytestmark = pytest.mark.asyncio
QUESTION_RATE = 24000
REPLY = "Hello there. It is sunny. Bye!"


@pytest.fixture
async def live(tmp_path) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, memory_enabled=False, realtime_turn_detection="server_vad",
                           webrtc_media_timeout_s=2.0) as server:
        server.use(fake_services())
        yield server


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return speak("What will the weather be like tomorrow in Seoul",
                 tmp_path_factory.mktemp("q"), rate=QUESTION_RATE)


async def post_offer(live: LiveServer, sdp: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        return await http.post("/v1/realtime/calls", content=sdp,
                               headers={"Content-Type": "application/sdp", **headers})


async def connect(live: LiveServer, caller: Caller, **headers: str) -> str:
    """Offer, answer, wait for the data channel; returns the call id."""
    response = await post_offer(live, await caller.offer(), **headers)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/sdp")
    await caller.answer(response.text)
    await asyncio.wait_for(caller.opened.wait(), 15)
    location = response.headers["location"]
    assert location.startswith("/v1/realtime/calls/rtc_")
    return location.rsplit("/", 1)[1]


async def assert_call_ended(live: LiveServer, call_id: str) -> None:
    """Within 5 s the call is gone from the registry and its realtime slot is free."""
    for _ in range(100):
        if call_id not in calls_of(live) and live.runtime.live_sessions.count() == 0:
            break
        await asyncio.sleep(0.05)
    assert call_id not in calls_of(live)
    assert live.runtime.live_sessions.count() == 0


def calls_of(live: LiveServer) -> dict:
    registry = live.runtime.transports.get("webrtc")
    return {} if registry is None else registry.calls


@pytest.mark.parametrize("ordered_receive", [False, True], ids=["aiortc", "ordered"])
async def test_a_spoken_question_is_answered_on_the_audio_track(
        live, question, ordered_receive) -> None:
    """Also with the caller receiving as the server does (the bench's
    ``--caller-receive ordered``): the whole reply is heard either way."""
    caller = Caller(ordered_receive=ordered_receive)
    try:
        await connect(live, caller)
        created = await caller.next()
        assert created["type"] == "session.created"
        session_id = created["session"]["id"]
        caller.microphone.say(question, QUESTION_RATE)
        events = await caller.until("output_audio_buffer.stopped")
    finally:
        await caller.close()
    kinds = [e["type"] for e in events]
    for expected in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                     "conversation.item.input_audio_transcription.completed",
                     "response.created", "output_audio_buffer.started", "response.done"):
        assert expected in kinds, kinds
    # Audio travels on the track only, as OpenAI does on WebRTC.
    assert not {"response.output_audio.delta", "response.audio.delta"} & set(kinds)
    assert kinds.index("output_audio_buffer.started") < kinds.index("response.done") \
        < kinds.index("output_audio_buffer.stopped")
    transcript = next(e for e in events
                      if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert transcript["transcript"] == "what is the weather like"
    done = next(e for e in events if e["type"] == "response.done")
    assert done["response"]["status"] == "completed"
    # The fake voice is a 220 Hz tone, 20 ms per character: that is what came through Opus.
    heard = caller.heard_audio()
    expected_s = len(REPLY) * 0.020
    assert loud_seconds(heard) == pytest.approx(expected_s, abs=0.2)
    assert dominant_hz(loud_part(heard)) == pytest.approx(220, abs=10)
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "what is the weather like"), ("assistant", REPLY)]


async def test_the_sdk_opens_a_call_with_its_session_and_hangs_up(live) -> None:
    sdk = AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key="sk-local")
    caller = Caller()
    try:
        answer = await sdk.realtime.calls.with_raw_response.create(
            sdp=await caller.offer(),
            session={"type": "realtime", "instructions": "Answer in one word."})
        assert answer.status_code == 201
        await caller.answer(answer.text)
        await asyncio.wait_for(caller.opened.wait(), 15)
        call_id = answer.headers["location"].rsplit("/", 1)[1]
        assert (await caller.next())["type"] == "session.created"
        updated = await caller.next()
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "Answer in one word."
        assert call_id in calls_of(live)
        await sdk.realtime.calls.hangup(call_id)
        await assert_call_ended(live, call_id)
    finally:
        await caller.close()
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        gone = await http.post(f"/v1/realtime/calls/{call_id}/hangup")
    assert gone.status_code == 404 and gone.json()["error"]["param"] == "call_id"


async def heard_for(caller: Caller, seconds: float, timeout_s: float = 15.0) -> None:
    """Until the caller has heard ``seconds`` of the reply: on a loaded machine the reply
    track's packets can come later than the wall clock, and the server cuts a stored turn
    at what was played (which is what the barge-in test checks)."""
    async with asyncio.timeout(timeout_s):
        # the caller's track receiver appends audio with no event to wait on
        while loud_seconds(caller.heard_audio()) < seconds:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_barge_in_clears_the_reply_and_keeps_what_was_heard(live, question) -> None:
    words = [f" word{i}" for i in range(60)] + ["."]
    live.use(fake_services(llm=FakeLLM(words, delay=0.01), tts=FakeTTS(ms_per_char=60)))
    caller = Caller()
    try:
        await connect(live, caller)
        session_id = (await caller.next())["session"]["id"]
        caller.microphone.say(question, QUESTION_RATE)
        await caller.until("output_audio_buffer.started")
        await heard_for(caller, 1.0)  # the reply is being heard
        caller.microphone.say(question, QUESTION_RATE)
        # while the reply's audio waits in the send queue (the voice runs ahead of the
        # playout): the caller's speech is heard at once, not once that audio has played
        events = await caller.until("output_audio_buffer.cleared", wait_s=8)
        events += await caller.until("response.done")
        events += await caller.until("output_audio_buffer.started")  # the new turn's reply
    finally:
        await caller.close()
    kinds = [e["type"] for e in events]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index(
        "output_audio_buffer.cleared") < kinds.index("response.done")
    cancelled = next(e for e in events if e["type"] == "response.done")["response"]
    assert cancelled["status"] == "cancelled"
    assert events[kinds.index("output_audio_buffer.cleared")]["response_id"] == cancelled["id"]
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assistant = [t for t in turns if t.role == "assistant"]
    # About a second was heard of a ~25 s reply: the stored turn is that much, cut.
    assert assistant and assistant[0].interrupted
    assert 0 < len(assistant[0].text.split()) < 10


async def test_output_audio_buffer_clear_stops_the_audio_at_once(live, question) -> None:
    words = [f" word{i}" for i in range(60)] + ["."]
    live.use(fake_services(llm=FakeLLM(words, delay=0.01), tts=FakeTTS(ms_per_char=60)))
    caller = Caller()
    try:
        await connect(live, caller)
        await caller.next()
        caller.microphone.say(question, QUESTION_RATE)
        await caller.until("output_audio_buffer.started")
        await asyncio.sleep(1.0)
        caller.send("output_audio_buffer.clear")
        events = await caller.until("output_audio_buffer.cleared")
        events += await caller.until("response.done")
        heard_at_clear = len(caller.heard_audio())
        await asyncio.sleep(1.5)
        after = caller.heard_audio()[heard_at_clear:]
    finally:
        await caller.close()
    assert events[-1]["response"]["status"] == "cancelled"
    # What was queued is gone: the tone stops within the playout lead, not 20 s later.
    assert loud_seconds(after) <= 0.4
    # and the track goes on, quiet as DTX is: 200 ms of silence, then a packet each 0.4 s
    frames = len(after) // FRAME_SAMPLES
    assert 3 <= frames <= QUIET_AFTER_FRAMES + 1.5 / QUIET_KEEPALIVE_S + 3, frames


async def test_hanging_up_mid_reply_ends_the_session_with_audio_still_queued(
        live, question) -> None:
    """The reply's audio waits for the track's playout clock; a closed peer connection
    stops that clock, and the session must end anyway (it holds the key's slot)."""
    words = [f" word{i}" for i in range(60)] + ["."]
    live.use(fake_services(llm=FakeLLM(words, delay=0.01), tts=FakeTTS(ms_per_char=60)))
    caller = Caller()
    try:
        call_id = await connect(live, caller)
        await caller.next()
        caller.microphone.say(question, QUESTION_RATE)
        await caller.until("output_audio_buffer.started")
        await heard_for(caller, 0.5)
    finally:
        await caller.close()  # ~25 s of reply still to play
    await assert_call_ended(live, call_id)


async def test_a_caller_whose_media_stops_is_ended_and_its_slot_freed(live, question) -> None:
    caller = Caller()
    try:
        call_id = await connect(live, caller)
        assert (await caller.next())["type"] == "session.created"
        caller.microphone.stop_media()
        error = await caller.until("error", wait_s=15)
        assert error[-1]["error"]["code"] == "call_media_timeout"
        await assert_call_ended(live, call_id)
    finally:
        await caller.close()


@pytest.mark.parametrize(("body", "content_type", "param"), [
    ("v=0\r\nthis is not sdp", "application/sdp", "sdp"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "application/sdp", "sdp"),
    ('{"sdp": "v=0"}', "application/json", "sdp"),
])
async def test_bad_offers_are_refused_with_400_naming_sdp(live, body, content_type,
                                                          param) -> None:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post("/v1/realtime/calls", content=body,
                                   headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert calls_of(live) == {} and live.runtime.live_sessions.count() == 0


@pytest.mark.parametrize(("session", "param"), [
    ("{not json", "session"),
    ('{"type": "realtime", "audio": {"input": {"format": {"type": "audio/flac"}}}}',
     "session.audio.input.format.type"),
    ('{"type": "realtime", "output_modalities": ["video"]}', "session.output_modalities"),
    ('{"type": "realtime", "tracing": "auto"}', "session.tracing"),
])
async def test_a_bad_session_in_the_form_is_a_400_before_any_media(live, session,
                                                                   param) -> None:
    caller = Caller()
    try:
        files = {"sdp": (None, await caller.offer(), "application/sdp"),
                 "session": (None, session, "application/json")}
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            response = await http.post("/v1/realtime/calls", files=files)
    finally:
        await caller.close()
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert calls_of(live) == {}


async def test_calls_count_against_the_keys_concurrent_sessions(tmp_path) -> None:
    async with live_server(tmp_path, auth_mode="required", admin_api_key=ADMIN_KEY,
                           memory_enabled=False, rate_limit_realtime_sessions=1) as live:
        live.use(fake_services())
        key = (await live.runtime.keys.create("alice")).secret
        auth = {"Authorization": f"Bearer {key}"}
        first, second = Caller(), Caller()
        try:
            refused = await post_offer(live, await first.offer())
            assert refused.status_code == 401
            await connect(live, first, **auth)
            limited = await post_offer(live, await second.offer(), **auth)
            assert limited.status_code == 429, limited.text
            assert limited.json()["error"]["code"] == "rate_limited"
        finally:
            await first.close()
            await second.close()


async def test_a_client_secret_opens_one_call_with_its_session(tmp_path) -> None:
    async with live_server(tmp_path, auth_mode="required", admin_api_key=ADMIN_KEY,
                           memory_enabled=False) as live:
        live.use(fake_services())
        key = (await live.runtime.keys.create("alice")).secret
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            minted = await http.post(
                "/v1/realtime/client_secrets", headers={"Authorization": f"Bearer {key}"},
                json={"session": {"type": "realtime", "instructions": "Be brief."}})
        assert minted.status_code == 200, minted.text
        secret = {"Authorization": f"Bearer {minted.json()['value']}"}
        first, second = Caller(), Caller()
        try:
            await connect(live, first, **secret)
            assert (await first.next())["type"] == "session.created"
            updated = await first.next()
            assert updated["session"]["instructions"] == "Be brief."
            reused = await post_offer(live, await second.offer(), **secret)
            assert reused.status_code == 401 and "used" in reused.json()["error"]["message"]
        finally:
            await first.close()
            await second.close()


def only_codec(sdp: str, rtpmap: str) -> str:
    """``sdp`` with its audio section offering one codec: ``rtpmap`` (e.g. ``iLBC/8000``)."""
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")):
            continue
        if line.startswith("m=audio"):
            line = " ".join([*line.split()[:3], "97"])
        lines.append(line)
        if line.startswith("m=audio"):
            lines.append(f"a=rtpmap:97 {rtpmap}")
    return "\r\n".join(lines)


async def test_an_offer_without_a_codec_in_common_is_a_400(live) -> None:
    caller = Caller()
    try:
        response = await post_offer(live, only_codec(await caller.offer(), "iLBC/8000"))
    finally:
        await caller.close()
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "sdp"
    assert calls_of(live) == {} and live.runtime.live_sessions.count() == 0


async def test_bad_data_channel_messages_get_error_events_and_spare_the_other_call(
        live, question) -> None:
    hostile, other = Caller(), Caller()
    try:
        await connect(live, hostile)
        await connect(live, other)
        await hostile.next()
        await other.next()
        for message in ("not json", '{"type": "no.such.event"}', "[1, 2]", '{"type": 7}',
                        "\u0000" * 1000):
            hostile.channel.send(message)  # type: ignore[union-attr]
            error = await hostile.until("error")
            assert error[-1]["error"]["type"] == "invalid_request_error"
        hostile.channel.send(b"\xff\xfe binary")  # type: ignore[union-attr]
        assert (await hostile.until("error"))[-1]["type"] == "error"
        other.microphone.say(question, QUESTION_RATE)
        events = await other.until("output_audio_buffer.stopped")
    finally:
        await hostile.close()
        await other.close()
    assert next(e for e in events if e["type"] == "response.done")["response"]["status"] \
        == "completed"


async def test_a_public_address_is_announced_beside_the_host_candidates(tmp_path,
                                                                         question) -> None:
    async with live_server(tmp_path, memory_enabled=False,
                           webrtc_public_ip="127.0.0.1") as live:
        live.use(fake_services())
        caller = Caller()
        try:
            response = await post_offer(live, await caller.offer())
            assert response.status_code == 201
            candidates = [line for line in response.text.split("\r\n")
                          if line.startswith("a=candidate:")]
            announced = [c for c in candidates if c.split()[4] == "127.0.0.1"]
            assert len(announced) == len([c for c in candidates if " typ host" in c
                                          and ":" not in c.split()[4]]) // 2 >= 1
            await caller.answer(response.text)
            await asyncio.wait_for(caller.opened.wait(), 15)  # ICE still connects
        finally:
            await caller.close()


async def test_five_percent_packet_loss_each_way_loses_no_turn(live, question) -> None:
    caller = Caller(loss=0.05)
    try:
        call_id = await connect(live, caller)
        order = calls_of(live)[call_id].order
        await caller.next()
        caller.microphone.say(question, QUESTION_RATE)
        events = await caller.until("output_audio_buffer.stopped")
        # The caller's aiortc receiver holds frames behind a lost packet until its
        # 16-packet buffer moves on: the tail comes up to ~0.3 s after the server's
        # playout ended (the server's side orders and conceals instead).
        await asyncio.sleep(1.0)
    finally:
        await caller.close()
    assert caller.lost > 0  # packets were dropped, both ways
    # the server gave up the caller's lost packets and concealed them, losing no others
    assert order is not None and order.concealed > 0
    transcript = next(e for e in events
                      if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert transcript["transcript"] == "what is the weather like"
    assert next(e for e in events if e["type"] == "response.done")["response"]["status"] \
        == "completed"
    assert loud_seconds(caller.heard_audio()) > 0.3  # the reply, minus what was lost
