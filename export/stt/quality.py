"""Short-form and long-form error rates of an ``stt`` version, and the judgement that
``validate`` and ``promote`` apply to them.

Export measures them through the version's own runtime, in process, on known speech
(:mod:`export.stt.testspeech`): single utterances, and recordings of several sentences
with 0.5-3 s silences. The figures go into the manifest (``extra["quality"]``)::

    {"en": {"metric": "wer", "short": 0.05, "long": 0.06, "short_clips": 10,
            "long_clips": 4, "long_seconds": [10.4, ...], "speech": "espeak-ng en-us"}}

A version whose long-form error rate is far worse than its short-form one loses speech
in long audio (Moonshine before 2026-12-05 returned empty transcripts for a third of such
recordings) and is refused (:func:`judge`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export import progress
from export.stt import testspeech
from export.stt.scoring import cer, wer

FAR_WORSE_RATIO = 2.0
FAR_WORSE_MARGIN = 0.10
"""Long-form error rates above both ``short × FAR_WORSE_RATIO`` and ``short +
FAR_WORSE_MARGIN`` are far worse (0.06 short-form allows up to 0.16 long-form: on twenty
sentences a few words move either figure by a few points)."""
UNDERSTOOD = 0.5
"""A version whose short-form error rate is at least this does not transcribe the test
speech of that language at all (a tiny random test model): its long form is not judged."""

Transcribe = Callable[[np.ndarray, str], str]
"""(16 kHz audio, language) -> transcript."""


@dataclass(frozen=True)
class Language:
    """One language the figures are measured in: its sentences, who speaks them, and how
    errors are counted."""

    code: str
    sentences: tuple[str, ...]
    speaker: testspeech.Speaker
    speech: str
    """Who spoke the test audio, recorded beside the figures."""
    metric: str = "wer"


def english() -> Language:
    return Language("en", testspeech.ENGLISH, testspeech.voices(
        testspeech.espeak_speaker("en-us", 150), testspeech.espeak_speaker("en-us", 185)),
        "espeak-ng en-us, 150 and 185 words per minute")


def korean() -> Language:
    return Language("ko", testspeech.KOREAN, testspeech.kokoro_speaker(),
                    "Kokoro-82M ko-kumo (int8 graph)", metric="cer")


def languages(multilingual: bool) -> list[Language]:
    """The languages a version is scored in: English for every version, Korean too for a
    multilingual one (when the Kokoro packages are there to speak it)."""
    from export.errors import SourceError

    scored = [english()]
    if multilingual:
        try:
            scored.append(korean())
        except SourceError as exc:
            progress.note(f"ko: not scored ({exc})")
    return scored


def measure(transcribe: Transcribe, language: Language) -> dict[str, Any]:
    score = cer if language.metric == "cer" else wer
    short = testspeech.short_clips(language.sentences, language.speaker)
    long = testspeech.long_clips(language.sentences, language.speaker)
    started = time.perf_counter()
    short_text = [transcribe(clip.audio, language.code) for clip in short]
    long_text = [transcribe(clip.audio, language.code) for clip in long]
    return {"metric": language.metric,
            "short": round(score([c.text for c in short], short_text), 4),
            "long": round(score([c.text for c in long], long_text), 4),
            "short_clips": len(short), "long_clips": len(long),
            "long_seconds": [round(c.audio.size / testspeech.SAMPLE_RATE, 1) for c in long],
            "empty_long": sum(1 for text in long_text if not text.strip()),
            "speech": language.speech,
            "seconds": round(time.perf_counter() - started, 1)}


def judge(quality: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether a version's figures allow serving it, and why (for the validation report)."""
    if not quality:
        return False, ("the manifest has no long-form figures (exported before "
                       "2026-12-05): export the checkpoint again")
    notes, passed = [], True
    for code, figures in sorted(quality.items()):
        metric = figures["metric"].upper()
        short, long = float(figures["short"]), float(figures["long"])
        shown = f"{code}: {metric} {short:.3f} short-form, {long:.3f} long-form"
        if short >= UNDERSTOOD:
            notes.append(f"{shown} (does not transcribe the test speech; not judged)")
        elif figures.get("empty_long"):
            passed = False
            notes.append(f"{shown}: {figures['empty_long']} of "
                         f"{figures.get('long_clips', '?')} long recordings came back empty")
        elif long > short * FAR_WORSE_RATIO and long > short + FAR_WORSE_MARGIN:
            passed = False
            notes.append(f"{shown}: long audio with pauses loses speech")
        else:
            notes.append(shown)
    return passed, "; ".join(notes)


def measure_all(transcribe: Transcribe, *, multilingual: bool) -> dict[str, dict]:
    """Short- and long-form error rates in every language the version is scored in, as
    the manifest keeps them; what :func:`judge` will say of them is shown as export runs."""
    scores = {}
    for language in languages(multilingual):
        with progress.step(f"{language.code}: error rates on short and long-form speech"):
            scores[language.code] = figures = measure(transcribe, language)
        progress.note(f"{language.code}: {figures['metric']} {figures['short']:.3f} "
                      f"short-form, {figures['long']:.3f} long-form "
                      f"({figures['long_clips']} recordings of "
                      f"{min(figures['long_seconds']):.0f}-{max(figures['long_seconds']):.0f} s)")
    passed, detail = judge(scores)
    if not passed:
        progress.note(f"quality: {detail} (validate and promote will refuse this version)")
    return scores


def whisper_transcriber(version_dir: Path, parameters: dict[str, Any]) -> Transcribe:
    """The version's Whisper runtime as its model.py builds it (``parameters``: the spec's
    typed parameters)."""
    from export.stt.runtime import Transcriber, WhisperOnnx, WhisperTokenizer
    from export.stt.runtime.frontend import load_mel_filters
    from export.stt.runtime.transcribe import decoding_options
    from export.stt.vad import speech_gate

    model = WhisperOnnx(version_dir)
    tokenizer = WhisperTokenizer(version_dir)
    options = decoding_options(version_dir, float(parameters["min_window_seconds"]))
    options["speech_gate"] = speech_gate(version_dir) if options.pop("silence_gate") else None
    transcriber = Transcriber(
        model, tokenizer,
        load_mel_filters(str(version_dir / "mel_filters.npz"), model.dims["n_mels"]),
        no_speech_threshold=float(parameters["no_speech_threshold"]),
        logprob_threshold=float(parameters["logprob_threshold"]),
        condition_on_previous_text=bool(parameters["condition_on_previous_text"]),
        **options)

    def transcribe(audio: np.ndarray, language: str) -> str:
        return transcriber.run(transcriber.prepare(audio, language=language)).text
    return transcribe


def moonshine_transcriber(version_dir: Path) -> Transcribe:
    from export.stt.moonshine.runtime import MoonshineOnnx, SpeechLost

    model = MoonshineOnnx(version_dir)

    def transcribe(audio: np.ndarray, language: str) -> str:
        try:
            return " ".join(w.text for w in model.transcribe(audio) if w.text)
        except SpeechLost:
            return ""  # served as an error; scored as the nothing the caller gets
    return transcribe
