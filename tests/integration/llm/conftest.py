"""LLM fixtures: the session models (tests/support/llm_fixtures.py) and an app on them."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchestrator.settings import Settings
from storage.migrate import upgrade
from tests.support.llm_fixtures import REAL_VERSION, TINY_VERSION
from tests.support.settings import base_settings

__all__ = ["REAL_VERSION", "TINY_VERSION"]


@pytest.fixture
def llm_settings(triton_server, tiny_llm: Path, tmp_path: Path) -> Settings:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return dataclasses.replace(base_settings(), database_url=url,
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


