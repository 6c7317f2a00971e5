"""Where a recording holds speech: Silero VAD (ONNX) over 32 ms frames, and the pieces a
long recording with pauses is decoded in.

Why pieces: Moonshine, given a recording whose speech is broken by long silences, can end
its transcript at the first step and return nothing at all (seen here: 16 of 40 English
recordings of 2-5 sentences with 0.5-3 s pauses came back empty, 2026-12-05). Decoding
each stretch of speech on its own, with the long silences left out, gives the whole text.

numpy + onnxruntime only: it runs inside Triton's python stub, from the version's own copy
of the Silero graph (``vad.onnx``, copied at export from the ``silero-vad`` wheel).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
FRAME = 512  # samples per Silero call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame
VAD_FILE = "vad.onnx"


def packaged_model() -> Path:
    """``silero_vad/data/silero_vad.onnx`` from the installed wheel, found without
    importing the package (its ``__init__`` imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("silero-vad is not installed (make setup installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the silero-vad package")
    return path


class SileroVad:
    """Per-frame speech probabilities of whole recordings (one ONNX session)."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One frame at a time through a recurrent state: more threads only add overhead.
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each whole 32 ms frame of ``audio`` (16 kHz)."""
        count = audio.size // FRAME
        frames = np.ascontiguousarray(audio[:count * FRAME], np.float32).reshape(count, FRAME)
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, CONTEXT), dtype=np.float32)
        probs = np.empty(count, np.float32)
        for i, frame in enumerate(frames):
            x = np.concatenate([context, frame[None]], axis=1)
            out, state = self.session.run(None, {"input": x, "state": state, "sr": self._sr})
            context = x[:, -CONTEXT:]
            probs[i] = out[0, 0]
        return probs


def speech_gate(version_dir: Path) -> Callable[[np.ndarray], bool] | None:
    """Whether a recording holds any speech, by the version's own detector (None when the
    version has none). A Whisper version asked about silence answers "You" or "Thank
    you." with windows sized to the audio (its no-speech head was learnt on 30 s)."""
    path = Path(version_dir) / VAD_FILE
    if not path.is_file():
        return None
    vad = SileroVad(path)
    return lambda audio: bool(speech_frames(vad.probabilities(audio)).any())


@dataclass(frozen=True)
class Pieces:
    """How a recording is cut for decoding: ``[start, end)`` sample ranges, and the
    seconds of speech the detector heard in each."""

    bounds: list[tuple[int, int]]
    speech_s: list[float]


def speech_frames(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Whether each frame is speech, with Silero's hysteresis: speech starts at
    ``threshold`` and lasts while the probability stays above ``threshold - 0.15``."""
    speaking = np.zeros(probs.size, bool)
    on = False
    for i, p in enumerate(probs):
        on = p >= threshold or (on and p >= threshold - 0.15)
        speaking[i] = on
    return speaking


def pieces(audio: np.ndarray, probs: np.ndarray, *, split_silence_s: float = 1.0,
           pad_s: float = 0.3, min_speech_s: float = 0.1) -> Pieces:
    """The recording whole when no silence of ``split_silence_s`` or more (at either end
    included) lies in it, or nothing was heard as speech (then nothing is left out);
    otherwise one piece per stretch of speech between such silences, each with up to
    ``pad_s`` of its silence on both sides (never more than half the silence, so
    neighbours do not overlap). Stretches with less than ``min_speech_s`` of speech
    (a click) are dropped."""
    whole = Pieces([(0, audio.size)], [float(np.count_nonzero(speech_frames(probs)))
                                       * FRAME / SAMPLE_RATE])
    speaking = speech_frames(probs)
    if not speaking.any():
        return whole
    split = max(1, round(split_silence_s * SAMPLE_RATE / FRAME))
    # Runs of speech frames as [start, end) frame ranges, joined across short silences.
    edges = np.flatnonzero(np.diff(np.concatenate([[0], speaking.astype(np.int8), [0]])))
    runs = [[int(s), int(e)] for s, e in zip(edges[::2], edges[1::2], strict=True)]
    stretches = [runs[0]]
    for start, end in runs[1:]:
        if start - stretches[-1][1] < split:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])
    total_frames = audio.size // FRAME
    leading, trailing = stretches[0][0], total_frames - stretches[-1][1]
    if len(stretches) == 1 and leading < split and trailing < split:
        return whole
    pad = round(pad_s * SAMPLE_RATE)
    bounds, heard = [], []
    for i, (start, end) in enumerate(stretches):
        speech = int(np.count_nonzero(speaking[start:end])) * FRAME / SAMPLE_RATE
        if speech < min_speech_s:
            continue
        before = start * FRAME - (stretches[i - 1][1] * FRAME if i else 0)
        after = ((stretches[i + 1][0] * FRAME) if i + 1 < len(stretches) else audio.size) \
            - end * FRAME
        lo = start * FRAME - min(pad, before // 2 if i else before)
        hi = end * FRAME + min(pad, after // 2 if i + 1 < len(stretches) else after)
        bounds.append((max(0, lo), min(audio.size, hi)))
        heard.append(round(speech, 3))
    return Pieces(bounds, heard) if bounds else whole
