"""Which reads ask a Milvus server for Strong consistency: the search endpoint (it must see
a turn just stored through another replica), not the recall before each reply (Strong
costs about 400 ms a read on a server; recall searches past sessions only)."""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.memory.service import MemoryService
from storage.memory import MemoryStore

DIM = 4


class Embedder:
    async def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), DIM), np.float32) / 2

    async def dimension(self) -> int:
        return DIM


class Client:
    """Records what a search asked of Milvus."""

    def __init__(self) -> None:
        self.searches: list[dict[str, Any]] = []

    def search(self, collection: str, **kwargs: Any) -> list[list[dict]]:
        self.searches.append(kwargs)
        return [[]]


def _service() -> tuple[MemoryService, Client]:
    client = Client()
    store = MemoryStore("http://milvus:19530", "c", DIM)
    store._client = client  # as if open
    service = MemoryService(Embedder(), uri=store.uri, collection="c")  # type: ignore[arg-type]
    service.store = store
    return service, client


async def test_the_search_endpoint_reads_strong_and_recall_does_not() -> None:
    service, client = _service()
    await service.search("alice", "my dog", top_k=3, min_score=0.0)
    await service.recall("alice", "my dog", 3, 0.0, exclude_session_id="s1")
    endpoint, recall = client.searches
    assert endpoint.get("consistency_level") == "Strong"
    assert "consistency_level" not in recall  # the collection's own: Bounded
    assert recall["filter"] == 'user_id == "alice" and session_id != "s1"'
