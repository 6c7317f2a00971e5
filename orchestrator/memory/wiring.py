"""Start-up of conversation memory (called by ``orchestrator.runtime``)."""

from __future__ import annotations

from orchestrator.memory.embedder import TritonEmbedder
from orchestrator.memory.service import MemoryService
from orchestrator.runtime import HealthCheck, Runtime


def build_memory(runtime: Runtime) -> MemoryService:
    settings = runtime.settings
    return MemoryService(TritonEmbedder(runtime.triton), uri=settings.milvus_target,
                         collection=settings.milvus_collection)


async def start_memory(runtime: Runtime) -> MemoryService:
    """Register ``services["memory"]`` and its (optional) health check.

    Milvus or the embedder being down leaves the service degraded and retrying; a
    collection of another dimension raises SchemaMismatch and start-up fails.
    """
    service = build_memory(runtime)
    await service.start()
    runtime.services["memory"] = service
    runtime.on_close(service.close)
    runtime.health_checks.append(HealthCheck("memory", required=False, probe=service.health))
    return service
