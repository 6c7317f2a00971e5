"""Sweep runner, statistics deltas, example inputs, results file, plots and CLI wiring."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from bench import BENCHES, plots, triton_stats
from bench.inputs import parse_overrides, perf_analyzer_data, sample_inputs
from bench.results import machine_info, write_results
from bench.stats import RequestRecord, Summary
from bench.sweep import latency_table, parse_levels, run_level, sweep
from bench.triton_stats import Duration, ModelStats
from orchestrator.cli import build_parser
from tests.support.probe_spec import LABEL, SPEC, VALUES


async def test_run_level_bounds_concurrency_and_counts_every_request() -> None:
    in_flight = peak = 0

    async def workload(index: int, record: RequestRecord) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        if index % 10 == 3:
            raise RuntimeError("synthetic failure")

    result = await run_level(workload, 4, requests=40, progress=False)
    assert len(result.records) == 40
    assert peak == 4
    assert len(result.errors) == 4
    assert result.errors[0] == "RuntimeError: synthetic failure"
    report = result.latency()
    assert (report.requests, report.errors) == (36, 4)


async def test_run_level_by_duration_stops_starting_requests_at_the_deadline() -> None:
    async def workload(index: int, record: RequestRecord) -> None:
        await asyncio.sleep(0.005)

    result = await run_level(workload, 2, duration_s=0.05, progress=False)
    assert result.records
    assert all(r.start < result.records[0].start + 0.05 + 0.05 for r in result.records)


async def test_timeouts_become_errors_and_sweep_collects_around_each_level() -> None:
    import contextlib

    seen = []

    @contextlib.contextmanager
    def around(level: int):
        seen.append(level)
        yield {"level": level}

    async def slow(index: int, record: RequestRecord) -> None:
        await asyncio.sleep(1)

    results = await sweep(slow, (1, 2), requests=2, timeout_s=0.01, progress=False,
                          around=around)
    assert seen == [1, 2]
    assert [r.extra["collected"] for r in results] == [{"level": 1}, {"level": 2}]
    assert all(e == "timeout after 0.01 s" for r in results for e in r.errors)
    assert "conc" in latency_table(results)


def test_levels_parse_and_reject_nonsense() -> None:
    assert parse_levels("1,4,8,16") == (1, 4, 8, 16)
    for bad in ("", "0,2", "a"):
        with pytest.raises(ValueError):
            parse_levels(bad)


def _stats(infers: int, execs: int, queue_ns: int, batches: dict[int, int]) -> ModelStats:
    return ModelStats("m", "1", inference_count=infers, execution_count=execs,
                      success=Duration(infers, infers * 2_000_000),
                      queue=Duration(infers, queue_ns), batches=batches)


def test_statistics_delta_subtracts_counters_and_batch_histogram() -> None:
    before = {("m", "1"): _stats(10, 10, 10_000_000, {1: 10})}
    after = {("m", "1"): _stats(30, 14, 50_000_000, {1: 12, 8: 2, 4: 2}),
             ("idle", "1"): ModelStats("idle", "1")}
    change = triton_stats.delta(before, after)
    assert list(change) == ["m"]
    m = change["m"]
    assert (m.inference_count, m.execution_count) == (20, 4)
    assert m.avg_batch_size == 5.0
    assert m.batches == {1: 2, 4: 2, 8: 2}
    assert m.queue.avg_ms == 2.0
    assert m.to_json()["avg_ms"]["queue"] == 2.0
    table = triton_stats.format_table(change)
    assert "1:2 4:2 8:2" in table and "5.00" in table


def test_sample_inputs_fill_required_tensors_and_perf_analyzer_data_matches() -> None:
    values = sample_inputs(SPEC, variable_length=5)
    assert set(values) == {VALUES, LABEL}
    assert values[VALUES].shape == (5,) and values[VALUES].dtype == np.float32
    assert values[LABEL].shape == (1,)
    doc = perf_analyzer_data(SPEC, sample_inputs(SPEC, parse_overrides(['label="x"'])))
    step = doc["data"][0]
    assert step["label"] == {"content": ["x"], "shape": [1]}
    assert step["values"]["shape"] == [16] and len(step["values"]["content"]) == 16
    with pytest.raises(ValueError, match="has no inputs"):
        sample_inputs(SPEC, {"nope": 1})


def test_results_file_carries_machine_settings_and_results(tmp_path) -> None:
    info = machine_info()
    assert info["cpu_cores"] >= 1 and info["cpu"] and info["date"].endswith("Z")
    assert isinstance(info["gpus"], list)
    path = write_results(tmp_path, "demo", {"levels": (1, 4)},
                         {"latency": Summary.of([1.0, 2.0]), "nan": float("nan")})
    doc = json.loads(path.read_text())
    assert doc["bench"] == "demo" and doc["settings"]["levels"] == [1, 4]
    assert doc["results"]["latency"]["p50"] == 1.5 and doc["results"]["nan"] is None
    assert doc["machine"]["git"]["commit"]


def test_plots_write_png_files(tmp_path) -> None:
    series = {"a": [(1, Summary.of([1, 2, 3])), (4, Summary.of([2, 4, 8]))]}
    paths = [
        plots.latency_vs_concurrency(series, tmp_path / "lat.png"),
        plots.throughput_vs_concurrency({"a": [(1, 10.0), (4, 30.0)]}, tmp_path / "tp.png"),
        plots.stage_breakdown({"off": {"queue": 1.0, "infer": 4.0},
                               "on": {"queue": 2.0, "infer": 1.0}}, tmp_path / "st.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_registered_bench_is_a_voicechat_bench_subcommand() -> None:
    parser = build_parser()
    for name in BENCHES:
        args = parser.parse_args(["bench", name, *(["--model", "x"] if name in
                                                   {"batching", "models", "inputs"} else []),
                                  *(["--out", "o"] if name == "inputs" else [])])
        assert (args.command, args.bench) == ("bench", name)
    args = parser.parse_args(["bench", "batching", "--model", "m", "--levels", "2,3"])
    assert args.levels == (2, 3)


@pytest.mark.parametrize("transports", ["carrier-pigeon", "webrtc,ws", ","])
def test_the_browser_bench_refuses_a_transport_the_page_lacks(transports: str) -> None:
    from bench import browser

    args = build_parser().parse_args(["bench", "browser", "--transport", transports])
    with pytest.raises(SystemExit, match="the page's transports are webrtc, websocket"):
        browser.run(args, object())
