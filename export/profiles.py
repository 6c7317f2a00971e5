"""Deployment profiles of the model repository.

``cpu`` is the checked-in repository (``config.pbtxt`` exactly as each spec writes it; CI
checks it). ``gpu`` is a separate copy for GPU machines, written by::

    python -m export configs --profile gpu --repo model_repository_gpu --from model_repository

It hard-links every exported version from ``--from`` (no weights are copied) and writes
each model's config with ``KIND_GPU`` instances and the profile's instance counts and
batching. The models' ``model.py`` choose ONNX Runtime's CUDA execution provider when
their instance is ``KIND_GPU`` and onnxruntime-gpu is installed (``export.providers``).

Why these numbers (one GPU, 16-80 GB):

* ``stt``: one instance holds Whisper; the batcher groups concurrent utterances (equal-
  length windows batch best), up to the spec's ``max_batch_size``.
* ``llm``: decoupled, no batch dimension (Triton cannot batch it); two instances let two
  generations overlap while one waits on the Python side.
* ``tts``: two instances overlap the CPU phonemizer of one request with GPU synthesis of
  another.
* ``embedder``: small and bursty (memory writes): batch up to the spec's maximum with a
  short queue delay.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from export.specs.base import DynamicBatching, ModelSpec


@dataclass(frozen=True, slots=True)
class ModelProfile:
    instance_count: int | None = None
    max_queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    """Kept to sizes <= the spec's ``max_batch_size``."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    gpu: bool
    models: Mapping[str, ModelProfile] = field(default_factory=dict)

    def apply(self, spec: ModelSpec) -> ModelSpec:
        """The spec as deployed under this profile (batching only where the spec batches)."""
        tuned = self.models.get(spec.name)
        if tuned is None:
            return spec
        batching = None
        if spec.max_batch_size > 0 and (tuned.max_queue_delay_us is not None
                                        or tuned.preferred_batch_sizes is not None):
            base = spec.dynamic_batching or DynamicBatching()
            sizes = tuple(s for s in (tuned.preferred_batch_sizes or base.preferred_batch_sizes)
                          if s <= spec.max_batch_size)
            batching = DynamicBatching(
                max_queue_delay_us=(tuned.max_queue_delay_us if tuned.max_queue_delay_us
                                    is not None else base.max_queue_delay_us),
                preferred_batch_sizes=sizes)
        return spec.with_profile(instance_count=tuned.instance_count, dynamic_batching=batching)

    def config_pbtxt(self, spec: ModelSpec) -> str:
        return self.apply(spec).config_pbtxt(gpu=self.gpu)


PROFILES: dict[str, Profile] = {
    "cpu": Profile("cpu", gpu=False),
    "gpu": Profile("gpu", gpu=True, models={
        "stt": ModelProfile(instance_count=1, max_queue_delay_us=5000,
                            preferred_batch_sizes=(4, 8)),
        "llm": ModelProfile(instance_count=2),
        "tts": ModelProfile(instance_count=2),
        "embedder": ModelProfile(instance_count=1, max_queue_delay_us=2000,
                                 preferred_batch_sizes=(8, 16, 32)),
    }),
}


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem: copy
        shutil.copy2(src, dst)


def write_profile(profile: Profile, specs: Mapping[str, ModelSpec], target: Path,
                  source: Path | None = None) -> list[str]:
    """Write ``profile``'s configs into ``target`` (and link ``source``'s versions there).

    Returns the models written. Versions already present in ``target`` are left alone.
    """
    written = []
    for name, spec in specs.items():
        model_dir = target / name
        model_dir.mkdir(parents=True, exist_ok=True)
        if source is not None and (source / name).is_dir() and source.resolve() != target.resolve():
            for version in sorted((source / name).iterdir()):
                if version.is_dir() and version.name.isdigit() and not (model_dir /
                                                                         version.name).exists():
                    shutil.copytree(version, model_dir / version.name,
                                    copy_function=_link_or_copy,
                                    ignore=shutil.ignore_patterns("__pycache__"))
        (model_dir / "config.pbtxt").write_text(profile.config_pbtxt(spec), encoding="utf-8")
        written.append(name)
    return written
