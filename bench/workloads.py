"""Workloads over the project's Triton client: one request of a spec per call.

Non-decoupled models record one response; decoupled (streaming) models record every
streamed response as one "token" (model-specific benches count real tokens).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from bench.stats import RequestRecord
from bench.sweep import Workload
from export.specs.base import ModelSpec, Tensor


def infer_workload(client, spec: ModelSpec,  # type: ignore[no-untyped-def]
                   values: Mapping[Tensor, np.ndarray], *,
                   timeout_s: float | None = None) -> Workload:
    """A workload sending ``values`` to ``spec`` through a ``TritonClient``."""

    async def one(index: int, record: RequestRecord) -> None:
        if not spec.decoupled:
            await client.infer(spec, values, timeout_s=timeout_s)
            record.responses.append(time.perf_counter())
            return
        async for item in client.stream(spec, values, timeout_s=timeout_s):
            record.responses.append(time.perf_counter())
            record.tokens.append(1)
            del item

    return one
