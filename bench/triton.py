"""Per-model figures from Triton's statistics API (queue vs compute time, batch sizes).

    voicechat bench triton                          cumulative figures since each model loaded
    voicechat bench triton --window 30              what happened during the next 30 s
    voicechat bench triton -- scripts/perf_analyzer.sh ...   what happened during a command

Columns are averages per request in ms: queue (waiting for the batcher or an instance),
in / infer / out (Triton's compute_input, compute_infer, compute_output), total
(arrival to response); batch = inference_count / execution_count.
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench import options, triton_stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_triton_url(parser)
    parser.add_argument("--model", action="append", dest="models",
                        help="only this model (repeatable; default every model)")
    parser.add_argument("--window", type=float, default=None,
                        help="report the change over this many seconds")
    parser.add_argument("--json", dest="json_out", default=None,
                        help="also write the figures to this directory as triton.json")
    parser.add_argument("cmd", nargs=argparse.REMAINDER,
                        help="-- COMMAND...: report the change while COMMAND runs")


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    url = options.triton_url(args, settings)
    cmd = [c for c in args.cmd if c != "--"] if args.cmd else []
    status = 0
    if cmd or args.window is not None:
        with triton_stats.collect(url, args.models) as window:
            if cmd:
                status = subprocess.run(cmd, check=False).returncode
            else:
                time.sleep(args.window)
        figures = window.delta
        title = f"Triton statistics during {' '.join(cmd) if cmd else f'{args.window:g} s'}"
    else:
        figures = triton_stats.totals(triton_stats.snapshot(url, args.models))
        title = "Triton statistics since each model was loaded"
    print(triton_stats.format_table(figures, title))
    if args.json_out:
        from bench.results import write_results

        path = write_results(args.json_out, "triton",
                             {"url": url, "models": args.models, "window_s": args.window,
                              "command": cmd},
                             {name: s.to_json() for name, s in figures.items()})
        print(f"wrote {path}")
    return status
