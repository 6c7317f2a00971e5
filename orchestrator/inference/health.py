"""Health probes for Triton and each model the settings enable."""

from __future__ import annotations

from orchestrator.inference.client import TritonClient
from orchestrator.runtime import HealthCheck
from orchestrator.settings import Settings


def enabled_models(settings: Settings) -> list[str]:
    """Models the service needs, by setting (STT_ENABLED, LLM_ENABLED, TTS_ENABLED, memory)."""
    models = []
    if settings.stt_enabled:
        models.append("stt")
    if settings.llm_enabled:
        models.append("llm")
    if settings.tts_enabled:
        models.append("tts")
    if settings.memory_enabled:
        models.append("embedder")
    return models


def triton_health_checks(client: TritonClient, settings: Settings) -> list[HealthCheck]:
    async def server() -> str | None:
        if not await client.server_ready():
            raise RuntimeError(f"Triton at {client.url} is not ready")
        return client.url

    checks = [HealthCheck("triton", required=True, probe=server)]
    for model in enabled_models(settings):
        async def probe(model: str = model) -> str | None:
            if not await client.model_ready(model):
                raise RuntimeError(f"model {model} is not loaded or not ready")
            return "ready"

        # The embedder only feeds memory: without it chat goes on, degraded.
        checks.append(HealthCheck(f"model:{model}", required=model != "embedder", probe=probe))
    return checks
