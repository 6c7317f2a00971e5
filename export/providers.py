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
