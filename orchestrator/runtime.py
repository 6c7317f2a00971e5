"""Long-lived clients, created at start-up and closed at shutdown.

Handlers receive them through dependency injection (``orchestrator.dependencies``);
nothing here is built at import time or inside settings.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.settings import Settings
from storage.conversations import ConversationStore
from storage.database import Database
from storage.migrate import ensure_current, upgrade_async

log = logging.getLogger(__name__)


@dataclass
class HealthCheck:
    """A dependency probe: returns a detail string (or None) and raises when down."""

    name: str
    required: bool
    probe: Callable[[], Awaitable[str | None]]


@dataclass
class Runtime:
    settings: Settings
    database: Database
    conversations: ConversationStore
    triton: Any | None = None
    """orchestrator.inference.client.TritonClient, when models are served."""
    services: dict[str, Any] = field(default_factory=dict)
    """Feature services by name (speech, chat, memory …), built at start-up."""
    health_checks: list[HealthCheck] = field(default_factory=list)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing")
        self._closers.clear()


async def start_runtime(settings: Settings) -> Runtime:
    """Connect to every dependency the settings name."""
    if settings.auto_migrate:
        await upgrade_async(settings.sql_url)
    database = Database(settings.sql_url, settings.db_pool_size)
    runtime = Runtime(settings=settings, database=database,
                      conversations=ConversationStore(database))
    runtime.on_close(database.close)
    try:
        await ensure_current(settings.sql_url)
    except Exception:
        await runtime.close()
        raise

    async def sql_probe() -> str | None:
        await database.ping()
        return database.dialect

    runtime.health_checks.append(HealthCheck("sql", required=True, probe=sql_probe))

    if settings.triton_url:
        from orchestrator.inference.client import TritonClient
        from orchestrator.inference.health import triton_health_checks

        runtime.triton = TritonClient(settings.triton_url, settings.triton_timeout_s)
        runtime.on_close(runtime.triton.close)
        runtime.health_checks.extend(triton_health_checks(runtime.triton, settings))

    from orchestrator.chat.service import build_chat_service

    runtime.services["llm"] = build_chat_service(settings, runtime.triton)
    return runtime
