"""A tiny versioned test model: each version answers with its manifest id.

Versions are written through the real export path (``ModelRepository.new_version``,
``install_code``, a real ONNX graph, parity figures in the manifest), and can be broken
on purpose the ways a real version breaks.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from export.repository import Manifest, ModelRepository, ParityFigure, sha256_file
from export.specs import register_spec
from export.specs.base import ModelSpec, Parameter, Tensor

TEXT = Tensor("text", "BYTES", (1,))
MANIFEST_ID = Tensor("manifest_id", "BYTES", (1,))
VALUE = Tensor("value", "FP32", (1,))

SPEC = ModelSpec(name="echo_versioned", description="Test model: answers with its version's "
                 "manifest id", inputs=(TEXT,), outputs=(MANIFEST_ID, VALUE),
                 parameters=(Parameter("delay_ms", 15),))
CODE = Path(__file__).with_name("echo_triton_model.py")
BREAKAGES = ("missing_file", "corrupt_onnx", "failed_parity")


def echo_spec(name: str = SPEC.name) -> ModelSpec:
    """The echo spec under ``name``, registered so get_spec (and export) find it."""
    return register_spec(replace(SPEC, name=name))


def offset_graph(path: Path, seed: float) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "seed"], ["y"])], "offset",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("seed", TensorProto.FLOAT, [1], [seed])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_echo(repository: ModelRepository, model: str, seed: float,
                version: int | None = None) -> int:
    """Export one version the real way: code snapshot, graph, parity, manifest."""
    import onnxruntime as ort

    with repository.new_version(model, version) as writer:
        writer.install_code(CODE)
        graph = writer.path / "offset.onnx"
        offset_graph(graph, seed)
        (got,) = ort.InferenceSession(str(graph)).run(None, {"x": np.ones(1, np.float32)})
        diff = float(abs(got[0] - (1.0 + seed)))
        writer.write_manifest(Manifest(
            model=model, version=0, source={"kind": "echo", "seed": seed},
            parity=[ParityFigure("offset", diff, 1e-6, diff <= 1e-6)]))
        return writer.version


def two_versions(root: Path, model: str) -> ModelRepository:
    """``model`` registered and exported twice (seeds 1.0 and 2.0) into ``root``."""
    repository = ModelRepository(root)
    echo_spec(model)
    for seed in (1.0, 2.0):
        export_echo(repository, model, seed)
    return repository


def break_version(repository: ModelRepository, model: str, version: int, how: str) -> str:
    """Damage an exported version; returns the text the refusal must contain."""
    vdir = repository.model_dir(model) / str(version)
    manifest_path = vdir / "manifest.json"
    data = json.loads(manifest_path.read_text())
    if how == "missing_file":
        (vdir / "offset.onnx").unlink()
        return "offset.onnx is missing"
    if how == "corrupt_onnx":
        (vdir / "offset.onnx").write_bytes(b"\x08\x07 this is not a protobuf graph")
        # re-sign it, as a careless hand edit would: only the ONNX check can catch it
        data["files"]["offset.onnx"] = sha256_file(vdir / "offset.onnx")
        manifest_path.write_text(json.dumps(data))
        return "unreadable ONNX: offset.onnx"
    if how == "failed_parity":
        data["parity"][0].update(value=0.5, passed=False)
        manifest_path.write_text(json.dumps(data))
        return "parity failed at export: offset=0.5"
    raise ValueError(how)


def remove_version(repository: ModelRepository, model: str, version: int) -> None:
    shutil.rmtree(repository.model_dir(model) / str(version), ignore_errors=True)
