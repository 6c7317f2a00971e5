"""Conversation memory for a process (its start-up is in ``orchestrator.runtime``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.memory.embedder import TritonEmbedder
from orchestrator.memory.service import MemoryService
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.inference.client import TritonClient


def build_memory(settings: Settings, triton: TritonClient | None) -> MemoryService:
    """The memory service over Milvus and the served embedder; ``start()`` connects it.

    Milvus or the embedder being down leaves the service degraded and retrying; a
    collection of another dimension raises SchemaMismatch at start.
    """
    return MemoryService(TritonEmbedder(triton), uri=settings.milvus_target,
                         collection=settings.milvus_collection)
