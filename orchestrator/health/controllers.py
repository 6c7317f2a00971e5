"""``GET /api/ping`` and ``GET /api/health``."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import msgspec
from litestar import Controller, Response, get

from orchestrator.dependencies import RuntimeDep
from orchestrator.health.checks import HealthCheck
from orchestrator.redaction import redact


class Pong(msgspec.Struct):
    status: str
    message: str
    time: float


class DependencyHealth(msgspec.Struct):
    status: Literal["up", "down"]
    required: bool
    latency_ms: float
    detail: str | None = None


class Health(msgspec.Struct):
    status: Literal["ok", "degraded", "down"]
    """ok: all up; degraded: an optional dependency is down; down: a required one is."""
    environment: str
    checks: dict[str, DependencyHealth]


async def _run(check: HealthCheck, timeout_s: float) -> DependencyHealth:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check.probe(), timeout_s)
        status: Literal["up", "down"] = "up"
    except Exception as exc:  # public route: no password of a driver's message gets out
        detail = redact(str(exc) or type(exc).__name__)
        status = "down"
    return DependencyHealth(status=status, required=check.required, detail=detail,
                            latency_ms=round((time.perf_counter() - started) * 1000, 2))


class HealthController(Controller):
    path = "/api"
    tags = ["health"]

    # security=[{}]: these answer without a key (probes), unlike the rest of the API.
    @get("/ping", name="health:ping", security=[{}],
         summary="Liveness: answers without touching dependencies")
    async def ping(self) -> Pong:
        return Pong(status="ok", message="pong", time=time.time())

    @get("/health", name="health:check", security=[{}],
         summary="Each dependency's status and latency")
    async def health(self, runtime: RuntimeDep) -> Response[Health]:
        results = await asyncio.gather(*(_run(c, 3.0) for c in runtime.health_checks))
        checks = {c.name: r for c, r in zip(runtime.health_checks, results, strict=True)}
        if any(r.status == "down" and r.required for r in checks.values()):
            overall: Literal["ok", "degraded", "down"] = "down"
        elif any(r.status == "down" for r in checks.values()):
            overall = "degraded"
        else:
            overall = "ok"
        body = Health(status=overall, environment=runtime.settings.environment, checks=checks)
        return Response(body, status_code=503 if overall == "down" else 200)
