"""Deployment profiles of the model repository, recorded with the repository.

``cpu`` is the checked-in repository (``config.pbtxt`` exactly as each spec writes it; CI
checks it). ``gpu`` is a separate copy for GPU machines, written by::

    python -m export configs --profile gpu --repo model_repository_gpu --from model_repository

It hard-links every exported version from ``--from`` (no weights are copied), writes
each model's config with ``KIND_GPU`` instances and the roles' GPU tuning
(``export.roles``), and records the profile in ``<repo>/profile.json``. Everything that
loads a model afterwards — start-up, load, promote, rollback, validation, a new export
into the repository — builds its config from that record, so a GPU repository never
falls back to CPU defaults. ``--instance-kind cpu`` keeps the profile's counts and
batching on CPU instances (a GPU profile checked on a machine without a GPU).

The models' ``model.py`` choose ONNX Runtime's CUDA execution provider when their
instance is ``KIND_GPU`` and the GPU runtime is installed (``export.providers``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from export.roles import ROLES, ModelProfile
from export.specs.base import DynamicBatching, ModelSpec

PROFILE_FILE = "profile.json"


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

    def config_json(self, spec: ModelSpec, versions: list[int] | None = None) -> dict:
        """Triton's JSON config for ``load_model(config=…)`` under this profile."""
        return self.apply(spec).config_json(gpu=self.gpu, versions=versions)

    def on_cpu(self) -> Profile:
        """The same counts and batching on CPU instances."""
        return replace(self, gpu=False)


PROFILES: dict[str, Profile] = {
    "cpu": Profile("cpu", gpu=False),
    "gpu": Profile("gpu", gpu=True, models={name: role.gpu for name, role in ROLES.items()}),
}


def record_profile(root: Path, profile: Profile) -> Path:
    path = root / PROFILE_FILE
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"profile": profile.name,
                                "instance_kind": "gpu" if profile.gpu else "cpu"}) + "\n",
                    encoding="utf-8")
    return path


def repository_profile(root: Path) -> Profile:
    """The profile recorded in ``<root>/profile.json`` (``cpu`` when none is)."""
    path = Path(root) / PROFILE_FILE
    if not path.is_file():
        return PROFILES["cpu"]
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        profile = PROFILES[record["profile"]]
        kind = record.get("instance_kind", "gpu" if profile.gpu else "cpu")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is unreadable or names an unknown profile ({exc}); "
                         f"known: {', '.join(PROFILES)}") from None
    if kind not in ("cpu", "gpu"):
        raise ValueError(f"{path}: instance_kind must be cpu or gpu, not {kind!r}")
    return profile if (kind == "gpu") == profile.gpu else replace(profile, gpu=kind == "gpu")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem: copy
        shutil.copy2(src, dst)


def write_profile(profile: Profile, specs: Mapping[str, ModelSpec], target: Path,
                  source: Path | None = None) -> list[str]:
    """Write ``profile``'s configs into ``target`` (and link ``source``'s versions there).

    Returns the models written. Versions already present in ``target`` are left alone.
    The profile is recorded in ``target`` (:func:`repository_profile` reads it back).
    """
    written = []
    record_profile(target, profile)
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
