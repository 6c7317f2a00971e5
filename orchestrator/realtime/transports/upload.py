"""``POST /api/voice-chat``: one uploaded utterance -> transcript, reply text, reply audio.

The realtime pipeline run to completion for one request (``turns``: the same prompt,
the same :class:`~.reply.Reply` with TTS starting on each complete sentence while the
LLM goes on, the same stored rows and timings); the reply's audio is collected instead
of streamed. Both turns are stored in the given session; memory is written afterwards,
off the request's path.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from orchestrator.auth.access import PrincipalDep
from orchestrator.dependencies import RuntimeDep
from orchestrator.errors import Conflict, InvalidAudio, PayloadTooLarge, ServiceDisabled
from orchestrator.realtime.protocol.session_types import new_id
from orchestrator.realtime.reply.plan import Pacing, ReplyPlan
from orchestrator.realtime.reply.stages import Reply
from orchestrator.realtime.reply.stored import (
    AudioCollector,
    PromptContext,
    assistant_turn_row,
    prompt_messages,
    remember_later,
    user_turn_row,
)
from orchestrator.realtime.wiring import voice_ports
from orchestrator.speech.audio_format import MODEL_RATE
from orchestrator.speech.audio_output import output_format
from orchestrator.telemetry.metrics import observe_reply


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
    voice_to_voice_ms: float | None
    """End of the upload's speech (decoded) -> first reply audio, as stored for realtime."""
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
    warnings: list[dict] = msgspec.field(default_factory=list)
    """What the reply could not do, as error objects (code, message, param): e.g.
    ``voice_language_unsupported`` when the voice cannot speak the reply's language (its
    sentences are then in ``reply_text`` but not in the audio)."""


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
    # Everything the reply will need is checked before any model runs or a turn is stored.
    output_format(data.format)
    if ports.catalogue is not None:
        ports.catalogue.check_language(data.language)
        ports.catalogue.check_voice(session.voice, param="session.voice")
    started = time.perf_counter()
    raw = await data.file.read()
    if not raw:
        raise InvalidAudio("the uploaded audio file is empty")
    audio = await asyncio.to_thread(ports.decode_audio, raw, data.input_format)
    if audio.size == 0:
        raise InvalidAudio("the uploaded audio holds no samples")
    if audio.size / MODEL_RATE > settings.max_audio_seconds:
        raise PayloadTooLarge(f"audio longer than {settings.max_audio_seconds:g} s")
    await runtime.limits.audio(principal, audio.size / MODEL_RATE)
    decode_ms = _ms(started)

    # The upload is the whole utterance: its speech ends now (realtime: at the VAD's end).
    end_of_speech = time.perf_counter()
    result = await ports.stt.transcribe(audio, language=data.language or session.language,
                                        recording=True)
    stt_ms = _ms(end_of_speech)
    transcript = result.text.strip()
    if not transcript:
        raise InvalidAudio("no speech was recognised in the audio")
    user = await store.add_turn(session.id, user_turn_row(transcript, result.language, stt_ms,
                                                          audio.size))
    remember_later(ports, [user], runtime.background.spawn)

    context = PromptContext(store, session.id, session.user_id,
                            settings.realtime_history_turns, settings.memory_top_k,
                            settings.memory_min_score)
    messages = await prompt_messages(
        ports, context, instructions=session.instructions or settings.default_instructions)
    plan = ReplyPlan(response_id=new_id("resp"), item_id=new_id("item"), messages=messages,
                     params=ports.prompt.sampling(max_tokens=settings.llm_max_tokens,
                                                  temperature=settings.llm_temperature),
                     audio=ports.tts is not None, voice=session.voice or settings.default_voice,
                     voice_languages=ports.catalogue.voice_languages(
                         session.voice or settings.default_voice)
                     if ports.catalogue is not None else None,
                     output_rate=None, end_of_speech=end_of_speech,
                     pacing=Pacing.from_settings(settings), live=False)
    collector = AudioCollector()
    reply = Reply(plan, ports.llm, ports.tts, collector)
    outcome = await reply.run()
    if outcome.error is not None:
        raise outcome.error
    reply_text = reply.delivered_text()
    samples = collector.samples()

    audio_b64 = media_type = fmt = None
    if samples is not None:
        encoded, media_type = await asyncio.to_thread(ports.encode_audio, samples, reply.rate,
                                                      data.format)
        audio_b64, fmt = base64.b64encode(encoded).decode("ascii"), data.format
    assistant = await store.add_turn(session.id, assistant_turn_row(reply_text, outcome,
                                                                    interrupted=False))
    remember_later(ports, [assistant], runtime.background.spawn)
    t = outcome.timings
    t.stt_ms = stt_ms
    observe_reply("voice_chat", outcome.status, t)
    return VoiceChatOut(
        session_id=session.id, transcript=transcript, language=result.language,
        reply_text=reply_text, audio=audio_b64, audio_format=fmt, media_type=media_type,
        sample_rate=_encoded_rate(media_type, reply.rate) if samples is not None else None,
        user_turn_id=user.id, assistant_turn_id=assistant.id,
        timings=VoiceChatTimings(decode_ms=decode_ms, stt_ms=stt_ms,
                                 llm_first_token_ms=t.llm_first_token_ms,
                                 llm_total_ms=t.llm_total_ms or 0.0,
                                 tts_first_audio_ms=t.tts_first_audio_ms,
                                 tts_total_ms=t.tts_total_ms,
                                 voice_to_voice_ms=t.voice_to_voice_ms, total_ms=_ms(started)),
        warnings=reply.warnings)
