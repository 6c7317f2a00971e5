"""Per-model figures from Triton's statistics API, as a before/after delta around a run.

Triton keeps cumulative counters per model version (``get_inference_statistics``):

* ``inference_count``  requests (batch elements) it inferred; ``execution_count`` model
  executions. Their ratio is the average batch size the dynamic batcher achieved.
* ``inference_stats``  per-request count and total ns of: success, fail, queue (waiting
  for an instance / the batcher), compute_input (copying inputs in), compute_infer (the
  model's ``execute``), compute_output. Every request of a batch is charged the batch's
  compute time.
* ``batch_stats``      one entry per batch size executed, with how many executions.

Counters only grow, so the figures of a run are ``after - before``: :func:`collect` is a
context manager that any bench wraps around its workload::

    with collect(url, ["stt"]) as window:
        await run_level(...)
    print(format_table(window.delta))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

STAGES = ("queue", "compute_input", "compute_infer", "compute_output")


@dataclass(frozen=True, slots=True)
class Duration:
    """A Triton ``StatisticDuration``: how many, and their total nanoseconds."""

    count: int = 0
    ns: int = 0

    @property
    def avg_ms(self) -> float | None:
        return self.ns / self.count / 1e6 if self.count else None

    def __sub__(self, other: Duration) -> Duration:
        return Duration(self.count - other.count, self.ns - other.ns)

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.count + other.count, self.ns + other.ns)


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Counters of one model version (cumulative, or a delta of two snapshots)."""

    model: str
    version: str
    inference_count: int = 0
    execution_count: int = 0
    success: Duration = Duration()
    fail: Duration = Duration()
    queue: Duration = Duration()
    compute_input: Duration = Duration()
    compute_infer: Duration = Duration()
    compute_output: Duration = Duration()
    batches: Mapping[int, int] = field(default_factory=dict)
    """Batch size -> number of executions at that size."""

    @property
    def avg_batch_size(self) -> float | None:
        return self.inference_count / self.execution_count if self.execution_count else None

    @property
    def avg_request_ms(self) -> float | None:
        """Server-side time per successful request, from arrival to response."""
        return self.success.avg_ms

    def stage_ms(self) -> dict[str, float]:
        """Average ms per request in each stage (for stacked breakdown plots)."""
        return {s: getattr(self, s).avg_ms or 0.0 for s in STAGES}

    def __sub__(self, before: ModelStats) -> ModelStats:
        batches = {size: n - before.batches.get(size, 0) for size, n in self.batches.items()}
        return ModelStats(
            model=self.model, version=self.version,
            inference_count=self.inference_count - before.inference_count,
            execution_count=self.execution_count - before.execution_count,
            success=self.success - before.success, fail=self.fail - before.fail,
            queue=self.queue - before.queue,
            compute_input=self.compute_input - before.compute_input,
            compute_infer=self.compute_infer - before.compute_infer,
            compute_output=self.compute_output - before.compute_output,
            batches={size: n for size, n in sorted(batches.items()) if n})

    def __add__(self, other: ModelStats) -> ModelStats:
        """Two versions of one model summed (``version`` becomes ``"*"``)."""
        batches = dict(self.batches)
        for size, n in other.batches.items():
            batches[size] = batches.get(size, 0) + n
        return ModelStats(
            model=self.model, version="*" if self.version != other.version else self.version,
            inference_count=self.inference_count + other.inference_count,
            execution_count=self.execution_count + other.execution_count,
            success=self.success + other.success, fail=self.fail + other.fail,
            queue=self.queue + other.queue, compute_input=self.compute_input + other.compute_input,
            compute_infer=self.compute_infer + other.compute_infer,
            compute_output=self.compute_output + other.compute_output,
            batches=dict(sorted(batches.items())))

    @property
    def idle(self) -> bool:
        return not (self.inference_count or self.execution_count or self.fail.count)

    def to_json(self) -> dict:
        return {
            "model": self.model, "version": self.version,
            "inference_count": self.inference_count, "execution_count": self.execution_count,
            "avg_batch_size": _round(self.avg_batch_size),
            "success": self.success.count, "fail": self.fail.count,
            "avg_request_ms": _round(self.avg_request_ms),
            "avg_ms": {s: _round(getattr(self, s).avg_ms) for s in STAGES},
            "batch_sizes": {str(k): v for k, v in self.batches.items()},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _duration(proto) -> Duration:  # type: ignore[no-untyped-def]
    return Duration(int(proto.count), int(proto.ns))


def from_proto(stats) -> ModelStats:  # type: ignore[no-untyped-def]
    """One ``ModelStatistics`` protobuf message (tritonclient grpc, ``as_json=False``)."""
    infer = stats.inference_stats
    return ModelStats(
        model=stats.name, version=str(stats.version),
        inference_count=int(stats.inference_count), execution_count=int(stats.execution_count),
        success=_duration(infer.success), fail=_duration(infer.fail),
        queue=_duration(infer.queue), compute_input=_duration(infer.compute_input),
        compute_infer=_duration(infer.compute_infer),
        compute_output=_duration(infer.compute_output),
        batches={int(b.batch_size): int(b.compute_infer.count) for b in stats.batch_stats})


Snapshot = dict[tuple[str, str], ModelStats]


def snapshot(url: str, models: Iterable[str] | None = None) -> Snapshot:
    """Cumulative statistics of ``models`` (every loaded model when None), by (name, version)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        found: Snapshot = {}
        for name in (list(models) if models is not None else [""]):
            response = client.get_inference_statistics(model_name=name, as_json=False)
            for entry in response.model_stats:
                stats = from_proto(entry)
                found[(stats.model, stats.version)] = stats
        return found
    finally:
        client.close()


def settled_snapshot(url: str, models: Iterable[str] | None = None, *, tries: int = 50,
                     pause_s: float = 0.02) -> Snapshot:
    """A snapshot once the counts stop moving: Triton records a request's statistics just
    after its response has gone out, so a request the client has finished may not be
    counted yet (under load, a warm-up request landed inside the next window)."""
    import time

    previous = snapshot(url, models)
    for _ in range(tries):
        time.sleep(pause_s)
        current = snapshot(url, models)
        if {k: (v.inference_count, v.execution_count) for k, v in current.items()} == \
                {k: (v.inference_count, v.execution_count) for k, v in previous.items()}:
            return current
        previous = current
    return previous


def delta(before: Snapshot, after: Snapshot) -> dict[str, ModelStats]:
    """``after - before`` per model (versions summed), leaving out models with no activity."""
    by_model: dict[str, ModelStats] = {}
    for key, now in after.items():
        previous = before.get(key, ModelStats(now.model, now.version))
        change = now - previous
        if change.idle:
            continue
        by_model[now.model] = by_model[now.model] + change if now.model in by_model else change
    return by_model


def totals(snap: Snapshot) -> dict[str, ModelStats]:
    """Cumulative figures per model (versions summed), models with activity only."""
    return delta({}, snap)


@dataclass
class StatsWindow:
    """Filled in when the ``collect`` block ends."""

    url: str
    models: list[str] | None
    before: Snapshot = field(default_factory=dict)
    after: Snapshot = field(default_factory=dict)
    delta: dict[str, ModelStats] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {name: stats.to_json() for name, stats in self.delta.items()}


@contextlib.contextmanager
def collect(url: str, models: Iterable[str] | None = None) -> Iterator[StatsWindow]:
    """Statistics of what happened on the server during the ``with`` block."""
    window = StatsWindow(url, list(models) if models is not None else None)
    window.before = settled_snapshot(url, window.models)
    try:
        yield window
    finally:
        with contextlib.suppress(Exception):  # a dead server must not hide the real error
            window.after = settled_snapshot(url, window.models)
            window.delta = delta(window.before, window.after)


def format_table(figures: Mapping[str, ModelStats], title: str = "") -> str:
    """Plain-text table: one row per model (average ms per request in each stage)."""
    lines = [title] if title else []
    lines.append(f"{'model':<14} {'ver':>3} {'infers':>7} {'execs':>6} {'batch':>6} "
                 f"{'fail':>5} {'queue':>8} {'in':>7} {'infer':>8} {'out':>7} {'total':>8}  "
                 "batch sizes (size:executions)")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for name, s in figures.items():
        sizes = " ".join(f"{size}:{n}" for size, n in s.batches.items())
        avg = s.avg_batch_size
        lines.append(
            f"{name:<14} {s.version:>3} {s.inference_count:>7} {s.execution_count:>6} "
            f"{(f'{avg:.2f}' if avg else '-'):>6} {s.fail.count:>5} {ms(s.queue.avg_ms):>8} "
            f"{ms(s.compute_input.avg_ms):>7} {ms(s.compute_infer.avg_ms):>8} "
            f"{ms(s.compute_output.avg_ms):>7} {ms(s.avg_request_ms):>8}  {sizes}")
    if not figures:
        lines.append("(no inferences in this window)")
    return "\n".join(lines)
