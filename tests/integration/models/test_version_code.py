"""A version runs the code it was exported with, not whatever the package holds now.

The served Triton here imports a *changed* copy of the ``export`` package (its working
directory comes first on the stub's ``sys.path``): the embedder's tensor was renamed and
its runtime breaks on import. The exported version still loads and answers under its own
tensor names, from its ``code/`` snapshot; the same version without the snapshot fails
to load, which shows the changed package really was in the way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from export.repository import ModelRepository
from tests.support import triton as triton_support
from tests.support.memory_fixtures import export_embedder
from tests.support.tiny_embedder import build_tiny_sentence_bert

pytestmark = [pytest.mark.triton, pytest.mark.slow]


def _changed_package(work_dir: Path) -> None:
    import export

    copy = work_dir / "export"
    shutil.copytree(Path(export.__file__).resolve().parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    spec = copy / "specs" / "embedder.py"
    spec.write_text(spec.read_text().replace('Tensor("text"', 'Tensor("text_v2"'))
    runtime = copy / "embedder" / "runtime.py"
    runtime.write_text('raise ImportError("the upgraded package is not this version\'s")\n')


def test_version_serves_its_snapshot_after_the_package_changes(tmp_path: Path) -> None:
    from export.specs.embedder import EMBEDDING, SPEC, TEXT

    source = build_tiny_sentence_bert(tmp_path / "checkpoint")
    repository = ModelRepository(tmp_path / "repo")
    manifest = export_embedder(source, repository.root, 1)
    version = repository.model_dir("embedder") / "1"
    assert {"code/export/specs/embedder.py", "code/export/embedder/runtime.py",
            "code/export/providers.py"} <= set(manifest.files)
    bare = repository.model_dir("embedder") / "2"  # the same version, no snapshot
    shutil.copytree(version, bare)
    shutil.rmtree(bare / "code")

    work_dir = tmp_path / "work"
    work_dir.mkdir()
    _changed_package(work_dir)
    server = triton_support.start_private(repository.root, work_dir)
    try:
        def pinned(version: int) -> str:
            return json.dumps(SPEC.config_json(versions=[version]))

        triton_support.load(server, "embedder", config=pinned(1), timeout_s=120)
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            text = grpcclient.InferInput(TEXT.name, [1, 1], "BYTES")
            text.set_data_from_numpy(np.array([[b"hello world"]], dtype=object))
            result = client.infer("embedder", [text], model_version="1")
            vector = result.as_numpy(EMBEDDING.name)
            assert vector.shape == (1, 32)
            assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
            with pytest.raises(InferenceServerException, match="not this version's"):
                triton_support.load(server, "embedder", config=pinned(2), timeout_s=60)
        finally:
            client.close()
    finally:
        server.stop()


def test_a_version_older_than_a_parameter_still_loads(tmp_path: Path) -> None:
    """The config carries every parameter of the newest spec; a version whose snapshot
    predates one of them reads the ones it knows and loads."""
    from export.specs.embedder import EMBEDDING, SPEC, TEXT

    source = build_tiny_sentence_bert(tmp_path / "checkpoint")
    repository = ModelRepository(tmp_path / "repo")
    export_embedder(source, repository.root, 1)
    old_spec = repository.model_dir("embedder") / "1" / "code" / "export" / "specs" / \
        "embedder.py"
    text = old_spec.read_text()
    dropped = [line for line in text.splitlines() if 'Parameter("max_rows_per_run"' in line]
    assert len(dropped) == 1
    old_spec.write_text(text.replace(dropped[0] + "\n", ""))
    code = (repository.model_dir("embedder") / "1" / "model.py").read_text()
    (repository.model_dir("embedder") / "1" / "model.py").write_text(code.replace(
        'max_rows_per_run=int(params["max_rows_per_run"])', "max_rows_per_run=32"))
    assert "max_rows_per_run" in json.dumps(SPEC.config_json())
    server = triton_support.start_private(repository.root, tmp_path / "work")
    try:
        triton_support.load(server, "embedder", config=json.dumps(SPEC.config_json()),
                            timeout_s=120)
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            text_input = grpcclient.InferInput(TEXT.name, [1, 1], "BYTES")
            text_input.set_data_from_numpy(np.array([[b"hello"]], dtype=object))
            assert client.infer("embedder", [text_input]).as_numpy(EMBEDDING.name).shape \
                == (1, 32)
        finally:
            client.close()
    finally:
        server.stop()
