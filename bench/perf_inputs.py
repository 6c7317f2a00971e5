"""Write perf_analyzer ``--input-data`` JSON for a model (used by scripts/perf_analyzer.sh).

    voicechat bench inputs --model stt --out DIR      writes DIR/stt.json, prints its flags

Prints the perf_analyzer flags the model needs besides the input data: ``--streaming``
for decoupled models, ``-b 1`` where Triton batches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.inputs import (
    load_spec,
    parse_overrides,
    write_perf_analyzer_data,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--spec", default=None, help="module:ATTR of a ModelSpec outside "
                        "the project (e.g. tests.support.probe_spec:SPEC)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=JSON")
    parser.add_argument("--length", type=int, default=16,
                        help="size of each variable dimension")
    parser.add_argument("--out", type=Path, required=True, help="directory for MODEL.json")


def flags(spec) -> list[str]:  # type: ignore[no-untyped-def]
    out = ["--streaming"] if spec.decoupled else []
    if spec.max_batch_size > 0:
        out += ["-b", "1"]
    return out


def run(args: argparse.Namespace, settings=None) -> int:  # type: ignore[no-untyped-def]
    spec = load_spec(args.model, args.spec)
    path = write_perf_analyzer_data(spec, args.out / f"{spec.name}.json",
                                    parse_overrides(args.input), variable_length=args.length)
    print(" ".join([f"--input-data={path}", *flags(spec)]))
    return 0
