"""Synthesised audio -> every OpenAI response format, whole and streamed chunk by chunk."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.speech.audio_input import decode_audio
from orchestrator.speech.audio_output import (
    FORMATS,
    AudioStreamEncoder,
    encode_audio,
    output_format,
    output_rate,
)

RATE = 22_050  # Piper "medium" voices
SECONDS = 1.5
CONTAINERS = ["mp3", "opus", "aac", "flac", "wav"]


def tone(seconds: float = SECONDS, rate: int = RATE, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def decoded_seconds(data: bytes, fmt: str, rate: int = RATE) -> float:
    if fmt == "pcm":
        return len(data) / 2 / 24_000
    if fmt == "pcm16":
        return len(data) / 2 / rate
    return decode_audio(data, max_bytes=10**8, max_seconds=600).size / 16_000


@pytest.mark.parametrize("fmt", [*CONTAINERS, "pcm", "pcm16"])
def test_whole_clip_decodes_to_its_duration(fmt: str) -> None:
    data, media_type = encode_audio(tone(), RATE, fmt)
    # Lossy codecs pad by an encoder delay (mp3 ~ 1 frame, aac ~ 1024 samples).
    assert decoded_seconds(data, fmt) == pytest.approx(SECONDS, abs=0.1)
    assert media_type.startswith(FORMATS[fmt].media_type)


@pytest.mark.parametrize("fmt", [*CONTAINERS, "pcm"])
def test_streamed_pieces_form_one_file_and_leave_before_the_end(fmt: str) -> None:
    audio = tone()
    encoder = AudioStreamEncoder(fmt, RATE)
    pieces = [encoder.encode(part) for part in np.array_split(audio, 3)]
    tail = encoder.finish()
    # Audio must leave as it is produced, not all at finish(): that is the point of streaming.
    assert sum(len(p) for p in pieces) > len(tail)
    assert pieces[0], f"{fmt}: nothing written after the first sentence"
    assert decoded_seconds(b"".join(pieces) + tail, fmt) == pytest.approx(SECONDS, abs=0.1)


def test_streamed_wav_uses_the_unknown_length_header_and_whole_wav_exact_sizes() -> None:
    encoder = AudioStreamEncoder("wav", RATE)
    streamed = encoder.encode(tone()) + encoder.finish()
    assert streamed[4:8] == b"\xff\xff\xff\xff" and streamed[40:44] == b"\xff\xff\xff\xff"
    whole, media_type = encode_audio(tone(), RATE, "wav")
    with wave.open(io.BytesIO(whole)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        assert w.getnframes() == int(SECONDS * RATE)
    assert media_type == "audio/wav"


def test_pcm_is_openais_24khz_and_says_so_in_the_media_type() -> None:
    data, media_type = encode_audio(tone(), RATE, "pcm")
    assert media_type == "audio/pcm;rate=24000"
    assert len(data) // 2 == pytest.approx(SECONDS * 24_000, abs=64)
    samples = np.frombuffer(data, "<i2").astype(np.float32) / 32767
    assert np.abs(samples).max() == pytest.approx(0.3, abs=0.02)  # resampled, not distorted
    raw, raw_type = encode_audio(tone(), RATE, "pcm16")
    assert raw_type == f"audio/pcm;rate={RATE}" and len(raw) == int(SECONDS * RATE) * 2


def test_codec_rates_round_up_to_one_the_codec_accepts() -> None:
    assert output_rate(output_format("opus"), 22_050) == 24_000
    assert output_rate(output_format("mp3"), 22_050) == 22_050
    assert output_rate(output_format("flac"), 16_000) == 16_000
    assert output_rate(output_format("opus"), 96_000) == 48_000


def test_clipping_instead_of_wrapping() -> None:
    loud = np.full(1000, 4.0, np.float32)
    data, _ = encode_audio(loud, RATE, "pcm16")
    assert set(np.frombuffer(data, "<i2").tolist()) == {32767}


@pytest.mark.parametrize("bad", ["ogg-vorbis", "", "WAV", "../etc/passwd"])
def test_unknown_formats_are_a_clear_400(bad: str) -> None:
    with pytest.raises(InvalidRequest, match="response_format must be one of mp3, opus"):
        output_format(bad)


def test_the_format_names_a_request_may_give_are_the_formats_and_aliases() -> None:
    from typing import get_args

    from orchestrator.speech.audio_output import ALIASES, FORMATS, FormatName

    assert set(get_args(FormatName)) == set(FORMATS) | set(ALIASES)
