"""Smart Turn v3.2 (the pipecat-ai wheel's ONNX model): our features equal pipecat's own
extractor, and the model tells a finished question from an unfinished phrase."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from orchestrator.realtime.turns.smart_turn import (
    EAGERNESS,
    TAIL_MS,
    default_model_path,
    end_aligned,
    features,
    load_model,
)
from tests.support.fake_voice import silence, speak


def pipecat_features():  # type: ignore[no-untyped-def]
    """pipecat's numpy Whisper feature extractor, loaded from the wheel's file (importing
    the package would need its dependencies)."""
    path = default_model_path().parents[1] / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features


@pytest.fixture(scope="module")
def say(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("speech")

    def spoken(text: str) -> np.ndarray:
        audio = speak(text, directory)
        return audio[:np.flatnonzero(np.abs(audio) > 0.01)[-1] + 1]
    return spoken


@pytest.mark.parametrize("seconds", [1.0, 8.0, 11.5])
def test_features_equal_pipecats_extractor(say, seconds: float) -> None:
    rng = np.random.default_rng(0)
    audio = np.concatenate([say("What is the capital of France?"),
                            0.01 * rng.standard_normal(int(seconds * 16000))]).astype(np.float32)
    window = audio[-128000:]
    reference = pipecat_features()(np.pad(window, (128000 - len(window), 0)))
    ours = features(audio)
    assert ours.shape == (80, 800) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_a_finished_question_scores_high_and_an_unfinished_phrase_low(say) -> None:
    model = load_model()
    pause = silence(EAGERNESS["medium"].check_ms / 1000)
    finished = model.completion(np.concatenate([say("What is the capital of France?"), pause]))
    unfinished = model.completion(np.concatenate([say("Can you tell me how to"), pause]))
    threshold = EAGERNESS["medium"].threshold
    assert finished >= threshold > unfinished
    assert 0.0 <= unfinished < finished <= 1.0


def test_eagerness_orders_its_silences_and_thresholds() -> None:
    low, medium, high = EAGERNESS["low"], EAGERNESS["medium"], EAGERNESS["high"]
    assert EAGERNESS["auto"] == medium
    assert high.check_ms <= medium.check_ms <= low.check_ms
    assert high.threshold < medium.threshold < low.threshold
    assert high.max_silence_ms < medium.max_silence_ms < low.max_silence_ms


def test_streamed_24khz_chunks_score_as_the_whole_recording(say) -> None:
    """Realtime audio arrives in 20 ms chunks at 24 kHz: resampled as one stream, the
    turn model sees what it would see of the whole recording (a seam per chunk lowered a
    finished question's score below the threshold)."""
    from orchestrator.realtime.audio import StreamResampler, resample

    audio16 = np.concatenate([silence(0.3), say("What is the capital of France?"),
                              silence(0.2)])
    audio24 = resample(audio16, 16000, 24000)
    stream = StreamResampler(24000, 16000)
    streamed = np.concatenate([stream(audio24[i:i + 480]) for i in range(0, len(audio24), 480)])
    whole = resample(audio24, 24000, 16000)
    model = load_model()
    assert abs(len(streamed) - len(whole)) < 16000 * 0.01  # the filter delay: under 10 ms
    assert model.completion(streamed) == pytest.approx(model.completion(whole), abs=0.05)
    assert model.completion(streamed) >= EAGERNESS["medium"].threshold


def paused_turns(speech: np.ndarray, shifts_ms: list[int]) -> list:  # type: ignore[type-arg]
    """What the turn detector reports at medium's check for ``speech`` arriving
    ``shift`` ms later (after a first turn, as in a conversation)."""
    from orchestrator.realtime.turns import vad

    pauses = []
    for shift in shifts_ms:
        detector = vad.TurnDetector(vad.load_model().stream(), threshold=0.5,
                                    prefix_padding_ms=300, silence_duration_ms=2000,
                                    max_turn_ms=60_000,
                                    pause_ms=(EAGERNESS["medium"].check_ms,))
        audio = np.concatenate([silence(0.3 + shift / 1000), speech, silence(0.4)])
        events = [e for i in range(0, len(audio), 640) for e in detector.feed(audio[i:i + 640])]
        pauses.append(next(e for e in events if isinstance(e, vad.SpeechPause)))
    return pauses


def test_the_verdict_does_not_depend_on_where_speech_ends_inside_a_vad_frame(say) -> None:
    """The same words arriving 8, 16 or 24 ms later end in another place of the VAD's
    32 ms frame: the turn as reported scored 0.19-0.66 for this phrase; cut at its own end
    it scores the same each time, and stays unfinished."""
    model = load_model()
    scores = [model.completion(end_aligned(p.audio, p.silence_samples))
              for p in paused_turns(say("Can you tell me how to"), [0, 8, 16, 24])]
    assert max(scores) - min(scores) < 0.01
    assert scores[0] < EAGERNESS["medium"].threshold


def test_the_cut_keeps_the_tail_after_the_last_loud_sample_and_pads_what_is_missing() -> None:
    tone = (0.5 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    turn = np.concatenate([silence(0.2), tone, silence(0.3)])
    cut = end_aligned(turn, silence_samples=int(0.25 * 16000))
    assert len(cut) == 3200 + 8000 + TAIL_MS * 16
    assert np.array_equal(cut[:11200], turn[:11200])
    short = end_aligned(turn[:11200 + 800], silence_samples=800)  # 50 ms heard so far
    assert len(short) == 11200 + TAIL_MS * 16 and not short[12000:].any()
    assert np.array_equal(end_aligned(turn, silence_samples=len(turn)), turn)  # all silence


@pytest.mark.parametrize(("text", "language", "finished"), [
    ("Why is the sky blue?", "en", True), ("Tell me about it.", None, True),
    ("What would you like?", "en", True), ("Can you tell me how to?", "en", False),
    ("So I was thinking that maybe we could.", "en", False), ("Where is the?", "en", False),
    ("I would like to order a.", "en", False), ("what is the weather like", "en", False),
    ("Why is the sky blue?", "ko", False), ("", "en", False)])
def test_a_transcript_reads_finished_when_it_ends_a_sentence_on_a_word_that_can(
        text: str, language: str | None, finished: bool) -> None:
    from orchestrator.realtime.turns.smart_turn import transcript_finished

    assert transcript_finished(text, language) is finished
