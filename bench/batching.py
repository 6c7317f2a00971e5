"""Dynamic batching gain: the same model with and without Triton's dynamic batcher.

    voicechat bench batching --model stt --levels 1,4,8,16 --requests 200

The model's configuration is read from the running server (so a GPU profile, instance
counts and queue delay stay as deployed), and reloaded twice through
``load_model(name, config=JSON)``: once without ``dynamic_batching``, once with it (the
deployed settings, or ``--queue-delay-us`` when the deployed model has none). Nothing on
disk changes; the disk configuration is reloaded at the end. At each concurrency the
bench records client latency and throughput plus Triton's own figures (average batch
size, queue and compute time); the gain is throughput with / without.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import time
from typing import Any

from bench import options
from bench.inputs import load_spec, parse_overrides, sample_inputs

MODES = ("off", "on")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name in the repository")
    parser.add_argument("--spec", default=None,
                        help="module:ATTR of the model's ModelSpec when it is not a project "
                        "model (e.g. tests.support.probe_spec:SPEC)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=JSON",
                        help="input value override (repeatable)")
    parser.add_argument("--length", type=int, default=16,
                        help="size of each variable dimension of generated inputs")
    parser.add_argument("--queue-delay-us", type=int, default=2000,
                        help="max_queue_delay_microseconds when the model has no batcher")
    options.add_triton_url(parser)
    options.add_sweep(parser, requests=200)
    options.add_output(parser)


def batching_configs(config: dict[str, Any], queue_delay_us: int) -> dict[str, dict]:
    """The served config without and with ``dynamic_batching`` (Triton JSON form)."""
    if int(config.get("max_batch_size", 0) or 0) < 1:
        raise ValueError(f"{config.get('name')}: max_batch_size is 0, so Triton cannot batch "
                         "it (decoupled models such as the LLM batch inside model.py)")
    off = copy.deepcopy(config)
    off.pop("dynamic_batching", None)
    on = copy.deepcopy(config)
    on.setdefault("dynamic_batching", {"max_queue_delay_microseconds": queue_delay_us})
    return {"off": off, "on": on}


def reload(url: str, model: str, config: dict | None, timeout_s: float = 300) -> None:
    """Load ``model`` with ``config`` (None: the repository's) and wait until ready."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        client.load_model(model, config=json.dumps(config) if config is not None else None)
        deadline = time.monotonic() + timeout_s
        while not client.is_model_ready(model):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{model} not ready after {timeout_s:.0f} s")
            time.sleep(0.1)
    finally:
        client.close()


def served_config(url: str, model: str) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    try:
        if not client.is_model_ready(model):
            client.load_model(model)
        return client.get_model_config(model, as_json=True)["config"]
    finally:
        client.close()


async def measure(url: str, spec, values, configs: dict[str, dict], args) -> dict:  # type: ignore[no-untyped-def]
    """Sweep each mode; returns {mode: [LevelResult]}."""
    from bench import triton_stats
    from bench.sweep import latency_table, sweep
    from bench.workloads import infer_workload
    from orchestrator.inference.client import TritonClient

    client = TritonClient(url, timeout_s=args.timeout)
    results = {}
    try:
        for mode in MODES:
            await asyncio.to_thread(reload, url, spec.name, configs[mode])
            levels = await sweep(
                infer_workload(client, spec, values), args.levels, warmup=args.warmup,
                timeout_s=args.timeout, progress=not args.no_progress,
                around=lambda _c: triton_stats.collect(url, [spec.name]),
                label=f"batching {mode}", **options.sweep_size(args))
            results[mode] = levels
            print(latency_table(levels, f"{spec.name}: dynamic batching {mode}"))
    finally:
        await client.close()
    return results


def summarize(results: dict, model: str) -> list[dict]:
    """One row per concurrency: throughput, p50/p99, Triton's batch size, per mode; gain."""
    rows = []
    for off, on in zip(results["off"], results["on"], strict=True):
        row: dict[str, Any] = {"concurrency": off.concurrency}
        for mode, level in (("off", off), ("on", on)):
            report = level.latency()
            stats = level.extra["collected"].delta.get(model)
            row[mode] = {**report.to_json(),
                         "triton": stats.to_json() if stats is not None else None}
        off_rps, on_rps = row["off"]["throughput_rps"], row["on"]["throughput_rps"]
        row["gain"] = round(on_rps / off_rps, 3) if off_rps else None
        rows.append(row)
    return rows


def format_gain(rows: list[dict], model: str) -> str:
    lines = [f"{model}: dynamic batching gain (throughput on / off)",
             f"{'conc':>5} {'off req/s':>10} {'on req/s':>10} {'gain':>6} {'off p50':>8} "
             f"{'on p50':>8} {'off p99':>8} {'on p99':>8} {'batch':>6}"]
    for r in rows:
        batch = (r["on"]["triton"] or {}).get("avg_batch_size")
        lines.append(
            f"{r['concurrency']:>5} {r['off']['throughput_rps']:>10.1f} "
            f"{r['on']['throughput_rps']:>10.1f} {r['gain'] or 0:>6.2f} "
            f"{r['off']['latency_ms']['p50']:>8.2f} {r['on']['latency_ms']['p50']:>8.2f} "
            f"{r['off']['latency_ms']['p99']:>8.2f} {r['on']['latency_ms']['p99']:>8.2f} "
            f"{f'{batch:.2f}' if batch is not None else '-':>6}")
    return "\n".join(lines)


def plot(results: dict, rows: list[dict], model: str, out) -> list:  # type: ignore[no-untyped-def]
    from bench import plots

    latency = {f"batching {m}": [(lv.concurrency, lv.latency().latency_ms)
                                 for lv in results[m]] for m in MODES}
    throughput = {f"batching {m}": [(r["concurrency"], r[m]["throughput_rps"]) for r in rows]
                  for m in MODES}
    stages = {}
    for r in rows:
        for m in MODES:
            t = r[m]["triton"]
            if t:
                stages[f"{m} c={r['concurrency']}"] = t["avg_ms"]
    return [
        plots.latency_vs_concurrency(latency, out / f"batching-{model}-latency.png",
                                     title=f"{model}: latency, dynamic batching off/on"),
        plots.throughput_vs_concurrency(throughput, out / f"batching-{model}-throughput.png",
                                        title=f"{model}: throughput, dynamic batching off/on"),
        plots.stage_breakdown(stages, out / f"batching-{model}-stages.png",
                              title=f"{model}: server time per request (Triton)"),
    ]


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from bench.results import write_results

    url = options.triton_url(args, settings)
    spec = load_spec(args.model, args.spec)
    values = sample_inputs(spec, parse_overrides(args.input), variable_length=args.length)
    deployed = served_config(url, args.model)
    try:
        configs = batching_configs(deployed, args.queue_delay_us)
    except ValueError as exc:
        print(f"bench batching: {exc}")
        return 2
    try:
        results = asyncio.run(measure(url, spec, values, configs, args))
    finally:
        reload(url, args.model, None)  # back to the repository's configuration
    rows = summarize(results, spec.name)
    print(format_gain(rows, spec.name))
    path = write_results(args.out, f"batching-{spec.name}",
                         {"url": url, "model": spec.name, "levels": list(args.levels),
                          **options.sweep_size(args), "warmup": args.warmup,
                          "configs": configs}, rows)
    print(f"wrote {path}")
    if not args.no_plots:
        for png in plot(results, rows, spec.name, args.out):
            print(f"wrote {png}")
    return 0
