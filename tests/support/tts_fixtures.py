"""Session TTS fixtures (import them into a test module or conftest to use them).

One ``tts`` version serves every TTS test in the session: the real Piper voice
en_US-joe-medium (the default voice) and ``tiny-ko``, a tiny random two-speaker Korean
VITS voice, exported together through the real export path as version 1.

Kokoro's Korean voices (real weights) are exported once per session into a repository of
their own (``kokoro_export``); a module that needs them serves them with
:func:`serving_kokoro` as ``tts`` version 40 for its own duration: being the highest, it
would take every unpinned request of later modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
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


KOKORO_VERSION = 40
KOKORO_TEST_VOICES = ["ko-kumo", "ko-alpha"]


@pytest.fixture(scope="session")
def kokoro_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m export tts --source kokoro-ko --kokoro-voice ko-kumo --kokoro-voice
    ko-alpha`` once, into a repository of its own; returns the version directory. Two of
    the five voices: each is calibrated on its own (70-110 s a voice on 2 cores), and two
    show what holds per voice."""
    from tests.support.tts import export_voices

    repository = tmp_path_factory.mktemp("kokoro-repository")
    export_voices(repository, ["kokoro-ko"], 1, kokoro_voice=KOKORO_TEST_VOICES)
    return repository / "tts" / "1"


def load_kokoro(server, **parameters: str) -> None:  # type: ignore[no-untyped-def]
    """(Re)load ``tts`` with the Kokoro version beside the others, with config
    ``parameters`` (e.g. ``kokoro_engine``)."""
    from export.specs import tts as spec

    versions = sorted({*ModelRepository(server.repository).versions("tts"), KOKORO_VERSION})
    triton_support.load(server, "tts", config=json.dumps(
        spec.SPEC.config_json(versions=versions, parameters=parameters)))


@contextlib.contextmanager
def serving_kokoro(server, version_dir: Path) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The Kokoro version linked into ``server``'s repository as version 40 and loaded
    beside the others; removed and the model reloaded as before on the way out."""
    repository = server.repository
    before = [v for v in ModelRepository(repository).versions("tts") if v != KOKORO_VERSION]
    target = repository / "tts" / str(KOKORO_VERSION)
    if not target.exists():
        shutil.copytree(version_dir, target, copy_function=os.link)
    load_kokoro(server)
    try:
        yield KOKORO_VERSION
    finally:
        shutil.rmtree(target)
        if before:
            triton_support.load(server, "tts")
        else:
            triton_support.unload(server, "tts")
