"""Latency and throughput of each model through Triton at each concurrency level.

    voicechat bench models --model stt --model tts --levels 1,4,8,16 --requests 100

Sends example inputs (see ``bench.inputs``; ``--input NAME=JSON`` to
change them) with the project's Triton client, and records Triton's statistics around
each level: client latency, server queue vs compute time, average batch size.
"""

from __future__ import annotations

import argparse
import asyncio

from bench import options
from bench.inputs import load_spec, parse_overrides, sample_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", dest="models", required=True,
                        help="model to measure (repeatable)")
    parser.add_argument("--spec", default=None,
                        help="module:ATTR of the ModelSpec for a model outside the project "
                        "(one --model only)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=JSON",
                        help="input value override (repeatable; applies to every model)")
    parser.add_argument("--length", type=int, default=16,
                        help="size of each variable dimension of generated inputs")
    options.add_triton_url(parser)
    options.add_sweep(parser, requests=100)
    options.add_output(parser)


async def measure(url: str, specs, args) -> dict:  # type: ignore[no-untyped-def]
    from bench import triton_stats
    from bench.sweep import latency_table, sweep
    from bench.workloads import infer_workload
    from orchestrator.inference.client import TritonClient

    overrides = parse_overrides(args.input)
    client = TritonClient(url, timeout_s=args.timeout)
    results = {}
    try:
        for spec in specs:
            values = sample_inputs(spec, {k: v for k, v in overrides.items()
                                          if k in {t.name for t in spec.inputs}},
                                   variable_length=args.length)
            results[spec.name] = await sweep(
                infer_workload(client, spec, values), args.levels, warmup=args.warmup,
                timeout_s=args.timeout, progress=not args.no_progress,
                around=lambda _c, name=spec.name: triton_stats.collect(url, [name]),
                label=spec.name, **options.sweep_size(args))
            print(latency_table(results[spec.name], spec.name))
    finally:
        await client.close()
    return results


def level_json(level, model: str) -> dict:  # type: ignore[no-untyped-def]
    stats = level.extra["collected"].delta.get(model)
    return {"concurrency": level.concurrency, **level.latency().to_json(),
            "errors_sample": level.errors[:3],
            "triton": stats.to_json() if stats is not None else None}


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from bench import plots
    from bench.results import write_results

    if args.spec and len(args.models) != 1:
        print("bench models: --spec goes with exactly one --model")
        return 2
    url = options.triton_url(args, settings)
    specs = [load_spec(m, args.spec) for m in args.models]
    results = asyncio.run(measure(url, specs, args))
    document = {name: [level_json(lv, name) for lv in levels]
                for name, levels in results.items()}
    path = write_results(args.out, "models", {"url": url, "models": args.models,
                                              "levels": list(args.levels),
                                              **options.sweep_size(args)}, document)
    print(f"wrote {path}")
    if not args.no_plots:
        latency = {n: [(lv.concurrency, lv.latency().latency_ms) for lv in levels]
                   for n, levels in results.items()}
        throughput = {n: [(lv.concurrency, lv.latency().throughput_rps) for lv in levels]
                      for n, levels in results.items()}
        stages = {f"{n} c={row['concurrency']}": row["triton"]["avg_ms"]
                  for n, rows in document.items() for row in rows if row["triton"]}
        for png in (plots.latency_vs_concurrency(latency, args.out / "models-latency.png"),
                    plots.throughput_vs_concurrency(throughput,
                                                    args.out / "models-throughput.png"),
                    plots.stage_breakdown(stages, args.out / "models-stages.png",
                                          title="Server time per request (Triton)")):
            print(f"wrote {png}")
    failed = sum(len(lv.errors) for levels in results.values() for lv in levels)
    return 1 if failed else 0
