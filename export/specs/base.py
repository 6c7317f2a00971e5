"""Declarative Triton model specs.

A :class:`ModelSpec` is the single source of a model's contract: tensor names, dtypes,
shapes, batching, decoupled streaming and parameters. It generates ``config.pbtxt``
(``python -m export configs`` writes them, CI fails on a diff), the export tooling
validates against it, the Triton-side ``model.py`` reads its tensor names from it, and
the orchestrator's client imports the same :class:`Tensor` objects. Names are written
once, here.

This module must stay light (no torch, no tritonclient): it is imported inside Triton's
python backend stub and by the web service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

# Triton data type -> numpy dtype (BYTES travels as numpy object arrays of bytes).
NUMPY_DTYPES: Mapping[str, type | str] = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


@dataclass(frozen=True, slots=True)
class Tensor:
    """One input or output tensor. ``dims`` exclude the batch dimension (as in Triton)."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    optional: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in NUMPY_DTYPES:
            raise ValueError(f"{self.name}: unknown Triton dtype {self.dtype}")

    @property
    def numpy_dtype(self) -> type | str:
        return NUMPY_DTYPES[self.dtype]


@dataclass(frozen=True, slots=True)
class DynamicBatching:
    """Triton dynamic batcher settings (``max_queue_delay_microseconds`` in µs)."""

    max_queue_delay_us: int = 2000
    preferred_batch_sizes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything Triton and the client need to agree on for one model."""

    name: str
    description: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int = 0
    dynamic_batching: DynamicBatching | None = None
    decoupled: bool = False
    backend: str = "python"
    instance_count: int = 1
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Free-form settings read by ``model.py`` (limits, defaults), never tensor names."""
    num_served_versions: int = 1
    """Default version policy: serve the latest N versions."""

    def __post_init__(self) -> None:
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: duplicate tensor names {names}")
        if self.dynamic_batching and self.max_batch_size < 1:
            raise ValueError(f"{self.name}: dynamic batching needs max_batch_size >= 1")

    def input(self, name: str) -> Tensor:
        return _find(self.inputs, name, self.name)

    def output(self, name: str) -> Tensor:
        return _find(self.outputs, name, self.name)

    def with_profile(self, *, instance_count: int | None = None, max_batch_size: int | None =
                     None, dynamic_batching: DynamicBatching | None = None) -> ModelSpec:
        """A copy tuned for a deployment profile (e.g. the GPU profile)."""
        changes: dict[str, object] = {}
        if instance_count is not None:
            changes["instance_count"] = instance_count
        if max_batch_size is not None:
            changes["max_batch_size"] = max_batch_size
        if dynamic_batching is not None:
            changes["dynamic_batching"] = dynamic_batching
        return replace(self, **changes)

    def config_pbtxt(self, *, gpu: bool = False, parameters: Mapping[str, str] | None = None,
                     versions: Iterable[int] | None = None) -> str:
        """The Triton ``config.pbtxt`` text for this spec."""
        params = {**self.parameters, **(parameters or {})}
        lines = [
            "# Generated from export/specs by `python -m export configs`: do not edit by hand.",
            f"# {self.description}",
            f'name: "{self.name}"',
            f'backend: "{self.backend}"',
            f"max_batch_size: {self.max_batch_size}",
        ]
        lines.append(_version_policy(versions, self.num_served_versions))
        lines += _tensor_block("input", self.inputs)
        lines += _tensor_block("output", self.outputs)
        kind = "KIND_GPU" if gpu else "KIND_CPU"
        lines.append(f"instance_group [ {{ kind: {kind} count: {self.instance_count} }} ]")
        if self.dynamic_batching:
            db = self.dynamic_batching
            lines.append("dynamic_batching {")
            if db.preferred_batch_sizes:
                sizes = ", ".join(str(s) for s in db.preferred_batch_sizes)
                lines.append(f"  preferred_batch_size: [ {sizes} ]")
            lines.append(f"  max_queue_delay_microseconds: {db.max_queue_delay_us}")
            lines.append("}")
        if self.decoupled:
            lines.append("model_transaction_policy { decoupled: true }")
        for key in sorted(params):
            lines.append(f'parameters {{ key: "{key}" value: {{ string_value: '
                         f'"{_escape(params[key])}" }} }}')
        return "\n".join(lines) + "\n"

    def config_json(self, *, gpu: bool = False, versions: Iterable[int] | None = None,
                    parameters: Mapping[str, str] | None = None) -> dict:
        """The same configuration as Triton's JSON model config (for ``load_model(config=)``)."""
        params = {**self.parameters, **(parameters or {})}

        def tensor(t: Tensor) -> dict:
            entry = {"name": t.name, "data_type": f"TYPE_{_pb_dtype(t.dtype)}",
                     "dims": list(t.dims)}
            if t.optional:
                entry["optional"] = True
            return entry

        config: dict = {
            "name": self.name,
            "backend": self.backend,
            "max_batch_size": self.max_batch_size,
            "input": [tensor(t) for t in self.inputs],
            "output": [tensor(t) for t in self.outputs],
            "instance_group": [{"kind": "KIND_GPU" if gpu else "KIND_CPU",
                                "count": self.instance_count}],
            "parameters": {k: {"string_value": v} for k, v in params.items()},
        }
        if versions is not None:
            config["version_policy"] = {"specific": {"versions": sorted(set(versions))}}
        else:
            config["version_policy"] = {"latest": {"num_versions": self.num_served_versions}}
        if self.dynamic_batching:
            db = self.dynamic_batching
            config["dynamic_batching"] = {
                "max_queue_delay_microseconds": db.max_queue_delay_us,
                "preferred_batch_size": list(db.preferred_batch_sizes),
            }
        if self.decoupled:
            config["model_transaction_policy"] = {"decoupled": True}
        return config


def _find(tensors: tuple[Tensor, ...], name: str, model: str) -> Tensor:
    for t in tensors:
        if t.name == name:
            return t
    raise KeyError(f"model {model} has no tensor {name!r}")


def _pb_dtype(dtype: str) -> str:
    return "STRING" if dtype == "BYTES" else dtype


def _tensor_block(kind: str, tensors: tuple[Tensor, ...]) -> list[str]:
    lines = [f"{kind} ["]
    for i, t in enumerate(tensors):
        dims = ", ".join(str(d) for d in t.dims)
        optional = " optional: true" if t.optional else ""
        comma = "," if i < len(tensors) - 1 else ""
        lines.append(f'  {{ name: "{t.name}" data_type: TYPE_{_pb_dtype(t.dtype)} '
                     f"dims: [ {dims} ]{optional} }}{comma}")
    lines.append("]")
    return lines


def _version_policy(versions: Iterable[int] | None, latest: int) -> str:
    if versions is not None:
        listed = ", ".join(str(v) for v in sorted(set(versions)))
        return f"version_policy: {{ specific: {{ versions: [ {listed} ] }} }}"
    return f"version_policy: {{ latest: {{ num_versions: {latest} }} }}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
