"""Start-up of the shared state: with ``REDIS_URL``, one Redis client for the process,
the limiter's and the live sessions' Redis halves, revocations followed, a health check.
Without it: nothing, and each replica keeps its state in process."""

from __future__ import annotations

from orchestrator.health.checks import HealthCheck
from orchestrator.shared.connection import SharedRedis
from orchestrator.shared.limits import SharedLimits
from orchestrator.shared.sessions import SessionLeases


class SharedState:
    """What start-up hands the limiter and the live sessions (both None without Redis)."""

    def __init__(self, redis_url: str | None, lease_ttl_s: float) -> None:
        self.redis = SharedRedis(redis_url, lease_ttl_s=lease_ttl_s) if redis_url else None
        self.limits = SharedLimits(self.redis) if self.redis else None
        self.leases = SessionLeases(self.redis) if self.redis else None

    def health_check(self) -> HealthCheck:
        """Not required: without Redis the replica still serves, on its own limits (the
        check says so, and /api/health reads degraded)."""
        assert self.redis is not None
        return HealthCheck("redis", required=False, probe=self.redis.probe)
