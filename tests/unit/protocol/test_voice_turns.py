"""Realtime and ``POST /api/voice-chat`` are one voice pipeline: the same audio gives the
same stored rows, with every timing filled the same way and meaning the same thing."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import numpy as np
import pytest

from orchestrator.realtime.audio import encode_wav
from tests.support.fake_voice import (
    FakeLLM,
    FakeMemory,
    FakeSTT,
    FakeTTS,
    fake_services,
    silence,
    speak,
)
from tests.support.realtime import live_server

pytestmark = pytest.mark.asyncio
STT_DELAY_S = 0.05
TIMINGS = ("stt_ms", "llm_first_token_ms", "llm_total_ms", "tts_first_audio_ms",
           "tts_total_ms", "voice_to_voice_ms")


class SlowSTT(FakeSTT):
    async def transcribe(self, audio, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(STT_DELAY_S)
        return await super().transcribe(audio, **kwargs)


def row(turn) -> dict:  # type: ignore[no-untyped-def]
    data = dataclasses.asdict(turn)
    return {k: data[k] for k in ("role", "text", "language", "interrupted", "prompt_tokens",
                                 "completion_tokens")}


def filled(turn) -> set[str]:  # type: ignore[no-untyped-def]
    return {name for name in TIMINGS if getattr(turn, name) is not None}


async def test_voice_chat_and_realtime_store_the_same_turns_and_timings(tmp_path) -> None:
    question = speak("What will the weather be like tomorrow", tmp_path, rate=24000)
    memory = FakeMemory()
    async with live_server(tmp_path, memory_enabled=True) as live:
        live.use(fake_services(stt=SlowSTT(), llm=FakeLLM(delay=0.01), tts=FakeTTS(delay=0.01),
                               memory=memory))
        realtime_session = await live.new_session("alice")
        async with live.connect("alice", realtime_session) as client:
            await client.next()
            await client.append(np.concatenate([silence(0.5, 24000), question,
                                                silence(1.0, 24000)]), 24000, chunk_ms=40)
            await client.until("response.done")
        upload_session = await live.new_session("alice")
        wav, _ = encode_wav(question, 24000)
        async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
            response = await http.post("/api/voice-chat", data={"session_id": upload_session},
                                       files={"file": ("q.wav", wav, "audio/wav")})
        assert response.status_code == 201, response.text
        body = response.json()
        realtime_turns, _ = await live.runtime.conversations.list_turns(realtime_session)
        upload_turns, _ = await live.runtime.conversations.list_turns(upload_session)

    assert [row(t) for t in realtime_turns] == [row(t) for t in upload_turns]
    assert [t.role for t in upload_turns] == ["user", "assistant"]
    (rt_user, rt_reply), (up_user, up_reply) = realtime_turns, upload_turns
    assert filled(rt_user) == filled(up_user) == {"stt_ms"}
    assert filled(rt_reply) == filled(up_reply) == set(TIMINGS) - {"stt_ms"}
    # Both count from the end of the user's speech: STT, then the reply's first audio.
    for user, reply in ((rt_user, rt_reply), (up_user, up_reply)):
        assert user.stt_ms >= STT_DELAY_S * 1000
        assert reply.voice_to_voice_ms >= user.stt_ms + reply.llm_first_token_ms
    assert body["timings"]["voice_to_voice_ms"] == up_reply.voice_to_voice_ms
    assert body["reply_text"] == up_reply.text == rt_reply.text
    for _ in range(100):  # both paths write memory after the reply, off its path
        if len(memory.remembered) == 4:
            break
        await asyncio.sleep(0.02)
    assert [t.role for t in memory.remembered].count("assistant") == 2


class BrokenRecall(FakeMemory):
    async def recall(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("milvus is down")


async def test_a_memory_failure_costs_voice_chat_its_memories_not_its_answer(tmp_path) -> None:
    question = speak("What will the weather be like tomorrow", tmp_path, rate=24000)
    async with live_server(tmp_path, memory_enabled=True) as live:
        llm = FakeLLM()
        live.use(fake_services(llm=llm, memory=BrokenRecall()))
        session = await live.new_session("alice")
        wav, _ = encode_wav(question, 24000)
        async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as http:
            response = await http.post("/api/voice-chat", data={"session_id": session},
                                       files={"file": ("q.wav", wav, "audio/wav")})
    assert response.status_code == 201, response.text
    assert response.json()["reply_text"] == "Hello there. It is sunny. Bye!"
    assert not any("earlier conversations" in m.content for m in llm.requests[0])
