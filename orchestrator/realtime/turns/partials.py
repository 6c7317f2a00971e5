"""When to transcribe the turn still being spoken (a partial transcript).

Partials show live captions, prefill the reply's prompt and give the final transcription
a draft to check instead of decoding everything again. They are paced so that a slow
model (Whisper on a small CPU) stays mostly free for the final transcript.
"""

from __future__ import annotations

import asyncio

from orchestrator.realtime.turns.frames import Partial
from orchestrator.realtime.turns.vad import TurnDetector
from orchestrator.speech.audio_format import MODEL_RATE


class PartialPacing:
    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms * MODEL_RATE // 1000  # 0: no partials
        self._at = 0  # turn samples at the last partial transcript
        self._cost = 0  # how long the last partial took, in samples of audio time
        self._task: asyncio.Task | None = None

    def due(self, detector: TurnDetector, item_id: str) -> Partial | None:
        """A partial of the turn after every ``REALTIME_PARTIAL_INTERVAL_MS`` of new speech,
        one at a time (a partial never queues behind another), and no more often than
        every twice the last partial's duration."""
        if not self.interval or not detector.in_speech or detector.paused:
            return None
        if detector.turn_samples - self._at < max(self.interval, 2 * self._cost):
            return None
        if self.running() is not None:
            return None
        audio = detector.turn_audio()
        if audio is None:
            return None
        self._at = detector.turn_samples
        return Partial(item_id, audio)

    def started(self, task: asyncio.Task) -> None:
        """The session runs the :class:`Partial` as ``task``."""
        self._task = task

    def took(self, seconds: float) -> None:
        self._cost = int(seconds * MODEL_RATE)

    def running(self) -> asyncio.Task | None:
        """The partial transcript in flight, if any."""
        return self._task if self._task is not None and not self._task.done() else None

    def reset(self) -> None:
        """The turn in progress ended (committed or cleared): stop the partial in flight
        (it would only keep the model from the final transcript)."""
        self._at = 0
        running = self.running()
        if running is not None:
            running.cancel()
