"""The realtime protocol over a real WebSocket (uvicorn + websockets) with fake services:
event order, server VAD on espeak speech, barge-in, truncation, bad input, disconnects."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
import websockets

from tests.support.fake_voice import (
    FakeLLM,
    FakeMemory,
    FakeSTT,
    FakeTTS,
    fake_services,
    silence,
    speak,
)
from tests.support.realtime import audio_of, live_server

pytestmark = pytest.mark.asyncio
MANUAL_16K = {"turn_detection": None, "input_sample_rate": 16000, "output_sample_rate": 16000}
LONG_REPLY = [f" Sentence number {i} is here." for i in range(40)]


@pytest.fixture
async def live(tmp_path):  # type: ignore[no-untyped-def]
    """Sessions start with server_vad here (a fixed 500 ms silence ends a turn), which
    these protocol tests time against; semantic_vad (the default) has its own tests."""
    async with live_server(tmp_path, memory_enabled=True,
                           realtime_turn_detection="server_vad") as server:
        yield server


@pytest.fixture(scope="module")
def question(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """A spoken question at 24 kHz."""
    return speak("What will the weather be like tomorrow in Seoul", tmp_path_factory.mktemp("q"),
                 rate=24000)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def realtime_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("realtime ")]


async def stored_turns(live, session_id: str) -> list:  # type: ignore[no-untyped-def]
    turns, _ = await live.runtime.conversations.list_turns(session_id)
    return turns


async def start_manual(client) -> None:  # type: ignore[no-untyped-def]
    """Past session.created, with manual turns at 16 kHz."""
    await client.next()
    await client.send("session.update", session=MANUAL_16K)
    await client.next()


async def manual_turn(client, wait_for: str = "response.done") -> list[dict]:  # type: ignore[no-untyped-def]
    """One spoken turn and its reply, up to ``wait_for``."""
    await client.append(tone(0.8), 16000)
    await client.send("input_audio_buffer.commit")
    await client.send("response.create")
    return await client.until(wait_for)


async def spoken_turn(live, services: dict, question: np.ndarray, *, lead_s: float,  # type: ignore[no-untyped-def]
                      until: str = "response.done") -> tuple[str, list[dict]]:
    """A new session of alice's speaks ``question`` at 24 kHz after ``lead_s`` of silence,
    then a second of silence; returns the session id and its events up to ``until``."""
    live.use(services)
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.append(np.concatenate([silence(lead_s, 24000), question,
                                            silence(1.0, 24000)]), 24000, chunk_ms=40)
        return session_id, await client.until(until)


# --- refusals ---------------------------------------------------------------------------

@pytest.mark.parametrize(("case", "code", "error_code"), [
    ("unknown", 4404, "not_found"), ("other_user", 4403, "forbidden"),
    ("ended", 4410, "conflict")])
async def test_refused_connections_get_an_error_then_a_close_code(live, case, code,
                                                                  error_code) -> None:
    live.use(fake_services())
    session_id = await live.new_session("alice")
    if case == "ended":
        await live.runtime.conversations.end_session(session_id)
    user, sid = {"unknown": ("alice", "nope"), "other_user": ("mallory", session_id),
                 "ended": ("alice", session_id)}[case]
    async with live.connect(user, sid) as client:
        error = await client.next()
        assert error["type"] == "error" and error["error"]["code"] == error_code
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await client.next()
        assert closed.value.rcvd.code == code


async def test_without_stt_or_llm_the_connection_is_refused_4503(live) -> None:
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        assert (await client.next())["error"]["code"] == "service_disabled"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await client.next()
        assert closed.value.rcvd.code == 4503


# --- a manual turn, end to end ----------------------------------------------------------

async def test_manual_turn_event_order_audio_and_stored_turns(live) -> None:
    memory, llm = FakeMemory(), FakeLLM()
    live.use(fake_services(llm=llm, memory=memory))
    session_id = await live.new_session("alice", instructions="Be brief.")
    async with live.connect("alice", session_id) as client:
        created = await client.next()
        assert created["type"] == "session.created"
        assert created["session"]["turn_detection"]["type"] == "server_vad"
        assert created["session"]["instructions"] == "Be brief."
        await client.send("session.update", session=MANUAL_16K)
        updated = await client.next()
        assert updated["type"] == "session.updated"
        assert updated["session"]["turn_detection"] is None
        await client.append(tone(0.8), 16000)
        from orchestrator.realtime.audio import float_to_pcm16
        await client.send_raw(float_to_pcm16(tone(0.2)))  # binary frames are audio too
        await client.send("input_audio_buffer.commit", event_id="c1")
        events = await client.until("conversation.item.input_audio_transcription.completed")
        assert [e["type"] for e in events] == [
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed"]
        assert events[-1]["transcript"] == "what is the weather like"
        user_item = events[0]["item_id"]
        await client.send("response.create")
        events = await client.until("response.done")
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.done"
    assert types.index("response.text.delta") < types.index("response.audio.delta")
    assert types.index("response.audio_transcript.delta") < types.index("response.audio.delta")
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["text"] == "Hello there. It is sunny. Bye!"
    assert done["usage"] == {"input_tokens": 11, "output_tokens": 9, "total_tokens": 20,
                             "cached_tokens": 0}
    # FakeTTS: 20 ms per character at 22050 Hz, resampled to the declared 16 kHz output.
    pcm = audio_of(events)
    assert len(pcm) / 2 / 16 == pytest.approx(20 * len("Hello there.It is sunny.Bye!"), abs=3)
    assert done["audio_ms"] == pytest.approx(len(pcm) / 2 / 16, abs=1)
    assert {"llm_first_token_ms", "llm_total_ms", "tts_first_audio_ms",
            "tts_total_ms"} <= set(done["timings"])
    user, assistant = await stored_turns(live, session_id)
    assert (user.role, user.text, user.audio_duration_ms) == \
        ("user", "what is the weather like", 1000.0)
    assert user.stt_ms is not None
    assert (assistant.role, assistant.text, assistant.interrupted) == \
        ("assistant", "Hello there. It is sunny. Bye!", False)
    assert assistant.llm_first_token_ms is not None and assistant.tts_first_audio_ms is not None
    assert (assistant.prompt_tokens, assistant.completion_tokens) == (11, 9)
    # The prompt: the instructions, then the recalled memory in front of the user's words
    # (the system prompt stays the same every turn); memory written.
    messages = llm.requests[0]
    assert (messages[0].role, messages[0].content) == ("system", "Be brief.")
    assert messages[-1].role == "user" and "the user likes rain" in messages[-1].content
    assert messages[-1].content.endswith("\n\nwhat is the weather like")
    assert memory.queries == ["what is the weather like"]
    for _ in range(50):
        if len(memory.remembered) == 2:
            break
        await asyncio.sleep(0.02)
    # both written once the reply has ended, in either order (rows are keyed by turn id)
    assert sorted(t.role for t in memory.remembered) == ["assistant", "user"]
    assert user_item.startswith("item_")



async def test_a_looping_reply_ends_incomplete_and_stores_what_was_said(live) -> None:
    looping = ["Octopuses", " are", " big", "."] + [" they", " fit", " in", " a", " city",
                                                   " block", ","] * 40
    llm = FakeLLM(looping)
    live.use(fake_services(llm=llm))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await start_manual(client)
        events = await manual_turn(client)
    done = events[-1]["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "repetition"}
    assert llm.closed_early == 1 and llm.produced < 40
    assert done["text"] == "Octopuses are big. they fit in a city block,"  # one copy spoken
    _, assistant = await stored_turns(live, session_id)
    assert assistant.text == done["text"] and not assistant.interrupted


async def test_a_reply_cut_by_its_token_limit_ends_incomplete(live) -> None:
    live.use(fake_services(llm=FakeLLM(finish="length")))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await start_manual(client)
        done = (await manual_turn(client))[-1]["response"]
    assert done["status"] == "incomplete" and done["text"] == "Hello there. It is sunny. Bye!"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}


# --- server VAD ---------------------------------------------------------------------------

async def test_server_vad_turn_from_speech_at_24khz_faster_than_real_time(live,
                                                                          question) -> None:
    stt = FakeSTT()
    _, events = await spoken_turn(live, fake_services(stt=stt), question, lead_s=0.5)
    first = [e["type"] for e in events]
    order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
             "input_audio_buffer.committed",
             "conversation.item.input_audio_transcription.completed", "response.created",
             "response.audio.delta", "response.done"]
    assert [first.index(t) for t in order] == sorted(first.index(t) for t in order)
    started = events[first.index("input_audio_buffer.speech_started")]
    stopped = events[first.index("input_audio_buffer.speech_stopped")]
    assert 100 <= started["audio_start_ms"] <= 600
    speech_ms = len(question) / 24
    assert stopped["audio_end_ms"] == pytest.approx(500 + speech_ms, abs=400)
    # The final transcription got the turn at 16 kHz as it was at the first pause:
    # prefix + speech + 128 ms of silence (REALTIME_SPECULATE_MS, 64, of it heard, zeros for
    # the rest). It ran speculatively and was adopted when the 500 ms silence ended the
    # turn (earlier calls are partials).
    assert stt.calls[-1] / 16 == pytest.approx(stopped["audio_end_ms"]
                                              - started["audio_start_ms"] + 128, abs=120)
    assert events[-1]["response"]["status"] == "completed"
    assert events[-1]["response"]["timings"]["voice_to_voice_ms"] > 0


async def test_minutes_of_silence_make_no_turn_and_keep_the_connection(live) -> None:
    stt = FakeSTT()
    live.use(fake_services(stt=stt))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.append(silence(120, 24000), 24000, chunk_ms=1000)
        await client.send("input_audio_buffer.commit")
        error = await client.next()
        assert error["type"] == "error" and "empty" in error["error"]["message"]
    assert stt.calls == []


async def test_barge_in_cancels_the_reply_and_stores_only_what_was_heard(live,
                                                                        question) -> None:
    llm = FakeLLM(LONG_REPLY, delay=0.06)  # still generating when the user interrupts
    tts = FakeTTS(delay=0.05)
    live.use(fake_services(llm=llm, tts=tts))
    session_id = await live.new_session("alice")
    turn = np.concatenate([question, silence(1.0, 24000)])
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.append(turn, 24000)
        await client.until("response.audio.delta")
        await asyncio.sleep(1.0)  # a second of the reply plays
        await client.append(turn, 24000)  # the user talks over the reply
        events = await client.until("response.done")
        done = events[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
        assert "input_audio_buffer.speech_started" in [e["type"] for e in events]
        second = await client.until("response.done", wait_s=60)
        assert second[-1]["response"]["status"] == "completed"
    assert llm.closed_early == 1 and llm.open == 0 and tts.open == 0
    turns = await stored_turns(live, session_id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    cut = turns[1]
    assert cut.interrupted and cut.text == done["text"]
    full = "".join(LONG_REPLY).strip()
    assert cut.text and full.startswith(cut.text) and len(cut.text) < len(full)
    assert cut.audio_duration_ms == pytest.approx(done["audio_ms"], abs=1)
    # Far more audio was sent than played (TTS runs ahead of real time); the stored
    # reply is what had played when the user began to speak: about 1 s, 20 ms a letter.
    assert cut.text.startswith("Sentence number 0 is here.")
    assert 20 * len(cut.text) < min(done["audio_ms"] - 1500, 3000)
    assert turns[3].text == full and not turns[3].interrupted


async def test_truncate_clamps_to_audio_sent_and_rewrites_the_stored_turn(live) -> None:
    live.use(fake_services())
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.send("session.update", session=MANUAL_16K)
        await client.append(tone(0.5), 16000)
        await client.send("input_audio_buffer.commit")
        await client.send("response.create")
        done = (await client.until("response.done"))[-1]["response"]
        item = done["item_id"]
        await client.send("conversation.item.truncate", item_id=item, audio_end_ms=10**7)
        truncated = await client.until("conversation.item.truncated")
        assert truncated[-1]["audio_end_ms"] == int(done["audio_ms"])
        # "Hello there." is 12 chars * 20 ms = 240 ms; cut inside "It is sunny." (240 ms).
        await client.send("conversation.item.truncate", item_id=item, audio_end_ms=400)
        truncated = await client.until("conversation.item.truncated")
        assert truncated[-1]["audio_end_ms"] == 400
        await client.send("conversation.item.truncate", item_id="item_nope", audio_end_ms=1)
        error = await client.until("error")
        assert error[-1]["error"]["code"] == "not_found"
    assistant = (await stored_turns(live, session_id))[-1]
    assert assistant.text == "Hello there. It is" and assistant.interrupted


# --- robustness -------------------------------------------------------------------------

async def test_bad_input_gets_error_events_and_the_connection_stays_up(live) -> None:
    live.use(fake_services())
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        bad = [("{not json", "malformed JSON"),
               ('{"type": "response.explode"}', "invalid event"),
               ('{"type": "input_audio_buffer.append", "audio": "@@@"}', "base64"),
               ('{"type": "session.update", "session": {"input_sample_rate": 44100}}',
                "input_sample_rate"),
               ('{"type": "session.update", "session": {"voice": "a b"}}', "voice"),
               ('{"type": "session.update", "session": {"turn_detection": '
                '{"type": "fuzzy_vad"}}}', "turn_detection"),
               ('{"type": "session.update", "session": {"turn_detection": '
                '{"type": "semantic_vad", "eagerness": "eager"}}}', "eagerness"),
               ('{"type": "session.update", "session": {"turn_detection": '
                '{"type": "semantic_vad", "silence_duration_ms": 300}}}',
                "silence_duration_ms"),
               ('[1, 2]', "invalid event"),
               ('{"a":' * 20000 + "1" + "}" * 20000, "nested too deeply"),
               ('{"type": "input_audio_buffer.commit", "event_id": "e7"}', "no speech"),
               ('{"type": "response.cancel"}', "no response")]
        for text, needle in bad:
            await client.send_raw(text)
            error = await client.next()
            assert error["type"] == "error", text
            assert error["error"]["type"] == "invalid_request_error"
            assert needle in error["error"]["message"], (text, error)
        await client.send_raw(b"\x01\x02\x03")  # odd-length PCM16 frame
        assert (await client.next())["error"]["code"] == "invalid_audio"
        await client.send_raw(bytes(17 * 1024 * 1024))  # over the 16 MiB frame limit
        assert (await client.next())["error"]["code"] == "payload_too_large"
        assert client.seen[-2]["event_id"] is None
        await client.send("session.update", session={"voice": "en_US-joe-medium"})
        assert (await client.next())["type"] == "session.updated"


async def test_manual_buffer_is_bounded(tmp_path) -> None:
    async with live_server(tmp_path, realtime_max_turn_seconds=2.0) as live:
        live.use(fake_services())
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            await client.next()
            await client.send("session.update", session=MANUAL_16K)
            await client.next()
            await client.append(tone(3.0), 16000, chunk_ms=500)
            errors = [await client.next() for _ in range(2)]
            assert all(e["error"]["code"] == "invalid_audio" for e in errors)
            assert "buffer is full" in errors[0]["error"]["message"]


async def test_disconnect_mid_reply_leaks_no_task_or_stream(live) -> None:
    llm = FakeLLM(LONG_REPLY, delay=0.02)
    tts = FakeTTS(delay=0.05)
    live.use(fake_services(llm=llm, tts=tts))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.send("session.update", session=MANUAL_16K)
        await client.append(tone(0.5), 16000)
        await client.send("input_audio_buffer.commit")
        await client.send("response.create")
        await client.until("response.audio.delta")
    for _ in range(200):
        if not realtime_tasks() and llm.open == 0:
            break
        await asyncio.sleep(0.05)
    assert realtime_tasks() == []
    assert llm.open == 0 and llm.closed_early == 1 and tts.open == 0
    turns = await stored_turns(live, session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].interrupted and turns[1].text.startswith("Sentence number 0")


async def test_one_sessions_failure_does_not_touch_another(live) -> None:
    class PickySTT(FakeSTT):
        async def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def,override]
            if len(audio) < 16000 * 0.4:
                raise RuntimeError("decoder exploded")
            return await super().transcribe(audio, **kwargs)

    live.use(fake_services(stt=PickySTT()))
    broken, healthy = await live.new_session("bob"), await live.new_session("carol")
    async with live.connect("bob", broken) as a, live.connect("carol", healthy) as b:
        for client in (a, b):
            await client.next()
            await client.send("session.update", session=MANUAL_16K)
            await client.next()
        await a.append(tone(0.2), 16000)
        await b.append(tone(0.6), 16000)
        await a.send("input_audio_buffer.commit")
        await b.send("input_audio_buffer.commit")
        await b.send("response.create")
        failed = await a.until("conversation.item.input_audio_transcription.failed")
        assert failed[-1]["error"]["code"] == "internal_error"
        done = await b.until("response.done")
        assert done[-1]["response"]["status"] == "completed"
        await a.send("session.update", session={"instructions": "still here"})
        assert (await a.next())["session"]["instructions"] == "still here"
    assert await stored_turns(live, broken) == []
    assert len(await stored_turns(live, healthy)) == 2
    assert (await live.runtime.conversations.get_session(broken)).instructions == "still here"


async def test_response_create_while_one_runs_is_a_conflict(live) -> None:
    live.use(fake_services(llm=FakeLLM(LONG_REPLY, delay=0.02), tts=FakeTTS()))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.send("session.update", session={"turn_detection": None,
                                                     "modalities": ["text"]})
        await client.next()
        await client.send("response.create")
        await client.until("response.text.delta")
        await client.send("response.create")
        error = await client.until("error")
        assert error[-1]["error"]["code"] == "conflict"
        await client.send("response.cancel")
        done = await client.until("response.done")
        assert done[-1]["response"]["status_details"]["reason"] == "client_cancelled"
        assert "response.audio.delta" not in [e["type"] for e in client.seen]


class GrowingSTT(FakeSTT):
    """Hears one more word of SENTENCE per 0.4 s of audio (a model that transcribes what
    has been said so far), and records every call."""

    SENTENCE = ["what", "will", "the", "weather", "be", "like", "tomorrow", "in", "seoul"]

    async def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def]
        self.text = " ".join(self.SENTENCE[:max(1, int(len(audio) / 16000 / 0.4))])
        return await super().transcribe(audio, **kwargs)


async def test_partial_transcripts_while_speaking_add_up_to_the_final_one(live,
                                                                         question) -> None:
    stt = GrowingSTT()
    _, events = await spoken_turn(
        live, fake_services(stt=stt), question, lead_s=0.3,
        until="conversation.item.input_audio_transcription.completed")
    types = [e["type"] for e in events]
    stopped = types.index("input_audio_buffer.speech_stopped")
    deltas = [e for e in events if e["type"].endswith("transcription.delta")]
    early = [e for e in deltas if events.index(e) < stopped]
    assert len(early) >= 2  # partials arrived while the user was still speaking
    final = events[-1]["transcript"]
    assert "".join(e["delta"] for e in deltas) == final
    assert {e["item_id"] for e in deltas} == {events[-1]["item_id"]}
    # The final transcript is a one-shot transcription of the whole committed turn.
    whole = stt.calls[-1]
    assert whole == max(stt.calls) and len(stt.calls) >= 3
    assert final == " ".join(GrowingSTT.SENTENCE[:max(1, int(whole / 16000 / 0.4))])
    # Each decode was offered the previous partial's tokens as a draft.
    assert stt.drafts[0] == [] and all(stt.drafts[1:])


class PrefillLLM(FakeLLM):
    """Records the prompts prefilled while the user speaks (``ChatService.prefill``)."""

    def __init__(self) -> None:
        super().__init__()
        self.prefills: list[list] = []

    async def prefill(self, messages, params, prompt=None):  # type: ignore[no-untyped-def]
        self.prefills.append(list(messages))
        return SimpleNamespace(prompt_tokens=11, completion_tokens=1, cached_tokens=0)


def said(message) -> str:  # type: ignore[no-untyped-def]
    """A prompt's user message without the memories put in front of it."""
    return message.content.rsplit("\n", 1)[-1]


async def test_the_words_so_far_are_prefilled_while_the_user_speaks(live, question) -> None:
    stt, llm = GrowingSTT(), PrefillLLM()
    session_id, events = await spoken_turn(live, fake_services(stt=stt, llm=llm), question,
                                           lead_s=0.3)
    final = next(e["transcript"] for e in events
                 if e["type"] == "conversation.item.input_audio_transcription.completed")
    prefilled = [said(messages[-1]) for messages in llm.prefills]
    assert prefilled and all(final.startswith(text) for text in prefilled)
    assert prefilled[-1] != final or len(prefilled) > 1  # the words so far, while speaking
    # the same instructions and history as the reply's prompt: only the user's words differ
    assert len(llm.requests) == 1 and said(llm.requests[0][-1]) == final
    assert all(messages[:-1] == llm.requests[0][:-1] for messages in llm.prefills)
    # the transcript's tail: the end of the turn the last partial had not heard, more than
    # nothing (the final pass heard the silence the partials had not) and less than the turn
    timings = events[-1]["response"]["timings"]
    committed = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert 0 < timings["stt_tail_ms"] < committed["audio_end_ms"]
    # a prefill is invisible: one response, nothing stored but the turn and its reply
    assert [e["type"] for e in events].count("response.created") == 1
    assert [t.role for t in await stored_turns(live, session_id)] == ["user", "assistant"]


async def test_a_cleared_turn_leaves_no_partial_text_behind(live, question) -> None:
    """input_audio_buffer.clear mid-speech keeps the item id for the next turn: the deltas
    of that next turn must still add up to its own final transcript."""
    stt = GrowingSTT()
    live.use(fake_services(stt=stt))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await client.next()
        await client.append(np.concatenate([silence(0.3, 24000), question]), 24000,
                            chunk_ms=40)
        await client.until("conversation.item.input_audio_transcription.delta")
        await client.send("input_audio_buffer.clear")
        await client.until("input_audio_buffer.cleared")
        GrowingSTT.SENTENCE, saved = ["a", "different", "question", "comes", "next", "now",
                                      "with", "more", "words"], GrowingSTT.SENTENCE
        try:
            await client.append(np.concatenate([silence(1.0, 24000), question,
                                                silence(1.0, 24000)]), 24000, chunk_ms=40)
            events = await client.until(
                "conversation.item.input_audio_transcription.completed")
        finally:
            GrowingSTT.SENTENCE = saved
    final = events[-1]["transcript"]
    deltas = [e["delta"] for e in events if e["type"].endswith("transcription.delta")]
    assert final.startswith("a different") and "".join(deltas) == final


async def test_without_the_smart_turn_model_sessions_fall_back_to_server_vad(tmp_path) -> None:
    async with live_server(tmp_path, smart_turn_model_path=str(tmp_path / "missing.onnx")) \
            as live:
        live.use(fake_services())
        session_id = await live.new_session("alice")
        async with live.connect("alice", session_id) as client:
            created = await client.next()
            assert created["session"]["turn_detection"]["type"] == "server_vad"
            error = await client.next()
            assert error["type"] == "error" and "semantic_vad is unavailable" in \
                error["error"]["message"]
            assert error["error"]["param"] == "session.turn_detection.type"
            await client.send("session.update", session={
                "turn_detection": {"type": "semantic_vad"}})
            refused = await client.next()
            assert refused["type"] == "error" and "semantic_vad" in refused["error"]["message"]
            await client.send("session.update", session={"instructions": "still here"})
            updated = await client.next()
            assert updated["session"]["turn_detection"]["type"] == "server_vad"


# --- one socket per session, and ended sessions -----------------------------------------

async def test_ending_the_session_closes_its_socket_and_stores_nothing_after(live) -> None:
    import httpx

    live.use(fake_services())
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as client:
        await start_manual(client)
        await manual_turn(client)
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            ended = await http.post(f"/api/sessions/{session_id}/end")
        assert ended.status_code == 200
        error = await client.next()
        assert error["type"] == "error" and error["error"]["code"] == "conflict"
        assert "has ended" in error["error"]["message"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(5):
                await client.append(tone(0.8), 16000)
                await client.send("input_audio_buffer.commit")
                await client.send("response.create")
                await client.next()
        assert closed.value.rcvd.code == 4410
    turns = await stored_turns(live, session_id)
    assert [t.role for t in turns] == ["user", "assistant"]
    record = await live.runtime.conversations.get_session(session_id)
    assert all(t.created_at <= record.ended_at for t in turns)
    assert live.runtime.live_sessions.count() == 0


async def test_a_second_socket_replaces_the_first_and_histories_never_interleave(live) -> None:
    llm = FakeLLM(LONG_REPLY, delay=0.02)
    live.use(fake_services(llm=llm))
    session_id = await live.new_session("alice")
    async with live.connect("alice", session_id) as first:
        await start_manual(first)
        await manual_turn(first, "response.audio.delta")  # a reply is being spoken
        async with live.connect("alice", session_id) as second:
            # The old socket is told why, then closed, before the new one starts.
            events = await first.until("error")
            assert events[-1]["error"]["code"] == "conflict"
            assert "replaces this one" in events[-1]["error"]["message"]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await first.next()
            assert closed.value.rcvd.code == 4409
            assert (await second.next())["type"] == "session.created"
            turns_at_handover = [t.role for t in await stored_turns(live, session_id)]
            await second.send("session.update", session=MANUAL_16K)
            await second.next()
            await manual_turn(second)
    roles = [t.role for t in await stored_turns(live, session_id)]
    # The first socket's turn (its reply cut where it was heard), then the second's.
    assert turns_at_handover == ["user", "assistant"]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert live.runtime.live_sessions.count() == 0


async def test_voice_and_language_the_models_lack_are_refused_when_set(tmp_path) -> None:
    from tests.support.offered import offered_repository

    repository = offered_repository(tmp_path / "repository")
    async with live_server(tmp_path, model_repository=str(repository),
                           realtime_turn_detection="server_vad") as server:
        server.use(fake_services())
        session_id = await server.new_session("alice")
        async with server.connect("alice", session_id) as client:
            await client.next()
            await client.send("session.update", session={"voice": "nonexistent-voice"})
            error = await client.next()
            assert error["error"]["param"] == "session.voice"
            await client.send("session.update",
                              session={"input_audio_transcription": {"language": "zz"}})
            error = await client.next()
            assert error["error"]["param"] == "session.input_audio_transcription.language"
            await client.send("response.create", response={"voice": "nonexistent-voice"})
            assert (await client.next())["error"]["param"] == "response.voice"
            await client.send("session.update", session={
                "voice": "kss", "input_audio_transcription": {"language": "ko"}})
            updated = await client.next()
            assert updated["type"] == "session.updated"
        record = await server.runtime.conversations.get_session(session_id)
        assert (record.voice, record.language) == ("kss", "ko")


# --- a WebSocket fuzzer ---------------------------------------------------------------------

EVENT_TYPES = ["session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
               "input_audio_buffer.clear", "response.create", "response.cancel",
               "conversation.item.truncate", "conversation.item.create", "no.such.event"]
FIELDS = ["session", "audio", "response", "item_id", "audio_end_ms", "content_index",
          "event_id", "turn_detection", "voice", "instructions", "modalities",
          "input_audio_transcription", "input_sample_rate", "temperature"]
VALUES = [None, True, False, 0, -1, 2**70, 1e308, -1e-308, "", "x" * 20_000, "\x00\x07",
          "💥 한국어", {}, [], [[[]]], {"type": "server_vad", "threshold": 9},
          {"type": "semantic_vad", "eagerness": {"a": 1}}, {"language": "zz"},
          {"voice": "../../etc"}, "AAAA", "!!notbase64!!", ["audio", "text", "smell"]]


def hostile_frames(seed: int, count: int) -> list[str | bytes]:
    """Well-formed and malformed events, broken JSON and odd binary frames."""
    import json
    import random

    rng = random.Random(seed)
    frames: list[str | bytes] = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.55:
            event = {"type": rng.choice(EVENT_TYPES)}
            for _ in range(rng.randint(0, 3)):
                event[rng.choice(FIELDS)] = rng.choice(VALUES)
            if rng.random() < 0.3:
                event["session"] = {rng.choice(FIELDS): rng.choice(VALUES)}
            frames.append(json.dumps(event))
        elif kind < 0.7:
            text = json.dumps({"type": rng.choice(EVENT_TYPES), "x": rng.choice(VALUES)})
            frames.append(text[:rng.randint(0, len(text))])  # cut anywhere
        elif kind < 0.8:
            frames.append(rng.choice(["null", "[]", "42", '"str"', "NaN", "{", "}",
                                      '{"type": null}', '{"type": 7}', "\ufeff{}",
                                      '{"a":' * 5000 + "1" + "}" * 5000]))
        else:
            frames.append(rng.randbytes(rng.choice([0, 1, 3, 7, 480, 4801])))
    return frames


async def test_hostile_frames_get_error_events_and_a_session_beside_is_untouched(
        live, caplog) -> None:
    llm = FakeLLM(delay=0.01)
    live.use(fake_services(llm=llm))
    target, bystander = await live.new_session("alice"), await live.new_session("bob")
    frames = hostile_frames(seed=20261201, count=400)

    async def well_behaved() -> list[str]:
        async with live.connect("bob", bystander) as client:
            await start_manual(client)
            for _ in range(3):
                done = (await manual_turn(client))[-1]
                assert done["response"]["status"] == "completed"
        return [t.role for t in await stored_turns(live, bystander)]

    async def hostile() -> list[dict]:
        async with live.connect("alice", target) as client:
            await client.next()
            for frame in frames:
                await client.send_raw(frame)
            # Still up and in order: a last valid update is answered after everything sent.
            await client.send("session.update", session={"instructions": "still here"})
            while True:
                event = await client.next(wait_s=60)
                if event["type"] == "session.updated" and \
                        event["session"]["instructions"] == "still here":
                    return client.seen

    roles, seen = await asyncio.gather(well_behaved(), hostile())
    assert roles == ["user", "assistant"] * 3
    errors = [e for e in seen if e["type"] == "error"]
    assert len(errors) > 200  # most frames are refused, each with an event
    assert {e["error"]["type"] for e in errors} <= {"invalid_request_error"}, \
        [e for e in errors if e["error"]["type"] != "invalid_request_error"][:3]
    assert "Traceback" not in caplog.text and "realtime event failed" not in caplog.text
