"""Texts -> unit vectors through the ``embedder`` Triton model, in batched requests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from export.specs import embedder as spec


class TritonEmbedder:
    """Sends up to ``spec.MAX_BATCH_SIZE`` texts per request; requests run concurrently
    (Triton's dynamic batcher regroups them)."""

    def __init__(self, client, *, batch_size: int = spec.MAX_BATCH_SIZE,  # type: ignore[no-untyped-def]
                 concurrency: int = 4) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, spec.MAX_BATCH_SIZE))
        self.concurrency = max(1, concurrency)

    async def embed(self, texts: Sequence[str], *, version: str = "") -> np.ndarray:
        """``version``: a pinned embedder version (empty: the promoted one)."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        chunks = [list(texts[i:i + self.batch_size])
                  for i in range(0, len(texts), self.batch_size)]
        slots = asyncio.Semaphore(self.concurrency)

        async def one(chunk: list[str]) -> np.ndarray:
            async with slots:
                result = await self.client.infer_batch(
                    spec.SPEC, {spec.TEXT: np.array([[t] for t in chunk], dtype=object)},
                    version=version)
            return np.asarray(result[spec.EMBEDDING], np.float32)

        parts = await asyncio.gather(*(one(c) for c in chunks))
        return np.concatenate(parts, axis=0)

    async def dimension(self) -> int:
        return int(np.asarray(await self.embed(["dimension probe"])).shape[1])
