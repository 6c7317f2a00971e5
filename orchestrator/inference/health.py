"""Health probes for Triton and each model the settings enable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from export.roles import ROLES, enabled_roles
from orchestrator.health.checks import HealthCheck
from orchestrator.inference.client import TritonClient
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.inference.supervisor import TritonSupervisor


def enabled_models(settings: Settings) -> list[str]:
    """Models the service needs: the roles whose settings switch is on (export.roles)."""
    return enabled_roles(settings)


def triton_health_checks(client: TritonClient, settings: Settings,
                         supervisor: TritonSupervisor | None = None) -> list[HealthCheck]:
    async def server() -> str | None:
        state = supervisor.state if supervisor else None
        if state is not None and not state.running:
            raise RuntimeError(state.describe())
        if not await client.server_ready():
            raise RuntimeError(f"Triton at {client.url} is not ready")
        return f"{client.url} ({state.describe()})" if state else client.url

    checks = [HealthCheck("triton", required=True, probe=server)]
    for model in enabled_models(settings):
        async def probe(model: str = model) -> str | None:
            if not await client.model_ready(model):
                raise RuntimeError(f"model {model} is not loaded or not ready")
            return "ready"

        # A role that is not required (the embedder only feeds memory): degraded, not down.
        checks.append(HealthCheck(f"model:{model}", required=ROLES[model].required,
                                  probe=probe))
    return checks
