"""The text-to-speech service: text in, audio chunks (sentences, or pieces of them) out.

The one entry point other features (realtime, voice chat, the speech endpoints) call. It
talks to the Triton ``tts`` model through the shared client; tensor names come from the
model's spec. The model streams a response per sentence, or per piece of one for voices
decoded in pieces, so the first audio leaves while the rest is still being synthesised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import numpy as np

from export.specs import tts as spec
from orchestrator.errors import InvalidRequest, PayloadTooLarge
from orchestrator.speech.catalogue import served_voice


@dataclass(frozen=True, slots=True)
class AudioChunk:
    samples: np.ndarray
    """float32 mono in [-1, 1]."""
    sample_rate: int
    text: str
    """The sentence this chunk begins (empty for a later piece of a sentence)."""


@dataclass(frozen=True, slots=True)
class Speech:
    samples: np.ndarray
    sample_rate: int
    sentences: list[str]

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0


class TextToSpeech:
    """Synthesises speech with the served voices."""

    def __init__(self, client, *, default_voice: str = "",  # type: ignore[no-untyped-def]
                 max_chars: int = 4096,
                 choose_voice: Callable[[str | None], str] | None = None) -> None:
        self.client = client
        self.default_voice = default_voice
        self.max_chars = max_chars
        self.choose_voice = choose_voice
        """The catalogue's ``effective_voice``: the voice a request is checked against is
        the one it is synthesised with (DEFAULT_VOICE only when the served version has
        it)."""

    def check(self, text: str, speed: float) -> None:
        """Reject what the model would reject, before any audio is sent."""
        if not text or not text.strip():
            raise InvalidRequest("input text is empty", param="input")
        if len(text) > self.max_chars:
            raise PayloadTooLarge(f"input is {len(text)} characters; the limit is "
                                  f"{self.max_chars}")
        if not spec.MIN_SPEED <= speed <= spec.MAX_SPEED:
            raise InvalidRequest(f"speed must be between {spec.MIN_SPEED} and "
                                 f"{spec.MAX_SPEED}, not {speed}", param="speed")

    async def stream(self, text: str, *, voice: str | None = None, speed: float = 1.0,
                     language: str | None = None, noise_scale: float | None = None,
                     noise_w: float | None = None, version: str = "",
                     request_id: str = "") -> AsyncIterator[AudioChunk]:
        """The audio in order, a chunk per sentence or piece of one. Closing the iterator
        cancels synthesis.

        ``noise_scale`` / ``noise_w``: VITS sampling noise (voice defaults when None);
        ``noise_w=0`` makes durations repeatable, both 0 makes the audio repeatable.
        """
        self.check(text, speed)
        for name, value in (("noise_scale", noise_scale), ("noise_w", noise_w)):
            if value is not None and not 0.0 <= value <= 2.0:
                raise InvalidRequest(f"{name} must be between 0 and 2, not {value}", param=name)
        chosen = self.choose_voice(voice) if self.choose_voice is not None else \
            served_voice(voice) or self.default_voice
        values = {spec.TEXT: [text], spec.VOICE: [chosen],
                  spec.SPEED: [float(speed)],
                  spec.LANGUAGE: [language] if language else None,
                  spec.NOISE_SCALE: None if noise_scale is None else [float(noise_scale)],
                  spec.NOISE_W: None if noise_w is None else [float(noise_w)]}
        async for result in self.client.stream(spec.SPEC, values, version=version,
                                               request_id=request_id):
            audio = result[spec.AUDIO].reshape(-1).astype(np.float32, copy=False)
            if audio.size:
                yield AudioChunk(samples=audio, sample_rate=int(result.scalar(spec.SAMPLE_RATE)),
                                 text=result.text(spec.SENTENCE))

    async def synthesize(self, text: str, *, voice: str | None = None, speed: float = 1.0,
                         language: str | None = None, noise_scale: float | None = None,
                         noise_w: float | None = None, version: str = "") -> Speech:
        """The whole text as one clip."""
        chunks = [c async for c in self.stream(text, voice=voice, speed=speed,
                                               language=language, noise_scale=noise_scale,
                                               noise_w=noise_w, version=version)]
        rate = chunks[0].sample_rate if chunks else 0
        samples = (np.concatenate([c.samples for c in chunks]) if chunks
                   else np.zeros(0, np.float32))
        return Speech(samples=samples, sample_rate=rate,
                      sentences=[c.text for c in chunks if c.text])
