"""The model registry: each role the orchestrator calls, and what can serve it.

A *role* (``stt``, ``llm``, ``tts``, ``embedder``) is a Triton model name with one tensor
contract (its spec). An *architecture* is what one version of that role runs (Whisper
for ``stt``, …); every architecture of a role is exported behind the same spec, so
promotion and rollback work across them. Everything that used to be listed per model in
several places lives here once:

* the spec module (tensor contract, parameters, example inputs for smoke checks and
  benches),
* the settings switch that turns the role on, and whether the service is down without
  it (the embedder only feeds memory: chat goes on without it),
* the exporter (``python -m export <role>``) and the architectures it recognises,
* the role's tuning under the GPU profile (``export.profiles``).

Adding an architecture to a role: teach the role's exporter to recognise the new source
and write a version behind the same spec (``docs/architecture.md``). Adding a role: add
its spec module, exporter and one entry here.

This module stays light (no torch, no tritonclient): the web service imports it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export.specs.base import ModelSpec


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """A role's deployment tuning under a profile (None: the spec's own value)."""

    instance_count: int | None = None
    max_queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    """Kept to sizes <= the spec's ``max_batch_size``."""



@dataclass(frozen=True, slots=True)
class Role:
    name: str
    summary: str
    switch: str
    """The ``Settings`` attribute (environment variable in upper case) that enables it."""
    architectures: tuple[str, ...]
    required: bool = True
    """False: the service runs degraded without it (health says so), not down."""
    gpu: ModelProfile = field(default_factory=ModelProfile)
    """Instances and batching under the GPU profile."""

    @property
    def spec_module(self) -> str:
        return f"export.specs.{self.name}"

    @property
    def exporter_module(self) -> str:
        return f"export.{self.name}.cli"

    def spec(self) -> ModelSpec:
        return importlib.import_module(self.spec_module).SPEC


ROLES: dict[str, Role] = {role.name: role for role in (
    Role("stt", "speech -> text", "stt_enabled", ("whisper", "moonshine"),
         # one instance holds the encoder; the batcher groups concurrent utterances
         gpu=ModelProfile(instance_count=1, max_queue_delay_us=5000,
                          preferred_batch_sizes=(4, 8))),
    Role("llm", "chat messages -> streamed text", "llm_enabled", ("onnxruntime-genai",),
         # decoupled, no batch dimension: two instances overlap two generations
         gpu=ModelProfile(instance_count=2)),
    Role("tts", "text -> streamed speech", "tts_enabled",
         ("piper-vits", "transformers-vits", "kokoro"),
         # two instances overlap one request's phonemizer with another's synthesis
         gpu=ModelProfile(instance_count=2)),
    Role("embedder", "texts -> unit vectors (memory)", "memory_enabled",
         ("sentence-transformers",), required=False,
         gpu=ModelProfile(instance_count=1, max_queue_delay_us=2000,
                          preferred_batch_sizes=(8, 16, 32))),
)}


def get_role(name: str) -> Role:
    try:
        return ROLES[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(ROLES)}") from None


def enabled_roles(settings: object) -> list[str]:
    """Roles whose settings switch is on, in registry order."""
    return [role.name for role in ROLES.values() if getattr(settings, role.switch)]
