"""Triton's statistics, read as a before/after delta, count exactly the requests we sent."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bench import triton_stats
from bench.stats import RequestRecord
from bench.sweep import run_level
from bench.workloads import infer_workload
from orchestrator.errors import InferenceInvalidInput
from orchestrator.inference.client import TritonClient
from tests.support.probe_spec import BATCH_SIZE, LABEL, SPEC, TOTAL, VALUES

pytestmark = [pytest.mark.asyncio, pytest.mark.triton]

VALUES_IN = {VALUES: np.array([1.0, 2.0, 3.5], np.float32), LABEL: ["ok"]}


async def test_sequential_requests_are_counted_one_per_execution(probe) -> None:
    client = TritonClient(probe)
    try:
        with triton_stats.collect(probe, [SPEC.name]) as window:
            for _ in range(7):
                result = await client.infer(SPEC, VALUES_IN)
                assert result.scalar(TOTAL) == 6.5
                assert result.scalar(BATCH_SIZE) == 1
            for _ in range(2):  # the model answers with an error response
                with pytest.raises(InferenceInvalidInput, match="label 'fail'"):
                    await client.infer(SPEC, {**VALUES_IN, LABEL: ["fail"]})
            for _ in range(3):  # Triton rejects these before the model sees them
                with pytest.raises(InferenceInvalidInput):
                    await client.infer(SPEC, {VALUES: VALUES_IN[VALUES]})
    finally:
        await client.close()
    stats = window.delta[SPEC.name]
    # Triton 2.51 counts a python-backend error response as a successful execution,
    # and requests it rejects before scheduling are not counted at all: the benches
    # therefore count errors on the client (docs/benchmarks/bench.md says so).
    assert stats.success.count == 9
    assert stats.fail.count == 0
    assert stats.inference_count == 9 and stats.execution_count == 9
    assert stats.batches == {1: 9}
    assert stats.avg_batch_size == 1.0
    assert stats.queue.count == 9 and stats.compute_infer.count == 9
    assert stats.compute_infer.avg_ms >= 4.0  # the probe sleeps 4 ms per execution
    print("\n" + triton_stats.format_table(window.delta, "sequential probe requests"))


async def test_concurrent_requests_are_batched_and_the_histogram_adds_up(probe) -> None:
    client = TritonClient(probe)
    seen_batches: list[int] = []

    async def send(index, record) -> None:  # type: ignore[no-untyped-def]
        result = await client.infer(SPEC, VALUES_IN)
        seen_batches.append(int(result.scalar(BATCH_SIZE)))

    try:
        await infer_workload(client, SPEC, VALUES_IN)(0, RequestRecord(start=0.0))  # warm
        with triton_stats.collect(probe, [SPEC.name]) as window:
            level = await run_level(send, 8, requests=64, progress=False)
    finally:
        await client.close()
    assert not level.errors
    stats = window.delta[SPEC.name]
    assert stats.inference_count == 64 and stats.success.count == 64
    # Triton's histogram is the one the model saw: executions per batch size
    assert sum(size * n for size, n in stats.batches.items()) == 64
    assert sum(stats.batches.values()) == stats.execution_count
    executions_seen = {size: seen_batches.count(size) // size for size in set(seen_batches)}
    assert executions_seen == stats.batches
    print("\n" + triton_stats.format_table(window.delta, "8 concurrent workers, 64 requests"))


async def test_collect_leaves_out_models_without_activity(probe) -> None:
    with triton_stats.collect(probe) as window:
        await asyncio.sleep(0)
    assert window.delta == {}
    assert SPEC.name in triton_stats.totals(triton_stats.snapshot(probe))
