"""ONNX Runtime execution providers for a Triton model instance.

Inside Triton's python backend, ``initialize(args)`` receives ``model_instance_kind``
(``CPU`` / ``GPU``) and ``model_instance_device_id``. A ``KIND_GPU`` instance (the GPU
profile, see ``export.profiles``) runs on CUDA when onnxruntime-gpu is installed; anything
else runs on the CPU provider, so the same ``model.py`` serves both repositories::

    session = ort.InferenceSession(path, options, providers=onnx_providers(args))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def onnx_providers(args: Mapping[str, str] | None = None,
                   available: list[str] | None = None) -> list[Any]:
    """``[(CUDA, {"device_id": N}), CPU]`` for a GPU instance with CUDA available, else
    ``[CPU]``. ``available`` defaults to ``onnxruntime.get_available_providers()``."""
    args = args or {}
    if str(args.get("model_instance_kind", "CPU")).upper() != "GPU":
        return [CPU]
    if available is None:
        import onnxruntime

        available = onnxruntime.get_available_providers()
    if CUDA not in available:
        return [CPU]
    device = int(args.get("model_instance_device_id", 0) or 0)
    return [(CUDA, {"device_id": device}), CPU]


def session_options(threads: int = 0, *, optimize_all: bool = False) -> Any:
    """ONNX Runtime options for a served graph: ``threads`` intra-op threads (0: ONNX
    Runtime's choice, one per core), ``optimize_all``: every graph optimisation
    (``ORT_ENABLE_ALL``).

    No memory arena: an arena keeps the peak of the largest input ever seen (GBs after
    one long request); freed memory goes back to the system instead.

    No spinning: by default a graph's idle intra-op threads busy-wait for the next
    parallel step, and speech recognition, the voice and the embedder each kept one
    spinning beside the LLM's decoding thread. With four conversations on two cores that
    spinning took the CPU the others needed: client voice to voice p50 / p95 1.38 / 2.65 s
    without it against 1.74 / 3.58 s with it (128 turns each); one session alike
    (docs/benchmarks/voice.md, capacity 2026-12-06)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
    if optimize_all:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options
