"""Which runtime runs a Kokoro voice's decoder: ONNX Runtime or OpenVINO.

Kokoro's decoder (convolutions at audio rate) is most of a Korean reply's first audio.
On a CPU with AMX (Intel Xeon since Sapphire Rapids), OpenVINO runs it in bfloat16 on
the matrix units: the first piece of a sentence in 305 ms against 560 ms with ONNX
Runtime's float kernels, a whole sentence in 587 against 1,132 ms (2-core Xeon VM,
2026-12-07, docs/benchmarks/tts.md). In float32 OpenVINO gains little (525 ms against
560), so ``auto`` takes it only where the CPU has AMX. The front (durations, F0)
stays on ONNX Runtime: bfloat16 there could round a phoneme's length differently.

OpenVINO renders the same speech otherwise, not worse: the decoder convolves the phase
of its harmonic source's spectrum, and that phase is decided by rounding in two places:
bins of magnitude near 1e-8 (rounding noise) and bins on ``atan2``'s cut (real part
negative, imaginary part about zero: +pi or -pi). Any other runtime, float32 included,
moves the audio by a mean log-mel distance of about 0.24 (a 2 pi phase shift: 0.015;
another voice: 1.0); the round trip through Whisper judges it (docs/korean.md).
"""

from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ("auto", "onnxruntime", "openvino")
CPUINFO = Path("/proc/cpuinfo")
OVERRIDE = "TTS_KOKORO_ENGINE"
"""Set in the server's environment, it overrides the config's ``kokoro_engine`` (the
benchmarks compare the engines on one version without a new config)."""


def configured(setting: str) -> str:
    """The engine setting in force: :data:`OVERRIDE` when set, else the config's."""
    return os.environ.get(OVERRIDE, setting)


def cpu_has_amx(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU has AMX's bfloat16 tiles (``amx_bf16`` among its flags)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split()
               for line in text.splitlines())


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(engine: str, *, gpu: bool, amx: bool | None = None,
            openvino: bool | None = None) -> str:
    """The engine a decoder runs on for the setting ``engine``: ``auto`` is OpenVINO on a
    CPU with AMX when OpenVINO is installed, else ONNX Runtime; a GPU instance always
    runs ONNX Runtime (its CUDA provider)."""
    if engine not in ENGINES:
        raise ValueError(f"kokoro_engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if gpu:
        return "onnxruntime"
    has_openvino = openvino_available() if openvino is None else openvino
    if engine == "auto":
        has_amx = cpu_has_amx() if amx is None else amx
        return "openvino" if has_amx and has_openvino else "onnxruntime"
    if engine == "openvino" and not has_openvino:
        raise ValueError("kokoro_engine openvino: the openvino package is not installed "
                         "(pip install openvino)")
    return engine


class _Input:
    def __init__(self, name: str) -> None:
        self.name = name


class OpenVinoSession:
    """An OpenVINO model behind the two methods the voice calls on an ONNX Runtime session
    (``get_inputs`` and ``run``). One inference request per call at a time from a pool,
    since requests of a model instance run in threads of their own."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY",
                                  # pinned threads would fight the LLM's and STT's for cores
                                  "ENABLE_CPU_PINNING": False}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.model = ov.Core().compile_model(str(path), "CPU", config)
        self.precision = self.model.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.inputs = [_Input(port.get_any_name()) for port in self.model.inputs]
        self.output = self.model.output(0)
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def get_inputs(self) -> list[_Input]:
        return self.inputs

    def run(self, _outputs: Any, feeds: dict[str, Any]) -> list[Any]:
        """The first output only (the decoder has one: audio)."""
        try:
            request = self.requests.get_nowait()
        except queue.Empty:
            request = self.model.create_infer_request()
        try:
            return [np.array(request.infer(feeds)[self.output])]  # a copy: the request's
        finally:                                                 # buffer is reused
            self.requests.put(request)
