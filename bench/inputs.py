"""Example inputs for any model spec: for the generic Triton workload and for
perf_analyzer's ``--input-data`` JSON (BYTES and variable-shape inputs need one).

The values are the ones the spec's tensors declare (``Tensor.example``: chat messages for
the LLM, a sentence for text, 1 s of a tone for audio; the same ones the pre-promotion
smoke check sends), otherwise deterministic data of the tensor's dtype with every
variable dimension ``variable_length`` long. Optional inputs without an example are
left out. ``--input KEY=VALUE`` overrides (JSON values) take precedence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export.specs.base import ModelSpec, Tensor


def sample_inputs(spec: ModelSpec, overrides: Mapping[str, Any] | None = None, *,
                  variable_length: int = 16) -> dict[Tensor, np.ndarray]:
    """One request's inputs (without the batch dimension) for ``spec``: the examples its
    tensors declare (``ModelSpec.example_inputs``), ``overrides`` by tensor name first."""
    return spec.example_inputs(overrides, variable_length=variable_length)


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
