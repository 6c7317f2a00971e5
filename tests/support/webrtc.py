"""A real WebRTC caller on aiortc: a microphone track playing what the test queues (then
silence, paced like a live microphone), the ``oai-events`` data channel, and the remote
track's audio recorded at 48 kHz."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from orchestrator.realtime.audio import resample

RATE = 48000
FRAME = RATE // 50


class Microphone(MediaStreamTrack):
    """Plays queued float32 audio (any rate), silence in between, 20 ms per frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.float32)
        self._start: float | None = None
        self._timestamp = 0
        self._unmuted = asyncio.Event()
        self._unmuted.set()

    def stop_media(self) -> None:
        """Send no frames at all from now on (a caller whose media stopped)."""
        self._unmuted.clear()

    def say(self, samples: np.ndarray, rate: int) -> float:
        """Queue speech; returns its seconds."""
        self._pending = np.concatenate([self._pending, resample(samples, rate, RATE)])
        return len(samples) / rate

    async def recv(self) -> av.AudioFrame:
        await self._unmuted.wait()
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = np.zeros(FRAME, dtype=np.float32)
        take = min(FRAME, len(self._pending))
        chunk[:take] = self._pending[:take]
        self._pending = self._pending[take:]
        frame = av.AudioFrame.from_ndarray(
            (np.clip(chunk, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16",
            layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class Caller:
    """One side of a call: make the offer, take the answer, talk, listen, read events."""

    def __init__(self, data_channel: bool = True) -> None:
        self.pc = RTCPeerConnection()
        self.microphone = Microphone()
        self.pc.addTrack(self.microphone)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self.heard: list[np.ndarray] = []
        """The remote track's audio, frame by frame (float32 mono, 48 kHz)."""
        self.channel = self.pc.createDataChannel("oai-events") if data_channel else None
        self.opened = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        if self.channel is not None:
            self.channel.on("message", lambda m: self.events.put_nowait(json.loads(m)))
            self.channel.on("open", self.opened.set)
        self.pc.on("track", self._on_track)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def send(self, type: str, **fields: Any) -> None:
        assert self.channel is not None
        self.channel.send(json.dumps({"type": type, **fields}))

    async def next(self, wait_s: float = 20) -> dict[str, Any]:
        event = await asyncio.wait_for(self.events.get(), wait_s)
        self.seen.append(event)
        return event

    async def until(self, kind: str, wait_s: float = 30) -> list[dict[str, Any]]:
        """Events up to and including the first of type ``kind``."""
        out = []
        deadline = time.monotonic() + wait_s
        while True:
            event = await self.next(max(0.1, deadline - time.monotonic()))
            out.append(event)
            if event["type"] == kind:
                return out

    def heard_audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.float32)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.create_task(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                if frame.layout.name == "stereo":
                    pcm = pcm.reshape(-1, 2).mean(axis=1)
                self.heard.append(resample(pcm, frame.sample_rate, RATE))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def loud_seconds(audio: np.ndarray, rate: int = RATE, threshold: float = 0.02) -> float:
    """Seconds of ``audio`` in 20 ms windows whose RMS is over ``threshold``."""
    n = rate // 50
    windows = audio[: len(audio) // n * n].reshape(-1, n)
    return float((np.sqrt((windows ** 2).mean(axis=1)) > threshold).sum() * 0.02)


def loud_part(audio: np.ndarray, rate: int = RATE, threshold: float = 0.02) -> np.ndarray:
    """The 20 ms windows of ``audio`` whose RMS is over ``threshold``, joined."""
    n = rate // 50
    windows = audio[: len(audio) // n * n].reshape(-1, n)
    return windows[np.sqrt((windows ** 2).mean(axis=1)) > threshold].reshape(-1)


def dominant_hz(audio: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[int(spectrum.argmax())])
