"""Audio on a WebRTC call: the caller's track turned into the session's input audio, and
the reply's audio played out on a paced track of our own.

aiortc decodes the caller's Opus into 48 kHz frames; :class:`InboundAudio` resamples them
(PyAV's resampler, which keeps its filter state across frames) to whatever the session's
input format is, so the pipeline behind it is the one every transport feeds.
:class:`ReplyTrack` is the other way: reply audio is pushed in at the session's output
format and rate, resampled once to 48 kHz, and encoded to Opus 20 ms at a time on the wall
clock (RTP pacing, :class:`OpusFrames`); between replies it goes quiet, one silent packet
every 0.4 s as Opus DTX sends. Its buffer is what a barge-in flushes.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from orchestrator.realtime.audio import decode_input, encode_output
from orchestrator.telemetry.metrics import (
    WEBRTC_REPLY_FRAME_LATE_SECONDS,
    WEBRTC_REPLY_SKIPPED_SECONDS,
)

PLAYOUT_RATE = 48000
"""Opus runs at 48 kHz; the reply track hands the encoder frames at that rate."""
FRAME_SAMPLES = PLAYOUT_RATE // 50
"""20 ms, the packet time browsers and aiortc use."""
G711_RATE = 8000
TIME_BASE = fractions.Fraction(1, PLAYOUT_RATE)
OPUS_BIT_RATE = 96000
"""What aiortc's own Opus encoder sends."""
LATE_KEPT = 30000
"""Frames whose lateness a call keeps (10 minutes)."""
REBASE_SILENT_S = 0.02
REBASE_PLAYING_S = 0.06
"""A frame that leaves later than this after its slot on the playout clock (an event loop
busy with the reply, a CPU shared with the models) moves the clock on to now: the stream
skips the missed time instead of catching up with a burst of frames. A caller's jitter
buffer (a browser's NetEq) reads a burst as network jitter and holds every later packet
longer; a skip reads as a pause in the stream. In silence a skip costs nothing. In a
reply it adds a gap as long as the stall, where a burst would have cost the stall less
what the caller had buffered, so a reply rides out short stalls."""
QUIET_AFTER_FRAMES = 10
"""Silent frames sent after a reply before the track goes quiet (200 ms: the decoder's
tail of the reply ends on silence, as a sender's DTX hangover does)."""
QUIET_KEEPALIVE_S = 0.4
"""While quiet, one silent packet this often (Opus DTX's interval in WebRTC): between
replies a call sends 2.5 packets a second instead of 50. Encoding, SRTP and sending
silence cost the server's media thread 3 % of a core per idle call (7.1 % against 3.9 %
with the quiet, AMD EPYC 2-core VM) and the caller about as much to receive; the
caller's jitter buffer reads the gap in the timestamps as a DTX pause."""


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
    """The reply's audio, paced out 20 ms at a time; after a reply, 200 ms of silence and
    then a silent packet every 0.4 s until the next."""

    kind = "audio"

    def __init__(self, on_drained: Callable[[], None]) -> None:
        super().__init__()
        self.on_drained = on_drained
        """Called from the playout clock when the last queued sample has been played."""
        self._buffer = bytearray()  # s16 mono at PLAYOUT_RATE
        self._resampler: _Resampler = _Resampler(PLAYOUT_RATE)
        self._below = asyncio.Event()
        self._below.set()
        self._queued = asyncio.Event()
        """Set while audio is queued: what ends the track's quiet."""
        self._silent_frames = 0
        self._lead_s = 0.0
        self._start: float | None = None
        self._timestamp = 0
        self.played_s = 0.0
        """Seconds of reply audio played out so far (silence not counted)."""
        self.late_ms = array.array("f")
        """How late each frame left its slot on the playout clock (the last
        :data:`LATE_KEPT`; 4 bytes a frame, where a list of floats takes 32)."""
        self.rebased_s = 0.0
        """Seconds the playout clock skipped after stalls (see :data:`REBASE_SILENT_S`)."""
        self._encoder = OpusFrames()

    @property
    def queued_s(self) -> float:
        return len(self._buffer) / 2 / PLAYOUT_RATE

    def push(self, audio: bytes, fmt: str, pcm_rate: int) -> None:
        """Queue reply audio (``fmt`` at the session's output rate) for playout; on a
        stopped track, nothing (the call is over)."""
        if self.readyState != "live":
            return
        rate = format_rate(fmt, pcm_rate)
        samples = decode_input(audio, fmt)
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1),
            format="s16", layout="mono")
        frame.sample_rate = rate
        self._buffer += self._resampler(frame).astype("<i2").tobytes()
        self._update_events()

    def flush(self) -> float:
        """Drop what is queued (a barge-in); returns the seconds dropped."""
        dropped = self.queued_s
        self._buffer.clear()
        self._update_events()
        return dropped

    async def wait_below(self, lead_s: float) -> None:
        """Wait until at most ``lead_s`` seconds are queued ahead of the playout clock, so
        "sent" means "about to be heard" and a slow call stalls the reply, not memory.
        Returns at once on a stopped track, whose clock no longer runs."""
        self._lead_s = lead_s
        self._update_events()
        await self._below.wait()

    def stop(self) -> None:
        """End the track: what is queued is dropped, and a reply waiting for the playout
        clock goes on (the call is over; its session ends instead of waiting forever)."""
        super().stop()
        self.flush()  # and a stopped track is always below its lead (_update_events)
        self._queued.set()  # a quiet recv wakes, sees the track ended

    def _update_events(self) -> None:
        """The two events that follow the buffer, after every change to it or the lead."""
        if self.readyState != "live" or self.queued_s <= self._lead_s:
            self._below.set()
        else:
            self._below.clear()
        if self._buffer:
            self._queued.set()
        else:
            self._queued.clear()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        elif not self._buffer and self._silent_frames >= QUIET_AFTER_FRAMES:
            await self._quiet()
        else:
            self._timestamp += FRAME_SAMPLES
            due = self._start + self._timestamp / PLAYOUT_RATE
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            late = max(0.0, time.monotonic() - due)
            if len(self.late_ms) >= LATE_KEPT:
                del self.late_ms[:LATE_KEPT // 2]
            self.late_ms.append(late * 1000)
            WEBRTC_REPLY_FRAME_LATE_SECONDS.observe(late)
            if late > (REBASE_PLAYING_S if self._buffer else REBASE_SILENT_S):
                # Stamp this frame with the time it leaves: the stall reads as a pause in
                # the stream (as Opus DTX makes), not as network jitter.
                skipped = int(late * PLAYOUT_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
                self._timestamp += skipped
                self.rebased_s += skipped / PLAYOUT_RATE
                WEBRTC_REPLY_SKIPPED_SECONDS.inc(skipped / PLAYOUT_RATE)
        take = min(len(self._buffer), FRAME_SAMPLES * 2)
        chunk = bytes(self._buffer[:take])
        del self._buffer[:take]
        self._silent_frames = 0 if take else self._silent_frames + 1
        if take:
            self.played_s += take / 2 / PLAYOUT_RATE
            self._update_events()
            if not self._buffer:
                self.on_drained()
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        pcm[:take // 2] = np.frombuffer(chunk, dtype="<i2")
        return self._encoder.encode(pcm, self._timestamp)

    async def _quiet(self) -> None:
        """Send nothing until audio is queued or :data:`QUIET_KEEPALIVE_S` has passed; the
        next packet is stamped with the slot it leaves in, so the gap reads as a pause."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queued.wait(), QUIET_KEEPALIVE_S)
        assert self._start is not None
        slot = int((time.monotonic() - self._start) * PLAYOUT_RATE) // FRAME_SAMPLES
        self._timestamp = max(self._timestamp + FRAME_SAMPLES, slot * FRAME_SAMPLES)


class OpusFrames:
    """20 ms of mono s16 at 48 kHz -> one Opus packet stamped with the given RTP time.

    The reply track encodes its own packets, on the event loop (about 0.2 ms a frame),
    rather than handing frames to aiortc, whose encoder runs in the default thread pool
    (a hop per frame, behind whatever else is queued there) and stamps packets by the
    samples it has seen, so a skipped stretch of the clock cannot show in the stream."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = OPUS_BIT_RATE
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = PLAYOUT_RATE
        self.codec.time_base = TIME_BASE

    def encode(self, pcm: np.ndarray, timestamp: int) -> av.Packet:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PLAYOUT_RATE
        frame.pts = timestamp
        frame.time_base = TIME_BASE
        (packet,) = self.codec.encode(frame)  # libopus: one packet per 20 ms frame
        packet.pts = timestamp
        packet.time_base = TIME_BASE
        return packet
