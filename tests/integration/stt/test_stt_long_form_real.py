"""Long audio with pauses, English and Korean, on the real Whisper base weights as `make
models` exports them (int8, windows sized to the audio): the export's scores, and long
recordings through the served version that come back whole."""

from __future__ import annotations

import pytest

from export.repository import ModelRepository
from export.stt import quality, testspeech
from export.stt.scoring import cer, wer
from orchestrator.inference.client import TritonClient
from orchestrator.speech.stt import SpeechToText

pytestmark = [pytest.mark.triton, pytest.mark.realweights, pytest.mark.slow,
              pytest.mark.asyncio]


@pytest.fixture(scope="module")
async def stt(triton_server):  # type: ignore[no-untyped-def]
    client = TritonClient(triton_server.grpc_url, timeout_s=300)
    yield SpeechToText(client)
    await client.close()


def test_the_export_scores_english_and_korean_short_and_long_form(
        triton_server, whisper_base_stt: int) -> None:  # type: ignore[no-untyped-def]
    manifest = ModelRepository(triton_server.repository).manifest("stt", whisper_base_stt)
    scores = manifest.extra["quality"]
    assert set(scores) == {"en", "ko"}
    for code, metric in (("en", "wer"), ("ko", "cer")):
        figures = scores[code]
        assert figures["metric"] == metric and figures["long_clips"] == 10
        assert figures["empty_long"] == 0
        # measured 2026-12-05: en 0.052 / 0.029, ko 0.073 / 0.058
        assert figures["short"] < 0.15 and figures["long"] < 0.15, figures
    assert quality.judge(scores)[0]
    assert manifest.extra["precision"] == "int8"
    assert manifest.extra["decoding"] == {"min_window_seconds": 3.0, "max_repeats": 4,
                                          "silence_gate": True}
    # the int8 graphs were scored against the float ones they came from
    assert set(manifest.extra["float_quality"]) == {"en", "ko"}


@pytest.mark.parametrize(("language", "sentences", "score"), [
    ("en", testspeech.ENGLISH, wer), ("ko", testspeech.KOREAN, cer)])
async def test_long_recordings_with_pauses_come_back_whole(stt: SpeechToText,
                                                           whisper_base_stt: int,
                                                           language: str, sentences,  # type: ignore[no-untyped-def]
                                                           score) -> None:
    speaker = quality.english().speaker if language == "en" else quality.korean().speaker
    clips = testspeech.long_clips(sentences, speaker, testspeech.LONG_FORMS[:3])
    texts = [(await stt.transcribe(c.audio, language=language,
                                   version=str(whisper_base_stt))).text for c in clips]
    assert all(texts), texts
    assert score([c.text for c in clips], texts) <= 0.15, texts
