"""Parity of a TTS version: the served path against onnxruntime run directly.

The served path is the version's own runtime (``tts_runtime`` imported from the version
directory, exactly what ``model.py`` runs): text -> sentences -> ids -> audio. The
reference is a fresh ONNX Runtime session on the source graph fed the same ids. Both run
with zero noise (VITS samples noise at run time; zero noise is its deterministic path).
When piper-tts is installed, the ids of Piper voices are also compared with Piper's own.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from export.parity import max_abs_diff, sequences_equal
from export.repository import ParityFigure

DEFAULT_TEXT = {
    "en": "The quick brown fox jumps over the lazy dog. It cost $12.50 on March 3rd, 2024!",
    "ko": "안녕하세요. 오늘은 2024년 3월 15일이고, 사과 3개는 5,000원입니다.",
}
AUDIO_TOLERANCE = 1e-4
PIECES_TOLERANCE = 0.04
"""Mean |log10 mel| between a Kokoro sentence served in pieces and decoded whole: twice
what a 2 pi shift of its sine phase alone gives (0.019; export.tts.kokoro_stream)."""


def load_runtime(version_dir: Path):  # type: ignore[no-untyped-def]
    """Import the version's snapshotted ``tts_runtime`` (fresh, not a cached copy)."""
    for name in [m for m in sys.modules if m == "tts_runtime" or m.startswith("tts_runtime.")]:
        del sys.modules[name]
    sys.path.insert(0, str(version_dir))
    try:
        return importlib.import_module("tts_runtime")
    finally:
        sys.path.remove(str(version_dir))


def parity_text(language: str) -> str:
    return DEFAULT_TEXT.get(language.split("_")[0].split("-")[0], DEFAULT_TEXT["en"])


def check(version_dir: Path, sources: dict[str, Path], texts: dict[str, str]
          ) -> list[ParityFigure]:
    """Per voice: served audio vs onnxruntime on the source graph (and ids vs piper-tts)."""
    import onnxruntime as ort

    runtime = load_runtime(version_dir)
    synthesizer = runtime.Synthesizer(version_dir)
    figures = []
    references: dict[Path, ort.InferenceSession] = {}  # Kokoro's voices share one graph
    for name, voice in synthesizer.voices.items():
        kokoro = voice.config.kind == "kokoro"
        noise = None if kokoro else 0.0  # Kokoro has no noise (and refuses settings of it)
        plan = synthesizer.plan(texts[name], voice=name, noise_scale=noise, noise_w=noise)
        if sources[name] not in references:
            references[sources[name]] = ort.InferenceSession(
                str(sources[name]), providers=["CPUExecutionProvider"])
        reference = references[sources[name]]
        direct, served_ids, piper_ids = [], [], []
        for sentence in plan.sentences:
            ids, _ = voice.text_ids(runtime.normalize.normalize(sentence, plan.language))
            if kokoro:
                direct.append(_kokoro_reference(runtime, reference, voice, ids,
                                                1.0 / plan.length_scale))
                served_ids.append(ids)
                continue
            feeds = {"input": np.asarray([ids], np.int64),
                     "input_lengths": np.asarray([len(ids)], np.int64),
                     "scales": np.asarray([0.0, plan.length_scale, 0.0], np.float32)}
            if voice.config.num_speakers > 1:
                feeds["sid"] = np.asarray([0], np.int64)
            direct.append(np.clip(reference.run(None, feeds)[0].reshape(-1), -1, 1))
            served_ids.append(ids)
            if voice.config.kind == "piper":
                piper_ids.append(_piper_ids(voice, runtime.normalize.normalize(
                    sentence, plan.language)))
        served = [c.audio for c in synthesizer.chunks(plan)]
        if kokoro and voice.config.stream:
            # Pieces of a Kokoro decoder differ from its whole decode by the graph's own
            # rounding (export.tts.kokoro_stream.measure_context): compared as speech.
            from export.tts.kokoro import log_mel_distance

            figures.append(log_mel_distance(f"{name}:served_vs_onnxruntime",
                                            np.concatenate(direct), np.concatenate(served),
                                            PIECES_TOLERANCE))
        else:
            figures.append(max_abs_diff(f"{name}:served_vs_onnxruntime",
                                        np.concatenate(direct), np.concatenate(served),
                                        AUDIO_TOLERANCE))
        if piper_ids and all(p is not None for p in piper_ids):
            figures.append(sequences_equal(f"{name}:phoneme_ids_vs_piper", piper_ids,
                                           served_ids))
    return figures


def _kokoro_reference(runtime, session, voice, ids: list[int], speed: float  # type: ignore[no-untyped-def]
                      ) -> np.ndarray:
    """Kokoro fed directly: the graph's audio trimmed to the voice, then the sentence pause,
    clipped to [-1, 1] as every served chunk is."""
    kokoro = runtime.kokoro
    fed = kokoro.feeds(ids, kokoro.style_row(voice.styles, len(ids)), speed)
    if voice.config.stream:  # the front, then the decoder once over every frame
        *parts, durations = session.run(None, fed)
        raw = voice.decode_frames(parts, fed["style"],
                                  voice.statistics_for(ids, durations.reshape(-1)), 0,
                                  parts[0].shape[-1])
    else:
        raw = session.run(None, fed)[0].reshape(-1)
    pause = np.zeros(int(voice.config.pause_s * voice.config.sample_rate), np.float32)
    return np.clip(np.concatenate([kokoro.trim(raw, voice.config.sample_rate), pause]), -1, 1)


def _piper_ids(voice, text: str) -> list[int] | None:  # type: ignore[no-untyped-def]
    """Piper's own ids for one sentence, its espeak sentences joined as the runtime joins
    them; None when piper-tts is not installed."""
    try:
        from piper.phoneme_ids import phonemes_to_ids
        from piper.phonemize_espeak import EspeakPhonemizer
    except ImportError:
        return None
    groups = EspeakPhonemizer().phonemize(voice.config.espeak_voice, text)
    joined: list[str] = []
    for group in groups:
        if joined and group:
            joined.append(" ")
        joined.extend(group)
    return phonemes_to_ids(joined, voice.config.phoneme_id_map)
