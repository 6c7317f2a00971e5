"""PCM16 <-> float conversion, resampling, and WAV in/out (stdlib ``wave``).

The WAV codec here is the default behind the voice-chat ports; the speech feature's
decoders/encoders (webm, mp3, …) replace it through :mod:`.wiring`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import wave
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from orchestrator.errors import InvalidAudio, InvalidRequest
from orchestrator.realtime.protocol import g711
from orchestrator.speech.audio_format import MODEL_RATE


def pcm16_to_float(data: bytes) -> np.ndarray:
    if len(data) % 2:
        raise InvalidAudio("PCM16 audio must have an even number of bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


AUDIO_FORMATS = ("pcm16", "g711_ulaw", "g711_alaw")
"""Realtime audio formats: PCM16 LE mono at the session's rate, or G.711 at 8 kHz."""


def format_rate(fmt: str, pcm_rate: int) -> int:
    """The sample rate audio of ``fmt`` travels at (G.711 is always 8 kHz)."""
    return g711.RATE if fmt.startswith("g711") else pcm_rate


def decode_input(data: bytes, fmt: str) -> np.ndarray:
    """Realtime input audio (``fmt`` of AUDIO_FORMATS) -> float32 at its own rate."""
    if fmt == "pcm16":
        return pcm16_to_float(data)
    return g711.decode(data, fmt.removeprefix("g711_"))


def encode_output(samples: np.ndarray, fmt: str) -> bytes:
    """float32 at the format's rate -> realtime output audio bytes."""
    if fmt == "pcm16":
        return float_to_pcm16(samples)
    return g711.encode(samples, fmt.removeprefix("g711_"))


def decode_base64_audio(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAudio("audio is not valid base64") from None


def loud_end(samples: np.ndarray, level: float) -> int:
    """Where ``samples`` stop being loud: one past the last sample at or above ``level``
    (0 when none is)."""
    loud = np.flatnonzero(np.abs(samples) >= level)
    return int(loud[-1]) + 1 if loud.size else 0


def split_quiet_end(samples: np.ndarray, rate: int, keep_ms: int = 40,
                    level: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` up to ``keep_ms`` after their last sample at or above ``level``
    (-40 dBFS), and the quiet rest (all of it when nothing is that loud)."""
    end = loud_end(samples, level)
    end = min(len(samples), end + keep_ms * rate // 1000) if end else 0
    return samples[:end], samples[end:]


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (band-limited), float32 in and out."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or samples.size == 0:
        return samples
    g = math.gcd(int(source_rate), int(target_rate))
    return resample_poly(samples, target_rate // g, source_rate // g).astype(np.float32)


class StreamResampler:
    """Resamples a stream chunk by chunk as if it were one signal (soxr keeps the filter
    state between chunks). Resampling each chunk on its own leaves a seam every chunk,
    which Smart Turn hears: it scored a finished question 0.48 instead of 0.80."""

    def __init__(self, source_rate: int, target_rate: int) -> None:

        self.source_rate, self.target_rate = source_rate, target_rate
        self._stream = None if source_rate == target_rate else self._new_stream()

    def _new_stream(self):  # type: ignore[no-untyped-def]
        import soxr

        # LQ: band-limited, and 6 ms of delay where HQ holds back over 20 ms.
        return soxr.ResampleStream(self.source_rate, self.target_rate, 1, dtype="float32",
                                   quality="LQ")

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if self._stream is None or samples.size == 0:
            return samples
        return self._stream.resample_chunk(samples)

    def flush(self) -> np.ndarray:
        """The samples the filter still holds (the end of the input), and a fresh start:
        a committed turn must not lose its last milliseconds (60 ms from 8 kHz)."""
        if self._stream is None:
            return np.zeros(0, np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self._stream = self._new_stream()
        return np.asarray(tail, dtype=np.float32)


async def resampled(chunks: AsyncIterator[Any], rate: int | None
                    ) -> AsyncIterator[tuple[np.ndarray, int]]:
    """A voice's chunks (``samples`` at ``sample_rate``) at ``rate`` (None: the first
    chunk's own), resampled as one signal, with the rate: a sentence streamed in pieces
    joins without a seam, where resampling each piece on its own leaves a dip at every
    join. The filter's last milliseconds come after the last chunk."""
    resampler: StreamResampler | None = None
    out_rate = rate or 0
    async for chunk in chunks:
        if resampler is None:
            out_rate = out_rate or int(chunk.sample_rate)
            resampler = StreamResampler(int(chunk.sample_rate), out_rate)
        samples = resampler(chunk.samples)
        if samples.size:
            yield samples, out_rate
    if resampler is not None:
        tail = resampler.flush()
        if tail.size:
            yield tail, out_rate


def decode_wav(data: bytes, fmt: str | None = None) -> np.ndarray:
    """WAV (PCM 8/16/32-bit, any rate, mono or stereo) or raw ``pcm16`` (16 kHz) -> float32
    16 kHz mono."""
    if fmt in ("pcm16", "pcm"):
        return pcm16_to_float(data)
    if fmt not in (None, "wav", "wave", "audio/wav", "audio/x-wav"):
        raise InvalidAudio(f"unsupported audio format {fmt!r} (this build decodes wav, pcm16)")
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise InvalidAudio(f"not a readable WAV file: {exc}") from None
    kinds = {1: ("u1", 128.0, 128.0), 2: ("<i2", 0.0, 32768.0), 4: ("<i4", 0.0, 2.0**31)}
    if width not in kinds or channels < 1:
        raise InvalidAudio(f"unsupported WAV sample width {width * 8} bits")
    dtype, offset, scale = kinds[width]
    usable = len(frames) - len(frames) % (width * channels)
    samples = (np.frombuffer(frames[:usable], dtype=dtype).astype(np.float32) - offset) / scale
    samples = samples.reshape(-1, channels).mean(axis=1)
    return resample(samples, rate, MODEL_RATE)


def encode_wav(samples: np.ndarray, sample_rate: int, fmt: str = "wav") -> tuple[bytes, str]:
    """float32 mono -> (bytes, media type): ``wav`` or raw ``pcm16``."""
    pcm = float_to_pcm16(samples)
    if fmt in ("pcm16", "pcm"):
        return pcm, "audio/pcm"
    if fmt != "wav":
        raise InvalidRequest(f"unsupported output format {fmt!r} (this build encodes wav, pcm16)")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm)
    return out.getvalue(), "audio/wav"
