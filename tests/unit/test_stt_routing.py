"""Which stt version a request goes to, when an English-only version serves."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from export.specs import stt as spec
from orchestrator.errors import InvalidRequest
from orchestrator.inference.client import InferResult
from orchestrator.speech.stt import SpeechToText


def repository(tmp_path: Path, versions: dict[int, bool],
               words: frozenset[int] = frozenset(),
               long_form: dict[int, float] | None = None) -> Path:
    for number, multilingual in versions.items():
        directory = tmp_path / "stt" / str(number)
        directory.mkdir(parents=True)
        extra: dict = {"multilingual": multilingual}
        if number in words:
            extra["word_timestamps"] = True
        if long_form and number in long_form:
            extra["quality"] = {"en": {"metric": "wer", "short": 0.06,
                                       "long": long_form[number], "empty_long": 0}}
        (directory / "manifest.json").write_text(json.dumps({
            "model": "stt", "version": number, "source": {}, "extra": extra}))
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


def test_word_timestamps_go_to_the_newest_version_that_gives_them(tmp_path: Path) -> None:
    pins: dict[str, str] = {}
    stt = SpeechToText(SimpleNamespace(default_versions=pins),
                       repository=repository(tmp_path, {1: True, 2: True, 3: False},
                                             words=frozenset({2})))
    assert stt.route(None, "", words=True) == "2"  # served: 3, without words
    assert stt.route("ko", "", words=True) == "2"  # multilingual and words
    assert stt.route(None, "3", words=True) == "3"  # a pinned request is left alone
    pins["stt"] = "2"
    assert stt.route(None, "", words=True) == ""


class OldVersion:
    """A Triton client whose stt version answers without words (exported before them)."""

    default_versions: dict[str, str] = {}

    async def infer(self, model_spec, values, version=""):  # type: ignore[no-untyped-def]
        segments = [{"id": 0, "start": 0.0, "end": 1.0, "text": " Hello."}]
        return InferResult({spec.TEXT.name: np.array([b" Hello."], dtype=object),
                            spec.DETECTED_LANGUAGE.name: np.array([b"en"], dtype=object),
                            spec.SEGMENTS.name: np.array([json.dumps(segments).encode()],
                                                         dtype=object),
                            spec.DURATION.name: np.array([1.0], np.float32)}, "1")


async def test_a_version_that_answers_without_words_is_the_clients_400() -> None:
    stt = SpeechToText(OldVersion())
    audio = np.zeros(16_000, np.float32)
    assert (await stt.transcribe(audio)).segments[0].words is None  # not asked: fine
    with pytest.raises(InvalidRequest, match="gives no word timestamps") as refused:
        await stt.transcribe(audio, words=True)
    assert refused.value.param == "timestamp_granularities"


class Ready(SimpleNamespace):
    async def model_ready(self, model: str, version: str = "", timeout_s: float = 2.0) -> bool:
        return version in self.ready


def long_form_service(tmp_path: Path, figures: dict[int, float], ready: set[str],
                      pins: dict[str, str] | None = None) -> SpeechToText:
    """Whisper (1, multilingual) and Moonshine (3, English, served) with long-form WERs."""
    return SpeechToText(Ready(default_versions=pins or {}, ready=ready),
                        repository=repository(tmp_path, {1: True, 3: False},
                                              long_form=figures), long_form_s=8.0)


SECOND = spec.SAMPLE_RATE


async def test_a_long_upload_goes_to_the_version_that_hears_long_audio_best(tmp_path: Path
                                                                            ) -> None:
    stt = long_form_service(tmp_path, {1: 0.041, 3: 0.087}, ready={"1", "3"})
    assert await stt.route_recording(12 * SECOND, "en", "") == "1"
    assert await stt.route_recording(12 * SECOND, None, "") == "1"
    assert await stt.route_recording(7 * SECOND, "en", "") == ""  # short: the default
    assert await stt.route_recording(12 * SECOND, "en", "3") == "3"  # pinned: left alone
    assert stt.route("en", "") == ""  # a live turn never asks route_recording


@pytest.mark.parametrize(("figures", "ready", "pins"), [
    ({1: 0.080, 3: 0.087}, {"1", "3"}, {}),     # within the figures' noise
    ({1: 0.041, 3: 0.087}, {"3"}, {}),          # the better version is not loaded
    ({1: 0.041}, {"1", "3"}, {}),               # the default was never measured
    ({1: 0.041, 3: 0.087}, {"1", "3"}, {"stt": "1"}),  # the better one already serves
])
async def test_a_long_upload_stays_where_it_would_go(tmp_path: Path, figures: dict,
                                                    ready: set, pins: dict) -> None:
    stt = long_form_service(tmp_path, figures, ready, pins)
    assert await stt.route_recording(20 * SECOND, "en", "") == ""


async def test_a_version_whose_long_form_fails_the_judgement_is_never_chosen(tmp_path: Path
                                                                             ) -> None:
    root = repository(tmp_path, {1: True, 3: False}, long_form={3: 0.087})
    manifest = root / "stt" / "1" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["extra"]["quality"] = {"en": {"metric": "wer", "short": 0.01, "long": 0.05,
                                       "empty_long": 1}}  # lost one recording whole
    manifest.write_text(json.dumps(data))
    stt = SpeechToText(Ready(default_versions={}, ready={"1", "3"}), repository=root,
                       long_form_s=8.0)
    assert await stt.route_recording(20 * SECOND, "en", "") == ""
