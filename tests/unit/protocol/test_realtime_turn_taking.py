"""Turn taking over a real WebSocket with the real turn models (Silero VAD, Smart Turn
v3.2) on espeak-ng speech, and fake STT/LLM/TTS: semantic end of turn, speculative work
that the user's resumed speech cancels without a trace, backchannels vs barge-in.

Audio is sent faster than real time, so what is asserted is audio-time behaviour (which
silences end a turn), never wall-clock speed."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support.fake_voice import (
    FakeLLM,
    FakeSTT,
    FakeTranscription,
    FakeTTS,
    fake_services,
    silence,
    speak,
)
from tests.support.realtime import live_server, types_of

pytestmark = pytest.mark.asyncio
RATE = 16000
SPEECH_STOPPED = "input_audio_buffer.speech_stopped"


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("speech")

    def say(text: str) -> np.ndarray:
        audio = speak(text, directory, rate=RATE)
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        return audio[:loud[-1] + 1]  # ends on its last voiced sample
    return say


async def stored(live, session_id: str) -> list:  # type: ignore[no-untyped-def]
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    return turns


async def settle(client, seconds: float = 1.5) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every event the server sends in the next ``seconds``."""
    events: list[dict] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                events.append(await client.next(wait_s=seconds))
    except TimeoutError:
        return events


async def test_semantic_vad_is_the_default_and_waits_through_a_mid_sentence_pause(
        tmp_path, voice) -> None:
    """"Can you tell me how to" + 0.7 s + "get to the station?": Smart Turn judges the
    first part unfinished, so at medium eagerness the pause does not end the turn; nor
    does its speculative transcript, which ends on "to" (with the "?" Moonshine adds)."""
    stt = FirstPartSTT("Can you tell me how to?", "Can you tell me how to get to the station?")
    async with live_server(tmp_path) as live:
        live.use(fake_services(stt=stt))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            created = await client.next()
            assert created["session"]["turn_detection"] == {
                "type": "semantic_vad", "eagerness": "auto", "create_response": True,
                "interrupt_response": True}
            await client.send("session.update", session={
                "input_sample_rate": RATE, "turn_detection": {"type": "semantic_vad",
                                                              "eagerness": "medium"}})
            await client.until("session.updated")
            await client.append(np.concatenate([
                silence(0.3), voice("Can you tell me how to"), silence(0.7),
                voice("get to the station?"), silence(0.6)]), RATE, chunk_ms=40)
            events = await client.until("response.done")
            events += await settle(client)
        assert types_of(events).count(SPEECH_STOPPED) == 1
        assert types_of(events).count("response.created") == 1
        stopped = next(e for e in events if e["type"] == SPEECH_STOPPED)
        total_ms = (0.3 + 0.7) * 1000 + (len(voice("Can you tell me how to"))
                                         + len(voice("get to the station?"))) / 16
        assert stopped["audio_end_ms"] == pytest.approx(total_ms, abs=250)
        assert [t.role for t in await stored(live, session_id)] == ["user", "assistant"]


async def test_a_finished_sentence_in_the_transcript_ends_a_turn_smart_turn_doubted(
        tmp_path, voice) -> None:
    """espeak reads "Why is the sky blue?" flatly and Smart Turn scores it 0.10, which
    alone would wait medium's 2 s; the speculative transcript is a finished sentence, so
    the turn ends well inside 0.8 s of silence."""
    from orchestrator.realtime.turns.smart_turn import EAGERNESS, load_model

    question = voice("Why is the sky blue?")
    pause = silence(EAGERNESS["medium"].check_ms / 1000)
    assert load_model().completion(np.concatenate([question, pause])) < 0.5
    async with live_server(tmp_path) as live:
        live.use(fake_services(stt=FakeSTT("Why is the sky blue?")))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await client.next()
            await client.send("session.update", session={"input_sample_rate": RATE})
            await client.until("session.updated")
            await client.append(np.concatenate([silence(0.3), question]), RATE, chunk_ms=40)
            # The microphone stays open in real time while the transcript comes.
            await client.append(silence(0.8), RATE, chunk_ms=40, pace=1.0)
            events = await client.until(SPEECH_STOPPED, wait_s=10)
            assert (await client.until("response.done"))[-1]["response"]["status"] == \
                "completed"
    stopped = events[-1]
    assert stopped["audio_end_ms"] == pytest.approx(300 + len(question) / 16, abs=250)


class FirstPartSTT(FakeSTT):
    """Moonshine-like: the turn up to its first pause transcribes as ``first``."""

    def __init__(self, first: str, whole: str) -> None:
        super().__init__(whole)
        self.first = first

    async def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def,override]
        result = await super().transcribe(audio, **kwargs)
        return FakeTranscription(self.first) if len(audio) < 2.2 * RATE else result


async def test_semantic_vad_ends_a_complete_question_after_a_short_silence(tmp_path,
                                                                           voice) -> None:
    """0.4 s of silence after a finished question ends the turn; server_vad would wait
    its 500 ms, and an unfinished phrase waits up to medium's 2 s."""
    async with live_server(tmp_path) as live:
        live.use(fake_services())
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await client.next()
            await client.send("session.update", session={"input_sample_rate": RATE})
            await client.until("session.updated")
            await client.append(np.concatenate([silence(0.3),
                                                voice("What is the capital of France?"),
                                                silence(0.4)]), RATE, chunk_ms=40)
            done = (await client.until("response.done"))[-1]["response"]
            assert done["status"] == "completed"
            timings = done["timings"]
            assert set(timings) >= {"turn_detection_ms", "stt_ms", "llm_first_token_ms",
                                    "tts_first_audio_ms", "voice_to_voice_ms"}

            # The same unfinished phrase with the same short silence: no turn yet.
            await client.append(np.concatenate([voice("Can you tell me how to"),
                                                silence(0.4)]), RATE, chunk_ms=40)
            later = await settle(client, 1.0)
            assert SPEECH_STOPPED not in types_of(later)


async def test_speculative_work_cancelled_by_resumed_speech_leaves_nothing(tmp_path,
                                                                           voice) -> None:
    """server_vad with 800 ms: the 400 ms pause starts a speculative transcription and
    reply (at 100 ms), which the resumed speech cancels: the client sees one turn, one
    response, and the store holds one user and one assistant turn."""
    stt, llm = FakeSTT("part one and part two"), FakeLLM(delay=0.1)
    async with live_server(tmp_path) as live:
        live.use(fake_services(stt=stt, llm=llm))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await client.next()
            await client.send("session.update", session={
                "input_sample_rate": RATE, "turn_detection": {
                    "type": "server_vad", "silence_duration_ms": 800}})
            await client.until("session.updated")
            first = np.concatenate([silence(0.3), voice("part one"), silence(0.4)])
            await client.append(first, RATE, chunk_ms=40, pace=1.0)  # real time: work starts
            await client.append(np.concatenate([voice("and part two"), silence(1.0)]), RATE,
                                chunk_ms=40)
            events = await client.until("response.done")
            events += await settle(client)
    kinds = types_of(events)
    assert kinds.count("input_audio_buffer.committed") == 1
    assert kinds.count("response.created") == 1 and kinds.count("response.done") == 1
    assert kinds.count("conversation.item.input_audio_transcription.completed") == 1
    # The speculation ran (an extra final transcription and LLM request) and was closed.
    assert len(llm.requests) == 2 and llm.closed_early == 1 and llm.open == 0
    assert [t.role for t in await stored(live, session_id)] == ["user", "assistant"]


class ShortIsOkaySTT(FakeSTT):
    """A turn under 1.6 s (a word, with its prefix and silence) transcribes as ``short``."""

    def __init__(self, short: str = "Okay.") -> None:
        super().__init__("what is the weather like")
        self.short = short

    async def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def,override]
        result = await super().transcribe(audio, **kwargs)
        if len(audio) < 1.6 * RATE:
            return FakeTranscription(self.short)
        return result


LONG_REPLY = [f" Sentence number {i} is here." for i in range(30)]


async def _ask(client, voice) -> None:  # type: ignore[no-untyped-def]
    """Set 16 kHz input and speak a question that a 500 ms silence ends (server_vad)."""
    await client.next()
    await client.send("session.update", session={"input_sample_rate": RATE})
    await client.until("session.updated")
    await client.append(np.concatenate([voice("What will the weather be like"),
                                        silence(0.7)]), RATE, chunk_ms=40)


async def _talk_over_reply(tmp_path, voice, stt: FakeSTT, words: str):  # type: ignore[no-untyped-def]
    llm, tts = FakeLLM(LONG_REPLY, delay=0.1), FakeTTS(delay=0.05)
    async with live_server(tmp_path, realtime_turn_detection="server_vad") as live:
        live.use(fake_services(stt=stt, llm=llm, tts=tts))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await _ask(client, voice)
            await client.until("response.audio.delta")
            await asyncio.sleep(1.0)  # a second of the reply plays
            await client.append(np.concatenate([voice(words), silence(0.7)]), RATE,
                                chunk_ms=40)
            events = await client.until("response.done", wait_s=60)
            events += await settle(client, 1.0)
        return events, await stored(live, session_id), llm


async def test_a_backchannel_during_a_reply_does_not_cancel_it(tmp_path, voice) -> None:
    events, turns, llm = await _talk_over_reply(tmp_path, voice, ShortIsOkaySTT(), "okay")
    done = [e for e in events if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "completed"
    assert "input_audio_buffer.speech_started" in types_of(events)
    heard = [e for e in events if e["type"].endswith("transcription.completed")]
    assert heard[-1]["transcript"] == "Okay."  # the client sees it; nobody answers it
    assert len(done) == 1 and llm.closed_early == 0
    assert [t.role for t in turns] == ["user", "assistant"]
    assert not turns[1].interrupted


async def test_a_short_real_interruption_still_cancels_the_reply(tmp_path, voice) -> None:
    events, turns, llm = await _talk_over_reply(tmp_path, voice, ShortIsOkaySTT("Stop."),
                                                "stop")
    done = [e for e in events if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"
    assert done[0]["response"]["status_details"]["reason"] == "turn_detected"
    assert llm.closed_early >= 1  # the interrupted reply's stream (the answer's may follow)
    assert [t.role for t in turns][:3] == ["user", "assistant", "user"]
    assert turns[1].interrupted and turns[2].text == "Stop."


async def test_speaking_over_a_reply_that_is_sent_but_still_playing_cuts_it(tmp_path,
                                                                            voice) -> None:
    """The whole reply left at once (3 s of audio, TTS far faster than real time), so
    there is nothing to cancel; the user speaks after about a second of it: the stored
    reply is cut to what had played and the client is told where."""
    tts = FakeTTS(ms_per_char=100)  # "Hello there. It is sunny. Bye!": 3 s of audio
    async with live_server(tmp_path, realtime_turn_detection="server_vad") as live:
        live.use(fake_services(tts=tts))
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await _ask(client, voice)
            first = await client.until("response.done")
            assert first[-1]["response"]["status"] == "completed"
            await asyncio.sleep(0.8)
            await client.append(np.concatenate([voice("Wait, what about tomorrow then"),
                                                silence(0.7)]), RATE, chunk_ms=40)
            events = await client.until("conversation.item.truncated")
            await client.until("response.done")
        turns = await stored(live, session_id)
    cut = events[-1]
    assert cut["item_id"] == first[-1]["response"]["item_id"]
    assert 700 <= cut["audio_end_ms"] <= 2500
    full = "Hello there. It is sunny. Bye!"  # 100 ms of audio a character
    assert turns[1].interrupted and turns[1].text and full.startswith(turns[1].text)
    assert len(turns[1].text) * 100 <= cut["audio_end_ms"] + 600 < len(full) * 100
