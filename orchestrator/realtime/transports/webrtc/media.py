"""Audio on a WebRTC call: the caller's track turned into the session's input audio, and
the reply's audio played out on a paced track of our own.

aiortc decodes the caller's Opus into 48 kHz frames; :class:`InboundAudio` resamples them
(PyAV's resampler, which keeps its filter state across frames) to whatever the session's
input format is, so the pipeline behind it is the one every transport feeds.
:class:`ReplyTrack` is the other way: reply audio is pushed in at the session's output
format and rate, resampled once to 48 kHz, and handed to aiortc's Opus encoder 20 ms at a
time on the wall clock (RTP pacing), with silence in between replies so the stream never
stalls. Its buffer is what a barge-in flushes.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from orchestrator.realtime.audio import decode_input, encode_output

PLAYOUT_RATE = 48000
"""Opus runs at 48 kHz; the reply track hands the encoder frames at that rate."""
FRAME_SAMPLES = PLAYOUT_RATE // 50
"""20 ms, the packet time browsers and aiortc use."""
G711_RATE = 8000


def format_rate(fmt: str, pcm_rate: int) -> int:
    """The rate audio of ``fmt`` travels at: G.711 is always 8 kHz."""
    return G711_RATE if fmt.startswith("g711") else pcm_rate


class _Resampler:
    """PyAV's streaming resampler to mono s16 at ``rate``, rebuilt when the source's rate
    changes (it refuses frames that do not match its first one)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._source: tuple[int, str, str] | None = None
        self._resampler: av.AudioResampler | None = None

    def __call__(self, frame: av.AudioFrame) -> np.ndarray:
        source = (frame.sample_rate, frame.format.name, frame.layout.name)
        if source != self._source or self._resampler is None:
            self._source = source
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)


class InboundAudio:
    """The caller's frames -> input audio bytes in the session's current format and rate."""

    def __init__(self, input_format: Callable[[], tuple[str, int]]) -> None:
        self.input_format = input_format
        """(format, PCM rate) of the session's input now; it may change mid-call."""
        self._resampler: _Resampler | None = None

    def convert(self, frame: av.AudioFrame) -> bytes:
        fmt, pcm_rate = self.input_format()
        rate = format_rate(fmt, pcm_rate)
        if self._resampler is None or self._resampler.rate != rate:
            self._resampler = _Resampler(rate)
        pcm = self._resampler(frame)
        if fmt == "pcm16":
            return pcm.astype("<i2").tobytes()
        return encode_output(pcm.astype(np.float32) / 32768.0, fmt)


class ReplyTrack(MediaStreamTrack):
    """The reply's audio, paced out 20 ms at a time; silence when there is none."""

    kind = "audio"

    def __init__(self, on_drained: Callable[[], None]) -> None:
        super().__init__()
        self.on_drained = on_drained
        """Called from the playout clock when the last queued sample has been played."""
        self._buffer = bytearray()  # s16 mono at PLAYOUT_RATE
        self._resampler: _Resampler = _Resampler(PLAYOUT_RATE)
        self._below = asyncio.Event()
        self._below.set()
        self._lead_s = 0.0
        self._start: float | None = None
        self._timestamp = 0
        self.played_s = 0.0
        """Seconds of reply audio played out so far (silence not counted)."""

    @property
    def queued_s(self) -> float:
        return len(self._buffer) / 2 / PLAYOUT_RATE

    def push(self, audio: bytes, fmt: str, pcm_rate: int) -> None:
        """Queue reply audio (``fmt`` at the session's output rate) for playout."""
        rate = format_rate(fmt, pcm_rate)
        samples = decode_input(audio, fmt)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1),
            format="s16", layout="mono")
        frame.sample_rate = rate
        self._buffer += self._resampler(frame).astype("<i2").tobytes()
        self._update_lead()

    def flush(self) -> float:
        """Drop what is queued (a barge-in); returns the seconds dropped."""
        dropped = self.queued_s
        self._buffer.clear()
        self._update_lead()
        return dropped

    async def wait_below(self, lead_s: float) -> None:
        """Wait until at most ``lead_s`` seconds are queued ahead of the playout clock, so
        "sent" means "about to be heard" and a slow call stalls the reply, not memory."""
        self._lead_s = lead_s
        self._update_lead()
        await self._below.wait()

    def _update_lead(self) -> None:
        if self.queued_s <= self._lead_s:
            self._below.set()
        else:
            self._below.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME_SAMPLES
            wait = self._start + self._timestamp / PLAYOUT_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        take = min(len(self._buffer), FRAME_SAMPLES * 2)
        chunk = bytes(self._buffer[:take])
        del self._buffer[:take]
        if take:
            self.played_s += take / 2 / PLAYOUT_RATE
            self._update_lead()
            if not self._buffer:
                self.on_drained()
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        pcm[:take // 2] = np.frombuffer(chunk, dtype="<i2")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PLAYOUT_RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, PLAYOUT_RATE)
        return frame
