"""A Korean conversation on the real Triton server with real weights, as the Korean
profile serves it: Whisper base hears Korean speech (spoken by Kokoro), Qwen2.5-Coder-0.5B
answers in Korean with the profile's instructions, and Kokoro's ko-kumo speaks the reply:
over ``/ws`` (realtime, 16 kHz out as the session asks) and ``/api/voice-chat``.

Models: Whisper base and Kokoro and Qwen exported once per session (their fixtures), Qwen
and Kokoro linked into the session's Triton for this module and pinned."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from export.repository import ModelRepository
from export.specs import llm as llm_spec
from orchestrator.realtime.audio import encode_wav
from tests.support import triton as triton_support
from tests.support.fake_voice import silence
from tests.support.korean_voice import korean_speaker
from tests.support.realtime import live_server
from tests.support.tts_fixtures import serving_kokoro

pytestmark = [pytest.mark.asyncio, pytest.mark.triton, pytest.mark.realweights,
              pytest.mark.slow,
              # the first test here may pay for three exports of the session: Whisper base
              # (~2 min), Qwen (~2.5) and Kokoro with its calibration (6-9 on 2 cores):
              # 900 s was too little on a 2-core EPYC without avx512 (2026-12-06)
              pytest.mark.timeout(2400)]
RATE = 16000
QWEN_VERSION = 30
QUESTION = "한국의 수도는 어디인가요?"
PROFILE = Path(__file__).parents[2] / "profiles" / "ko.env"


def _hangul_share(text: str) -> float:
    letters = sum(c.isalpha() for c in text)
    return len(re.findall("[가-힣]", text)) / letters if letters else 0.0


@pytest.fixture(scope="module")
def served_qwen(triton_server, qwen_export):  # type: ignore[no-untyped-def]
    """Qwen linked into the session's repository as llm version 30, loaded beside the
    others for this module."""
    base, _ = qwen_export
    repository = triton_server.repository
    before = [v for v in ModelRepository(repository).versions("llm") if v != QWEN_VERSION]
    target = repository / "llm" / str(QWEN_VERSION)
    shutil.copytree(base / "repository" / "llm" / "1", target, copy_function=os.link)
    triton_support.load(triton_server, "llm", config=json.dumps(
        llm_spec.SPEC.config_json(versions=[*before, QWEN_VERSION])))
    yield QWEN_VERSION
    shutil.rmtree(target)
    if before:
        triton_support.load(triton_server, "llm", config=json.dumps(
            llm_spec.SPEC.config_json(versions=before)))


@pytest.fixture(scope="module")
def served_kokoro(triton_server, kokoro_export):  # type: ignore[no-untyped-def]
    with serving_kokoro(triton_server, kokoro_export) as version:
        yield version


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> np.ndarray:  # type: ignore[no-untyped-def]
    return korean_speaker(tmp_path_factory.mktemp("ko"))(QUESTION, RATE)


@pytest.fixture
async def live(triton_server, whisper_base_stt, served_qwen, served_kokoro, tmp_path):  # type: ignore[no-untyped-def]
    instructions = next(line.partition("=")[2] for line in
                        PROFILE.read_text(encoding="utf-8").splitlines()
                        if line.startswith("DEFAULT_INSTRUCTIONS="))
    async with live_server(tmp_path, triton_url=triton_server.grpc_url,
                           model_repository=str(triton_server.repository),
                           memory_enabled=False, default_voice="ko-kumo",
                           default_language="ko", default_instructions=instructions,
                           llm_temperature=0.0) as server:
        server.runtime.triton.default_versions.update(
            stt=str(whisper_base_stt), llm=str(served_qwen), tts=str(served_kokoro))
        yield server


async def test_a_spoken_korean_question_gets_a_spoken_korean_answer(live, question) -> None:
    session_id = await live.new_session("ko-user", language="ko")
    async with live.connect("ko-user", session_id) as client:
        assert (await client.next())["type"] == "session.created"
        await client.send("session.update", session={
            "input_sample_rate": RATE, "output_sample_rate": RATE,
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 600}})
        await client.until("session.updated")
        await client.append(np.concatenate([silence(0.3), question, silence(1.0)]), RATE,
                            chunk_ms=40)
        events = await client.until("response.done", wait_s=300)
    heard = next(e for e in events if e["type"] ==
                 "conversation.item.input_audio_transcription.completed")["transcript"]
    assert "수도" in heard, heard
    done = events[-1]["response"]
    assert done["status"] == "completed", done
    assert _hangul_share(done["text"]) > 0.8, done["text"]
    assert not [e for e in events if e["type"] == "error"]  # no sentence left unspoken
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events
                   if e["type"] == "response.audio.delta")
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    assert audio.size / RATE > 0.5  # at the 16 kHz the session asked for
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.02
    said = "".join(e["delta"] for e in events
                   if e["type"] == "response.audio_transcript.delta")
    assert said.replace(" ", "") == done["text"].replace(" ", "")


async def test_voice_chat_answers_a_korean_recording_in_korean(live, question) -> None:
    import httpx

    upload, _ = encode_wav(question, RATE)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=300) as http:
        session = (await http.post("/api/sessions/new", json={"user_id": "ko-user"})).json()
        response = await http.post("/api/voice-chat", data={
            "session_id": session["session_id"], "format": "wav"},
            files={"file": ("q.wav", upload, "audio/wav")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert "수도" in body["transcript"] and _hangul_share(body["reply_text"]) > 0.8
    assert not body.get("warnings")
    with wave.open(io.BytesIO(base64.b64decode(body["audio"]))) as w:
        assert w.getframerate() == 24000 and w.getnframes() / 24000 > 0.5
