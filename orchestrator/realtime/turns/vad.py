"""Server voice activity detection: Silero VAD (ONNX) and OpenAI ``server_vad`` turn logic.

Why in process rather than a Triton model: the model is 2 MB, costs well under a
millisecond per 32 ms frame on one CPU thread, and is recurrent (a state tensor per
stream). As a Triton model every frame of every session would pay a gRPC round trip
and ship its state both ways, for no batching gain; the orchestrator runs it next to
the socket instead, with one shared ``InferenceSession`` and per-connection state.
"""

from __future__ import annotations

import importlib.util
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from orchestrator.speech.audio_format import MODEL_RATE

RATE = MODEL_RATE
FRAME = 512  # samples per Silero call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
FRAME_MS = FRAME * 1000 // RATE


def packaged_file(module: str, distribution: str, relative: str, why: str = "") -> Path:
    """A data file inside an installed package, found without importing it (its
    ``__init__`` may import what is not installed: torch, or ``--no-deps`` leftovers)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{distribution} is not installed (make setup installs it)"
                                f"{why}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the {distribution} package")
    return path


def default_model_path() -> Path:
    """``silero_vad/data/silero_vad.onnx`` from the installed wheel."""
    return packaged_file("silero_vad", "silero-vad", "data/silero_vad.onnx")


class SileroModel:
    """One ONNX session shared by every stream (``run`` is thread-safe)."""

    def __init__(self, path: str | Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self.path = Path(path) if path else default_model_path()
        self.session = onnxruntime.InferenceSession(str(self.path), sess_options=options,
                                                    providers=["CPUExecutionProvider"])

    def stream(self) -> SileroStream:
        return SileroStream(self)


@cache
def load_model(path: str | None = None) -> SileroModel:
    return SileroModel(path)


class SileroStream:
    """Recurrent state of one audio stream: feed consecutive 512-sample frames."""

    def __init__(self, model: SileroModel) -> None:
        self.model = model
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros((1, CONTEXT), dtype=np.float32)
        self._sr = np.array(RATE, dtype=np.int64)

    def probability(self, frame: np.ndarray) -> float:
        x = np.concatenate([self.context, frame.reshape(1, FRAME).astype(np.float32)], axis=1)
        out, self.state = self.model.session.run(
            None, {"input": x, "state": self.state, "sr": self._sr})
        self.context = x[:, -CONTEXT:]
        return float(out[0, 0])


@dataclass(frozen=True, slots=True)
class SpeechStart:
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStop:
    audio_end_ms: int
    audio: np.ndarray = field(repr=False)
    """The turn's audio at 16 kHz, prefix padding included."""
    forced: bool = False
    """Cut because the turn reached the length limit, not by silence."""
    ended_at: float | None = None
    """Clock time the last voiced frame arrived (the silence's first frame); None when
    the turn was cut while speech went on."""


@dataclass(frozen=True, slots=True)
class SpeechPause:
    """A silence inside a turn reached one of the detector's ``pause_ms``: the turn may
    be over (speculative work starts here; semantic turn detection asks here)."""

    audio_end_ms: int
    audio: np.ndarray = field(repr=False)
    """The turn so far, trailing silence included."""
    ended_at: float
    silence_ms: int
    """Which of ``pause_ms`` was reached."""
    silence_samples: int
    """How much of ``audio``'s end is the silence (whole frames: at least ``silence_ms``)."""


@dataclass(frozen=True, slots=True)
class SpeechResume:
    """Speech came back after a :class:`SpeechPause`: the turn goes on."""


VadEvent = SpeechStart | SpeechStop | SpeechPause | SpeechResume


class TurnDetector:
    """OpenAI ``server_vad`` semantics over Silero probabilities.

    Speech starts on a frame with probability >= ``threshold``; it ends once the
    probability has stayed below ``threshold - 0.15`` (Silero's own hysteresis) for
    ``silence_duration_ms``. ``prefix_padding_ms`` of audio before the start is kept.
    Memory is bounded: idle audio keeps only the prefix; a turn is capped at
    ``max_turn_ms`` (then stopped with ``forced``).

    With ``pause_ms``, a silence inside a turn is reported as it reaches each of those
    lengths (:class:`SpeechPause`), and speech after it too (:class:`SpeechResume`); the
    caller may end the turn early (:meth:`end_turn`).
    """

    def __init__(self, stream: SileroStream, *, threshold: float, prefix_padding_ms: int,
                 silence_duration_ms: int, max_turn_ms: int, pause_ms: Sequence[int] = (),
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.stream = stream
        self.threshold = threshold
        self.negative_threshold = max(threshold - 0.15, 0.01)
        self.prefix_samples = prefix_padding_ms * RATE // 1000
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_ms = silence_duration_ms
        self.pause_ms = sorted(ms for ms in set(pause_ms) if 0 < ms < silence_duration_ms)
        self.clock = clock
        self.max_turn_samples = max_turn_ms * RATE // 1000
        self._pending = np.zeros(0, dtype=np.float32)
        self._idle_tail = np.zeros(0, dtype=np.float32)
        self._turn: list[np.ndarray] = []
        self._turn_samples = 0
        self._silence_since_ms: int | None = None
        self._silence_clock = 0.0  # clock() when the current silence's first sample came
        self._arrivals: deque[tuple[int, float]] = deque()
        """(model position at the end of a fed chunk, clock() when the chunk came), for the
        chunks whose samples the model has not all consumed yet."""
        self._pauses = 0  # of pause_ms reported for the current silence
        self.position = 0  # samples consumed by the model so far
        self.in_speech = False

    def feed(self, audio: np.ndarray) -> list[VadEvent]:
        """Consume 16 kHz float audio of any length; return the events it caused."""
        data = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        self._arrivals.append((self.position + len(data), self.clock()))
        usable = len(data) - len(data) % FRAME
        self._pending = data[usable:].copy()
        events: list[VadEvent] = []
        for start in range(0, usable, FRAME):
            event = self._frame(data[start:start + FRAME])
            if event is not None:
                events.append(event)
        self._arrived(self.position)  # the chunks wholly consumed are not looked up again
        return events

    def _frame(self, frame: np.ndarray) -> VadEvent | None:
        probability = self.stream.probability(frame)
        start_ms = self.position * 1000 // RATE
        self.position += FRAME
        now_ms = self.position * 1000 // RATE
        if not self.in_speech:
            if probability >= self.threshold:
                self.in_speech = True
                self._turn = [self._idle_tail, frame]
                self._turn_samples = len(self._idle_tail) + FRAME
                self._idle_tail = np.zeros(0, dtype=np.float32)
                self._silence_since_ms = None
                return SpeechStart(max(0, start_ms - self.prefix_padding_ms))
            self._idle_tail = np.concatenate([self._idle_tail, frame])[-self.prefix_samples:] \
                if self.prefix_samples else np.zeros(0, dtype=np.float32)
            return None
        self._turn.append(frame)
        self._turn_samples += FRAME
        if probability >= self.threshold:
            self._silence_since_ms = None
            if self._pauses:
                self._pauses = 0
                return SpeechResume()
        elif probability < self.negative_threshold and self._silence_since_ms is None:
            self._silence_since_ms = start_ms
            self._silence_clock = self._arrived(self.position - FRAME)
        if self._silence_since_ms is not None:
            silent_ms = now_ms - self._silence_since_ms
            if silent_ms >= self.silence_ms:
                return self._stop(self._silence_since_ms, forced=False)
            if self._pauses < len(self.pause_ms) and silent_ms >= self.pause_ms[self._pauses]:
                self._pauses += 1
                return SpeechPause(self._silence_since_ms, np.concatenate(self._turn),
                                   self._silence_clock, self.pause_ms[self._pauses - 1],
                                   silent_ms * RATE // 1000)
        if self._turn_samples >= self.max_turn_samples:
            return self._stop(now_ms, forced=True)
        return None

    def _arrived(self, sample: int) -> float:
        """clock() when the chunk holding model sample ``sample`` was fed: a silence is
        timed from its first sample, not from when its 32 ms frame was complete."""
        while len(self._arrivals) > 1 and self._arrivals[0][0] <= sample:
            self._arrivals.popleft()
        return self._arrivals[0][1]

    def _stop(self, end_ms: int, *, forced: bool) -> SpeechStop:
        audio = np.concatenate(self._turn)
        ended_at = self._silence_clock if self._silence_since_ms is not None else None
        self._turn, self._turn_samples = [], 0
        self.in_speech = False
        self._pauses = 0
        self._silence_since_ms = None
        return SpeechStop(end_ms, audio, forced, ended_at)

    def end_turn(self) -> SpeechStop | None:
        """End the turn at its current silence (a semantic detector decided it is
        complete); None when speech has come back meanwhile."""
        if not self.in_speech or self._silence_since_ms is None:
            return None
        return self._stop(self._silence_since_ms, forced=False)

    @property
    def paused(self) -> bool:
        """A pause was reported for the current silence (and speech has not resumed)."""
        return self._pauses > 0

    @property
    def silence_start_ms(self) -> int | None:
        """Where the current silence inside the turn began (None: speech or idle)."""
        return self._silence_since_ms if self.in_speech else None

    @property
    def silence_ms_so_far(self) -> int:
        """How long the current silence inside the turn has lasted (0: none)."""
        if not self.in_speech or self._silence_since_ms is None:
            return 0
        return self.position * 1000 // RATE - self._silence_since_ms

    @property
    def turn_samples(self) -> int:
        """Samples of the turn in progress (0 when not in speech)."""
        return self._turn_samples if self.in_speech else 0

    def turn_audio(self) -> np.ndarray | None:
        """A copy of the turn so far (for partial transcripts), or None when not in speech."""
        return np.concatenate(self._turn) if self.in_speech and self._turn else None

    def flush(self) -> SpeechStop | None:
        """End the turn in progress now (``input_audio_buffer.commit`` under server VAD)."""
        if not self.in_speech:
            return None
        if len(self._pending):
            self._turn.append(self._pending)
            self._pending = np.zeros(0, dtype=np.float32)
            self._arrivals.clear()  # they counted the pending samples, which are gone
        return self._stop(self.position * 1000 // RATE, forced=True)

    def clear(self) -> None:
        """Drop buffered audio (``input_audio_buffer.clear``); model state carries on."""
        self._turn, self._turn_samples = [], 0
        self._idle_tail = np.zeros(0, dtype=np.float32)
        self.in_speech = False
        self._pauses = 0
        self._silence_since_ms = None
