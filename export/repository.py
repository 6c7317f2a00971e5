"""The Triton model repository on disk: versions, manifests, atomic writes.

Layout::

    <repo>/<model>/config.pbtxt          generated from the model's spec
    <repo>/<model>/<N>/model.py          runtime code, snapshotted by export from the package
    <repo>/<model>/<N>/manifest.json     source, hashes, tool versions, parity figures
    <repo>/<model>/<N>/...               weights and assets written by export

A version exists once its ``manifest.json`` does. Export builds a version in a hidden
staging directory and renames it into place only after parity passed, so Triton (which
polls nothing in explicit mode, but may be told to load at any time) never sees a
half-written version, and a failed export leaves nothing behind. Versions are never
overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from export.errors import ExportError, VersionExists
from export.specs import get_spec

MANIFEST = "manifest.json"
MODEL_CODE = "model.py"


@dataclass
class ParityFigure:
    """One comparison of the exported graph against its source framework."""

    name: str
    value: float
    tolerance: float
    passed: bool
    metric: str = "max_abs_diff"


@dataclass
class Manifest:
    """What a version is, where it came from, and the proof it matches its source."""

    model: str
    version: int
    source: dict[str, Any]
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()))
    files: dict[str, str] = field(default_factory=dict)
    """sha256 of every file in the version directory except the manifest."""
    dimensions: dict[str, Any] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)
    parity: list[ParityFigure] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Short content id: changes whenever any file of the version changes."""
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(f"{name}:{self.files[name]}\n".encode())
        return digest.hexdigest()[:12]

    @property
    def parity_passed(self) -> bool:
        return all(p.passed for p in self.parity)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = self.id
        data["parity_passed"] = self.parity_passed
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = {k: v for k, v in data.items() if k not in {"id", "parity_passed"}}
        data["parity"] = [ParityFigure(**p) for p in data.get("parity", [])]
        return cls(**data)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the libraries that shaped an export (those importable here)."""
    from importlib import metadata

    versions = {}
    for dist in ("voicechat", "torch", "onnx", "onnxruntime", "onnxruntime-gpu",
                 "onnxruntime-genai", "onnxruntime-genai-cuda",
                 "transformers", "openai-whisper", "sentence-transformers", "tokenizers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


class ModelRepository:
    """A Triton model repository directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def model_dir(self, model: str) -> Path:
        return self.root / model

    def versions(self, model: str) -> list[int]:
        """Complete versions (those with a manifest), ascending."""
        base = self.model_dir(model)
        if not base.is_dir():
            return []
        found = [int(p.name) for p in base.iterdir()
                 if p.is_dir() and p.name.isdigit() and (p / MANIFEST).is_file()]
        return sorted(found)

    def next_version(self, model: str) -> int:
        base = self.model_dir(model)
        taken = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
        return max(taken, default=0) + 1

    def manifest(self, model: str, version: int) -> Manifest:
        path = self.model_dir(model) / str(version) / MANIFEST
        try:
            return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ExportError(f"{model} version {version} has no manifest at {path}") from None
        except (ValueError, TypeError) as exc:
            raise ExportError(f"{model} version {version}: unreadable manifest: {exc}") from exc

    def write_config(self, model: str) -> Path:
        """Write ``config.pbtxt`` from the model's spec under the repository's recorded
        profile (the checked-in CPU file is the same), so an export into a GPU repository
        keeps its GPU config."""
        from export.profiles import repository_profile

        path = self.model_dir(model) / "config.pbtxt"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = repository_profile(self.root).config_pbtxt(get_spec(model))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return path

    @contextlib.contextmanager
    def new_version(self, model: str, version: int | None = None) -> Iterator[VersionWriter]:
        """Stage a new version; it appears under its number only if the block succeeds."""
        number = self.next_version(model) if version is None else version
        if number < 1:
            raise ExportError(f"version must be a positive integer, not {number}")
        final = self.model_dir(model) / str(number)
        if final.exists():
            raise VersionExists(f"{model} version {number} already exists at {final}; "
                                "export never overwrites a version (omit --version to take "
                                f"the next free number, {self.next_version(model)})")
        self.write_config(model)
        staging = self.model_dir(model) / f".staging-{number}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        writer = VersionWriter(model, number, staging)
        try:
            yield writer
            if not writer.manifest_written:
                raise ExportError("export finished without writing a manifest")
            if final.exists():
                raise VersionExists(f"{model} version {number} appeared during export")
            staging.rename(final)
            writer.path = final
        finally:
            shutil.rmtree(staging, ignore_errors=True)


class VersionWriter:
    """Where an export writes the files of one version."""

    def __init__(self, model: str, version: int, path: Path) -> None:
        self.model = model
        self.version = version
        self.path = path
        self.manifest_written = False

    def install_code(self, module_file: str | os.PathLike[str]) -> Path:
        """Snapshot the runtime code (a module of this package) as the version's model.py,
        with every module of this package it imports under ``code/`` (:mod:`export.snapshot`).

        Each version carries its own code, so rolling back restores code and weights
        together, and upgrading the package does not change what a version runs.
        """
        from export.snapshot import snapshot

        target = self.path / MODEL_CODE
        shutil.copyfile(module_file, target)
        snapshot(Path(module_file), self.path)
        return target

    def install_runtime_package(self, source: str | os.PathLike[str], name: str) -> Path:
        """Copy a runtime package (numpy, onnxruntime and ``export.providers``, which the
        version's ``code/`` snapshot holds) into the version as ``<name>/``: the version's
        model.py and the parity checks import it from there."""
        destination = self.path / name
        shutil.copytree(source, destination,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return destination

    def write_manifest(self, manifest: Manifest) -> Manifest:
        if any(not p.passed for p in manifest.parity):
            failed = ", ".join(f"{p.name}={p.value:.3g} (tolerance {p.tolerance:.3g})"
                               for p in manifest.parity if not p.passed)
            from export.errors import ParityError

            raise ParityError(f"{self.model}: exported graph differs from its source: {failed}")
        manifest.version = self.version
        manifest.files = {
            str(p.relative_to(self.path)): sha256_file(p)
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and p.name != MANIFEST and "__pycache__" not in p.parts
        }
        if not manifest.tool_versions:
            manifest.tool_versions = tool_versions()
        (self.path / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2,
                                                     ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        self.manifest_written = True
        return manifest
