"""``GET /api/ping`` and ``GET /api/health``; ``GET /livez`` and ``GET /readyz`` for
orchestrators (Kubernetes probe semantics)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import msgspec
from litestar import Controller, Response, get

from orchestrator.dependencies import RuntimeDep
from orchestrator.health.checks import HealthCheck
from orchestrator.redaction import redact
from orchestrator.runtime import Runtime


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
        checks, overall = await _check_all(runtime, 3.0)
        body = Health(status=overall, environment=runtime.settings.environment, checks=checks)
        return Response(body, status_code=503 if overall == "down" else 200)


async def _check_all(runtime: Runtime, timeout_s: float,
                     ) -> tuple[dict[str, DependencyHealth], Literal["ok", "degraded", "down"]]:
    results = await asyncio.gather(*(_run(c, timeout_s) for c in runtime.health_checks))
    checks = {c.name: r for c, r in zip(runtime.health_checks, results, strict=True)}
    if any(r.status == "down" and r.required for r in checks.values()):
        return checks, "down"
    if any(r.status == "down" for r in checks.values()):
        return checks, "degraded"
    return checks, "ok"


class Probe(msgspec.Struct, omit_defaults=True):
    status: Literal["ok", "draining", "down"]
    checks: dict[str, DependencyHealth] | None = None


class ProbeController(Controller):
    """Kubernetes probes. Liveness asks only whether the process serves (a dependency's
    outage must not get every replica restarted); readiness whether this replica should
    get traffic: its required dependencies answer and it is not draining (after SIGTERM
    it turns 503 at once, so the load balancer stops sending before it stops)."""

    path = "/"
    tags = ["health"]

    @get("/livez", name="health:live", security=[{}], summary="Liveness probe")
    async def live(self) -> Probe:
        return Probe(status="ok")

    @get("/readyz", name="health:ready", security=[{}],
         summary="Readiness probe: 503 while draining or a required dependency is down")
    async def ready(self, runtime: RuntimeDep) -> Response[Probe]:
        if runtime.draining:
            return Response(Probe(status="draining"), status_code=503)
        checks, overall = await _check_all(runtime, 2.0)
        if overall == "down":
            return Response(Probe(status="down", checks=checks), status_code=503)
        return Response(Probe(status="ok"), status_code=200)
