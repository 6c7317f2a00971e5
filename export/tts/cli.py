"""Export TTS voices as a new version of the ``tts`` model.

Each ``--source`` (repeat it for several voices in one version) is a Piper voice (a
``.onnx`` file with its ``.onnx.json`` beside it, or a directory holding one) or a
transformers ``VitsModel`` directory (MMS-TTS: config.json + weights + vocab.json),
exported to ONNX with Piper's signature. The version holds the graphs, the original
configs, ``voices.json``, the runtime (``tts_runtime/``), model.py and a manifest whose
parity figures compare the served path with onnxruntime run directly on the same ids
(and, for VITS, ONNX with VitsModel in PyTorch; for Piper voices, ids with piper-tts).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from export import progress
from export.errors import SourceError
from export.repository import Manifest, ModelRepository, sha256_file

RUNTIME_MODULE = Path(__file__).with_name("triton_model.py")
MULTIPLE_SOURCES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--default-voice", default=None,
                        help="voice served when a request names none (default: the first)")
    parser.add_argument("--language", action="append", default=[], metavar="NAME=LANG",
                        help="language of a VITS voice, e.g. mms-tts-kor=ko (default: the "
                             "tokenizer's language, else en)")
    parser.add_argument("--parity-text", default=None,
                        help="text for the parity check (default: a sentence per language)")


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    from export.tts import parity, piper, vits
    from export.tts.runtime import espeak

    sources = args.source if isinstance(args.source, list) else [args.source]
    languages = {}
    for item in getattr(args, "language", []) or []:
        name, sep, language = item.partition("=")
        if not sep or not name or not language:
            raise SourceError(f"--language {item!r}: expected VOICE=LANG, e.g. mms-tts-kor=ko")
        languages[name] = language
    entries, graphs, described, texts, figures = [], {}, {}, {}, []
    with repository.new_version("tts", args.version) as version:
        for raw in sources:
            path = Path(raw)
            if path.is_dir() and vits.is_vits_dir(path):
                name = path.name
                with progress.step(f"exporting VITS {name} to ONNX"):
                    model, tokenizer = vits.load(path)
                    entry = vits.voice_entry(name, model, tokenizer, languages.get(name))
                    vits.export_onnx(model, version.path / entry["model"])
                text = args.parity_text or parity.parity_text(entry["language"])
                with progress.step(f"parity of {name} against VitsModel (PyTorch)"):
                    figures += vits.parity(name, model, tokenizer, version.path / entry["model"],
                                           text)
                graphs[name] = version.path / entry["model"]
                files = sorted(p for p in path.iterdir() if p.is_file())
                described[name] = {"kind": "vits", "path": str(path.resolve()),
                                   "sha256": {p.name: sha256_file(p) for p in files}}
            else:
                model_path, config_path = piper.find_voice(path)
                entry = piper.voice_entry(model_path, config_path)
                name = entry["name"]
                shutil.copyfile(model_path, version.path / model_path.name)
                shutil.copyfile(config_path, version.path / config_path.name)
                graphs[name] = model_path
                described[name] = {"kind": "piper", "path": str(model_path.resolve()),
                                   "sha256": {model_path.name: sha256_file(model_path),
                                              config_path.name: sha256_file(config_path)}}
            if any(e["name"] == name for e in entries):
                raise SourceError(f"two sources give the voice name {name!r}")
            texts[name] = args.parity_text or parity.parity_text(entry["language"])
            entries.append(entry)
        default = args.default_voice or entries[0]["name"]
        if default not in {e["name"] for e in entries}:
            raise SourceError(f"--default-voice {default!r} is not one of the exported voices")
        (version.path / "voices.json").write_text(
            json.dumps({"default": default, "voices": entries}, ensure_ascii=False, indent=1)
            + "\n", encoding="utf-8")
        version.install_runtime_package(Path(__file__).parent / "runtime", "tts_runtime")
        version.install_code(RUNTIME_MODULE)
        with progress.step("parity: served path vs onnxruntime on the same ids"):
            figures += parity.check(version.path, graphs, texts)
        for figure in figures:
            status = "ok" if figure.passed else "FAILED"
            progress.note(f"{figure.name}: {figure.metric}={figure.value:.3g} "
                          f"(tolerance {figure.tolerance:.3g}) {status}")
        has_espeak = any(e["phoneme_type"] == "espeak" for e in entries)
        manifest = Manifest(
            model="tts", version=version.version,
            source={"kind": "voices", "voices": described},
            dimensions={e["name"]: {"sample_rate": e["sample_rate"], "language": e["language"],
                                    "phoneme_type": e["phoneme_type"],
                                    "num_speakers": e["num_speakers"]} for e in entries},
            parity=figures,
            extra={"default_voice": default, "parity_texts": texts,
                   **(espeak.describe() if has_espeak else {})})
        manifest = version.write_manifest(manifest)
    return manifest
