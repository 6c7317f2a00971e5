"""Export a speech-to-text checkpoint (Whisper or Moonshine) as a new version of ``stt``.

Whisper: SRC is an openai-whisper checkpoint file or model name (tiny … large-v3-turbo;
names download when a network is there), a Hugging Face Whisper directory, or a
CTranslate2 / faster-whisper directory (model.bin, or model.bin.part1, part2 … which are
concatenated; ``--ct2-part`` names parts that live in different directories). The version
holds ONNX encoder and decoder graphs, the tokenizer and mel filter assets, model.py and a
manifest whose parity figures compare everything against openai-whisper in PyTorch.

Moonshine: SRC is a directory with encoder_model / decoder_model_merged (.ort or .onnx)
and tokenizer.json, or ``moonshine-base`` (assembled from the moonshine-cpp and
useful-moonshine-onnx wheels). Parity: every token against useful-moonshine-onnx's loop.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from export import progress
from export.errors import QualityError, SourceError
from export.repository import Manifest, ModelRepository, sha256_file
from export.stt import quality, quantize

RUNTIME_MODULE = Path(__file__).with_name("triton_model.py")
DEFAULT_MAX_REPEATS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct2-part", action="append", default=[], metavar="FILE",
                        help="a CTranslate2 model.bin part, in order (repeat for each part)")
    parser.add_argument("--sample-audio", default=None, metavar="WAV",
                        help="16 kHz mono WAV for the greedy-token parity check "
                             "(default: a synthetic speech-like signal)")
    parser.add_argument("--window-seconds", type=float, default=None, metavar="S",
                        help="Whisper: encoder windows sized to the audio plus a second, at "
                             "least S seconds (default 30: every window padded to 30 s as "
                             "openai-whisper does)")
    parser.add_argument("--max-repeats", type=int, default=None, metavar="N",
                        help="Whisper: stop a window whose text repeats one unit N times "
                             f"in a row (a greedy loop); 0: never (default "
                             f"{DEFAULT_MAX_REPEATS})")
    parser.add_argument("--exact", action="store_true",
                        help="Whisper: decode exactly as openai-whisper does (30 s windows, "
                             "no repetition guard, no silence gate): tokens comparable with "
                             "it, as parity tests need")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="Whisper: int8 matrix weights (faster decoding), refused when "
                             "its error rates exceed the float graphs' by more than 0.03")
    parser.add_argument("--no-quality", action="store_true",
                        help="skip the short- and long-form error rates (espeak-ng speech); "
                             "validate and promote refuse a version without them")


def _read_wav(path: str) -> np.ndarray:
    import wave

    try:
        with wave.open(path, "rb") as wav:
            if wav.getframerate() != 16_000 or wav.getnchannels() != 1 or \
                    wav.getsampwidth() != 2:
                raise SourceError(f"{path}: sample audio must be 16 kHz mono 16-bit WAV")
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise SourceError(f"{path}: unreadable WAV: {exc}") from exc
    return np.frombuffer(frames, np.int16).astype(np.float32) / 32768.0


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.stt.moonshine import export as moonshine

    if args.source == "moonshine-base":
        args.source = str(moonshine.bundled_base())
    if moonshine.is_moonshine(Path(args.source)):
        given = [flag for flag, value in (("--window-seconds", args.window_seconds),
                                          ("--max-repeats", args.max_repeats),
                                          ("--exact", args.exact or None),
                                          ("--quantize", None if args.quantize == "none"
                                           else args.quantize)) if value is not None]
        if given:
            raise SourceError(f"{', '.join(given)}: Whisper options; Moonshine decodes its "
                              "audio whole, without windows or a repetition guard")
        return moonshine.run(Path(args.source), args.version, repository,
                             _read_wav(args.sample_audio) if args.sample_audio else None,
                             quality=not args.no_quality)
    return _run_whisper(args, repository)


def _write_decoding(args: argparse.Namespace, version_dir: Path) -> dict:
    """The version's own decoding settings (``decoding.json``, read by its runtime), and
    its silence gate's detector (Silero VAD, as Moonshine versions carry it)."""
    from export.stt.runtime.transcribe import DECODING_FILE
    from export.stt.vad import VAD_FILE, packaged_model

    if args.exact and (args.window_seconds is not None or args.max_repeats is not None):
        raise SourceError("--exact decodes as openai-whisper does: drop --window-seconds "
                          "and --max-repeats")
    repeats = DEFAULT_MAX_REPEATS if args.max_repeats is None else args.max_repeats
    if repeats < 0:
        raise SourceError("--max-repeats must be 0 or more")
    window = args.window_seconds if args.window_seconds is not None else 30.0
    if not 1.0 <= window <= 30.0:
        raise SourceError("--window-seconds must be between 1 and 30")
    decoding = {"min_window_seconds": window, "max_repeats": 0 if args.exact else repeats,
                "silence_gate": not args.exact}
    if decoding["silence_gate"]:
        shutil.copyfile(packaged_model(), version_dir / VAD_FILE)
    (version_dir / DECODING_FILE).write_text(json.dumps(decoding, indent=2) + "\n",
                                             encoding="utf-8")
    return decoding


def _run_whisper(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.specs.stt import SPEC
    from export.stt import assets, graphs, parity
    from export.stt.sources import load_source

    with progress.step(f"loading {args.source}"):
        source = load_source(args.source, args.ct2_part)
    model = source.model
    audio = _read_wav(args.sample_audio) if args.sample_audio else parity.sample_audio()
    with repository.new_version("stt", args.version) as version:
        with progress.step("exporting ONNX encoder and decoder"):
            graphs.export_graphs(model, version.path)
        with progress.step("writing tokenizer, mel filters and runtime"):
            tokenizer = assets.write_tokenizer(model, version.path)
            assets.write_front_end(model, version.path)
            version.install_runtime_package(assets.RUNTIME_PACKAGE, "stt_runtime")
            version.install_code(RUNTIME_MODULE)
        with progress.step("parity against openai-whisper (PyTorch)"):
            figures = parity.check(model, version.path, audio)
        for figure in figures:
            status = "ok" if figure.passed else "FAILED"
            progress.note(f"{figure.name}: {figure.metric}={figure.value:.3g} "
                          f"(tolerance {figure.tolerance:.3g}) {status}")
        decoding = _write_decoding(args, version.path)
        parameters = SPEC.read_parameters({})
        multilingual = bool(model.is_multilingual)
        scores: dict = {}
        float_scores: dict = {}
        if args.quantize == "int8":
            if not args.no_quality:
                progress.note("scoring the float graphs before quantising them")
                float_scores = quality.measure_all(
                    quality.whisper_transcriber(version.path, parameters),
                    multilingual=multilingual)
            with progress.step("quantising the matrix weights to int8"):
                sizes = quantize.quantize_int8(version.path)
            progress.note(", ".join(f"{n}: {b / 1e6:.0f} MB" for n, b in sizes.items()))
        if not args.no_quality:
            scores = quality.measure_all(quality.whisper_transcriber(version.path, parameters),
                                         multilingual=multilingual)
        worse = quantize.compare(float_scores, scores)
        if worse:
            raise QualityError("int8 graphs transcribe worse than the float ones: "
                               + "; ".join(worse))
        manifest = Manifest(
            model="stt", version=version.version,
            source={"kind": source.kind, **source.description,
                    "sha256": {str(p): sha256_file(p) for p in source.inputs}},
            dimensions=dict(vars(model.dims)),
            parity=figures,
            extra={"architecture": "whisper", "multilingual": bool(model.is_multilingual),
                   "word_timestamps": True,
                   "alignment_heads": [list(h) for h in graphs.alignment_heads(model)],
                   "tokenizer": tokenizer["encoding"],
                   "languages": len(tokenizer["languages"]),
                   "parity_audio": args.sample_audio or "synthetic",
                   "precision": "int8" if args.quantize == "int8" else "float32",
                   "decoding": decoding,
                   **({"quality": scores} if scores else {}),
                   **({"float_quality": float_scores} if float_scores else {})})
        manifest = version.write_manifest(manifest)
    return manifest
