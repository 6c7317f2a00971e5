"""A small request for each model, sent to a pinned version before it is promoted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from export.specs.base import ModelSpec, Tensor

SmokeInputs = Callable[[ModelSpec], dict[Tensor, Any]]


def _stt(spec: ModelSpec) -> dict[Tensor, Any]:
    from export.specs.stt import AUDIO

    return {AUDIO: np.zeros(16_000, np.float32)}  # one second of silence


def _llm(spec: ModelSpec) -> dict[Tensor, Any]:
    from export.specs.llm import MAX_TOKENS, PROMPT

    return {PROMPT: ["Hello"], MAX_TOKENS: [2]}


def generic(spec: ModelSpec) -> dict[Tensor, Any]:
    """Every required input filled: text for BYTES, zeros for numbers (16 for a free axis)."""
    values: dict[Tensor, Any] = {}
    for tensor in spec.inputs:
        if tensor.optional:
            continue
        shape = [16 if d < 0 else d for d in tensor.dims]
        if tensor.dtype == "BYTES":
            values[tensor] = np.full(shape, "hello", dtype=object)
        else:
            values[tensor] = np.zeros(shape, dtype=tensor.numpy_dtype)
    return values


SMOKE_INPUTS: dict[str, SmokeInputs] = {"stt": _stt, "llm": _llm}


def smoke_inputs(spec: ModelSpec) -> dict[Tensor, Any]:
    return SMOKE_INPUTS.get(spec.name, generic)(spec)
