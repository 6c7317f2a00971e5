"""A real WebRTC caller for the tests: :class:`bench.webrtc_peer.Peer` (aiortc), with
event helpers, and measures of the audio it heard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from bench.webrtc_peer import RATE, Peer


class Caller(Peer):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[dict[str, Any]] = []
        """Every event :meth:`next` returned."""

    async def next(self, wait_s: float = 20) -> dict[str, Any]:
        event = await asyncio.wait_for(self.events.get(), wait_s)
        self.seen.append(event)
        return event

    async def until(self, kind: str, wait_s: float = 30) -> list[dict[str, Any]]:
        """Events up to and including the first of type ``kind``."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait_s
        while True:
            try:
                event = await self.next(max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                # what came instead is what a failure report needs
                raise AssertionError(f"no {kind} in {wait_s:g} s; events since the last "
                                     f"wait: {[e['type'] for e in out]}") from None
            out.append(event)
            if event["type"] == kind:
                return out


def loud_seconds(audio: np.ndarray, rate: int = RATE, threshold: float = 0.02) -> float:
    """Seconds of ``audio`` in 20 ms windows whose RMS is over ``threshold``."""
    return len(loud_part(audio, rate, threshold)) / rate


def loud_part(audio: np.ndarray, rate: int = RATE, threshold: float = 0.02) -> np.ndarray:
    """The 20 ms windows of ``audio`` whose RMS is over ``threshold``, joined."""
    n = rate // 50
    windows = audio[: len(audio) // n * n].reshape(-1, n)
    return windows[np.sqrt((windows ** 2).mean(axis=1)) > threshold].reshape(-1)


def dominant_hz(audio: np.ndarray, rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[int(spectrum.argmax())])
