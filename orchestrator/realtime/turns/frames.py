"""What the :class:`~.taker.TurnTaker` says about the user's turn: typed frames, in the
order they happen. The session hands each to the stage it concerns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator.realtime.turns.speculation import Speculation
from orchestrator.realtime.turns.vad import SpeechPause, SpeechStop
from orchestrator.speech.audio_format import MODEL_RATE

TRANSCRIBED_SILENCE_MS = 128
"""Trailing silence a speculative turn is transcribed with: what four silent 32 ms frames
give (the 100 ms speculation pause of before, whose transcripts the tests and benchmarks
know)."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int
    item_id: str
    interrupt_at: float | None = None
    """Clock time to interrupt the reply at (a barge-in); None: leave it playing (no
    reply, or speech that may be a backchannel and interrupts only once it lasts)."""


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Speech that began during a spoken reply lasted long enough: a real barge-in."""

    started: float
    """Clock time the speech began (what the user had heard by then is kept)."""


@dataclass(frozen=True, slots=True)
class Partial:
    """Time for a partial transcript of the turn being spoken."""

    item_id: str
    audio: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class Paused:
    """A first pause in the turn: its work may start speculatively (the session starts it
    and hands the :class:`~.speculation.Speculation` back with ``TurnTaker.speculating``)."""

    item_id: str
    pause: SpeechPause
    epoch: int
    """The speech epoch of the turn (newer speech makes its reply moot)."""
    partial: asyncio.Task | None = None
    """A partial transcript still running, which the turn's transcription waits for."""

    @property
    def audio(self) -> np.ndarray:
        """The turn to transcribe: the pause's audio ending in at least
        :data:`TRANSCRIBED_SILENCE_MS` of silence, zeros making up what has not been heard
        yet. Speculation starts earlier than that (``REALTIME_SPECULATE_MS``, 64), but a
        recogniser given less trailing silence drops the final "?" (Moonshine: "Why is the
        sky blue") or a word, and the turn's words decide when it ends."""
        missing = TRANSCRIBED_SILENCE_MS * MODEL_RATE // 1000 - self.pause.silence_samples
        if missing <= 0:
            return self.pause.audio
        return np.concatenate([self.pause.audio, np.zeros(missing, np.float32)])


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class ShortSpeech:
    """Speech during a spoken reply ended before it could interrupt by its length: its
    transcript decides (a backchannel leaves the reply playing, anything else is a turn)."""

    stop: SpeechStop
    started: float


@dataclass(frozen=True, slots=True)
class Committed:
    """The turn ended: its audio, and the speculation that already works on it."""

    item_id: str
    previous_item_id: str | None
    audio: np.ndarray = field(repr=False)
    end_of_speech: float
    turn_detection_ms: float
    epoch: int
    speculation: Speculation | None = None
    transcription: Any = None
    """Already transcribed (speech during a reply)."""


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A speculative turn was dropped because the user went on after the pause
    (``resumed``); ``TurnTaker.clear`` says so by its return value instead."""

    reason: str


TurnFrame = SpeechStarted | Interrupt | Partial | Paused | SpeechStopped | ShortSpeech | \
    Committed | Cancelled
