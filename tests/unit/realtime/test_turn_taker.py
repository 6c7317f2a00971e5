"""The turn taker on its own: audio in (real Silero VAD over espeak-ng speech), typed turn
frames out, with a small harness standing in for the session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import msgspec
import numpy as np
import pytest

from orchestrator.errors import InvalidAudio, InvalidRequest
from orchestrator.realtime.config import initial_config
from orchestrator.realtime.turns import frames
from orchestrator.realtime.turns.speculation import HeldSink, Speculation
from orchestrator.realtime.turns.taker import TurnTaker
from orchestrator.realtime.turns.vad import RATE, load_model
from tests.support.fake_voice import silence, speak
from tests.support.settings import base_settings

SENTENCE = "Hello there, could you tell me what the weather will be like tomorrow"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The sentence without espeak's own trailing silence (silences here are the test's)."""
    audio = speak(SENTENCE, tmp_path_factory.mktemp("speech"))
    return audio[:np.flatnonzero(np.abs(audio) > 0.01)[-1] + 1]


class _Sink:
    async def put(self, event, *, response_id=None, on_sent=None) -> None:  # type: ignore[no-untyped-def]
        pass

    async def drop_response(self, response_id: str) -> int:
        return 0

    async def settled(self, response_id: str) -> None:
        return None


def taker(*, turn_detection: bool = True, **env: str) -> TurnTaker:
    """A taker with server_vad (800 ms of silence ends a turn) over 16 kHz input, or with
    no turn detection."""
    settings = base_settings(**({"REALTIME_TURN_DETECTION": "server_vad",
                                 "REALTIME_SPECULATE_MS": "200",
                                 "VAD_SILENCE_DURATION_MS": "800",
                                 "REALTIME_PARTIAL_INTERVAL_MS": "0",
                                 "REALTIME_MIN_INTERRUPTION_MS": "0"} | env))
    record = SimpleNamespace(id="sess_1", instructions=None, voice=None, language="en")
    config = msgspec.structs.replace(initial_config(record, settings, has_tts=True),  # type: ignore[arg-type]
                                     input_sample_rate=RATE)
    if not turn_detection:
        config = msgspec.structs.replace(config, turn_detection=None)
    made = TurnTaker(config, settings=settings, vad=load_model(),
                     smart_turn=lambda: pytest.fail("no Smart Turn in server_vad"))
    made.start(config)
    return made


class Harness:
    """What the session does with frames, reduced to what the taker needs back."""

    def __init__(self, taker: TurnTaker) -> None:
        self.taker = taker
        self.frames: list[frames.TurnFrame] = []
        self.speculations: list[Speculation] = []

    async def take(self, turn_frames) -> None:  # type: ignore[no-untyped-def]
        async for frame in turn_frames:
            self.frames.append(frame)
            if isinstance(frame, frames.Paused):
                held = HeldSink(_Sink(), lambda coro, name: asyncio.create_task(coro))
                speculation = Speculation(held, asyncio.create_task(asyncio.sleep(60)))
                self.speculations.append(speculation)
                self.taker.speculating(speculation)

    async def feed(self, audio: np.ndarray, speaking: Callable[[], bool] = lambda: False,
                   chunk_ms: int = 20) -> None:
        step = RATE * chunk_ms // 1000
        for i in range(0, len(audio), step):
            await self.take(self.taker.feed(audio[i:i + step], speaking))

    def types(self) -> list[type]:
        return [type(f) for f in self.frames]

    def cancel_all(self) -> None:
        for speculation in self.speculations:
            speculation.cancel()


async def test_a_sentence_starts_pauses_stops_and_commits_with_its_speculation(
        speech: np.ndarray) -> None:
    t = taker()
    h = Harness(t)
    first_item = t.item_id
    await h.feed(np.concatenate([silence(0.5), speech, silence(1.5)]))
    assert h.types()[0] is frames.SpeechStarted
    assert h.types()[-2:] == [frames.SpeechStopped, frames.Committed]
    started, stopped, committed = h.frames[0], h.frames[-2], h.frames[-1]
    assert started.item_id == stopped.item_id == committed.item_id == first_item
    assert started.interrupt_at is not None  # nothing was speaking: a plain barge-in check
    assert committed.previous_item_id is None
    assert committed.epoch == 1 and t.epoch == 1
    assert len(committed.audio) >= len(speech) * 0.8
    assert committed.turn_detection_ms >= 0
    # The last pause's speculation is the one the turn confirms; earlier ones were dropped.
    assert committed.speculation is h.speculations[-1]
    assert frames.Paused in h.types()
    cancelled = sum(isinstance(f, frames.Cancelled) for f in h.frames)
    assert cancelled == len(h.speculations) - 1
    assert t.item_id != first_item  # the next turn gets a new item
    h.cancel_all()

    h.frames.clear()
    await h.feed(np.concatenate([speech, silence(1.5)]))
    second = [f for f in h.frames if isinstance(f, frames.Committed)]
    assert len(second) == 1
    assert second[0].previous_item_id == first_item and second[0].epoch == 2
    h.cancel_all()


async def test_speech_after_a_pause_cancels_the_speculative_turn(speech: np.ndarray) -> None:
    h = Harness(taker())
    await h.feed(np.concatenate([silence(0.5), speech, silence(0.45)]))
    assert frames.Paused in h.types() and frames.Committed not in h.types()
    speculation = h.speculations[-1]
    await h.feed(speech[:RATE // 2])
    await asyncio.sleep(0)
    assert h.types()[-1] is frames.Cancelled
    assert h.frames[-1].reason == "resumed"
    assert speculation.task.cancelled() or speculation.task.cancelling()
    h.cancel_all()


async def test_short_speech_over_a_reply_is_left_to_its_transcript(speech: np.ndarray) -> None:
    h = Harness(taker(REALTIME_MIN_INTERRUPTION_MS="10000", REALTIME_SPECULATE_MS="0"))
    await h.feed(np.concatenate([silence(0.5), speech, silence(1.5)]), speaking=lambda: True)
    assert h.types() == [frames.SpeechStarted, frames.SpeechStopped, frames.ShortSpeech]
    assert h.frames[0].interrupt_at is None  # maybe a backchannel: not interrupted yet
    short = h.frames[-1]
    assert len(short.stop.audio) >= len(speech) * 0.8
    item_id, previous = h.taker.backchannel()
    assert item_id == h.frames[0].item_id and previous is None
    assert h.taker.item_id != item_id


async def test_long_speech_over_a_reply_interrupts_it_once(speech: np.ndarray) -> None:
    h = Harness(taker(REALTIME_MIN_INTERRUPTION_MS="500", REALTIME_SPECULATE_MS="0"))
    await h.feed(np.concatenate([silence(0.5), speech, silence(1.5)]), speaking=lambda: True)
    interrupts = [f for f in h.frames if isinstance(f, frames.Interrupt)]
    assert len(interrupts) == 1
    assert h.types().index(frames.Interrupt) > h.types().index(frames.SpeechStarted)
    # Once it interrupted, the turn ends as any other (the reply was cut already).
    assert h.types()[-2:] == [frames.SpeechStopped, frames.Committed]


async def test_partials_come_while_speaking_and_only_one_at_a_time(speech: np.ndarray) -> None:
    h = Harness(taker(REALTIME_PARTIAL_INTERVAL_MS="500", REALTIME_SPECULATE_MS="0"))
    await h.feed(np.concatenate([silence(0.5), speech, silence(1.5)]))
    partials = [f for f in h.frames if isinstance(f, frames.Partial)]
    assert len(partials) >= 2
    assert all(p.item_id == h.frames[0].item_id for p in partials)
    assert [len(p.audio) for p in partials] == sorted(len(p.audio) for p in partials)

    running = Harness(taker(REALTIME_PARTIAL_INTERVAL_MS="500", REALTIME_SPECULATE_MS="0"))
    blocker = asyncio.create_task(asyncio.sleep(60))
    running.taker.partials.started(blocker)  # one is running: none is due until it ends
    await running.feed(np.concatenate([silence(0.5), speech, silence(1.5)]))
    assert frames.Partial not in running.types()
    blocker.cancel()


async def test_without_turn_detection_audio_waits_for_a_commit() -> None:
    t = taker(turn_detection=False)
    h = Harness(t)
    with pytest.raises(InvalidRequest):
        await h.take(t.commit_now())
    tone = (0.3 * np.sin(np.arange(RATE) * 2 * np.pi * 220 / RATE)).astype(np.float32)
    await h.feed(tone)
    assert h.frames == []
    await h.take(t.commit_now())
    assert h.types() == [frames.Committed]
    assert len(h.frames[0].audio) == RATE
    assert h.frames[0].speculation is None
    with pytest.raises(InvalidRequest):  # the buffer was emptied by the commit
        await h.take(t.commit_now())


async def test_without_turn_detection_the_buffer_is_bounded() -> None:
    t = taker(turn_detection=False, REALTIME_MAX_TURN_SECONDS="1")
    h = Harness(t)
    await h.feed(silence(1.0), chunk_ms=1000)
    with pytest.raises(InvalidAudio):
        await h.feed(silence(0.1), chunk_ms=100)
    assert t.clear() is False
    await h.feed(silence(1.0), chunk_ms=1000)  # cleared: room again


async def test_clear_drops_the_speculative_turn_and_keeps_the_item(speech: np.ndarray) -> None:
    t = taker()
    h = Harness(t)
    await h.feed(np.concatenate([silence(0.5), speech, silence(0.45)]))
    item_id = t.item_id
    assert h.speculations
    assert t.clear() is True
    await asyncio.sleep(0)
    assert h.speculations[-1].task.cancelled()
    assert t.item_id == item_id
    h.frames.clear()
    await h.feed(silence(1.0))
    assert h.frames == []  # the dropped turn does not end later


def test_a_speculative_turn_is_transcribed_with_the_trailing_silence_of_four_frames() -> None:
    """Speculation starts after two silent frames, but the recogniser gets four frames of
    silence (zeros for the two not heard yet): with less, Moonshine dropped the "?" of
    "Why is the sky blue?", and the turn then waited 2 s for its end."""
    from orchestrator.realtime.turns.frames import TRANSCRIBED_SILENCE_MS, Paused
    from orchestrator.realtime.turns.vad import SpeechPause

    speech = np.full(16000, 0.25, np.float32)
    early = Paused("item_1", SpeechPause(1000, speech, 0.0, 64, 1024), epoch=1)
    assert TRANSCRIBED_SILENCE_MS == 128
    assert early.audio.size == 16000 + 1024 and not early.audio[16000:].any()
    assert np.array_equal(early.audio[:16000], speech)
    late = Paused("item_1", SpeechPause(1000, speech, 0.0, 200, 3200), epoch=1)
    assert late.audio is speech  # silence enough already: the audio as heard
