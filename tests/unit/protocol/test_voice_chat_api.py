"""POST /api/voice-chat with fake services, on SQLite and a real MariaDB."""

from __future__ import annotations

import asyncio
import base64
import io
import wave

import numpy as np
import pytest

from orchestrator.realtime.audio import encode_wav
from tests.support.fake_voice import FakeLLM, FakeMemory, FakeSTT, FakeTTS, fake_services

pytestmark = pytest.mark.asyncio


def wav_upload(seconds: float = 1.0, rate: int = 44100) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    data, _ = encode_wav((0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    return data


async def new_session(client) -> str:  # type: ignore[no-untyped-def]
    r = await client.post("/api/sessions/new", json={"user_id": "alice"})
    return r.json()["session_id"]


async def test_voice_chat_returns_transcript_reply_audio_and_stores_turns(client) -> None:
    memory, stt = FakeMemory(), FakeSTT()
    client.app.state.runtime.services.update(fake_services(stt=stt, memory=memory))
    sid = await new_session(client)
    r = await client.post("/api/voice-chat", data={"session_id": sid, "format": "wav"},
                          files={"file": ("q.wav", wav_upload(), "audio/wav")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["transcript"] == "what is the weather like"
    assert body["reply_text"] == "Hello there. It is sunny. Bye!"
    assert body["media_type"] == "audio/wav" and body["sample_rate"] == FakeTTS.rate
    with wave.open(io.BytesIO(base64.b64decode(body["audio"]))) as w:
        assert w.getframerate() == FakeTTS.rate
        seconds = w.getnframes() / w.getframerate()
    assert seconds == pytest.approx(0.02 * len("Hello there.It is sunny.Bye!"), abs=0.01)
    assert set(body["timings"]) >= {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms",
                                    "total_ms"}
    # 44.1 kHz upload reached STT as 1 s at 16 kHz
    assert stt.calls == [16000]
    turns = (await client.get(f"/api/sessions/{sid}/turns")).json()["data"]
    assert [(t["role"], t["text"]) for t in turns] == [
        ("user", "what is the weather like"), ("assistant", "Hello there. It is sunny. Bye!")]
    assert turns[0]["audio_duration_ms"] == 1000.0
    assert turns[1]["timings_ms"]["voice_to_voice_ms"] is not None
    stats = (await client.get(f"/api/sessions/{sid}/stats")).json()
    assert stats["turns"] == 2 and stats["average_latency_ms"]["stt_ms"] is not None
    for _ in range(100):  # memory is written after the reply, off the request's path
        if len(memory.remembered) == 2:
            break
        await asyncio.sleep(0.02)
    assert [t.role for t in memory.remembered] == ["user", "assistant"]


async def test_second_call_sees_the_first_in_its_prompt(client) -> None:
    llm = FakeLLM()
    client.app.state.runtime.services.update(fake_services(llm=llm))
    sid = await new_session(client)
    for _ in range(2):
        r = await client.post("/api/voice-chat", data={"session_id": sid, "format": "pcm16"},
                              files={"file": ("q.wav", wav_upload(0.5), "audio/wav")})
        assert r.status_code == 201
    assert [m.role for m in llm.requests[1]] == ["system", "user", "assistant", "user"]
    # Raw PCM says its rate in the media type: nothing else in the bytes does.
    assert r.json()["media_type"] == f"audio/pcm;rate={r.json()['sample_rate']}"


@pytest.mark.parametrize(("upload", "form", "status", "code"), [
    (b"", {}, 400, "invalid_audio"),
    (b"RIFF not really a wav", {}, 400, "invalid_audio"),
    (None, {"format": "ogg-vorbis-9000"}, 400, "invalid_request"),
    (None, {"session_id": "missing"}, 404, "not_found"),
])
async def test_bad_uploads_get_clear_errors(client, upload, form, status, code) -> None:
    client.app.state.runtime.services.update(fake_services())
    sid = await new_session(client)
    data = {"session_id": sid, "format": "wav"} | form
    r = await client.post("/api/voice-chat", data=data,
                          files={"file": ("q.wav", wav_upload(0.3) if upload is None else upload,
                                          "audio/wav")})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_without_services_voice_chat_is_503(client) -> None:
    sid = await new_session(client)
    r = await client.post("/api/voice-chat", data={"session_id": sid},
                          files={"file": ("q.wav", wav_upload(0.3), "audio/wav")})
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_disabled"


async def test_silence_transcribed_as_nothing_is_rejected_and_stores_nothing(client) -> None:
    client.app.state.runtime.services.update(fake_services(stt=FakeSTT(text="  ")))
    sid = await new_session(client)
    r = await client.post("/api/voice-chat", data={"session_id": sid},
                          files={"file": ("q.wav", wav_upload(0.3), "audio/wav")})
    assert r.status_code == 400 and "no speech" in r.json()["error"]["message"]
    assert (await client.get(f"/api/sessions/{sid}/turns")).json()["total"] == 0


async def test_korean_sentences_an_english_voice_cannot_say_come_as_text_with_a_warning(
        client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from orchestrator.speech.catalogue import ModelCatalogue

    version = tmp_path / "repository" / "tts" / "1"
    version.mkdir(parents=True)
    (version / "voices.json").write_text(json.dumps({
        "default": "en_US-joe-medium",
        "voices": [{"name": "en_US-joe-medium", "language": "en_US"}]}), encoding="utf-8")
    (version / "manifest.json").write_text("{}", encoding="utf-8")  # a complete version
    tts = FakeTTS()
    services = fake_services(llm=FakeLLM(["안녕하세요.", " Hello there."]), tts=tts)
    services["catalogue"] = ModelCatalogue(tmp_path / "repository")
    client.app.state.runtime.services.update(services)
    sid = await new_session(client)
    r = await client.post("/api/voice-chat", data={"session_id": sid, "format": "wav"},
                          files={"file": ("q.wav", wav_upload(), "audio/wav")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["reply_text"] == "안녕하세요. Hello there."
    assert tts.texts == ["Hello there."]
    assert [w["code"] for w in body["warnings"]] == ["voice_language_unsupported"]
    assert body["warnings"][0]["param"] == "session.voice"
    turns = (await client.get(f"/api/sessions/{sid}/turns")).json()["data"]
    assert turns[-1]["text"] == "안녕하세요. Hello there."
