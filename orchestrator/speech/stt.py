"""The speech-to-text service: audio array in, :class:`Transcription` out.

The one entry point other features (realtime, voice chat) call. It talks to the Triton
``stt`` model through the shared client; tensor names come from the model's spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from export.specs import stt as spec
from orchestrator.errors import InferenceError, InvalidRequest

TASKS = ("transcribe", "translate")


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


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str
    segments: list[Segment] = field(default_factory=list)
    duration_s: float = 0.0
    model_version: str = ""


class SpeechToText:
    """Transcribes 16 kHz mono float32 audio with the served Whisper."""

    sample_rate = spec.SAMPLE_RATE

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                         prompt: str | None = None, task: str = "transcribe",
                         temperature: float = 0.0, version: str = "") -> Transcription:
        if task not in TASKS:
            raise InvalidRequest(f"task must be one of {', '.join(TASKS)}, not {task!r}")
        if not 0.0 <= temperature <= 1.0:
            raise InvalidRequest("temperature must be between 0 and 1")
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        values = {spec.AUDIO: audio, spec.TASK: [task], spec.TEMPERATURE: [temperature],
                  spec.LANGUAGE: [language] if language else None,
                  spec.PROMPT: [prompt] if prompt else None}
        result = await self.client.infer(spec.SPEC, values, version=version)
        try:
            raw_segments = json.loads(result.text(spec.SEGMENTS))
            segments = [Segment(id=s["id"], start=round(float(s["start"]), 3),
                                end=round(float(s["end"]), 3), text=s["text"],
                                seek=s.get("seek", 0), tokens=tuple(s.get("tokens", ())),
                                temperature=s.get("temperature", 0.0),
                                avg_logprob=s.get("avg_logprob", 0.0),
                                compression_ratio=s.get("compression_ratio", 0.0),
                                no_speech_prob=s.get("no_speech_prob", 0.0))
                        for s in raw_segments]
        except (ValueError, KeyError, TypeError) as exc:
            raise InferenceError(f"stt: malformed segments in the model's response: {exc}") \
                from exc
        return Transcription(text=result.text(spec.TEXT).strip(),
                             language=result.text(spec.DETECTED_LANGUAGE), segments=segments,
                             duration_s=float(result.scalar(spec.DURATION)),
                             model_version=result.model_version)
