"""Opening an exported ``llm`` version with ONNX Runtime GenAI.

One place for the session settings that decide speed: ONNX Runtime's default intra-op
thread count is the number of *physical* cores, which on a 2-vCPU VM is one; decode runs
1.6x faster on both (docs/benchmarks/llm.md), so 0 here means every CPU this process may
use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def served_threads(requested: int, cpus: int | None = None) -> int:
    """The served model's intra-op threads: ``requested``, or with 0 all CPUs but one.
    Decoding is bound by memory more than by cores, and a core of its own keeps speech
    synthesis beside it as fast as on an idle machine (2 cores: a reply's first TTS chunk
    330 -> 245 ms median while the LLM decodes; served decode 87 -> 61 tokens/s)."""
    return requested or max(1, (cpus or cpu_count()) - 1)


def load_model(version_dir: str | Path, intra_op_threads: int = 0,
               cuda_device: int | None = None) -> Any:
    """``og.Model`` on the CPU with ``intra_op_threads`` (0: all CPUs), or on CUDA device
    ``cuda_device`` when given and GenAI has CUDA (a CPU-built int4 version runs there too)."""
    import onnxruntime_genai as og

    config = og.Config(str(version_dir))
    if cuda_device is not None and og.is_cuda_available():
        config.clear_providers()
        config.append_provider("cuda")
        config.set_provider_option("cuda", "device_id", str(cuda_device))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {
        "intra_op_num_threads": intra_op_threads or cpu_count()}}}}))
    return og.Model(config)
