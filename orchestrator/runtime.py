"""The runtime of one process: long-lived clients and feature services, typed.

Built at start-up by :func:`orchestrator.startup.start_runtime` and closed at shutdown;
handlers receive it (or one of its services) through dependency injection
(``orchestrator.dependencies`` and each feature's typed providers). Nothing here is
built at import time or inside settings.

Every feature reads this type, so this module imports none of them at run time: the
feature types named below are imported for type checking only (the features sit above
it, :mod:`orchestrator.startup` builds them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.services import Services
from orchestrator.settings import Settings
from storage.api_keys import KeyStore
from storage.client_secrets import ClientSecretStore
from storage.conversations import ConversationStore
from storage.database import Database

if TYPE_CHECKING:
    from orchestrator.auth.authenticator import Authenticator
    from orchestrator.auth.limits import RateLimiter
    from orchestrator.health.checks import HealthCheck
    from orchestrator.inference.client import TritonClient
    from orchestrator.realtime.live import LiveSessions

log = logging.getLogger(__name__)


class BackgroundTasks:
    """Work that outlives the request that started it (memory writes of voice-chat);
    shutdown waits a little for it, then cancels what is left."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self, grace_s: float = 5.0) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    conversations: ConversationStore
    keys: KeyStore
    client_secrets: ClientSecretStore
    """Ephemeral ``ek_`` secrets, each good for one realtime connection."""
    auth: Authenticator
    limits: RateLimiter
    live_sessions: LiveSessions
    """Realtime sockets open in this process, one per session."""
    triton: TritonClient | None = None
    """The Triton client, when models are served."""
    services: Services = field(default_factory=Services)
    """Feature services (speech, chat, memory …), built at start-up; None where off."""
    health_checks: list[HealthCheck] = field(default_factory=list)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    transports: dict[str, Any] = field(default_factory=dict)
    """State a transport keeps for the process (WebRTC's calls by id), by transport name."""
    draining: bool = False
    """SIGTERM arrived: readiness fails, new realtime sockets are refused, open ones
    finish their turn and close (``orchestrator.serving``)."""
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
