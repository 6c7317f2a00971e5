"""What the catalogue says a voice speaks: several languages per voice (Kokoro's Korean
voices read English words too) and the voice a request naming none is synthesised with
(DEFAULT_VOICE when the served version has it, else the version's own default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import VoiceCannotSpeak
from orchestrator.speech.catalogue import ModelCatalogue
from tests.support.offered import offered_repository


def _add_kokoro_version(root: Path) -> None:
    from export.repository import Manifest

    version = root / "tts" / "2"
    version.mkdir(parents=True)
    (version / "voices.json").write_text(json.dumps({"default": "ko-kumo", "voices": [
        {"name": "ko-kumo", "kind": "kokoro", "language": "ko", "languages": ["ko", "en"]},
        {"name": "en_US-joe-medium", "language": "en_US"}]}))
    (version / "manifest.json").write_text(json.dumps(
        Manifest(model="tts", version=2, source={}).to_json()))


def test_a_korean_kokoro_voice_speaks_korean_english_and_mixed_text(tmp_path: Path) -> None:
    root = offered_repository(tmp_path)
    _add_kokoro_version(root)
    catalogue = ModelCatalogue(root, default_voice="en_US-joe-medium")
    assert catalogue.voice_languages("ko-kumo") == frozenset({"ko", "en"})
    for text in ("안녕하세요", "서울은 Seoul 이에요", "Hello there"):
        catalogue.check_speaks("ko-kumo", text)
    catalogue.check_speaks("ko-kumo", "hello", language="en")
    assert catalogue.voices_speaking("ko") == ["ko-kumo"]
    with pytest.raises(VoiceCannotSpeak, match="Voices that speak it: ko-kumo"):
        catalogue.check_speaks("en_US-joe-medium", "안녕하세요")


def test_no_voice_named_means_default_voice_when_served_else_the_versions_own(
        tmp_path: Path) -> None:
    root = offered_repository(tmp_path)
    _add_kokoro_version(root)
    # The README's request: {"text": "안녕하세요"} with DEFAULT_VOICE=ko-kumo (Korean profile).
    korean = ModelCatalogue(root, default_voice="ko-kumo")
    assert korean.effective_voice(None) == "ko-kumo"
    korean.check_speaks(None, "안녕하세요")
    # DEFAULT_VOICE names a voice the served version has: it is the one checked.
    english = ModelCatalogue(root, default_voice="en_US-joe-medium")
    assert english.effective_voice("alloy") == "en_US-joe-medium"
    with pytest.raises(VoiceCannotSpeak, match="'en_US-joe-medium' speaks English"):
        english.check_speaks(None, "안녕하세요")
    # DEFAULT_VOICE not in the served version: the version's own default speaks.
    elsewhere = ModelCatalogue(root, default_voice="missing-voice")
    assert elsewhere.effective_voice(None) == "ko-kumo"
    elsewhere.check_speaks(None, "안녕하세요")


def test_without_a_korean_voice_the_refusal_says_where_one_is(tmp_path: Path) -> None:
    root = tmp_path / "repository"
    offered_repository(root)
    (root / "tts" / "1" / "voices.json").write_text(json.dumps(
        {"default": "joe", "voices": [{"name": "joe", "language": "en_US"}]}))
    with pytest.raises(VoiceCannotSpeak, match="LANGUAGE=ko") as refused:
        ModelCatalogue(root, default_voice="joe").check_speaks(None, "안녕하세요")
    assert refused.value.code == "voice_language_unsupported"


def test_noise_settings_are_refused_for_a_kokoro_voice_naming_the_parameter(
        tmp_path: Path) -> None:
    from orchestrator.errors import InvalidRequest

    root = offered_repository(tmp_path)
    _add_kokoro_version(root)
    catalogue = ModelCatalogue(root, default_voice="ko-kumo")
    catalogue.check_noise("en_US-joe-medium", noise_scale=0.3, noise_w=0.0)  # VITS: fine
    catalogue.check_noise(None, noise_scale=None, noise_w=None)  # not given: fine
    with pytest.raises(InvalidRequest, match="Kokoro") as refused:
        catalogue.check_noise(None, noise_scale=None, noise_w=0.5)
    assert refused.value.param == "noise_w"


async def test_synthesis_asks_for_the_voice_the_catalogue_checked(tmp_path: Path) -> None:
    """DEFAULT_VOICE missing from the served version: the request is checked against the
    version's own default and synthesised with it, not refused by the model later."""
    from export.specs import tts as spec
    from orchestrator.speech.tts import TextToSpeech

    root = offered_repository(tmp_path)
    _add_kokoro_version(root)
    catalogue = ModelCatalogue(root, default_voice="missing-voice")

    class Client:  # the transport: records what would go to Triton
        values: dict = {}

        async def stream(self, spec_, values, version="", request_id=""):  # type: ignore[no-untyped-def]
            Client.values = values
            return
            yield

    tts = TextToSpeech(Client(), default_voice="missing-voice",
                       choose_voice=catalogue.effective_voice)
    catalogue.check_speaks(None, "안녕하세요")
    assert [chunk async for chunk in tts.stream("안녕하세요")] == []
    assert Client.values[spec.VOICE] == ["ko-kumo"]
    assert [c async for c in tts.stream("안녕", voice="ko-kumo")] == []
    assert Client.values[spec.VOICE] == ["ko-kumo"]


def test_the_listing_names_each_served_voice_with_its_languages(tmp_path: Path) -> None:
    # GET /api/tts/voices (the demo page's voice picker) reads this.
    root = offered_repository(tmp_path)
    _add_kokoro_version(root)
    catalogue = ModelCatalogue(root, default_voice="ko-kumo")
    assert catalogue.listing() == [("en_US-joe-medium", ["en"]), ("ko-kumo", ["en", "ko"])]
    assert ModelCatalogue(None).listing() == []
