"""Synthesised audio (float32 mono) -> the file formats OpenAI's speech API returns.

``mp3 | opus | aac | flac | wav | pcm``, encoded in process with PyAV. An
:class:`AudioStreamEncoder` encodes chunk by chunk so a reply can be sent while later
sentences are still being synthesised; :func:`encode_audio` encodes a whole clip (the
realtime pipeline's ``audio_encoder`` port).

Streamed files are written to a non-seekable sink: WAV then carries the "unknown length"
sizes (0xFFFFFFFF) that streaming WAV writers use, and FLAC has no total in its header.
``pcm`` is what OpenAI documents: raw 16-bit little-endian mono at 24 kHz; ``pcm16`` (the
realtime protocol's name) is the same at the voice's own rate. Raw formats say their rate
in the media type (``audio/pcm;rate=24000``): nothing else in the bytes does.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Literal

import numpy as np

from orchestrator.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class OutputFormat:
    name: str
    media_type: str
    container: str | None
    """FFmpeg muxer; None for the formats written here (wav, pcm)."""
    codec: str | None = None
    rates: tuple[int, ...] = ()
    """Sample rates the codec accepts (empty: any)."""
    fixed_rate: int | None = None
    bit_rate: int | None = None


FORMATS: dict[str, OutputFormat] = {
    "mp3": OutputFormat("mp3", "audio/mpeg", "mp3", "libmp3lame",
                        (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
                        bit_rate=64_000),
    "opus": OutputFormat("opus", "audio/ogg", "ogg", "libopus",
                         (8000, 12000, 16000, 24000, 48000), bit_rate=32_000),
    "aac": OutputFormat("aac", "audio/aac", "adts", "aac",
                        (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
                        bit_rate=64_000),
    "flac": OutputFormat("flac", "audio/flac", "flac", "flac"),
    "wav": OutputFormat("wav", "audio/wav", None),
    "pcm": OutputFormat("pcm", "audio/pcm", None, fixed_rate=24_000),
    "pcm16": OutputFormat("pcm16", "audio/pcm", None),
}
ALIASES = {"ogg": "opus", "mpeg": "mp3"}
FormatName = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "pcm16", "ogg", "mpeg"]
"""What a request may name: FORMATS and ALIASES (the schema lists them)."""


def output_format(name: str) -> OutputFormat:
    fmt = FORMATS.get(ALIASES.get(name, name))
    if fmt is None:
        raise InvalidRequest(f"response_format must be one of {', '.join(FORMATS)}, "
                             f"not {name!r}")
    return fmt


def output_rate(fmt: OutputFormat, sample_rate: int) -> int:
    """The rate a format is written at: the source rate when the codec takes it, else the
    next higher rate it does take (a lower one would lose bandwidth)."""
    if fmt.fixed_rate:
        return fmt.fixed_rate
    if not fmt.rates or sample_rate in fmt.rates:
        return sample_rate
    higher = [r for r in fmt.rates if r > sample_rate]
    return min(higher) if higher else max(fmt.rates)


def media_type(fmt: OutputFormat, sample_rate: int) -> str:
    """The Content-Type of ``fmt`` written from audio at ``sample_rate``."""
    if fmt.container is None and fmt.name != "wav":
        return f"{fmt.media_type};rate={output_rate(fmt, sample_rate)}"
    return fmt.media_type


def to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """A 16-bit mono RIFF header; ``None`` writes the streaming "unknown size" marker."""
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) +
            b"data" + struct.pack("<I", data))


class _Sink(io.RawIOBase):
    """Where the muxer writes; drained after every chunk. Not seekable on purpose."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        self.buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


class AudioStreamEncoder:
    """Encodes float32 mono chunks of one clip into one file, piece by piece.

    ``encode(samples)`` returns the bytes ready so far (possibly empty: codecs keep a few
    frames back); ``finish()`` returns the rest. Concatenated, they form a valid file.
    """

    def __init__(self, fmt: str | OutputFormat, sample_rate: int) -> None:
        self.format = fmt if isinstance(fmt, OutputFormat) else output_format(fmt)
        self.source_rate = int(sample_rate)
        self.rate = output_rate(self.format, self.source_rate)
        self.samples_written = 0
        self._header_sent = False
        self._resampler = None
        if self.rate != self.source_rate:
            import av

            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        self._container = self._stream = None
        if self.format.container:
            self._open_container()

    @property
    def media_type(self) -> str:
        return media_type(self.format, self.source_rate)

    def _open_container(self) -> None:
        import av

        self._sink = _Sink()
        # flush_packets: write each packet through at once, so a sentence's audio leaves
        # with that sentence instead of waiting for the 32 KiB I/O buffer to fill.
        options = {"flush_packets": "1"}
        if self.format.container == "ogg":
            options["page_duration"] = "100000"  # µs; the default 1 s page delays streaming
        self._container = av.open(self._sink, mode="w", format=self.format.container,
                                  options=options)
        stream = self._container.add_stream(self.format.codec, rate=self.rate)
        stream.layout = "mono"
        if self.format.bit_rate:
            stream.bit_rate = self.format.bit_rate
        self._stream = stream

    def _resample(self, samples: np.ndarray | None) -> list[np.ndarray]:
        if self._resampler is None:
            return [] if samples is None else [samples]
        import av

        frames = []
        if samples is not None:
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt",
                                               layout="mono")
            frame.sample_rate = self.source_rate
            frames = self._resampler.resample(frame)
        else:
            frames = self._resampler.resample(None)
        return [f.to_ndarray().reshape(-1).astype(np.float32) for f in frames]

    def _write(self, samples: np.ndarray) -> bytes:
        if self._container is None:
            pcm = to_pcm16(samples)
            self.samples_written += samples.size
            if self.format.name == "wav" and not self._header_sent:
                self._header_sent = True
                return wav_header(self.rate, None) + pcm
            return pcm
        import av

        frame = av.AudioFrame.from_ndarray(np.clip(samples, -1, 1).reshape(1, -1),
                                           format="flt", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self.samples_written
        self.samples_written += samples.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def encode(self, samples: np.ndarray) -> bytes:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not samples.size:
            return b""
        return b"".join(self._write(s) for s in self._resample(samples) if s.size)

    def finish(self) -> bytes:
        out = b"".join(self._write(s) for s in self._resample(None) if s.size)
        if self.format.name == "wav" and not self._header_sent:
            self._header_sent = True
            out = wav_header(self.rate, None) + out
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            out += self._sink.take()
            self._container = None
        return out


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, str]:
    """A whole clip -> (file bytes, media type). WAV gets its exact sizes here."""
    output = output_format(fmt)
    if output.name == "wav":
        pcm = to_pcm16(samples)
        return wav_header(sample_rate, len(pcm)) + pcm, output.media_type
    encoder = AudioStreamEncoder(output, sample_rate)
    return encoder.encode(samples) + encoder.finish(), encoder.media_type
