"""PNG plots (matplotlib, headless): latency and throughput against concurrency, and a
stacked bar per configuration showing where the time went, stage by stage.

matplotlib is a dev extra: it is imported when a plot is drawn, not when benches run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.stats import Summary

# label -> [(concurrency, latency summary in ms)]
LatencySeries = Mapping[str, Sequence[tuple[int, Summary]]]
# label -> [(concurrency, value)]
ValueSeries = Mapping[str, Sequence[tuple[int, float]]]


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> Path:  # type: ignore[no-untyped-def]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    _pyplot().close(fig)
    return target


def latency_vs_concurrency(series: LatencySeries, path: str | os.PathLike[str], *,
                           title: str = "Latency", unit: str = "ms") -> Path:
    """p50 (solid) and p99 (dashed) of each series against concurrency."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in series.items():
        xs = [c for c, _ in points]
        line, = ax.plot(xs, [s.p50 for _, s in points], marker="o", label=f"{label} p50")
        ax.plot(xs, [s.p99 for _, s in points], marker="x", linestyle="--",
                color=line.get_color(), label=f"{label} p99")
    ax.set_xlabel("concurrency")
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title(title)
    _concurrency_axis(ax, series)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def throughput_vs_concurrency(series: ValueSeries, path: str | os.PathLike[str], *,
                              title: str = "Throughput", unit: str = "requests/s") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, points in series.items():
        ax.plot([c for c, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xlabel("concurrency")
    ax.set_ylabel(unit)
    ax.set_title(title)
    _concurrency_axis(ax, series)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def stage_breakdown(bars: Mapping[str, Mapping[str, float]], path: str | os.PathLike[str], *,
                    title: str = "Where the time goes", unit: str = "ms") -> Path:
    """One stacked bar per key of ``bars`` (e.g. a model or a concurrency level), one
    segment per stage (e.g. queue, compute input, compute infer, compute output)."""
    plt = _pyplot()
    stages: list[str] = []
    for parts in bars.values():
        stages += [s for s in parts if s not in stages]
    labels = list(bars)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.9 * len(labels)), 4.2))
    bottom = [0.0] * len(labels)
    for stage in stages:
        heights = [float(bars[label].get(stage) or 0.0) for label in labels]
        ax.bar(labels, heights, bottom=bottom, label=stage)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _concurrency_axis(ax, series: Mapping[str, Sequence[tuple[int, object]]]) -> None:  # type: ignore[no-untyped-def]
    levels = sorted({c for points in series.values() for c, _ in points})
    if levels:
        ax.set_xticks(levels)
