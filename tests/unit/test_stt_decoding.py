"""How a Whisper version decodes: its own settings (decoding.json) and the config's
override, sized windows with headroom, the repetition guard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from export.stt.runtime.decoding import loop_start
from export.stt.runtime.transcribe import N_FRAMES, decoding_options, window_frames
from export.stt.testspeech import espeak_speaker
from export.stt.vad import packaged_model, speech_gate


def test_a_greedy_loop_is_found_where_it_starts() -> None:
    assert loop_start([1, 2, 3, 9, 8, 7, 9, 8, 7, 9, 8, 7, 9, 8, 7], 4) == 6
    assert loop_start([1, 2, 5, 5, 5, 5, 5, 5, 5, 5], 4) == 3  # one token: twice as many
    assert loop_start([1, 2, 5, 5, 5, 5, 5, 5, 5], 4) is None  # "ha ha ha" is speech
    assert loop_start([1, 2, 3, 9, 8, 7, 9, 8, 7, 9, 8, 7], 4) is None
    assert loop_start([], 4) is None


def test_a_whole_sentence_said_again_is_a_loop() -> None:
    """A 40-token Korean sentence repeated between timestamps (the text tokens alone)."""
    sentence = list(range(100, 140))
    assert loop_start([1, 2, *sentence, *sentence], 4) == 42
    assert loop_start([1, 2, *sentence, *sentence[:30]], 4) is None
    assert loop_start([1, 2, *sentence], 4) is None


def test_sized_windows_keep_a_second_of_headroom() -> None:
    assert window_frames(587, 500) == 700  # 5.87 s of audio: a 7 s window, not 6
    assert window_frames(120, 500) == 500  # the minimum
    assert window_frames(2950, 500) == N_FRAMES  # never past 30 s
    assert window_frames(587, N_FRAMES) == N_FRAMES  # 30 s windows: openai-whisper's


def test_the_version_decodes_as_it_was_scored_unless_the_config_overrides(tmp_path: Path
                                                                         ) -> None:
    assert decoding_options(tmp_path, 0.0) == {"min_window_seconds": 30.0, "max_repeats": 0,
                                               "silence_gate": False}  # exported before
    (tmp_path / "decoding.json").write_text(json.dumps({
        "min_window_seconds": 5.0, "max_repeats": 4, "silence_gate": True}))
    assert decoding_options(tmp_path, 0.0) == {"min_window_seconds": 5.0, "max_repeats": 4,
                                               "silence_gate": True}
    assert decoding_options(tmp_path, 10.0)["min_window_seconds"] == 10.0


def test_the_silence_gate_hears_speech_and_nothing_else(tmp_path: Path) -> None:
    """The detector a Whisper version carries: silence and faint noise never reach the
    decoder (so they cannot come back as "You"), speech does."""
    shutil.copyfile(packaged_model(), tmp_path / "vad.onnx")
    gate = speech_gate(tmp_path)
    assert gate is not None and speech_gate(tmp_path / "none") is None
    rng = np.random.default_rng(0)
    assert not gate(np.zeros(16_000 * 3, np.float32))
    assert not gate(rng.normal(0, 0.01, 16_000 * 3).astype(np.float32))
    assert gate(espeak_speaker()("how many people live in london"))
