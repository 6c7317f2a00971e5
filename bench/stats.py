"""Latency statistics over recorded timestamps.

Percentiles use linear interpolation between closest ranks (numpy's default, which is
what genai-perf and perf_analyzer report), so ``percentile([1, 2, 3, 4], 50) == 2.5``.

LLM metrics follow genai-perf's definitions (timestamps in seconds, any monotonic clock):

* time to first token (TTFT) = first non-empty response - request start
* request latency            = last response - request start
* inter-token latency (ITL)  = (request latency - TTFT) / (output tokens - 1), per request
* output token throughput    = all output tokens / benchmark duration
* request throughput         = completed requests / benchmark duration
* benchmark duration         = last response of any request - first request start

A request with one output token has no ITL (it is left out of that distribution).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not len(values):
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(frozen=True, slots=True)
class Summary:
    """Distribution of one metric (same unit as the input values)."""

    count: int
    mean: float
    min: float
    max: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        data = np.asarray(list(values), dtype=np.float64)
        if data.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan, nan)
        p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
        return cls(count=int(data.size), mean=float(data.mean()), min=float(data.min()),
                   max=float(data.max()), std=float(data.std()), p50=p50, p90=p90,
                   p95=p95, p99=p99)

    def scaled(self, factor: float) -> Summary:
        """The same distribution in another unit (e.g. ``1000`` for s -> ms)."""
        values = {k: (v * factor if k != "count" else v) for k, v in asdict(self).items()}
        return Summary(**values)

    def to_json(self) -> dict[str, float]:
        return {k: _finite(v) for k, v in asdict(self).items()}


def _finite(value: float) -> float | None:
    return None if value != value else round(float(value), 6)  # NaN -> null in JSON


@dataclass(slots=True)
class RequestRecord:
    """What one request did: its start, the arrival time of each response, the outcome.

    ``responses`` holds one timestamp per (streamed) response; ``tokens`` the number of
    output tokens each carried (one per response when left empty).
    """

    start: float
    responses: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)
    """Per-request figures a workload reports (e.g. server-side stage timings, ms)."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.responses)

    @property
    def end(self) -> float:
        return self.responses[-1] if self.responses else self.start

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def output_tokens(self) -> int:
        return sum(self.tokens) if self.tokens else len(self.responses)

    @property
    def time_to_first_token(self) -> float | None:
        """First response that carried at least one token (genai-perf skips empty ones)."""
        if not self.responses:
            return None
        if not self.tokens:
            return self.responses[0] - self.start
        for when, n in zip(self.responses, self.tokens, strict=False):
            if n > 0:
                return when - self.start
        return None

    @property
    def inter_token_latency(self) -> float | None:
        ttft = self.time_to_first_token
        if ttft is None or self.output_tokens < 2:
            return None
        return (self.latency - ttft) / (self.output_tokens - 1)


def benchmark_duration(records: Sequence[RequestRecord]) -> float:
    """From the first request start to the last response (genai-perf's window)."""
    done = [r for r in records if r.responses]
    if not done:
        return 0.0
    return max(r.end for r in done) - min(r.start for r in records)


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """Request latency and throughput of a non-streaming run (latencies in ms)."""

    requests: int
    errors: int
    duration_s: float
    throughput_rps: float
    latency_ms: Summary

    @classmethod
    def of(cls, records: Sequence[RequestRecord]) -> LatencyReport:
        ok = [r for r in records if r.ok]
        duration = benchmark_duration(records)
        return cls(requests=len(ok), errors=len(records) - len(ok), duration_s=duration,
                   throughput_rps=len(ok) / duration if duration > 0 else 0.0,
                   latency_ms=Summary.of(r.latency for r in ok).scaled(1000))

    def to_json(self) -> dict:
        return {"requests": self.requests, "errors": self.errors,
                "duration_s": _finite(self.duration_s),
                "throughput_rps": _finite(self.throughput_rps),
                "latency_ms": self.latency_ms.to_json()}


@dataclass(frozen=True, slots=True)
class LLMReport:
    """genai-perf's LLM figures (latencies in ms)."""

    requests: int
    errors: int
    duration_s: float
    request_throughput_rps: float
    output_token_throughput_tps: float
    time_to_first_token_ms: Summary
    inter_token_latency_ms: Summary
    request_latency_ms: Summary
    output_tokens: Summary
    output_token_throughput_per_request_tps: Summary

    @classmethod
    def of(cls, records: Sequence[RequestRecord]) -> LLMReport:
        ok = [r for r in records if r.ok]
        duration = benchmark_duration(records)
        tokens = sum(r.output_tokens for r in ok)
        ttft = [t for r in ok if (t := r.time_to_first_token) is not None]
        itl = [t for r in ok if (t := r.inter_token_latency) is not None]
        return cls(
            requests=len(ok), errors=len(records) - len(ok), duration_s=duration,
            request_throughput_rps=len(ok) / duration if duration > 0 else 0.0,
            output_token_throughput_tps=tokens / duration if duration > 0 else 0.0,
            time_to_first_token_ms=Summary.of(ttft).scaled(1000),
            inter_token_latency_ms=Summary.of(itl).scaled(1000),
            request_latency_ms=Summary.of(r.latency for r in ok).scaled(1000),
            output_tokens=Summary.of(r.output_tokens for r in ok),
            output_token_throughput_per_request_tps=Summary.of(
                r.output_tokens / r.latency for r in ok if r.latency > 0))

    def to_json(self) -> dict:
        out: dict = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.to_json() if isinstance(value, Summary) else (
                _finite(value) if isinstance(value, float) else value)
        return out
