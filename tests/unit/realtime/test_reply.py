"""The reply pipeline (LLM -> sentences -> TTS -> send queue) with fake services."""

from __future__ import annotations

import asyncio
import base64
import dataclasses

import msgspec
import numpy as np
import pytest

from orchestrator.chat.tools import ToolCallParser
from orchestrator.realtime.protocol.outbound import ConnectionClosed, OutboundQueue, write_loop
from orchestrator.realtime.reply.plan import Pacing, ReplyPlan
from orchestrator.realtime.reply.playback import SpokenSentence, spoken_text
from orchestrator.realtime.reply.stages import Reply
from tests.support.fake_voice import FakeAudioChunk, FakeLLM, FakeToolLLM, FakeTTS


def plan(audio: bool = True, rate: int = 24000) -> ReplyPlan:
    return ReplyPlan(response_id="resp_1", item_id="item_1", messages=[], params=None,
                     audio=audio, output_rate=rate, end_of_speech=0.0)


class Collector:
    """A socket that records what it was sent, optionally slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.events: list[dict] = []
        self.delay = delay
        self.audio_seen = asyncio.Event()

    async def send(self, payload: bytes) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.events.append(msgspec.json.decode(payload))
        if self.events[-1]["type"] == "response.audio.delta":
            self.audio_seen.set()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]


async def run_reply(reply: Reply, sink: Collector):  # type: ignore[no-untyped-def]
    writer = asyncio.create_task(write_loop(reply.outbound, sink.send))
    outcome = await reply.run()
    await asyncio.sleep(0.05)
    await reply.outbound.close()
    await writer
    return outcome


async def test_completed_reply_streams_text_transcript_and_audio() -> None:
    llm, tts, sink = FakeLLM(), FakeTTS(), Collector()
    reply = Reply(plan(), llm, tts, OutboundQueue(16))
    outcome = await run_reply(reply, sink)
    assert outcome.status == "completed"
    assert tts.texts == ["Hello there.", "It is sunny.", "Bye!"]
    text = "".join(e["delta"] for e in sink.events if e["type"] == "response.text.delta")
    assert text == "Hello there. It is sunny. Bye!"
    transcript = "".join(e["delta"] for e in sink.events
                         if e["type"] == "response.audio_transcript.delta")
    assert transcript == "Hello there. It is sunny. Bye!"
    pcm = b"".join(base64.b64decode(e["delta"]) for e in sink.events
                   if e["type"] == "response.audio.delta")
    # 20 ms of audio per character, resampled 22050 -> 24000 Hz, PCM16.
    expected_ms = 20 * len("Hello there.It is sunny.Bye!")
    assert len(pcm) / 2 / 24 == pytest.approx(expected_ms, abs=3)
    assert outcome.audio_ms == pytest.approx(expected_ms, abs=3)
    assert outcome.text == "Hello there. It is sunny. Bye!"
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (11, 9)
    t = outcome.timings
    assert t.llm_first_token_ms is not None and t.llm_total_ms is not None
    assert t.tts_first_audio_ms is not None and t.voice_to_voice_ms is not None
    assert llm.open == 0 and tts.open == 0


async def test_speech_starts_before_the_llm_finishes() -> None:
    llm = FakeLLM(["First sentence.", " Second", " part", " of", " it."], delay=0.05)
    sink = Collector()
    reply = Reply(plan(), llm, FakeTTS(), OutboundQueue(16))
    await run_reply(reply, sink)
    types = sink.types()
    first_audio = types.index("response.audio.delta")
    last_text = len(types) - 1 - types[::-1].index("response.text.delta")
    assert first_audio < last_text


async def test_cancel_closes_llm_and_tts_streams_and_keeps_only_sent_text() -> None:
    llm = FakeLLM(["One.", " Two.", " Three.", " Four.", " Five."], delay=0.03)
    tts = FakeTTS(delay=0.02)
    sink = Collector()
    outbound = OutboundQueue(16)
    reply = Reply(plan(), llm, tts, outbound)
    writer = asyncio.create_task(write_loop(outbound, sink.send))
    task = asyncio.create_task(reply.run())
    await sink.audio_seen.wait()
    assert reply.cancel("turn_detected")
    outcome = await task
    await outbound.close()
    await writer
    assert outcome.status == "cancelled" and outcome.cancel_reason == "turn_detected"
    assert llm.open == 0 and llm.closed_early == 1
    assert tts.open == 0
    assert "Five." not in outcome.text and outcome.text.startswith("One.")
    spoken = [s.text for s in reply.playback.spoken]
    assert outcome.text == " ".join(spoken)
    assert not reply.cancel("again")


async def test_slow_reader_stalls_the_llm_instead_of_buffering() -> None:
    llm = FakeLLM([f" Sentence {i}." for i in range(500)])
    outbound = OutboundQueue(8)  # nobody reads it
    reply = Reply(plan(), llm, FakeTTS(), outbound, queue_size=4)
    task = asyncio.create_task(reply.run())
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert len(outbound) == 8
    assert llm.produced < 30  # send queue + stage queues + one sentence in synthesis
    reply.cancel("disconnect")
    outcome = await task
    assert outcome.status == "cancelled" and outcome.text == "" and llm.open == 0


async def test_text_only_reply_keeps_sent_deltas() -> None:
    sink = Collector()
    tts = FakeTTS()
    outcome = await run_reply(Reply(plan(audio=False), FakeLLM(), tts, OutboundQueue(16)), sink)
    assert outcome.text == "Hello there. It is sunny. Bye!"
    assert "response.audio.delta" not in sink.types() and tts.texts == []
    assert outcome.timings.voice_to_voice_ms is None


async def test_llm_failure_fails_the_reply_and_closes_tts() -> None:
    class Broken(FakeLLM):
        async def stream(self, messages, params):  # type: ignore[no-untyped-def,override]
            yield type("C", (), {"text": "Partial.", "finish_reason": None,
                                 "prompt_tokens": None, "completion_tokens": None})()
            raise RuntimeError("triton went away")

    tts = FakeTTS()
    outcome = await run_reply(Reply(plan(), Broken(), tts, OutboundQueue(16)), Collector())
    assert outcome.status == "failed" and "triton went away" in str(outcome.error)
    assert tts.open == 0


def test_spoken_text_cuts_the_sentence_playing_at_audio_end() -> None:
    spoken = [SpokenSentence("one two three four", 0, 1000),
              SpokenSentence("five six seven eight", 1000, 2000)]
    assert spoken_text(spoken) == "one two three four five six seven eight"
    assert spoken_text(spoken, 1500) == "one two three four five six"
    assert spoken_text(spoken, 1000) == "one two three four"
    assert spoken_text(spoken, 0) == ""


async def test_a_queue_full_of_reply_audio_still_takes_the_callers_events() -> None:
    queue = OutboundQueue(2)
    for i in range(2):
        await queue.put({"delta": i}, response_id="r1")
    held = asyncio.create_task(queue.put({"delta": 2}, response_id="r1"))
    await asyncio.sleep(0.01)
    assert not held.done()  # the reply waits for the reader
    # the speech that may interrupt the reply does not wait behind it
    await asyncio.wait_for(queue.put({"type": "input_audio_buffer.speech_started"}), 1)
    await asyncio.wait_for(queue.put({"type": "input_audio_buffer.speech_stopped"}), 1)
    # and has a bound of its own: a reader that never reads holds twice the queue at most
    blocked = asyncio.create_task(queue.put({"type": "conversation.item.added"}))
    await asyncio.sleep(0.01)
    assert not blocked.done() and len(queue) == 4
    assert await queue.drop_response("r1") == 2  # a barge-in drops the reply's audio
    await asyncio.wait_for(blocked, 1)
    sent = [msgspec.json.decode((await queue.get()).payload) for _ in range(2)]
    await asyncio.wait_for(held, 1)  # the reply's delta waits for the reader, as before
    sent += [msgspec.json.decode((await queue.get()).payload) for _ in range(2)]
    assert sent == [{"type": "input_audio_buffer.speech_started"},
                    {"type": "input_audio_buffer.speech_stopped"},
                    {"type": "conversation.item.added"}, {"delta": 2}]


async def test_outbound_queue_drops_a_cancelled_reply_and_unblocks_on_close() -> None:
    queue = OutboundQueue(2)
    await queue.put({"a": 1}, response_id="r1")
    await queue.put({"b": 2})
    blocked = asyncio.create_task(queue.put({"c": 3}, response_id="r1"))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert await queue.drop_response("r1") == 1
    await blocked
    assert [msgspec.json.decode((await queue.get()).payload) for _ in range(2)] == \
        [{"b": 2}, {"c": 3}]
    await queue.close()
    with pytest.raises(ConnectionClosed):
        await queue.get()


async def test_sentences_the_voice_cannot_speak_are_transcript_only_with_one_warning() -> None:
    """Korean through an English voice would be noise: those sentences go out as
    transcript without audio, with one voice_language_unsupported error event first;
    the English sentence is spoken, and the stored text keeps them all."""
    import dataclasses

    llm = FakeLLM(["안녕하세요.", " Hello there.", " 반갑습니다!"])
    tts, sink = FakeTTS(), Collector()
    reply = Reply(dataclasses.replace(plan(), voice="en_US-joe-medium",
                                      voice_languages=frozenset({"en"})),
                  llm, tts, OutboundQueue(16))
    outcome = await run_reply(reply, sink)
    assert outcome.status == "completed"
    assert tts.texts == ["Hello there."]
    errors = [e for e in sink.events if e["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["error"]["code"] == "voice_language_unsupported"
    assert errors[0]["error"]["param"] == "session.voice"
    assert "Korean" in errors[0]["error"]["message"]
    transcript = "".join(e["delta"] for e in sink.events
                         if e["type"] == "response.audio_transcript.delta")
    assert transcript == "안녕하세요. Hello there. 반갑습니다!"
    assert outcome.text == "안녕하세요. Hello there. 반갑습니다!"
    assert reply.warnings == [errors[0]["error"]]
    # a voice that speaks the language, or one whose language is unknown: all spoken
    for languages in (frozenset({"ko", "en"}), None):
        tts = FakeTTS()
        reply = Reply(dataclasses.replace(plan(), voice_languages=languages),
                      FakeLLM(["안녕하세요.", " Hello there."]), tts, OutboundQueue(16))
        await run_reply(reply, Collector())
        assert tts.texts == ["안녕하세요.", "Hello there."] and not reply.warnings


async def test_a_spoken_reply_says_its_words_and_sends_its_calls_as_items() -> None:
    """The words before a call are spoken; the call's markup never reaches speech or the
    transcript; two calls are two items after the message, in order."""
    llm = FakeToolLLM([["Checking both.", " <tool_call>\n", '{"name": "weather", "arguments"',
                        ': {"city": "Oslo"}}\n</tool_call>\n<tool_call>\n{"name": "time", ',
                        '"arguments": {}}\n</tool_call>']])
    tts, sink = FakeTTS(), Collector()
    tooling = dataclasses.replace(plan(), prompt="[rendered]",
                                  tool_parser=ToolCallParser({"weather", "time"}))
    reply = Reply(tooling, llm, tts, OutboundQueue(64))
    outcome = await run_reply(reply, sink)
    assert outcome.status == "completed"
    assert llm.prompts == ["[rendered]"]
    assert tts.texts == ["Checking both."]
    assert reply.delivered_text() == "Checking both."
    done = [e for e in sink.events if e["type"] == "response.function_call_arguments.done"]
    assert [(e["name"], e["arguments"], e["output_index"]) for e in done] == [
        ("weather", '{"city": "Oslo"}', 1), ("time", "{}", 2)]
    assert [c.name for c in outcome.function_calls] == ["weather", "time"]
    assert [c.call_id for c in outcome.function_calls] == [e["call_id"] for e in done]
    added = [e for e in sink.events if e["type"] == "response.output_item.added"]
    assert [e["item"]["status"] for e in added] == ["in_progress", "in_progress"]


async def test_a_cancelled_reply_makes_no_call() -> None:
    llm = FakeToolLLM([['<tool_call>\n{"name": "weather", ', '"arguments": {}}', "</tool_call>"]],
                      delay=0.2)
    sink = Collector()
    tooling = dataclasses.replace(plan(audio=False), prompt="p",
                                  tool_parser=ToolCallParser({"weather"}))
    reply = Reply(tooling, llm, None, OutboundQueue(16))
    task = asyncio.create_task(run_reply(reply, sink))
    await asyncio.sleep(0.3)
    reply.cancel("client_cancelled")
    outcome = await task
    assert outcome.status == "cancelled" and outcome.function_calls == []
    assert "response.function_call_arguments.done" not in sink.types()


async def test_a_looping_reply_is_stopped_its_stream_closed_and_its_audio_kept() -> None:
    looping = ["Octopuses", " are", " big", "."] + [" they", " fit", " in", " a",
                                                   " city", " block", ","] * 40
    llm, tts, sink = FakeLLM(looping), FakeTTS(), Collector()
    reply = Reply(plan(), llm, tts, OutboundQueue(64))
    outcome = await run_reply(reply, sink)
    assert outcome.status == "completed" and outcome.incomplete_reason == "repetition"
    assert llm.closed_early == 1 and llm.produced < 40  # the second copy ends it
    # spoken: the loop's first copy only (its second copy went out as text deltas)
    assert outcome.text == "Octopuses are big. they fit in a city block,"
    assert " ".join(tts.texts) == outcome.text
    text = "".join(e["delta"] for e in sink.events if e["type"] == "response.text.delta")
    assert text.count("city block") == 2
    assert "response.audio.delta" in sink.types()


async def test_a_looping_text_reply_keeps_the_first_copy() -> None:
    looping = ["Yes"] + [" they", " fit", " in", " a", " city", " block", ","] * 10
    llm, sink = FakeLLM(looping), Collector()
    reply = Reply(plan(audio=False), llm, None, OutboundQueue(256))
    outcome = await run_reply(reply, sink)
    assert outcome.incomplete_reason == "repetition" and llm.closed_early == 1
    assert outcome.text == reply.delivered_text() == "Yes they fit in a city block,"
    text = "".join(e["delta"] for e in sink.events if e["type"] == "response.text.delta")
    assert text.startswith(outcome.text) and text.count("city block") == 2


async def test_loops_are_spoken_to_the_end_when_the_guard_is_off() -> None:
    looping = ["Yes"] + [" they", " fit", " in", " a", " city", " block", ","] * 10
    llm = FakeLLM(looping)
    unguarded = dataclasses.replace(plan(audio=False), pacing=Pacing(stop_loops=False))
    reply = Reply(unguarded, llm, None, OutboundQueue(256))
    outcome = await run_reply(reply, Collector())
    assert outcome.incomplete_reason is None and llm.closed_early == 0
    assert outcome.text.count("city block") == 10


async def test_a_reply_cut_by_the_token_limit_says_so() -> None:
    reply = Reply(plan(audio=False), FakeLLM(finish="length"), None, OutboundQueue(16))
    outcome = await run_reply(reply, Collector())
    assert (outcome.status, outcome.incomplete_reason) == ("completed", "max_output_tokens")
    done = await run_reply(Reply(plan(audio=False), FakeLLM(), None, OutboundQueue(16)),
                           Collector())
    assert done.incomplete_reason is None


SLOW_SENTENCE = ["Hi.", " Then", " one", " two", " three", " four", " five", " six", "."]


@pytest.mark.parametrize(("ms_per_char", "chunks"), [
    (2000.0, ["Hi.", "Then one two three four five six."]),  # 6 s of audio ahead
    (20.0, None)])  # 60 ms of audio ahead: the words go as they come
async def test_the_next_chunk_goes_early_when_playback_would_run_dry(ms_per_char,
                                                                     chunks) -> None:
    llm, tts = FakeLLM(SLOW_SENTENCE, delay=0.03), FakeTTS(ms_per_char=ms_per_char)
    outcome = await run_reply(Reply(plan(), llm, tts, OutboundQueue(64)), Collector())
    assert outcome.text == "Hi. Then one two three four five six."
    if chunks is not None:
        assert tts.texts == chunks
    else:
        assert tts.texts[0] == "Hi." and len(tts.texts) >= 5
        assert " ".join(tts.texts) == outcome.text


async def test_a_collected_reply_goes_by_sentence_however_little_audio_is_ahead() -> None:
    llm, tts = FakeLLM(SLOW_SENTENCE, delay=0.03), FakeTTS(ms_per_char=20.0)
    collected = dataclasses.replace(plan(), live=False)  # /api/voice-chat: nobody listens yet
    await run_reply(Reply(collected, llm, tts, OutboundQueue(64)), Collector())
    assert tts.texts == ["Hi.", "Then one two three four five six."]


class SilentEndTTS(FakeTTS):
    """Each chunk of text as 100 ms of tone and then 170 ms of silence (a voice's
    end-of-utterance pause), split across two audio chunks inside the silence."""

    async def stream(self, text, *, voice=None, speed=1.0):  # type: ignore[no-untyped-def,override]
        self.texts.append(text)
        rate = self.rate
        tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(rate // 10) / rate)
        audio = np.concatenate([tone, np.zeros(rate * 170 // 1000)]).astype(np.float32)
        cut = len(tone) + rate * 50 // 1000
        for part in (audio[:cut], audio[cut:]):
            yield FakeAudioChunk(part, rate, text)


async def test_a_first_chunk_cut_between_words_loses_its_closing_silence() -> None:
    """"Sure thing my" then "friend.": the pause the voice puts after "my" would stumble
    between two words of one clause, so only 40 ms of it is sent; a sentence keeps its
    own, and silence inside a chunk (here across its two audio chunks) is kept."""
    tts, sink = SilentEndTTS(), Collector()
    fragment = dataclasses.replace(plan(rate=22050), pacing=Pacing(3, 3))
    llm = FakeLLM(["Sure", " thing", " my", " friend", "."], delay=0.02)
    await run_reply(Reply(fragment, llm, tts, OutboundQueue(64)), sink)
    assert tts.texts == ["Sure thing my", "friend."]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in sink.events
                   if e["type"] == "response.audio.delta")
    samples = np.frombuffer(pcm, "<i2")
    assert len(samples) / 22.05 == pytest.approx((100 + 40) + (100 + 170), abs=2)
    loud = np.flatnonzero(np.abs(samples) > 300)
    gap_ms = np.diff(loud).max() / 22.05  # the silence between the two chunks' tones
    assert gap_ms == pytest.approx(40, abs=2)


class PlentyAhead(Reply):
    """Seconds of audio still to play: the chunker waits for text with a timeout."""

    def _audio_ahead_s(self) -> float | None:
        return 5.0


@pytest.mark.parametrize("ticks", range(6))
async def test_a_cancel_landing_as_text_arrives_ends_the_wait_for_text(ticks) -> None:
    """The cancel may come in the same few loop steps as the text it waits for; it must
    still end the stage (asyncio.wait_for on Python 3.11 can swallow it, and the cancelled
    reply then waited for text forever: a drain that never finished)."""
    reply = PlentyAhead(plan(), FakeLLM(), FakeTTS(), OutboundQueue(16))
    source: asyncio.Queue = asyncio.Queue()

    async def chunk() -> None:
        async for _ in reply._sentences(source):
            pass

    task = asyncio.create_task(chunk())
    await asyncio.sleep(0.01)  # waiting for text now
    source.put_nowait(" word")
    for _ in range(ticks):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled()
