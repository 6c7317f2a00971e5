"""``POST /api/voice-chat``: one uploaded utterance -> transcript, reply text, reply audio.

The same stages as the realtime pipeline, run to completion for one request: decode ->
STT -> prompt (+ memory) -> LLM, with TTS starting on each complete sentence while the
LLM goes on. Both turns are stored in the given session with their timings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np
from litestar import post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from orchestrator.auth.access import PrincipalDep
from orchestrator.dependencies import RuntimeDep
from orchestrator.errors import Conflict, InvalidAudio, PayloadTooLarge, ServiceDisabled
from orchestrator.realtime.audio import STT_RATE, resample
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.sentences import SentenceChunker
from orchestrator.realtime.wiring import voice_ports
from storage.conversations import NewTurn


@dataclass
class VoiceChatForm:
    file: UploadFile
    session_id: str
    format: str = "wav"
    """Reply audio format: wav, mp3, opus, aac, flac, pcm16 (raw at ``sample_rate``) or pcm
    (raw at 24 kHz, as OpenAI's speech API)."""
    input_format: str | None = None
    """Upload format; sniffed from the file when absent."""
    language: str | None = None


class VoiceChatTimings(msgspec.Struct):
    decode_ms: float
    stt_ms: float
    llm_first_token_ms: float | None
    llm_total_ms: float
    tts_first_audio_ms: float | None
    tts_total_ms: float | None
    total_ms: float


class VoiceChatOut(msgspec.Struct):
    session_id: str
    transcript: str
    language: str | None
    reply_text: str
    audio: str | None
    """Base64 of the reply audio file (null when text-to-speech is off)."""
    audio_format: str | None
    media_type: str | None
    sample_rate: int | None
    user_turn_id: int
    assistant_turn_id: int
    timings: VoiceChatTimings


def _encoded_rate(media_type: str | None, source_rate: int) -> int:
    """Raw PCM says its rate in the media type (``audio/pcm;rate=24000``)."""
    _, _, rate = (media_type or "").partition(";rate=")
    return int(rate) if rate.isdigit() else source_rate


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 3)


@post("/api/voice-chat", name="voice_chat:create", tags=["voice"],
      summary="Audio in, spoken reply out (STT -> LLM -> TTS), stored as turns of the session")
async def voice_chat(runtime: RuntimeDep, principal: PrincipalDep, data: Annotated[
        VoiceChatForm, Body(media_type=RequestEncodingType.MULTI_PART)]) -> VoiceChatOut:
    settings, store = runtime.settings, runtime.conversations
    ports = voice_ports(runtime)
    if ports.stt is None or ports.llm is None:
        raise ServiceDisabled("voice chat needs speech-to-text and the LLM")
    session = await store.get_session(data.session_id, owner=principal.owner)
    if session.ended_at is not None:
        raise Conflict(f"session {data.session_id!r} has ended")
    started = time.perf_counter()
    raw = await data.file.read()
    if not raw:
        raise InvalidAudio("the uploaded audio file is empty")
    audio = await asyncio.to_thread(ports.decode_audio, raw, data.input_format)
    if audio.size == 0:
        raise InvalidAudio("the uploaded audio holds no samples")
    if audio.size / STT_RATE > settings.max_audio_seconds:
        raise PayloadTooLarge(f"audio longer than {settings.max_audio_seconds:g} s")
    runtime.limits.audio(principal, audio.size / STT_RATE)
    decode_ms = _ms(started)

    stt_start = time.perf_counter()
    result = await ports.stt.transcribe(audio, language=data.language or session.language)
    stt_ms = _ms(stt_start)
    transcript = result.text.strip()
    if not transcript:
        raise InvalidAudio("no speech was recognised in the audio")
    user = await store.add_turn(session.id, NewTurn(
        role="user", text=transcript, language=result.language, stt_ms=stt_ms,
        audio_duration_ms=round(audio.size / 16, 3)))

    history = await store.recent_turns(session.id, settings.realtime_history_turns + 1)
    history = [t for t in history if t.id != user.id][-settings.realtime_history_turns:]
    memories: list[str] = []
    if ports.memory is not None and settings.memory_top_k:
        hits = await ports.memory.recall(session.user_id, transcript, settings.memory_top_k,
                                         settings.memory_min_score,
                                         exclude_session_id=session.id)
        memories = [h.text for h in hits]
    messages = ports.prompt.messages(
        instructions=session.instructions or settings.default_instructions,
        history=history if settings.realtime_history_turns else [], memories=memories,
        user_text=transcript)
    params = ports.prompt.sampling(max_tokens=settings.llm_max_tokens, temperature=0.7)
    reply = await _speak_reply(ports, messages, params, session.voice or settings.default_voice)

    audio_b64 = media_type = fmt = None
    if reply.samples is not None:
        encoded, media_type = await asyncio.to_thread(ports.encode_audio, reply.samples,
                                                      reply.rate, data.format)
        audio_b64, fmt = base64.b64encode(encoded).decode("ascii"), data.format
    assistant = await store.add_turn(session.id, NewTurn(
        role="assistant", text=reply.text,
        audio_duration_ms=round(len(reply.samples) * 1000 / reply.rate, 3)
        if reply.samples is not None else None,
        llm_first_token_ms=reply.llm_first_ms, llm_total_ms=reply.llm_total_ms,
        tts_first_audio_ms=reply.tts_first_ms, tts_total_ms=reply.tts_total_ms,
        voice_to_voice_ms=reply.first_audio_ms and round(stt_ms + reply.first_audio_ms, 3),
        prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens))
    if ports.memory is not None:
        await ports.memory.remember([user, assistant])
    return VoiceChatOut(
        session_id=session.id, transcript=transcript, language=result.language,
        reply_text=reply.text, audio=audio_b64, audio_format=fmt, media_type=media_type,
        sample_rate=_encoded_rate(media_type, reply.rate) if reply.samples is not None
        else None, user_turn_id=user.id,
        assistant_turn_id=assistant.id,
        timings=VoiceChatTimings(decode_ms=decode_ms, stt_ms=stt_ms,
                                 llm_first_token_ms=reply.llm_first_ms,
                                 llm_total_ms=reply.llm_total_ms or 0.0,
                                 tts_first_audio_ms=reply.tts_first_ms,
                                 tts_total_ms=reply.tts_total_ms, total_ms=_ms(started)))


@dataclass
class _SpokenReply:
    text: str = ""
    samples: np.ndarray | None = None
    rate: int = 0
    llm_first_ms: float | None = None
    llm_total_ms: float | None = None
    tts_first_ms: float | None = None
    tts_total_ms: float | None = None
    first_audio_ms: float | None = None
    """LLM request -> first reply audio (added to stt_ms for voice-to-voice)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


async def _speak_reply(ports: VoicePorts, messages: list, params: object,
                       voice: str) -> _SpokenReply:
    """LLM text, with each complete sentence synthesised while the LLM goes on."""
    assert ports.llm is not None
    out, start = _SpokenReply(), time.perf_counter()
    sentences: asyncio.Queue[str | None] = asyncio.Queue()
    pieces: list[np.ndarray] = []

    async def synthesise() -> None:
        busy = 0.0
        while (sentence := await sentences.get()) is not None:
            if ports.tts is None:
                continue
            first_request = time.perf_counter()
            async with aclosing(ports.tts.stream(sentence, voice=voice)) as stream:
                async for chunk in stream:
                    if out.tts_first_ms is None:
                        out.tts_first_ms = _ms(first_request)
                        out.first_audio_ms = _ms(start)
                    out.rate = out.rate or int(chunk.sample_rate)
                    pieces.append(resample(chunk.samples, chunk.sample_rate, out.rate))
            busy += time.perf_counter() - first_request
        out.tts_total_ms = round(busy * 1000, 3) if pieces else None

    tts_task = asyncio.create_task(synthesise())
    try:
        chunker, text = SentenceChunker(), []
        async with aclosing(ports.llm.stream(messages, params)) as stream:
            async for chunk in stream:
                if chunk.prompt_tokens is not None or chunk.completion_tokens is not None:
                    out.prompt_tokens, out.completion_tokens = (chunk.prompt_tokens,
                                                                chunk.completion_tokens)
                if chunk.text:
                    out.llm_first_ms = out.llm_first_ms or _ms(start)
                    text.append(chunk.text)
                    for sentence in chunker.feed(chunk.text):
                        sentences.put_nowait(sentence)
        out.llm_total_ms = _ms(start)
        for sentence in chunker.flush():
            sentences.put_nowait(sentence)
        sentences.put_nowait(None)
        await tts_task
    finally:
        if not tts_task.done():  # the LLM failed: stop synthesis and its stream too
            tts_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tts_task
    out.text = "".join(text).strip()
    if pieces:
        out.samples = np.concatenate(pieces)
    return out
