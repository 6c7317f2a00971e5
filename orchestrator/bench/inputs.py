"""Example inputs for any model spec: for the generic Triton workload and for
perf_analyzer's ``--input-data`` JSON (BYTES and variable-shape inputs need one).

Required inputs get a value: an example by tensor name when one is known (chat
messages for the LLM, a sentence for text inputs, 1 s of a tone for audio), otherwise
deterministic data of the tensor's dtype with every variable dimension set to
``variable_length``. Optional inputs are left out unless an example or an override
names them. ``--input KEY=VALUE`` overrides (JSON values) take precedence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export.specs.base import ModelSpec, Tensor

SENTENCE = "Hello! This is a short sentence for the benchmark."

# Examples by tensor name, used when a spec has an input of that name.
EXAMPLES: dict[str, Any] = {
    "messages": json.dumps([{"role": "user", "content": "Say hello in one short sentence."}]),
    "max_tokens": 32,
    "temperature": 0.0,
    "text": SENTENCE,
    "texts": SENTENCE,
    "language": "en",
}


def tone(seconds: float = 1.0, rate: int = 16_000, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _generated(tensor: Tensor, variable_length: int) -> Any:
    shape = tuple(variable_length if d < 0 else d for d in tensor.dims)
    if tensor.dtype == "BYTES":
        return np.full(shape, SENTENCE.encode(), dtype=object)
    if tensor.name == "audio" and tensor.dtype.startswith("FP") and len(shape) == 1:
        return tone(max(variable_length, 16_000) / 16_000)
    if tensor.dtype == "BOOL":
        return np.zeros(shape, dtype=np.bool_)
    if tensor.dtype.startswith("FP"):
        return (np.arange(int(np.prod(shape)), dtype=np.float64) % 7 / 7).reshape(shape).astype(
            tensor.numpy_dtype)
    return np.ones(shape, dtype=tensor.numpy_dtype)


def _shaped(tensor: Tensor, value: Any) -> np.ndarray:
    """A value as an array of the tensor's rank (scalars and strings become ``[v]``)."""
    if tensor.dtype == "BYTES":
        array = np.asarray(value, dtype=object)
        array = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v,
                             otypes=[object])(array) if array.size else array
    else:
        array = np.asarray(value, dtype=tensor.numpy_dtype)
    while array.ndim < len(tensor.dims):
        array = array[np.newaxis, ...] if array.ndim else array.reshape(1)
    return array


def sample_inputs(spec: ModelSpec, overrides: Mapping[str, Any] | None = None, *,
                  variable_length: int = 16) -> dict[Tensor, np.ndarray]:
    """One request's inputs (without the batch dimension) for ``spec``."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - {t.name for t in spec.inputs}
    if unknown:
        raise ValueError(f"{spec.name} has no inputs {sorted(unknown)}; it has "
                         f"{[t.name for t in spec.inputs]}")
    values: dict[Tensor, np.ndarray] = {}
    for tensor in spec.inputs:
        if tensor.name in overrides:
            values[tensor] = _shaped(tensor, overrides[tensor.name])
        elif tensor.name in EXAMPLES:
            values[tensor] = _shaped(tensor, EXAMPLES[tensor.name])
        elif not tensor.optional:
            values[tensor] = _generated(tensor, variable_length)
    return values


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["max_tokens=64", 'language="ko"']`` -> {"max_tokens": 64, "language": "ko"}
    (values are JSON; anything that is not JSON is taken as a string)."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--input expects NAME=VALUE, not {item!r}")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def perf_analyzer_data(spec: ModelSpec, values: Mapping[Tensor, np.ndarray]) -> dict:
    """perf_analyzer's ``--input-data`` document: one step with content and shape per input
    (shapes exclude the batch dimension, as perf_analyzer expects)."""
    step: dict[str, Any] = {}
    for tensor, array in values.items():
        if tensor.dtype == "BYTES":
            content = [v.decode() if isinstance(v, bytes) else str(v)
                       for v in array.reshape(-1).tolist()]
        else:
            content = array.reshape(-1).tolist()
        step[tensor.name] = {"content": content, "shape": list(array.shape)}
    return {"data": [step]}


def write_perf_analyzer_data(spec: ModelSpec, path: str | Path,
                             overrides: Mapping[str, Any] | None = None, *,
                             variable_length: int = 16) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = perf_analyzer_data(spec, sample_inputs(spec, overrides,
                                                      variable_length=variable_length))
    target.write_text(json.dumps(document) + "\n", encoding="utf-8")
    return target


def load_spec(model: str, spec_ref: str | None = None) -> ModelSpec:
    """The spec of a project model, or ``module:ATTR`` for any other (e.g. a test model)."""
    if spec_ref:
        import importlib

        module, _, attr = spec_ref.partition(":")
        return getattr(importlib.import_module(module), attr or "SPEC")
    from export.specs import get_spec

    return get_spec(model)
