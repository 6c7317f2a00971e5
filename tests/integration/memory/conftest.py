"""Memory settings: memory on over a Milvus Lite file and SQLite, with the session's
embedder (tests.support.memory_fixtures)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from orchestrator.settings import Settings
from storage.migrate import upgrade
from tests.support.settings import base_settings
from tests.support.tiny_voice import PromptRecorder, TinyVoice


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


@asynccontextmanager
async def voice_memory_app(settings: Settings, voice: TinyVoice) -> AsyncIterator:
    """An app on ``settings`` answering voice chat on the tiny real voice stack; the LLM's
    prompts are kept (``runtime.services.llm.requests``)."""
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(voice.settings(settings))) as client:
        runtime = client.app.state.runtime
        voice.pin(runtime)
        runtime.services.update({"llm": PromptRecorder(runtime.services.llm)})
        yield client


@pytest.fixture
async def voice_memory_client(memory_settings: Settings, tiny_voice) -> AsyncIterator:  # type: ignore[no-untyped-def]
    """``memory_client`` answering voice chat on the tiny real voice stack."""
    async with voice_memory_app(memory_settings, tiny_voice) as client:
        yield client
