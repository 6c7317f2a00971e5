"""Shared fixtures: SQL backends (SQLite and a real MariaDB), the app, a real Triton, a
private Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from orchestrator.settings import Settings
from storage.conversations import ConversationStore
from storage.database import Database
from storage.migrate import upgrade
from tests.support import mariadb
from tests.support import triton as triton_support
from tests.support.redis import PrivateRedis
from tests.support.settings import base_settings

# Session fixtures shared by every test directory (real exports into the one Triton; the
# one Milvus server).
pytest_plugins = ["tests.support.stt_fixtures", "tests.support.llm_fixtures",
                  "tests.support.tts_fixtures", "tests.support.memory_fixtures",
                  "tests.support.milvus_server", "tests.support.replicas",
                  "tests.support.tiny_voice"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Whatever a test leaves in os.environ is undone: ``load_env_file`` sets variables
    that ``monkeypatch.delenv(..., raising=False)`` never recorded, and a DB_HOST left
    behind sent a later test's subprocess to a MariaDB it was never meant to use."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


# --- SQL ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def mariadb_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    """Admin URL of a MariaDB server (private unless TEST_MARIADB_URL) and its handle."""
    url, server = mariadb.admin_url(tmp_path_factory.mktemp("mariadb"))
    yield url, server
    if server is not None:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        upgrade(url)
        yield url
        return
    admin, _ = request.getfixturevalue("mariadb_admin")
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(admin, name)
    upgrade(url)
    yield url
    mariadb.drop_database(admin, name)


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[ConversationStore]:
    """A store on the test's own event loop (the app's pool lives on the app's loop)."""
    database = Database(sql_url)
    yield ConversationStore(database)
    await database.close()


@pytest.fixture
def settings(sql_url: str, tmp_path: Path) -> Settings:
    base = base_settings()
    return dataclasses.replace(base, database_url=sql_url, data_dir=str(tmp_path / "data"),
                               triton_url=None, memory_enabled=False, log_format="text")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


# --- Redis ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A private redis-server for the session (stop/start/restart it to play an outage)."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server_empty(redis_server: PrivateRedis) -> PrivateRedis:
    """The session's redis-server, running (a test may have stopped it) and empty."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server


# --- Triton ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def triton_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real tritonserver, started once; models are loaded by the tests that need them."""
    server = triton_support.start(tmp_path_factory.mktemp("triton"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def triton_repository(triton_server) -> Path:  # type: ignore[no-untyped-def]
    return triton_server.repository


# --- reporting ------------------------------------------------------------------------

def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Say how many tests ran against each real service, so CI output shows it."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup"):
                continue
            if outcome == "skipped" or report.when == "call" or outcome == "error":
                for marker in ("mariadb", "triton", "realweights"):
                    if marker in getattr(report, "keywords", {}):
                        counts.setdefault(marker, {}).setdefault(outcome, 0)
                        counts[marker][outcome] += 1
    if counts:
        terminalreporter.section("real services")
        for marker, by_outcome in sorted(counts.items()):
            parts = ", ".join(f"{n} {o}" for o, n in sorted(by_outcome.items()))
            terminalreporter.write_line(f"{marker}: {parts}")


_ = asyncio  # event loop policy is pytest-asyncio's (session scope, pyproject)
