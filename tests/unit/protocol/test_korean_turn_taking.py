"""Korean turn taking over a real WebSocket with the real turn models (Silero VAD, Smart
Turn v3.2) on Korean speech spoken by Kokoro, and fake STT/LLM/TTS.

Smart Turn scores some unfinished Korean phrases as finished ("내일 오후에 회의가": 0.98)
and a finished thanks as unfinished ("고마워요.": 0.21), so a Korean session's turn ends
on its words (``smart_turn.WORDS_DECIDE``): a transcript ending in a final ending ends it
at the check, an unfinished one waits for the long silence. Korean backchannels (네, 음)
during a reply leave it playing. Audio is sent faster than real time except where the
transcript must arrive during the silence."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.realtime.turns.smart_turn import EAGERNESS, load_model, transcript_finished
from tests.support.fake_voice import FakeSTT, fake_services, silence
from tests.support.korean_voice import korean_speaker
from tests.support.realtime import live_server, types_of
from tests.unit.protocol.test_realtime_turn_taking import (
    SPEECH_STOPPED,
    FirstPartSTT,
    ShortIsOkaySTT,
    _talk_over_reply,
    settle,
    stored,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.realweights]
RATE = 16000


@pytest.fixture(scope="module")
def say(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return korean_speaker(tmp_path_factory.mktemp("korean-speech"))


@pytest.mark.parametrize(("transcript", "finished"), [
    ("한국의 수도는 어디인가요?", True), ("고마워요.", True), ("알겠습니다", True),
    ("그렇죠?", True), ("어제 영화를 봤다.", True), ("오늘 뭐 먹을까?", True),
    ("내일 오후에 회의가.", False), ("저는 커피를 좋아하는데", False),
    ("음 그게 뭐냐면.", False), ("만약에 비가 오면", False), ("서울에서 부산까지 가는", False),
])
def test_korean_words_say_whether_a_sentence_ended(transcript: str, finished: bool) -> None:
    assert transcript_finished(transcript, "ko") is finished


async def _korean_session(live, **session):  # type: ignore[no-untyped-def]
    session_id = await live.new_session("alice", language="ko")
    client = live.connect("alice", session_id)
    await client.__aenter__()
    await client.next()
    await client.send("session.update", session={
        "input_sample_rate": RATE, "turn_detection": {"type": "semantic_vad",
                                                      "eagerness": "medium"}, **session})
    await client.until("session.updated")
    return session_id, client


async def test_an_unfinished_korean_phrase_that_smart_turn_calls_finished_waits(
        tmp_path, say) -> None:
    """"내일 오후에 회의가" + 0.7 s + "있어요": the model alone would end the turn at the
    pause; the words (a subject particle) keep it open, so the two parts are one turn."""
    first, rest = say("내일 오후에 회의가"), say("있어요")
    check = silence(EAGERNESS["medium"].check_ms / 1000)
    assert load_model().completion(np.concatenate([first, check])) >= \
        EAGERNESS["medium"].threshold
    stt = FirstPartSTT("내일 오후에 회의가.", "내일 오후에 회의가 있어요.")
    async with live_server(tmp_path) as live:
        live.use(fake_services(stt=stt))
        session_id, client = await _korean_session(live)
        try:
            await client.append(np.concatenate([silence(0.3), first]), RATE, chunk_ms=40)
            await client.append(silence(0.7), RATE, chunk_ms=40, pace=1.0)  # real time
            await client.append(np.concatenate([rest, silence(0.4)]), RATE, chunk_ms=40)
            await client.append(silence(2.2), RATE, chunk_ms=40)
            events = await client.until("response.done", wait_s=30)
            events += await settle(client)
        finally:
            await client.__aexit__()
        assert types_of(events).count(SPEECH_STOPPED) == 1
        assert types_of(events).count("response.created") == 1
        turns = await stored(live, session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[0].text == "내일 오후에 회의가 있어요."


async def test_a_finished_korean_sentence_ends_the_turn_on_its_words(tmp_path, say) -> None:
    """"고마워요." scores low on Smart Turn; its transcript ends in 요, so the turn ends
    well inside the 2 s an unfinished phrase waits."""
    thanks = say("고마워요.")
    async with live_server(tmp_path) as live:
        live.use(fake_services(stt=FakeSTT("고마워요.")))
        _, client = await _korean_session(live)
        try:
            await client.append(np.concatenate([silence(0.3), thanks]), RATE, chunk_ms=40)
            await client.append(silence(1.0), RATE, chunk_ms=40, pace=1.0)
            events = await client.until(SPEECH_STOPPED, wait_s=10)
            assert (await client.until("response.done"))[-1]["response"]["status"] == \
                "completed"
        finally:
            await client.__aexit__()
    assert events[-1]["audio_end_ms"] == pytest.approx(300 + len(thanks) / 16, abs=250)


@pytest.mark.parametrize("backchannel", ["네", "음"])
async def test_a_korean_backchannel_during_a_reply_does_not_cancel_it(tmp_path, say,
                                                                     backchannel) -> None:
    """As "okay" in English (test_realtime_turn_taking): Kokoro says the question and,
    a second into the reply, the backchannel."""
    events, turns, llm = await _talk_over_reply(tmp_path, say,
                                                ShortIsOkaySTT(f"{backchannel}."), backchannel)
    done = [e for e in events if e["type"] == "response.done"]
    assert "input_audio_buffer.speech_started" in types_of(events)
    assert len(done) == 1 and done[0]["response"]["status"] == "completed"
    heard = [e for e in events if e["type"].endswith("transcription.completed")]
    assert heard[-1]["transcript"] == f"{backchannel}."
    assert llm.closed_early == 0 and [t.role for t in turns] == ["user", "assistant"]
    assert not turns[1].interrupted
