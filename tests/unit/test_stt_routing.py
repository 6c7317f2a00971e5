"""Which stt version a request goes to, when an English-only version serves."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from orchestrator.speech.stt import SpeechToText


def repository(tmp_path: Path, versions: dict[int, bool]) -> Path:
    for number, multilingual in versions.items():
        directory = tmp_path / "stt" / str(number)
        directory.mkdir(parents=True)
        (directory / "manifest.json").write_text(json.dumps({
            "model": "stt", "version": number, "source": {},
            "extra": {"multilingual": multilingual}}))
    return tmp_path


def test_other_languages_go_to_the_newest_multilingual_version(tmp_path: Path) -> None:
    pins: dict[str, str] = {}
    stt = SpeechToText(SimpleNamespace(default_versions=pins),
                       repository=repository(tmp_path, {1: True, 2: True, 3: False}))
    assert stt.route("ko", "") == "2"  # served: 3 (newest, English only)
    assert stt.route("en", "") == "" and stt.route(None, "") == ""
    assert stt.route("ko", "3") == "3"  # a pinned request is left alone
    pins["stt"] = "1"  # a multilingual version is promoted: nothing to reroute
    assert stt.route("ko", "") == ""


def test_without_a_multilingual_version_the_request_is_left_to_refuse(tmp_path: Path) -> None:
    stt = SpeechToText(SimpleNamespace(default_versions={}),
                       repository=repository(tmp_path, {1: False}))
    assert stt.route("ko", "") == ""
    assert SpeechToText(SimpleNamespace(default_versions={})).route("ko", "") == ""
