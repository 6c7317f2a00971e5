"""Session fixtures for STT tests (import them into a test module to use them)."""

from __future__ import annotations

import pytest

from tests.support.stt import export_version, load_whisper, serve_versions, tiny_whisper_checkpoint


@pytest.fixture(scope="session")
def tiny_stt(triton_server, tmp_path_factory):  # type: ignore[no-untyped-def]
    """(torch model, served version) of a tiny random Whisper exported into the server."""
    ckpt = tiny_whisper_checkpoint(tmp_path_factory.mktemp("tiny-whisper") / "tiny.pt")
    version = export_version(str(ckpt), triton_server.repository)
    serve_versions(triton_server, [version])
    return load_whisper(ckpt), version
