"""Checks of a version on disk, before Triton sees it.

Each check returns a :class:`Check`; none raises. The smoke inference runs the spec's own
example request on the version, pinned, once Triton has loaded it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from export.profiles import repository_profile
from export.repository import MANIFEST, MODEL_CODE, Manifest, ModelRepository, sha256_file
from export.specs.base import ModelSpec
from export.stt.quality import judge as judge_quality
from orchestrator.errors import AppError
from orchestrator.models.schemas import Check

if TYPE_CHECKING:  # the client is only passed in; the disk checks need no gRPC
    from orchestrator.inference.client import TritonClient


def check_manifest(repository: ModelRepository, model: str,
                   version: int) -> tuple[Check, Manifest | None]:
    try:
        manifest = repository.manifest(model, version)
    except Exception as exc:
        return Check("manifest", False, str(exc)), None
    if manifest.model != model or manifest.version != version:
        return Check("manifest", False, f"manifest describes {manifest.model} version "
                     f"{manifest.version}, not {model} version {version}"), manifest
    return Check("manifest", True, f"id {manifest.id}"), manifest


def check_config(repository: ModelRepository, spec: ModelSpec) -> Check:
    """The model's config.pbtxt is what its spec generates under the repository's
    recorded profile (``profile.json``; CPU when none is recorded)."""
    path = repository.model_dir(spec.name) / "config.pbtxt"
    if not path.is_file():
        return Check("config", False, f"{path} is missing (python -m export configs)")
    try:
        profile = repository_profile(repository.root)
    except ValueError as exc:
        return Check("config", False, str(exc))
    if path.read_text(encoding="utf-8") != profile.config_pbtxt(spec):
        return Check("config", False, f"{path} differs from the {spec.name} spec under the "
                     f"{profile.name} profile (regenerate it: python -m export configs"
                     f"{'' if profile.name == 'cpu' else ' --profile ' + profile.name})")
    return Check("config", True, f"matches the spec ({profile.name} profile)")


def check_files(version_dir: Path, manifest: Manifest) -> Check:
    """Every file the manifest lists is there with the same sha256 (and model.py is)."""
    problems = []
    if MODEL_CODE not in manifest.files:
        problems.append(f"{MODEL_CODE} is not in the manifest")
    for name, digest in sorted(manifest.files.items()):
        path = version_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} has changed since export (sha256 differs)")
    if problems:
        return Check("files", False, ", ".join(problems))
    return Check("files", True, f"{len(manifest.files)} files match the manifest")


def check_onnx(version_dir: Path) -> Check:
    """Every ONNX graph in the version loads and passes onnx.checker.

    Graphs written for ONNX Runtime itself (the GenAI model builder's ``llm``) use its
    internal operators (``SimplifiedLayerNormalization``, ``GroupQueryAttention``, …),
    which onnx.checker does not know: for those the graph must parse, and the files check
    has already proved its weights unchanged since export.
    """
    import onnx

    graphs = sorted(p for p in version_dir.rglob("*.onnx") if p.is_file())
    bad = []
    for path in graphs:
        try:
            try:
                onnx.checker.check_model(str(path))  # by path: works past 2 GB
            except onnx.checker.ValidationError as exc:
                if "No Op registered for" not in str(exc):
                    raise
                onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            bad.append(f"{path.relative_to(version_dir)}: {first[:200]}")
    if bad:
        return Check("onnx", False, "unreadable ONNX: " + "; ".join(bad))
    return Check("onnx", True, f"{len(graphs)} graphs pass onnx.checker")


def check_parity(manifest: Manifest) -> Check:
    failed = [p for p in manifest.parity if not p.passed]
    if failed:
        return Check("parity", False, "parity failed at export: " + ", ".join(
            f"{p.name}={p.value:.3g} (tolerance {p.tolerance:.3g})" for p in failed))
    if not manifest.parity:
        return Check("parity", False, "the manifest holds no parity figures")
    return Check("parity", True, f"{len(manifest.parity)} figures within tolerance")


def check_long_form(manifest: Manifest) -> Check:
    """An stt version transcribes long audio with pauses about as well as single
    utterances (the figures export measured: :mod:`export.stt.quality`)."""
    passed, detail = judge_quality(manifest.extra.get("quality"))
    return Check("long_form", passed, detail)


def static_checks(repository: ModelRepository, spec: ModelSpec, version: int) -> list[Check]:
    """Everything that can be checked without Triton, in order; stops at a bad manifest."""
    checks = [check_config(repository, spec)]
    manifest_check, manifest = check_manifest(repository, spec.name, version)
    checks.append(manifest_check)
    if manifest is None:
        return checks
    version_dir = repository.model_dir(spec.name) / str(version)
    checks += [check_files(version_dir, manifest), check_onnx(version_dir),
               check_parity(manifest)]
    if spec.name == "stt":
        checks.append(check_long_form(manifest))
    return checks


__all__ = ["MANIFEST", "check_config", "check_files", "check_long_form", "check_manifest",
           "check_onnx", "check_parity", "static_checks"]


async def smoke_check(client: TritonClient, spec: ModelSpec, version: int,
                      timeout_s: float) -> Check:
    """The spec's example request on ``version``: it answers, and that version answers."""
    values = spec.example_inputs()
    try:
        if spec.decoupled:
            responses = 0
            async for _ in client.stream(spec, values, version=str(version),
                                         timeout_s=timeout_s):
                responses += 1
            detail = f"{responses} streamed responses"
        else:
            result = await client.infer(spec, values, version=str(version),
                                        timeout_s=timeout_s)
            if result.model_version and result.model_version != str(version):
                return Check("smoke", False, f"answered by version {result.model_version}")
            detail = f"outputs {sorted(result.outputs)}"
    except AppError as exc:
        return Check("smoke", False, f"inference failed: {exc.message}")
    return Check("smoke", True, detail)
