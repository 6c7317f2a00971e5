"""Model specs: one module per Triton model, each exposing ``SPEC`` (a ModelSpec).

``get_spec("stt")`` imports ``export.specs.stt`` lazily so that importing one spec
never drags in the others.
"""

from __future__ import annotations

import importlib

from export.roles import ROLES
from export.specs.base import DynamicBatching, ModelSpec, Parameter, Tensor

__all__ = ["MODEL_NAMES", "DynamicBatching", "ModelSpec", "Parameter", "Tensor", "all_specs",
           "get_spec", "register_spec"]

MODEL_NAMES: tuple[str, ...] = tuple(ROLES)  # the registry (export.roles) lists the roles


_REGISTERED: dict[str, ModelSpec] = {}


def register_spec(spec: ModelSpec) -> ModelSpec:
    """Add a spec that has no module here (test models, plug-ins); ``get_spec`` finds it."""
    _REGISTERED[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in MODEL_NAMES:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    return importlib.import_module(f"export.specs.{name}").SPEC


def all_specs() -> dict[str, ModelSpec]:
    """Every spec whose module exists, by model name."""
    specs = {}
    for name in MODEL_NAMES:
        try:
            specs[name] = get_spec(name)
        except ModuleNotFoundError as exc:
            if exc.name != f"export.specs.{name}":
                raise
    return specs
