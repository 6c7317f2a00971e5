"""Silero VAD on real speech (espeak-ng) and on silence, with OpenAI server_vad timing."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.realtime.turns.vad import (
    FRAME,
    RATE,
    SpeechStart,
    SpeechStop,
    TurnDetector,
    load_model,
)
from tests.support.fake_voice import silence, speak

SENTENCE = "Hello there, could you tell me what the weather will be like tomorrow"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    return speak(SENTENCE, tmp_path_factory.mktemp("speech"))


def detector(**overrides) -> TurnDetector:  # type: ignore[no-untyped-def]
    options = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
               "max_turn_ms": 30000} | overrides
    return TurnDetector(load_model().stream(), **options)


def feed_in_chunks(d: TurnDetector, audio: np.ndarray, chunk_ms: int = 20) -> list:
    step = RATE * chunk_ms // 1000
    return [e for i in range(0, len(audio), step) for e in d.feed(audio[i:i + step])]


def test_one_spoken_sentence_is_one_turn(speech: np.ndarray) -> None:
    audio = np.concatenate([silence(1.0), speech, silence(1.5)])
    events = feed_in_chunks(detector(), audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechStop]
    start, stop = events
    speech_ms = len(speech) * 1000 / RATE
    # espeak starts speaking within ~100 ms of its file start; start is reported minus the
    # 300 ms prefix padding.
    assert 600 <= start.audio_start_ms <= 1000
    assert 1000 + speech_ms - 400 <= stop.audio_end_ms <= 1000 + speech_ms + 200
    assert not stop.forced
    # The turn holds the prefix, the speech and the confirming silence.
    assert len(stop.audio) / RATE == pytest.approx((stop.audio_end_ms - start.audio_start_ms)
                                                   / 1000 + 0.5, abs=0.1)


def test_silence_and_noise_give_no_turn_and_bounded_memory() -> None:
    rng = np.random.default_rng(0)
    d = detector()
    for _ in range(120):  # two minutes of faint noise, one second at a time
        assert d.feed((rng.standard_normal(RATE) * 0.002).astype(np.float32)) == []
    assert not d.in_speech
    assert len(d._idle_tail) <= 300 * RATE // 1000
    assert d.position == 120 * RATE // FRAME * FRAME


def test_turn_longer_than_the_limit_is_cut(speech: np.ndarray) -> None:
    events = feed_in_chunks(detector(max_turn_ms=1000), np.concatenate([speech, silence(1)]))
    assert isinstance(events[0], SpeechStart)
    assert isinstance(events[1], SpeechStop) and events[1].forced
    assert len(events[1].audio) <= RATE * 1.1


def test_higher_threshold_and_zero_padding(speech: np.ndarray) -> None:
    events = feed_in_chunks(detector(prefix_padding_ms=0, silence_duration_ms=800),
                            np.concatenate([silence(0.5), speech, silence(1.0)]))
    start = events[0]
    assert isinstance(start, SpeechStart) and 400 <= start.audio_start_ms <= 800


def test_flush_commits_turn_in_progress(speech: np.ndarray) -> None:
    d = detector()
    events = d.feed(np.concatenate([silence(0.5), speech[: RATE // 2]]))
    assert [type(e) for e in events] == [SpeechStart]
    stop = d.flush()
    assert stop is not None and stop.forced and d.flush() is None


def test_probabilities_match_the_official_silero_wrapper(speech: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from silero_vad.utils_vad import OnnxWrapper

    official = OnnxWrapper(str(load_model().path), force_onnx_cpu=True)
    ours = load_model().stream()
    frames = speech[: len(speech) // FRAME * FRAME].reshape(-1, FRAME)[:60]
    expected = [float(official(torch.from_numpy(f.copy()), RATE)) for f in frames]
    got = [ours.probability(f) for f in frames]
    assert np.max(np.abs(np.array(expected) - np.array(got))) < 1e-5
    assert max(got) > 0.9  # it does hear the speech


def test_pauses_are_reported_at_each_length_and_speech_after_them_resumes(
        tmp_path) -> None:
    from orchestrator.realtime.turns.vad import SpeechPause, SpeechResume

    phrase = speak("What is the weather", tmp_path)  # no pause inside
    clock = iter(range(10**6))
    d = detector(silence_duration_ms=800, pause_ms=(100, 200), clock=lambda: next(clock))
    audio = np.concatenate([silence(0.5), phrase, silence(0.4), phrase, silence(1.0)])
    events = feed_in_chunks(d, audio)
    assert [type(e) for e in events] == [SpeechStart, SpeechPause, SpeechPause, SpeechResume,
                                         SpeechPause, SpeechPause, SpeechStop]
    first, second = events[1], events[2]
    assert (first.silence_ms, second.silence_ms) == (100, 200)
    assert first.audio_end_ms == second.audio_end_ms  # the same silence
    # The audio handed over at a pause is the turn so far, its silence included.
    assert len(second.audio) - len(first.audio) >= 100 * RATE // 1000 - FRAME
    stop = events[-1]
    assert stop.audio_end_ms == events[-2].audio_end_ms and not stop.forced
    assert stop.ended_at == events[-2].ended_at  # clock time of the silence's first frame


def test_a_silence_is_timed_from_when_its_first_sample_came(speech) -> None:
    """Its clock is the arrival of the 20 ms chunk that held the silence's first sample,
    not of the later chunk that completed its 32 ms frame: the server's turn detection
    and voice-to-voice times count from when the user fell silent."""
    from orchestrator.realtime.turns.vad import SpeechPause

    now = [0.0]
    d = detector(pause_ms=(100,), clock=lambda: now[0])
    audio = np.concatenate([silence(0.5), speech, silence(1.0)])
    step = RATE * 20 // 1000
    events = []
    for number, start in enumerate(range(0, len(audio), step)):
        now[0] = float(number)  # the clock reads the number of the chunk being fed
        events += d.feed(audio[start:start + step])
    pause = [e for e in events if isinstance(e, SpeechPause)][-1]  # of the final silence
    stop = events[-1]
    assert isinstance(stop, SpeechStop) and stop.audio_end_ms == pause.audio_end_ms
    first_silent_sample = pause.audio_end_ms * RATE // 1000
    assert pause.ended_at == first_silent_sample // step
    assert stop.ended_at == pause.ended_at
    # the frame's last sample came in a later chunk: timing from it would be later
    assert (first_silent_sample + FRAME - 1) // step > pause.ended_at


def test_end_turn_ends_at_the_silence_and_only_during_one(speech) -> None:
    d = detector(silence_duration_ms=2000, pause_ms=(200,))
    events = feed_in_chunks(d, np.concatenate([silence(0.5), speech, silence(0.3)]))
    assert d.paused and d.in_speech
    stop = d.end_turn()
    assert stop is not None and stop.audio_end_ms == events[-1].audio_end_ms
    assert not d.in_speech and not d.paused and d.end_turn() is None
    feed_in_chunks(d, speech[:RATE // 2])  # speaking again: no silence to end at
    assert d.in_speech and d.end_turn() is None
