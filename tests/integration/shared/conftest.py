"""Replicas in one process: each :class:`Replica` has its own Redis client, limiter and
live sessions, as two orchestrator processes would, sharing the test's redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from orchestrator.auth.limits import RateLimiter
from orchestrator.realtime.live import LiveSessions
from orchestrator.settings import Settings
from orchestrator.shared.connection import SharedRedis
from orchestrator.shared.limits import SharedLimits
from orchestrator.shared.sessions import SessionLeases
from tests.support.redis import PrivateRedis


@dataclass
class Replica:
    shared: SharedRedis
    limits: RateLimiter
    live: LiveSessions


@pytest.fixture
async def replicas(redis_server_empty: PrivateRedis,
                   ) -> AsyncIterator[Callable[..., object]]:
    """``await make(**env)``: a replica on the test's Redis, closed after the test."""
    made: list[Replica] = []

    async def make(**env: str) -> Replica:
        settings = Settings.from_env({"REDIS_URL": redis_server_empty.url, **env})
        shared = SharedRedis(settings.redis_url or "", lease_ttl_s=settings.redis_lease_ttl_s)
        replica = Replica(shared, RateLimiter(settings, SharedLimits(shared)),
                          LiveSessions(SessionLeases(shared)))
        await shared.start()
        made.append(replica)
        return replica

    yield make
    for replica in made:
        await replica.shared.close()
