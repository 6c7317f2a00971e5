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
from typing import Any

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
    example: Any = field(default=None, compare=False, hash=False)
    """A typical value of one request (or a zero-argument callable making one): smoke
    checks and benches send it (``ModelSpec.example_inputs``)."""

    def __post_init__(self) -> None:
        if self.dtype not in NUMPY_DTYPES:
            raise ValueError(f"{self.name}: unknown Triton dtype {self.dtype}")

    @property
    def numpy_dtype(self) -> type | str:
        return NUMPY_DTYPES[self.dtype]


ParameterValue = int | float | bool | str


@dataclass(frozen=True, slots=True)
class Parameter:
    """One setting the model reads from its config's ``parameters`` (typed by its default)."""

    name: str
    default: ParameterValue
    doc: str = ""

    def render(self, value: ParameterValue | None = None) -> str:
        value = self.default if value is None else value
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def parse(self, raw: str) -> ParameterValue:
        kind = type(self.default)
        try:
            if kind is bool:
                lowered = raw.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                return lowered in ("true", "1", "yes")
            return kind(raw)
        except ValueError:
            raise ValueError(f"parameter {self.name}: {raw!r} is not a "
                             f"{kind.__name__}") from None


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
    parameters: tuple[Parameter, ...] = ()
    """Settings ``model.py`` reads (limits, defaults), typed, with their defaults here only."""
    num_served_versions: int = 1
    """Default version policy: serve the latest N versions."""

    def __post_init__(self) -> None:
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: duplicate tensor names {names}")
        if self.dynamic_batching and self.max_batch_size < 1:
            raise ValueError(f"{self.name}: dynamic batching needs max_batch_size >= 1")
        if self.decoupled:
            final = next((t for t in self.outputs if t.name == FINAL_OUTPUT), None)
            if final is None or final.dtype != "BOOL":
                raise ValueError(f"{self.name}: a decoupled model needs a BOOL output "
                                 f"{FINAL_OUTPUT!r} (true on the last response of a request)")
        keys = [p.name for p in self.parameters]
        if len(keys) != len(set(keys)):
            raise ValueError(f"{self.name}: duplicate parameters {keys}")

    @property
    def final(self) -> Tensor:
        """The end-of-stream flag of a decoupled model."""
        return self.output(FINAL_OUTPUT)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(f"model {self.name} has no parameter {name!r}")

    def parameter_strings(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The config's ``parameters``: every declared one, defaults unless overridden."""
        values = {p.name: p.render() for p in self.parameters}
        for key, raw in (overrides or {}).items():
            values[key] = self.parameter(key).render(self.parameter(key).parse(raw))
        return values

    def read_parameters(self, model_config: Mapping[str, Any]) -> dict[str, ParameterValue]:
        """Typed values from a Triton model config (``json.loads(args["model_config"])``):
        defaults for missing keys. Keys this spec does not declare are left out: the config
        is generated from the newest spec (``parameter_strings`` refuses undeclared keys
        there), and a version exported before a parameter existed must still load."""
        given = {k: v.get("string_value", "") for k, v in
                 (model_config.get("parameters") or {}).items()}
        return {p.name: p.parse(given[p.name]) if p.name in given else p.default
                for p in self.parameters}

    def example_inputs(self, overrides: Mapping[str, Any] | None = None, *,
                       variable_length: int = 16) -> dict[Tensor, np.ndarray]:
        """One request's inputs (no batch dimension): each input's ``example`` where it
        has one, generated data of its dtype for other required inputs (free axes
        ``variable_length`` long), ``overrides`` (by tensor name) first."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - {t.name for t in self.inputs}
        if unknown:
            raise ValueError(f"{self.name} has no inputs {sorted(unknown)}; it has "
                             f"{[t.name for t in self.inputs]}")
        values: dict[Tensor, np.ndarray] = {}
        for tensor in self.inputs:
            if tensor.name in overrides:
                values[tensor] = _shaped(tensor, overrides[tensor.name])
            elif tensor.example is not None:
                example = tensor.example() if callable(tensor.example) else tensor.example
                values[tensor] = _shaped(tensor, example)
            elif not tensor.optional:
                values[tensor] = _generated(tensor, variable_length)
        return values

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
        params = self.parameter_strings(parameters)
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
        params = self.parameter_strings(parameters)

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


FINAL_OUTPUT = "final"
EXAMPLE_TEXT = "Hello! This is a short sentence for the benchmark."


def _generated(tensor: Tensor, variable_length: int) -> np.ndarray:
    """Deterministic data of the tensor's dtype and shape (free axes ``variable_length``)."""
    shape = tuple(variable_length if d < 0 else d for d in tensor.dims)
    if tensor.dtype == "BYTES":
        return np.full(shape, EXAMPLE_TEXT.encode(), dtype=object)
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
        if array.size:
            array = np.vectorize(lambda v: v.encode() if isinstance(v, str) else v,
                                 otypes=[object])(array)
    else:
        array = np.asarray(value, dtype=tensor.numpy_dtype)
    while array.ndim < len(tensor.dims):
        array = array[np.newaxis, ...] if array.ndim else array.reshape(1)
    return array


def tone(seconds: float = 1.0, rate: int = 16_000, hz: float = 220.0) -> np.ndarray:
    """A quiet sine: example audio that is not silence."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


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
