"""Closed-loop load at fixed concurrency levels (perf_analyzer's "concurrency mode").

A workload is ``async def workload(index, record)``: it sends request ``index`` and
appends the arrival time of each response to ``record.responses`` (``time.perf_counter``)
with, for token streams, the number of tokens in ``record.tokens``. A workload that
records nothing gets one response stamped when it returns. Exceptions become
``record.error``: one failing request never stops the run.

At concurrency C exactly C workers each send their next request as soon as the previous
one answered, so at most C requests are in flight; a level stops after ``requests``
requests in all, or after ``duration_s`` seconds (no new request starts after that).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from bench.stats import LatencyReport, LLMReport, RequestRecord

Workload = Callable[[int, RequestRecord], Awaitable[None]]

DEFAULT_LEVELS: tuple[int, ...] = (1, 4, 8, 16)


@dataclass
class LevelResult:
    """All requests of one concurrency level."""

    concurrency: int
    records: list[RequestRecord] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    """What else a bench collected around the level (e.g. Triton statistics)."""

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.records if r.error]

    def latency(self) -> LatencyReport:
        return LatencyReport.of(self.records)

    def llm(self) -> LLMReport:
        return LLMReport.of(self.records)


def parse_levels(text: str) -> tuple[int, ...]:
    """``"1,4,8,16"`` -> (1, 4, 8, 16); each level a positive integer."""
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"concurrency levels must be integers like 1,4,8,16, "
                         f"not {text!r}") from None
    if not levels or min(levels) < 1:
        raise ValueError(f"concurrency levels must be >= 1, not {text!r}")
    return levels


async def _one(workload: Workload, index: int, timeout_s: float | None) -> RequestRecord:
    record = RequestRecord(start=time.perf_counter())
    try:
        await asyncio.wait_for(workload(index, record), timeout_s)
        if not record.responses:
            record.responses.append(time.perf_counter())
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        record.error = f"timeout after {timeout_s:g} s"
    except Exception as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    return record


async def warm_up(workload: Workload, count: int, timeout_s: float | None) -> None:
    """``count`` sequential requests whose figures are thrown away."""
    for i in range(count):
        await _one(workload, -1 - i, timeout_s)


async def run_level(workload: Workload, concurrency: int, *, requests: int | None = None,
                    duration_s: float | None = None, warmup: int = 0,
                    timeout_s: float | None = 120.0, progress: bool = True,
                    label: str = "") -> LevelResult:
    """Run ``workload`` with ``concurrency`` workers; ``warmup`` requests are not recorded."""
    if (requests is None) == (duration_s is None):
        raise ValueError("give exactly one of requests or duration_s")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    await warm_up(workload, warmup, timeout_s)
    result = LevelResult(concurrency)
    next_index = 0
    deadline = time.perf_counter() + duration_s if duration_s is not None else None
    bar = tqdm(total=requests, desc=label or f"concurrency {concurrency}", unit="req",
               disable=not progress, leave=False)

    def take() -> int | None:
        nonlocal next_index
        if requests is not None and next_index >= requests:
            return None
        if deadline is not None and time.perf_counter() >= deadline:
            return None
        next_index += 1
        return next_index - 1

    async def worker() -> None:
        while (index := take()) is not None:
            record = await _one(workload, index, timeout_s)
            result.records.append(record)
            bar.update(1)
            if record.error:
                bar.set_postfix(errors=len(result.errors), refresh=False)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        bar.close()
    return result


async def sweep(workload: Workload, levels: Iterable[int] = DEFAULT_LEVELS, *,
                requests: int | None = None, duration_s: float | None = None,
                warmup: int = 0, timeout_s: float | None = 120.0, progress: bool = True,
                around: Callable[[int], object] | None = None,
                label: str = "") -> list[LevelResult]:
    """One :func:`run_level` per level. ``around(concurrency)`` may return a context
    manager (e.g. Triton statistics); whatever it yields lands in ``LevelResult.extra``."""
    results = []
    for level in levels:
        tag = f"{label} c={level}".strip()
        if around is None:
            results.append(await run_level(workload, level, requests=requests,
                                           duration_s=duration_s, warmup=warmup,
                                           timeout_s=timeout_s, progress=progress, label=tag))
            continue
        await warm_up(workload, warmup, timeout_s)  # outside the collection window
        with around(level) as collected:  # type: ignore[attr-defined]
            level_result = await run_level(workload, level, requests=requests,
                                           duration_s=duration_s,
                                           timeout_s=timeout_s, progress=progress, label=tag)
        level_result.extra["collected"] = collected
        results.append(level_result)
    return results


def latency_table(results: Sequence[LevelResult], title: str = "") -> str:
    """A plain-text table: one row per level (ms, requests/s)."""
    lines = [title] if title else []
    lines.append(f"{'conc':>5} {'reqs':>6} {'err':>4} {'req/s':>9} {'p50 ms':>9} "
                 f"{'p90 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for r in results:
        rep = r.latency()
        s = rep.latency_ms
        lines.append(f"{r.concurrency:>5} {rep.requests:>6} {rep.errors:>4} "
                     f"{rep.throughput_rps:>9.1f} {s.p50:>9.2f} {s.p90:>9.2f} {s.p95:>9.2f} "
                     f"{s.p99:>9.2f} {s.mean:>9.2f}")
    return "\n".join(lines)
