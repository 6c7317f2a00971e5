"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (OpenAI-compatible).

Multipart fields as in OpenAI's API: ``file``, ``model``, ``language``, ``prompt``,
``temperature``, ``response_format`` (json | text | verbose_json | srt | vtt). ``model``
is accepted for SDK compatibility: any name serves the current version of ``stt``;
``stt:N`` asks for version N. Languages are returned as ISO 639-1 codes.
``timestamp_granularities[]`` (verbose_json): ``segment`` (the default) lists segments,
``word`` lists ``words`` with start and end (Whisper's alignment heads and DTW, as
openai-whisper's ``word_timestamps``); both: both. ``include[]`` and any other field are
refused by name. ``stream=true`` (json or text) sends OpenAI's ``transcript.text.delta``
events, one per decoded chunk of ``STT_CHUNK_SECONDS``, then ``transcript.text.done``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Stream

from orchestrator.auth.access import PrincipalDep
from orchestrator.auth.principal import Principal
from orchestrator.dependencies import RuntimeDep, service_unavailable
from orchestrator.errors import AppError, InvalidRequest
from orchestrator.models.refs import parse_model_ref
from orchestrator.runtime import Runtime
from orchestrator.speech.audio_format import MODEL_RATE
from orchestrator.speech.audio_input import decode_audio
from orchestrator.speech.catalogue import base_language
from orchestrator.speech.stt import Segment, SpeechToText, Transcription
from orchestrator.sse import HEADERS, sse, sse_error

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]


def provide_stt(state: State) -> SpeechToText:
    """The speech-to-text service, or a 503 saying why it is off."""
    runtime: Runtime = state.runtime
    if runtime.services.stt is None:
        raise service_unavailable(runtime.settings, "stt", "speech-to-text")
    return runtime.services.stt


SpeechToTextDep = NamedDependency[SpeechToText]


@dataclass
class TranscriptionForm:
    file: UploadFile
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    response_format: str = "json"


class TranscriptionSegment(msgspec.Struct):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWord(msgspec.Struct):
    word: str
    start: float
    end: float


class VerboseTranscription(msgspec.Struct, omit_defaults=True):
    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None


class TranscriptionText(msgspec.Struct):
    text: str


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(segments: list[Segment]) -> list[Segment]:
    return [s for s in segments if s.text.strip()]


def to_srt(segments: list[Segment]) -> str:
    return "".join(f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n"
                   f"{s.text.strip()}\n\n" for i, s in enumerate(_cues(segments), 1))


def to_vtt(segments: list[Segment]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n"
                                  f"{s.text.strip()}\n\n" for s in _cues(segments))


def render(result: Transcription, response_format: str, task: str,
           granularities: frozenset[str] = frozenset({"segment"})) -> Response[Any]:
    if response_format == "json":
        return Response(TranscriptionText(text=result.text))
    if response_format == "text":
        return Response(result.text + "\n", media_type="text/plain; charset=utf-8")
    if response_format == "srt":
        return Response(to_srt(result.segments), media_type="text/plain; charset=utf-8")
    if response_format == "vtt":
        return Response(to_vtt(result.segments), media_type="text/vtt; charset=utf-8")
    segments = [TranscriptionSegment(id=s.id, seek=s.seek, start=s.start, end=s.end,
                                     text=s.text, tokens=list(s.tokens),
                                     temperature=s.temperature, avg_logprob=s.avg_logprob,
                                     compression_ratio=s.compression_ratio,
                                     no_speech_prob=s.no_speech_prob)
                for s in result.segments] if "segment" in granularities else None
    words = [TranscriptionWord(w.word.strip(), w.start, w.end)
             for s in result.segments for w in s.words or ()] \
        if "word" in granularities else None
    return Response(VerboseTranscription(task=task, language=result.language,
                                         duration=round(result.duration_s, 3),
                                         text=result.text, segments=segments, words=words))


_FIELDS = frozenset(f.name for f in dataclasses.fields(TranscriptionForm))


def check_fields(fields: Any, response_format: str) -> tuple[bool, frozenset[str]]:
    """The OpenAI form fields the dataclass does not bind are honoured or refused here:
    none is dropped unseen (multipart lists arrive as ``name[]``). Returns ``stream`` and
    the timestamp granularities (``segment`` unless asked otherwise)."""
    stream = False
    granularities = frozenset({"segment"})
    for key in set(fields.keys()) - _FIELDS:
        values = [str(v) for v in fields.getall(key)]
        name = key.removesuffix("[]")
        if name == "timestamp_granularities":
            if not values or set(values) - {"segment", "word"}:
                raise InvalidRequest("timestamp_granularities: 'segment' and/or 'word'",
                                     param=name)
            granularities = frozenset(values)
            if response_format != "verbose_json":
                raise InvalidRequest("timestamp_granularities needs "
                                     "response_format=verbose_json", param=name)
        elif name == "stream":
            if values not in (["false"], ["true"]):
                raise InvalidRequest("stream must be true or false", param=name)
            stream = values == ["true"]
            if stream and response_format not in ("json", "text"):
                raise InvalidRequest("stream=true sends transcript events: response_format "
                                     "must be json or text", param=name)
        elif name == "chunking_strategy":
            if values != ["auto"]:
                raise InvalidRequest("chunking_strategy: only 'auto' (30 s windows)",
                                     param=name)
        else:
            raise InvalidRequest(f"{name} is not supported by this server", param=name)
    return stream, granularities


async def _handle(form: TranscriptionForm, stt: SpeechToText, runtime: Runtime,
                  principal: Principal, task: str, fields: Any) -> Response[Any]:
    settings = runtime.settings
    stream, granularities = check_fields(fields, form.response_format)
    if form.response_format not in ("json", "text", "verbose_json", "srt", "vtt"):
        raise InvalidRequest(f"response_format must be json, text, verbose_json, srt or vtt, "
                             f"not {form.response_format!r}")
    if not 0.0 <= form.temperature <= 1.0:
        raise InvalidRequest("temperature must be between 0 and 1")
    language = (form.language or "").strip() or None
    if language is not None and not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?|"
                                                 r"[A-Za-z ]{3,32}", language):
        raise InvalidRequest(f"language {language!r} is not an ISO 639-1 code")
    if language:
        language = base_language(language)
    # OpenAI names (whisper-1, gpt-4o-transcribe) mean the promoted stt version.
    name, version = parse_model_ref(form.model)
    version = version if name == "stt" else ""
    data = await form.file.read()
    audio = await asyncio.to_thread(decode_audio, data, max_bytes=settings.max_request_bytes,
                                    max_seconds=settings.max_audio_seconds)
    await runtime.limits.audio(principal, audio.size / MODEL_RATE)
    if stream:
        parts = stt.parts(audio, language=language, prompt=form.prompt or None, task=task,
                          temperature=form.temperature, version=version)
        try:
            first = await anext(parts)  # errors up front are real HTTP errors
        except BaseException:
            await parts.aclose()
            raise
        return Stream(_transcript_events(first, parts, audio.size / MODEL_RATE),
                      media_type="text/event-stream",
                      headers=HEADERS)
    result = await stt.transcribe(audio, language=language, prompt=form.prompt or None,
                                  task=task, temperature=form.temperature, version=version,
                                  words="word" in granularities, recording=True)
    return render(result, form.response_format, task, granularities)


async def _transcript_events(first: Transcription, rest: AsyncIterator[Transcription],
                             seconds: float) -> AsyncIterator[bytes]:
    """OpenAI's streamed transcription: a ``transcript.text.delta`` per decoded chunk of
    ``STT_CHUNK_SECONDS``, then ``transcript.text.done`` with the whole text."""
    texts: list[str] = []
    try:
        part: Transcription | None = first
        while part is not None:
            if part.text:
                yield sse({"type": "transcript.text.delta",
                             "delta": (" " if texts else "") + part.text})
                texts.append(part.text)
            part = await anext(rest, None)
        yield sse({"type": "transcript.text.done", "text": " ".join(texts),
                     "usage": {"type": "duration", "seconds": round(seconds, 3)}})
    except AppError as exc:
        yield sse_error(exc)
    finally:
        await rest.aclose()


Form = Annotated[TranscriptionForm, Body(media_type=RequestEncodingType.MULTI_PART)]


class TranscriptionController(Controller):
    path = "/v1/audio"
    tags = ["speech"]
    dependencies = {"stt": Provide(provide_stt, sync_to_thread=False)}

    @post("/transcriptions", name="audio:transcriptions", status_code=200,
          summary="Transcribe an audio file (OpenAI-compatible)")
    async def transcriptions(self, request: Request[Any, Any, Any], data: Form,
                             stt: SpeechToTextDep, runtime: RuntimeDep,
                             principal: PrincipalDep) -> Response[Any]:
        return await _handle(data, stt, runtime, principal, "transcribe",
                             await request.form())

    @post("/translations", name="audio:translations", status_code=200,
          summary="Translate speech into English text (OpenAI-compatible)")
    async def translations(self, request: Request[Any, Any, Any], data: Form,
                           stt: SpeechToTextDep, runtime: RuntimeDep,
                           principal: PrincipalDep) -> Response[Any]:
        return await _handle(data, stt, runtime, principal, "translate",
                             await request.form())
