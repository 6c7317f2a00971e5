"""``voicechat bench <name>``: the benchmark suite.

Each bench is a module with a docstring (its help), ``add_arguments(parser)`` and
``run(args, settings) -> int`` (the exit status). Registering one is one line in
:data:`BENCHES`; modules are imported when the parser is built, so keep their top-level
imports light (tritonclient, matplotlib, websockets are imported inside ``run``).

Shared pieces: :mod:`.stats` (percentiles, genai-perf LLM metrics), :mod:`.sweep`
(concurrency sweeps with progress bars), :mod:`.triton_stats` (Triton statistics as a
before/after delta), :mod:`.results` (JSON with machine info), :mod:`.plots` (PNG),
:mod:`.inputs` (example inputs per spec, perf_analyzer input data), :mod:`.options`
(common command-line options).
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

BENCHES: dict[str, str] = {
    "triton": "bench.triton",
    "batching": "bench.batching",
    "models": "bench.models",
    "e2e": "bench.e2e",
    "inputs": "bench.perf_inputs",
    "voice": "bench.voice",
    "browser": "bench.browser",
    "stt": "bench.stt",
    "llm": "bench.llm",
    "memory": "bench.memory",
    "tts": "bench.tts",
    "kokoro": "bench.kokoro",
    "auth": "bench.auth",
    "soak": "bench.soak",
    "telemetry": "bench.telemetry",
    "multilingual": "bench.multilingual",
    "noise": "bench.noise",
}


def bench_module(name: str) -> ModuleType:
    return importlib.import_module(BENCHES[name])


def add_bench_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``bench`` with one sub-command per registered bench."""
    parser = subparsers.add_parser("bench", help="benchmarks (see docs/benchmarks/bench.md)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    benches = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in BENCHES:
        module = bench_module(name)
        doc = (module.__doc__ or name).strip()
        sub = benches.add_parser(name, help=doc.splitlines()[0], description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
    return parser


def run_bench(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    return int(bench_module(args.bench).run(args, settings))
