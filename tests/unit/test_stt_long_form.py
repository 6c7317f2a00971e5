"""Long audio with pauses: where a recording is cut for decoding (export.stt.vad), the
judgement of a version's long-form figures (export.stt.quality), and the Moonshine
runtime's refusal to return a transcript without speech it heard."""

from __future__ import annotations

import numpy as np
import pytest

from export.stt import quality
from export.stt.moonshine import runtime as moonshine
from export.stt.vad import FRAME, SAMPLE_RATE, pieces, speech_frames

FRAMES_PER_S = SAMPLE_RATE / FRAME  # 31.25


def layout(*spans: tuple[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Audio and per-frame speech probabilities for ("speech" | "quiet", seconds) spans."""
    probs = np.concatenate([np.full(round(seconds * FRAMES_PER_S), 0.9 if kind == "speech"
                                    else 0.05, np.float32) for kind, seconds in spans])
    return np.zeros(probs.size * FRAME, np.float32), probs


def seconds(bounds: list[tuple[int, int]]) -> list[tuple[float, float]]:
    return [(round(a / SAMPLE_RATE, 2), round(b / SAMPLE_RATE, 2)) for a, b in bounds]


def test_hysteresis_keeps_speech_through_a_dip_and_ends_it_below_the_lower_threshold() -> None:
    probs = np.array([0.1, 0.6, 0.4, 0.36, 0.34, 0.6], np.float32)
    assert speech_frames(probs, 0.5).tolist() == [False, True, True, True, False, True]


def test_an_utterance_without_long_silence_is_decoded_whole() -> None:
    audio, probs = layout(("quiet", 0.3), ("speech", 2.0), ("quiet", 0.6), ("speech", 1.5),
                          ("quiet", 0.5))
    found = pieces(audio, probs)
    assert found.bounds == [(0, audio.size)]
    assert found.speech_s[0] == pytest.approx(3.5, abs=0.05)


def test_long_silences_split_the_recording_and_are_left_out() -> None:
    audio, probs = layout(("quiet", 2.0), ("speech", 2.0), ("quiet", 3.0), ("speech", 1.5),
                          ("quiet", 1.2), ("speech", 1.0), ("quiet", 2.0))
    found = pieces(audio, probs, split_silence_s=1.0, pad_s=0.5)
    # each stretch keeps 0.5 s of its silence on both sides (half of a 1.2 s gap: 0.6)
    expected = [(1.5, 4.5), (6.5, 9.0), (9.2, 11.2)]
    assert seconds(found.bounds) == [pytest.approx(b, abs=0.05) for b in expected]
    assert found.speech_s == pytest.approx([2.0, 1.5, 1.0], abs=0.05)


def test_neighbours_never_overlap_when_the_silence_is_shorter_than_two_pads() -> None:
    audio, probs = layout(("speech", 2.0), ("quiet", 1.0), ("speech", 2.0), ("quiet", 1.5))
    found = pieces(audio, probs, split_silence_s=1.0, pad_s=0.8)
    (_, a1), (b0, _) = found.bounds
    assert a1 <= b0 and b0 - a1 < FRAME  # the gap is shared at its middle


def test_a_click_between_long_silences_is_dropped_but_silence_alone_is_not() -> None:
    audio, probs = layout(("speech", 2.0), ("quiet", 2.0), ("speech", 0.064),
                          ("quiet", 2.0), ("speech", 1.0))
    assert len(pieces(audio, probs).bounds) == 2
    quiet, none = layout(("quiet", 5.0))
    # nothing heard as speech: decoded whole, so speech the detector missed is not lost
    assert pieces(quiet, none).bounds == [(0, quiet.size)]


@pytest.mark.parametrize("figures, passed", [
    ({"en": {"metric": "wer", "short": 0.06, "long": 0.09, "empty_long": 0}}, True),
    ({"en": {"metric": "wer", "short": 0.06, "long": 0.57, "empty_long": 4}}, False),
    ({"en": {"metric": "wer", "short": 0.06, "long": 0.17, "empty_long": 0}}, False),
    ({"en": {"metric": "wer", "short": 0.02, "long": 0.10, "empty_long": 0}}, True),
    ({"en": {"metric": "wer", "short": 0.05, "long": 0.05, "empty_long": 1}}, False),
    # a tiny random model understands nothing: its long form is not judged
    ({"en": {"metric": "wer", "short": 25.9, "long": 7.2, "empty_long": 0}}, True),
    ({"en": {"metric": "wer", "short": 0.06, "long": 0.06, "empty_long": 0},
      "ko": {"metric": "cer", "short": 0.2, "long": 0.6, "empty_long": 0}}, False),
    (None, False),
    ({}, False),
])
def test_judge_refuses_long_form_far_worse_than_short_form(figures, passed) -> None:  # type: ignore[no-untyped-def]
    ok, detail = quality.judge(figures)
    assert ok is passed, detail
    if figures and not passed:
        assert "long" in detail or "empty" in detail


class SilentModel(moonshine.MoonshineOnnx):
    """The real windowing and guard over a decoder that hears nothing (the failure that
    returned empty transcripts), and a detector that hears 2 s of speech."""

    def __init__(self, heard_text: bool) -> None:  # no graphs: only the guard is under test
        self.config = moonshine.Config()
        self.heard_text = heard_text
        self.vad = self
        self.tokenizer = self.Tokenizer()

    class Tokenizer:
        def decode(self, tokens: list[int]) -> str:
            return "hello there" if tokens else ""

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        frames = audio.size // FRAME
        return np.where(np.arange(frames) < 2 * FRAMES_PER_S, 0.9, 0.05).astype(np.float32)

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return audio

    def decode(self, hidden, max_tokens, **_):  # type: ignore[no-untyped-def]
        # text only once the audio is cut finer than the whole recording
        return ([5, 6], [-0.1, -0.1]) if self.heard_text and hidden.size < 3 * SAMPLE_RATE \
            else ([], [])


def test_speech_that_gives_no_text_is_an_error_not_an_empty_transcript() -> None:
    model = SilentModel(heard_text=False)
    with pytest.raises(moonshine.SpeechLost, match=r"2\.0 s of speech"):
        model.transcribe(np.zeros(4 * SAMPLE_RATE, np.float32))


def test_speech_that_gives_no_text_is_decoded_again_cut_finer() -> None:
    model = SilentModel(heard_text=True)
    windows = model.transcribe(np.zeros(4 * SAMPLE_RATE, np.float32))
    assert [w.text for w in windows] == ["hello there"]

