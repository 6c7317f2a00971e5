"""Session TTS fixtures (import them into a test module or conftest to use them).

One ``tts`` version serves every TTS test in the session: the real Piper voice
en_US-joe-medium (the default voice) and ``tiny-ko``, a tiny random two-speaker Korean
VITS voice, exported together through the real export path as version 1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from export.repository import ModelRepository
from tests.support import triton as triton_support
from tests.support.tts import KOREAN_CHARACTERS, build_tiny_vits, export_voices, joe_voice_path

VERSION = 1
KOREAN_VOICE = "tiny-ko"


@pytest.fixture(scope="session")
def tiny_korean_vits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vits(tmp_path_factory.mktemp("vits") / KOREAN_VOICE, KOREAN_CHARACTERS,
                           num_speakers=2)


@pytest.fixture(scope="session")
def tts_model(triton_server, tiny_korean_vits: Path) -> Path:  # type: ignore[no-untyped-def]
    """``tts`` version 1 loaded in Triton: joe (default) and tiny-ko (2 speakers)."""
    repository = triton_server.repository
    if VERSION not in ModelRepository(repository).versions("tts"):
        export_voices(repository, [joe_voice_path(), tiny_korean_vits], VERSION,
                      language=[f"{KOREAN_VOICE}=ko"])
        triton_support.load(triton_server, "tts")
    return repository / "tts" / str(VERSION)


@pytest.fixture(scope="session")
def served_joe_voice(tts_model: Path) -> int:
    """The ``tts`` version whose default voice is the real en_US-joe-medium."""
    return VERSION
