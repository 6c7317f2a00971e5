"""Uploaded audio files -> 16 kHz mono float32, decoded in process with PyAV.

Accepts whatever FFmpeg's demuxers recognise from the bytes themselves (wav, mp3,
ogg/opus, webm, flac, m4a …); the filename and content type are not trusted. Limits:
bytes before decoding, seconds while decoding (a small compressed file can expand to
hours of audio, so decoding stops as soon as the limit is passed).
"""

from __future__ import annotations

import io
import logging

import numpy as np

from orchestrator.errors import InvalidAudio, PayloadTooLarge
from orchestrator.speech.audio_format import MODEL_RATE

log = logging.getLogger(__name__)


def decode_audio(data: bytes, *, max_bytes: int, max_seconds: float) -> np.ndarray:
    """Decode, downmix and resample ``data``; InvalidAudio / PayloadTooLarge on bad input."""
    import av

    if not data:
        raise InvalidAudio("the audio file is empty")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the audio file is {len(data)} bytes; the limit is {max_bytes}")
    max_samples = int(max_seconds * MODEL_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise InvalidAudio("the file has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=MODEL_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if total > max_samples:
                    raise PayloadTooLarge(f"the audio is longer than the {max_seconds:g} s limit")
            for out in resampler.resample(None):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
    except (InvalidAudio, PayloadTooLarge):
        raise
    except (av.FFmpegError, ValueError, StopIteration, IndexError, UnicodeDecodeError) as exc:
        log.info("undecodable upload: %s", exc)
        raise InvalidAudio("the audio file is corrupt or not in a supported format "
                           "(wav, mp3, ogg/opus, webm, flac, m4a)") from exc
    if total > max_samples:
        raise PayloadTooLarge(f"the audio is longer than the {max_seconds:g} s limit")
    if total == 0:
        raise InvalidAudio("the audio file contains no audio samples")
    audio = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.clip(audio, -1.0, 1.0)
