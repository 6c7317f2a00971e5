"""Phone calls through Twilio Media Streams, against a real uvicorn server (fake models
behind the pipeline): the incoming-call webhook (its signature, its TwiML) and the media
stream as Twilio speaks it (:class:`bench.twilio_peer.PhoneCall`): a spoken question
answered in μ-law, marks, barge-in (``clear``, the stored turn cut at the marks), ``stop``,
hostile frames."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest

from bench.twilio_peer import RATE, PhoneCall, stream_of
from orchestrator.realtime.reply.playback import SpokenSentence, spoken_text
from tests.support.fake_voice import FakeLLM, FakeTTS, fake_services, speak
from tests.support.realtime import LiveServer, live_server
from tests.support.webrtc import dominant_hz, loud_part, loud_seconds

pytestmark = pytest.mark.asyncio
AUTH_TOKEN = "twilio-test-auth-token"
PUBLIC_URL = "https://voice.example.com"
ADMIN_KEY = "admin-key-for-twilio-tests"
REPLY = "Hello there. It is sunny. Bye!"
CALL = {"CallSid": "CA00000000000000000000000000000001", "AccountSid": "AC0",
        "From": "+15550100", "To": "+15550199", "CallStatus": "ringing"}


@pytest.fixture
async def live(tmp_path) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    async with live_server(tmp_path, memory_enabled=False, realtime_turn_detection="server_vad",
                           auth_mode="required", admin_api_key=ADMIN_KEY,
                           twilio_auth_token=AUTH_TOKEN, twilio_public_url=PUBLIC_URL
                           ) as server:
        server.use(fake_services())
        yield server


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return speak("What will the weather be like tomorrow in Seoul",
                 tmp_path_factory.mktemp("q"), rate=RATE)


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Twilio's algorithm, written out here: HMAC-SHA1 of the URL and each parameter's
    name and value in name order, base64."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
                            ).decode()


async def incoming_call(live: LiveServer, query: str = "", signature: str | None = None,
                        params: dict[str, str] | None = None) -> httpx.Response:
    """Twilio's webhook POST, signed for the public URL it was configured with."""
    params = params or CALL
    path = "/v1/twilio/voice" + (f"?{query}" if query else "")
    if signature is None:
        signature = twilio_signature(PUBLIC_URL + path, params)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
        return await http.post(path, content=urlencode(params), headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature})


async def answered_call(live: LiveServer, query: str = "", **options) -> PhoneCall:  # type: ignore[no-untyped-def]
    """A call as Twilio makes it: the webhook's TwiML, then its stream (on this server)."""
    response = await incoming_call(live, query)
    assert response.status_code == 200, response.text
    url, parameters = stream_of(response.text)
    assert url == "wss://voice.example.com/v1/twilio/media-stream"
    return PhoneCall(f"{live.ws_url}/v1/twilio/media-stream", parameters, **options)


async def phone_turns(live: LiveServer) -> dict[str, list]:
    """The stored turns of the phone user, by session."""
    out: dict[str, list] = {}
    async for batch in live.runtime.conversations.iter_turns(user_id="phone"):
        for turn in batch:
            out.setdefault(turn.session_id, []).append(turn)
    return out


async def wait_for(check, wait_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(wait_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


# --- the webhook ---------------------------------------------------------------------------

async def test_the_webhook_answers_twiml_that_connects_the_stream(live) -> None:
    response = await incoming_call(live, query="session_id=sess_abc")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>'
                                    "<Connect><Stream ")
    url, parameters = stream_of(response.text)
    assert url == "wss://voice.example.com/v1/twilio/media-stream"  # no query: Twilio drops it
    assert parameters["token"].startswith("ek_")
    assert parameters["session_id"] == "sess_abc"


async def test_the_webhook_refuses_a_bad_or_missing_signature(live) -> None:
    for signature in ("", twilio_signature(PUBLIC_URL + "/v1/twilio/voice", CALL, "wrong"),
                      twilio_signature("https://elsewhere.example.com/v1/twilio/voice", CALL)):
        response = await incoming_call(live, signature=signature)
        assert response.status_code == 403, response.text
    # Signed, then changed in transit: a parameter the signature does not cover.
    signed = twilio_signature(PUBLIC_URL + "/v1/twilio/voice", CALL)
    response = await incoming_call(live, signature=signed, params={**CALL, "From": "+1999"})
    assert response.status_code == 403
    # The query is signed too.
    response = await incoming_call(live, query="session_id=x", signature=signed)
    assert response.status_code == 403


async def test_a_draining_server_answers_with_speech_and_hangs_up(live) -> None:
    live.runtime.draining = True
    try:
        response = await incoming_call(live)
    finally:
        live.runtime.draining = False
    assert response.status_code == 200
    assert "<Say>" in response.text and "<Hangup/>" in response.text
    assert "<Stream" not in response.text


async def test_without_an_auth_token_the_webhook_is_refused(tmp_path) -> None:
    async with live_server(tmp_path, auth_mode="required", admin_api_key=ADMIN_KEY) as live:
        response = await incoming_call(live)
    assert response.status_code == 403
    assert "TWILIO_AUTH_TOKEN" in response.json()["error"]["message"]


# --- a call --------------------------------------------------------------------------------

async def test_a_spoken_question_is_answered_in_mulaw_with_marks(live, question) -> None:
    call = await answered_call(live)
    async with call:
        call.say(question)
        await call.until(lambda: call.of("media"))
        await call.until(lambda: not call.playing and len(call.echoed) == len(call.of("mark")))
        await asyncio.sleep(0.5)  # nothing more comes
        heard = call.heard_audio()
        media, marks = call.of("media"), call.of("mark")
    # Only Twilio's own messages come back: media, each followed by its mark.
    assert {m["event"] for m in call.received} == {"media", "mark"}
    assert [m["event"] for m in call.received] == ["media", "mark"] * len(media)
    assert len(marks) == len(media) and call.echoed == [m["mark"]["name"] for m in marks]
    # The fake voice is a 220 Hz tone, 20 ms per character: that is what the caller heard.
    assert loud_seconds(heard, RATE) == pytest.approx(len(REPLY) * 0.020, abs=0.15)
    assert dominant_hz(loud_part(heard, RATE), RATE) == pytest.approx(220, abs=10)
    turns = await phone_turns(live)
    assert len(turns) == 1  # a new session of the phone user
    [stored] = turns.values()
    assert [(t.role, t.text) for t in stored] == [
        ("user", "what is the weather like"), ("assistant", REPLY)]
    assert not stored[1].interrupted


async def test_stop_ends_the_session_and_frees_its_slot(live, question) -> None:
    call = await answered_call(live)
    async with call:
        await wait_for(lambda: _true(live.runtime.live_sessions.count() == 1))
        await call.stop()
        await asyncio.wait_for(call.closed.wait(), 10)
    assert call.close_code == 1000
    await wait_for(lambda: _true(live.runtime.live_sessions.count() == 0))


async def test_a_call_continues_the_session_the_webhook_names(live, question) -> None:
    session_id = await live.new_session("phone")
    call = await answered_call(live, query=f"session_id={session_id}")
    async with call:
        call.say(question)
        await call.until(lambda: call.of("mark") and not call.playing, wait_s=30)
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    assert [t.role for t in turns] == ["user", "assistant"]


async def _true(value: bool) -> bool:
    return value


# --- barge-in ------------------------------------------------------------------------------

async def test_barge_in_clears_the_line_and_keeps_what_the_marks_say_was_heard(
        live, question) -> None:
    words = [f" word{i}" for i in range(60)] + ["."]
    tts = FakeTTS(ms_per_char=60)
    live.use(fake_services(llm=FakeLLM(words, delay=0.01), tts=tts))
    # The line plays 1.5 s behind what arrives (a deep jitter buffer): the server's own
    # clock would count that as heard; only the marks know better.
    call = await answered_call(live, playout_delay_s=1.5)
    async with call:
        call.say(question)
        await call.until(lambda: len(call.echoed) >= 3)
        await asyncio.sleep(1.0)  # the reply is being heard
        call.say(question)
        await call.until(lambda: call.clears, wait_s=30)
        echoed_at_clear = list(call.echoed)
        heard_at_clear = call.heard_at_clear[0]
        await asyncio.sleep(1.5)
        after = call.heard()[heard_at_clear:]
        await call.until(lambda: len(call.clears) == 1 and len(call.of("media")) >
                         len(echoed_at_clear) + 2, wait_s=20)  # the new turn's reply
    # What Twilio had buffered was dropped: nothing more of the old reply played.
    cleared_reply = [m for m in call.received[:_index_of_clear(call)] if m["event"] == "mark"]
    assert len(after) < RATE * 0.1 or len(cleared_reply) < len(call.of("mark"))
    turns = await phone_turns(live)
    [stored] = turns.values()
    assistant = [t for t in stored if t.role == "assistant"]
    assert assistant and assistant[0].interrupted
    # Cut where the last mark echoed before the clear says playback had got to. The
    # engine cuts a sentence whose audio was partly sent in proportion to what of it was
    # sent: rebuild that from the sentences the voice spoke (60 ms of tone a character).
    heard_ms = call.sent_ms(echoed_at_clear[-1])
    sent_ms = sum(len(base64.b64decode(m["media"]["payload"]))
                  for m in call.received[:_index_of_clear(call)] if m["event"] == "media") \
        * 1000 / RATE
    spoken: list[SpokenSentence] = []
    at = 0.0
    for text in tts.texts:
        if at >= sent_ms:
            break
        spoken.append(SpokenSentence(text, at, min(at + len(text) * 60, sent_ms)))
        at += len(text) * 60
    expected = spoken_text(spoken, heard_ms).split()
    kept = assistant[0].text.split()
    assert abs(len(kept) - len(expected)) <= 1, (tts.texts, kept, expected, heard_ms)
    assert kept == "".join(words).split()[:len(kept)]
    # Counting from the server's clock would have kept 1.5 s more: the marks won.
    assert len(kept) < len(spoken_text(spoken, heard_ms + 1500).split()) - 1


async def test_a_reply_sent_in_full_but_still_playing_is_cleared_too(live, question,
                                                                    monkeypatch) -> None:
    from orchestrator.realtime.transports.twilio import call as twilio_call

    monkeypatch.setattr(twilio_call, "PLAYOUT_LEAD_S", 60.0)  # no pacing: all sent at once
    words = [f" word{i}" for i in range(40)] + ["."]
    tts = FakeTTS(ms_per_char=60)
    live.use(fake_services(llm=FakeLLM(words), tts=tts))
    call = await answered_call(live)
    async with call:
        call.say(question)
        await call.until(lambda: len(call.echoed) >= 10)  # 2 s heard of a ~17 s reply
        assert call.playing
        call.say(question)
        await call.until(lambda: call.clears, wait_s=30)
        echoed_at_clear = list(call.echoed)
        await asyncio.sleep(1.0)
    media_before_clear = [m for m in call.received[:_index_of_clear(call)]
                          if m["event"] == "media"]
    assert len(media_before_clear) == len(call.of("media"))  # the whole reply had gone out
    [stored] = (await phone_turns(live)).values()
    assistant = [t for t in stored if t.role == "assistant"]
    assert assistant and assistant[0].interrupted
    heard_ms = call.sent_ms(echoed_at_clear[-1])
    spoken: list[SpokenSentence] = []
    at = 0.0
    for text in tts.texts:
        spoken.append(SpokenSentence(text, at, at + len(text) * 60))
        at += len(text) * 60
    expected = spoken_text(spoken, heard_ms).split()
    assert abs(len(assistant[0].text.split()) - len(expected)) <= 1, (
        assistant[0].text, expected, heard_ms)


def _index_of_clear(call: PhoneCall) -> int:
    return next(i for i, m in enumerate(call.received) if m["event"] == "clear")


# --- hostile frames ------------------------------------------------------------------------

async def test_hostile_frames_are_ignored_and_a_call_beside_is_unharmed(live, question) -> None:
    hostile = await answered_call(live)
    good = await answered_call(live)
    async with hostile, good:
        for frame in ("not json", b"\x00\x01binary", "[1, 2]", '{"event": 5}',
                      '{"event": "bogus"}', '{"event": "media"}',
                      '{"event": "media", "media": {"payload": "%%%not base64"}}',
                      '{"event": "media", "media": {"track": "outbound", "payload": "AAAA"}}',
                      '{"event": "mark", "mark": {"name": "m999999"}}',
                      '{"event": "mark", "mark": {"name": ["x"]}}',
                      '{"event": "mark"}', '{"event": "dtmf", "dtmf": {"digit": "5"}}',
                      '{"event": "start", "start": {}}', '{"event": "connected"}',
                      '{"event": "media", "media": {"payload": "' + "/" * 40000 + '"}}',
                      '{"event": "media", "media": {"payload": "' + "/" * 400000 + '"}}'):
            await hostile.send(frame)
        good.say(question)
        hostile.say(question)
        await good.until(lambda: good.of("mark") and not good.playing, wait_s=30)
        await hostile.until(lambda: hostile.of("mark") and not hostile.playing, wait_s=30)
        assert not hostile.closed.is_set()
    turns = await phone_turns(live)
    assert sorted(len(t) for t in turns.values()) == [2, 2]


@pytest.mark.parametrize(("media_format", "reason"), [
    ({"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}, "mediaFormat"),
    ({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}, "mediaFormat"),
    ("mulaw", "mediaFormat"),
])
async def test_a_stream_of_another_format_is_closed(live, media_format, reason) -> None:
    call = await answered_call(live, media_format=media_format)
    async with call:
        await asyncio.wait_for(call.closed.wait(), 10)
    assert call.close_code == 4400 and reason in call.close_reason
    assert live.runtime.live_sessions.count() == 0


async def test_a_stream_without_a_good_token_is_closed_4401(live) -> None:
    url = f"{live.ws_url}/v1/twilio/media-stream"
    for parameters in ({}, {"token": "ek_not-minted"}, {"token": "vck_wrong"}):
        call = PhoneCall(url, parameters)
        async with call:
            await asyncio.wait_for(call.closed.wait(), 10)
        assert call.close_code == 4401, (parameters, call.close_reason)
    # The webhook's token opens one stream only.
    response = await incoming_call(live)
    _, parameters = stream_of(response.text)
    first = PhoneCall(url, parameters)
    again = PhoneCall(url, parameters)
    async with first:
        await wait_for(lambda: _true(live.runtime.live_sessions.count() == 1))
        async with again:
            await asyncio.wait_for(again.closed.wait(), 10)
        assert again.close_code == 4401 and "used" in again.close_reason
        assert not first.closed.is_set()


async def test_an_api_key_may_be_the_token_and_media_before_start_is_dropped(live,
                                                                              question) -> None:
    call = PhoneCall(f"{live.ws_url}/v1/twilio/media-stream", {"token": ADMIN_KEY,
                                                               "user_id": "phone"})
    await call.open()
    try:
        await call.send({"event": "media", "media": {"payload": "//8="}})  # no stream yet
        await call.start()
        call.say(question)
        await call.until(lambda: call.of("mark") and not call.playing, wait_s=30)
    finally:
        await call.hang_up()
    assert [len(t) for t in (await phone_turns(live)).values()] == [2]


async def test_no_start_closes_the_stream(live, monkeypatch) -> None:
    from orchestrator.realtime.transports.twilio import routes

    monkeypatch.setattr(routes, "START_TIMEOUT_S", 0.5)
    call = PhoneCall(f"{live.ws_url}/v1/twilio/media-stream")
    await call.open()
    try:
        await asyncio.wait_for(call.closed.wait(), 10)
    finally:
        await call.hang_up()
    assert call.close_code == 4400 and "start" in call.close_reason
