"""Upload decoding: every container format, limits, corrupt and wrong-type files."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import InvalidAudio, PayloadTooLarge
from orchestrator.speech.audio_input import decode_audio
from tests.support.stt import encode

TONE = (0.3 * np.sin(2 * np.pi * 440 * np.arange(32_000) / 16_000)).astype(np.float32)

FORMATS = [("wav", "pcm_s16le", 16_000), ("mp3", "libmp3lame", 44_100),
           ("ogg", "libopus", 48_000), ("webm", "libopus", 48_000), ("flac", "flac", 16_000),
           ("ipod", "aac", 16_000)]  # ipod = FFmpeg's m4a muxer


def _tone_at(rate: int) -> np.ndarray:
    t = np.arange(2 * rate) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(("container", "codec", "rate"), FORMATS,
                         ids=[f[0] for f in FORMATS])
def test_each_container_decodes_to_16k_mono(container: str, codec: str, rate: int) -> None:
    audio = decode_audio(encode(_tone_at(rate), container, codec, rate), max_bytes=10**7,
                         max_seconds=60)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 32_000) < 2_000  # codec priming/padding only
    # the 440 Hz tone survives resampling: dominant FFT bin at 440 Hz
    spectrum = np.abs(np.fft.rfft(audio[4000:20000]))
    assert abs(np.argmax(spectrum) * 16_000 / 16_000 - 440) <= 2


def test_empty_file() -> None:
    with pytest.raises(InvalidAudio, match="empty"):
        decode_audio(b"", max_bytes=100, max_seconds=10)


def test_too_many_bytes() -> None:
    with pytest.raises(PayloadTooLarge, match="limit is 1000"):
        decode_audio(b"x" * 1001, max_bytes=1000, max_seconds=10)


def test_too_long_is_too_large_not_invalid() -> None:
    data = encode(TONE, "wav", "pcm_s16le")
    with pytest.raises(PayloadTooLarge, match="longer than the 1 s limit"):
        decode_audio(data, max_bytes=10**7, max_seconds=1.0)


@pytest.mark.parametrize("data", [b"this is a text file, not audio\n" * 20,
                                  b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 3,
                                  bytes(range(256)) * 8])
def test_corrupt_or_wrong_type(data: bytes) -> None:
    with pytest.raises(InvalidAudio, match=r"corrupt or not in a supported format|no audio"):
        decode_audio(data, max_bytes=10**7, max_seconds=10)


def test_truncated_mp3_is_rejected_or_short() -> None:
    data = encode(_tone_at(44_100), "mp3", "libmp3lame", 44_100)
    try:
        audio = decode_audio(data[: len(data) // 2], max_bytes=10**7, max_seconds=10)
    except InvalidAudio:
        return
    assert audio.size < 32_000
