"""The speech-to-text service: audio array in, :class:`Transcription` out.

The one entry point other features (realtime, voice chat) call. It talks to the Triton
``stt`` model through the shared client; tensor names come from the model's spec.

Two things happen here rather than in the model:

* **Fairness.** Audio longer than ``chunk_s`` is sent as several requests of at most that
  length, cut at the quietest 100 ms near each limit, so a long upload holds the model
  for one chunk at a time and a realtime turn waits behind one chunk, not the whole file.
  Later chunks reuse the language the first detected.
* **Languages.** When the version that serves unpinned requests transcribes English only
  (a Moonshine version) and a request names another language, it goes to the newest
  multilingual version in the repository (Whisper), which must be loaded
  (``voicechat models load stt N``).
* **Word timestamps** go, the same way, to the newest version that gives them (a Whisper
  export since 2026-12-02) when the served one does not; a version that answers without
  words (an older export pinned by the client) is the client's 400, never a reply
  without them.
* **Long recordings.** An upload (not a live turn) of ``long_form_s`` or more goes to the
  loaded version whose export measured the lowest long-form error rate in its language
  (:mod:`export.stt.quality`), when that is clearly lower than the one it would go to
  (by a fifth): a live turn needs the fastest version, a long upload the most accurate.
  Measured 2026-12-05: on 30 English recordings of 7-29 s with pauses, Whisper base WER
  0.041 against Moonshine base 0.087 (docs/benchmarks/stt.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from export.repository import ModelRepository
from export.specs import stt as spec
from export.stt import quality
from export.stt.cuts import quiet_bounds
from orchestrator.errors import InferenceError, InvalidRequest

TASKS = ("transcribe", "translate")
LONG_FORM_GAIN = 0.8
"""A long recording changes version only for a long-form error rate at most this fraction
of the other's (the figures come from a few hundred words: small gaps are noise)."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    probability: float = 0.0


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] | None = None
    """With word timestamps: the segment's words (None: not asked for)."""


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str
    segments: list[Segment] = field(default_factory=list)
    duration_s: float = 0.0
    model_version: str = ""


class SpeechToText:
    """Transcribes 16 kHz mono float32 audio with the served ``stt`` version."""

    sample_rate = spec.SAMPLE_RATE

    def __init__(self, client, *, repository: str | Path | None = None,  # type: ignore[no-untyped-def]
                 chunk_s: float = 0.0, long_form_s: float = 0.0) -> None:
        self.client = client
        self.repository = ModelRepository(repository) if repository else None
        self.chunk_samples = int(chunk_s * spec.SAMPLE_RATE) if chunk_s else 0
        self.long_form_samples = int(long_form_s * spec.SAMPLE_RATE) if long_form_s else 0

    def route(self, language: str | None, version: str, words: bool = False) -> str:
        """The version a request goes to (see the module's docstring)."""
        foreign = bool(language) and language.lower() not in spec.ENGLISH  # type: ignore[union-attr]
        if version or not (foreign or words) or self.repository is None:
            return version
        served = self._served()
        fitting = self._fitting(language, words)
        if served is None or served in fitting:
            return version
        return str(fitting[-1]) if fitting else version

    async def route_recording(self, audio_samples: int, language: str | None, version: str,
                              words: bool = False) -> str:
        """:meth:`route`, and for an upload of ``long_form_s`` or more the loaded version
        that transcribes long audio best in its language."""
        routed = self.route(language, version, words)
        if version or self.repository is None or not self.long_form_samples or \
                audio_samples < self.long_form_samples:
            return routed
        target = int(routed) if routed else self._served()
        code = _language_code(language)
        figures = {v: self._long_form_error(v, code) for v in self._fitting(language, words)}
        scored = {v: e for v, e in figures.items() if e is not None}
        if target is None or figures.get(target) is None or not scored:
            return routed
        best = min(scored, key=lambda v: (scored[v], -v))
        if best == target or scored[best] > LONG_FORM_GAIN * scored[target] or \
                not await self.client.model_ready(spec.SPEC.name, str(best)):
            return routed
        return str(best)

    def _served(self) -> int | None:
        """The version requests that name none go to (the pinned one, else the newest)."""
        assert self.repository is not None
        versions = self.repository.versions(spec.SPEC.name)
        pinned = self.client.default_versions.get(spec.SPEC.name, "")
        return int(pinned) if pinned.isdigit() else (versions[-1] if versions else None)

    def _fitting(self, language: str | None, words: bool) -> list[int]:
        """Versions able to serve the request (its language, word timestamps)."""
        assert self.repository is not None
        foreign = bool(language) and language.lower() not in spec.ENGLISH  # type: ignore[union-attr]
        return [v for v in self.repository.versions(spec.SPEC.name)
                if (not foreign or self._offers(v, "multilingual"))
                and (not words or self._offers(v, "word_timestamps"))]

    def _long_form_error(self, version: int, language: str) -> float | None:
        """The version's long-form error rate in ``language``, when its export measured one
        that counts (it understands the test speech and passes :func:`quality.judge`)."""
        assert self.repository is not None
        try:
            scores = self.repository.manifest(spec.SPEC.name, version).extra.get("quality")
        except Exception:
            return None
        figures = (scores or {}).get(language)
        if not figures or not quality.judge({language: figures})[0] or \
                float(figures["short"]) >= quality.UNDERSTOOD:
            return None
        return float(figures["long"])

    def _offers(self, version: int, feature: str) -> bool:
        """What the version's manifest says it offers (``multilingual``,
        ``word_timestamps``); unknown: leave the request alone."""
        assert self.repository is not None
        try:
            extra = self.repository.manifest(spec.SPEC.name, version).extra
        except Exception:
            return True
        return bool(extra.get(feature, feature == "multilingual"))

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                         prompt: str | None = None, task: str = "transcribe",
                         temperature: float = 0.0, version: str = "",
                         draft: Sequence[int] = (), words: bool = False,
                         recording: bool = False) -> Transcription:
        """``draft``: tokens of an earlier transcript of the start of this audio by the same
        version (a realtime partial); versions that can verify them decode faster, and the
        result does not change. ``words``: segments carry word timestamps. ``recording``:
        an upload rather than a live turn (long ones go where long audio is best heard)."""
        _check(task, temperature)
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        version = await self.route_recording(audio.size, language, version, words) \
            if recording else self.route(language, version, words)
        if self.chunk_samples and audio.size > self.chunk_samples + spec.SAMPLE_RATE:
            return await self._chunked(audio, language=language, prompt=prompt, task=task,
                                       temperature=temperature, version=version, words=words)
        return await self._one(audio, language=language, prompt=prompt, task=task,
                               temperature=temperature, version=version, draft=draft,
                               words=words)

    async def _chunked(self, audio: np.ndarray, *, language: str | None, prompt: str | None,
                       task: str, temperature: float, version: str,
                       words: bool) -> Transcription:
        parts = [part async for part in self._parts(audio, language=language, prompt=prompt,
                                                    task=task, temperature=temperature,
                                                    version=version, words=words)]
        return Transcription(text=" ".join(p.text for p in parts if p.text),
                             language=parts[0].language,
                             segments=[s for p in parts for s in p.segments],
                             duration_s=audio.size / spec.SAMPLE_RATE,
                             model_version=parts[0].model_version)

    async def parts(self, audio: np.ndarray, *, language: str | None = None,
                    prompt: str | None = None, task: str = "transcribe",
                    temperature: float = 0.0, version: str = "", words: bool = False
                    ) -> AsyncIterator[Transcription]:
        """The transcript of an upload chunk by chunk (``STT_CHUNK_SECONDS``), each as soon
        as it is decoded, its segments on the whole recording's clock (a streamed
        transcription)."""
        _check(task, temperature)
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        version = await self.route_recording(audio.size, language, version, words)
        async with aclosing(self._parts(audio, language=language, prompt=prompt, task=task,
                                        temperature=temperature, words=words,
                                        version=version)) as parts:
            async for part in parts:
                yield part

    async def _parts(self, audio: np.ndarray, *, language: str | None, prompt: str | None,
                     task: str, temperature: float, version: str, words: bool = False
                     ) -> AsyncIterator[Transcription]:
        """:meth:`parts` of checked float32 audio, for an already routed ``version``."""
        offsets = chunk_bounds(audio, self.chunk_samples) \
            if self.chunk_samples and audio.size > self.chunk_samples + spec.SAMPLE_RATE \
            else [(0, audio.size)]
        segments = 0
        first: Transcription | None = None
        for start, end in offsets:
            part = await self._one(audio[start:end], language=language,
                                   prompt=prompt if first is None else None, task=task,
                                   temperature=temperature, words=words,
                                   version=version or (first.model_version if first else ""))
            language = language or part.language  # later chunks: the detected language
            first = first or part
            shift = start / spec.SAMPLE_RATE
            moved = [replace(s, id=segments + i, start=round(s.start + shift, 3),
                             end=round(s.end + shift, 3), seek=s.seek + start // 160,
                             words=None if s.words is None else tuple(
                                 replace(w, start=round(w.start + shift, 3),
                                         end=round(w.end + shift, 3)) for w in s.words))
                     for i, s in enumerate(part.segments)]
            segments += len(moved)
            yield replace(part, segments=moved)

    async def _one(self, audio: np.ndarray, *, language: str | None, prompt: str | None,
                   task: str, temperature: float, version: str,
                   draft: Sequence[int] = (), words: bool = False) -> Transcription:
        values = {spec.AUDIO: audio, spec.TASK: [task], spec.TEMPERATURE: [temperature],
                  spec.LANGUAGE: [language] if language else None,
                  spec.PROMPT: [prompt] if prompt else None,
                  spec.DRAFT_TOKENS: np.asarray(draft, np.int32) if len(draft) else None,
                  spec.WORD_TIMESTAMPS: [True] if words else None}
        result = await self.client.infer(spec.SPEC, values, version=version)
        try:
            raw_segments = json.loads(result.text(spec.SEGMENTS))
            segments = [Segment(id=s["id"], start=round(float(s["start"]), 3),
                                end=round(float(s["end"]), 3), text=s["text"],
                                seek=s.get("seek", 0), tokens=tuple(s.get("tokens", ())),
                                temperature=s.get("temperature", 0.0),
                                avg_logprob=s.get("avg_logprob", 0.0),
                                compression_ratio=s.get("compression_ratio", 0.0),
                                no_speech_prob=s.get("no_speech_prob", 0.0),
                                words=_words(s) if words else None)
                        for s in raw_segments]
        except (ValueError, KeyError, TypeError) as exc:
            raise InferenceError(f"stt: malformed segments in the model's response: {exc}") \
                from exc
        if words and any(s.words is None and s.text.strip() for s in segments):
            raise InvalidRequest(f"stt version {result.model_version} gives no word "
                                 "timestamps (exported before 2026-12-02): re-export it, or "
                                 "ask another version", param="timestamp_granularities")
        return Transcription(text=result.text(spec.TEXT).strip(),
                             language=result.text(spec.DETECTED_LANGUAGE), segments=segments,
                             duration_s=float(result.scalar(spec.DURATION)),
                             model_version=result.model_version)



def _words(segment: dict) -> tuple[Word, ...] | None:
    if "words" not in segment:
        return None
    return tuple(Word(w["word"], round(float(w["start"]), 3), round(float(w["end"]), 3),
                      float(w.get("probability", 0.0))) for w in segment["words"])


def _language_code(language: str | None) -> str:
    """The key of a language in the quality figures ("en" when none is given: the figures
    of an English-only default are English)."""
    name = (language or "en").strip().lower()
    return {"english": "en", "korean": "ko"}.get(name, name)


def _check(task: str, temperature: float) -> None:
    if task not in TASKS:
        raise InvalidRequest(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    if not 0.0 <= temperature <= 1.0:
        raise InvalidRequest("temperature must be between 0 and 1")


def chunk_bounds(audio: np.ndarray, chunk: int, search: int = 5 * spec.SAMPLE_RATE
                 ) -> list[tuple[int, int]]:
    """``[start, end)`` of chunks of at most ``chunk`` samples, each cut at the quietest
    100 ms of the last ``search`` samples (at most a quarter of a chunk) before its limit."""
    return quiet_bounds(audio, chunk, search)
