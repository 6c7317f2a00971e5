"""``POST /v1/audio/speech`` (OpenAI-compatible, streamed) and ``POST /api/tts/synthesize``.

``/v1/audio/speech`` streams the file as it is synthesised, sentence by sentence
(``stream_format="audio"``), or as server-sent ``speech.audio.delta`` events
(``stream_format="sse"``). The first sentence is synthesised before the response
starts, so a bad request (unknown voice, text the model rejects) still gets a 4xx, not
a broken stream.

OpenAI's voice names (alloy, echo, …) mean the default voice (DEFAULT_VOICE), so code
written for OpenAI runs unchanged; any other name must be a served voice. ``model``
``tts:N`` pins version N; other names (tts-1, gpt-4o-mini-tts) use the promoted version.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.response import Stream

from export.specs import tts as tts_spec
from orchestrator.dependencies import service_unavailable
from orchestrator.errors import InvalidRequest
from orchestrator.models.refs import ModelRef, parse_model_ref
from orchestrator.request_context import current_request_id
from orchestrator.runtime import Runtime
from orchestrator.speech.audio_output import (
    AudioStreamEncoder,
    FormatName,
    encode_audio,
    media_type,
    output_format,
    output_rate,
)
from orchestrator.speech.dependencies import CatalogueDep
from orchestrator.speech.tts import AudioChunk, TextToSpeech
from orchestrator.sse import sse


def provide_tts(state: State) -> TextToSpeech:
    """The text-to-speech service, or a 503 saying why it is off."""
    runtime: Runtime = state.runtime
    if runtime.services.tts is None:
        raise service_unavailable(runtime.settings, "tts", "text-to-speech")
    return runtime.services.tts


TextToSpeechDep = NamedDependency[TextToSpeech]
Speed = Annotated[float, msgspec.Meta(ge=tts_spec.MIN_SPEED, le=tts_spec.MAX_SPEED)]
Noise = Annotated[float, msgspec.Meta(ge=0.0, le=2.0, description="VITS sampling noise")]
SpokenText = Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S",
                                         description="Text to say: not empty, not only spaces; "
                                         "longer than MAX_TTS_CHARS is a 413")]


class SpeechRequest(msgspec.Struct, forbid_unknown_fields=True):
    """OpenAI's speech request. ``instructions`` is refused when given: the voices take
    no style prompt. A field OpenAI does not define is a 400."""

    input: SpokenText
    model: ModelRef = "tts-1"
    voice: str = ""
    response_format: FormatName = "mp3"
    speed: Speed = 1.0
    stream_format: Literal["audio", "sse"] = "audio"
    instructions: str | None = None
    language: str | None = None
    """Extensions (not in OpenAI's API): text normalisation language (en, ko; default: the
    voice's) and VITS sampling noise (default: the voice's; 0 makes output repeatable;
    refused for Kokoro voices, which have none)."""
    noise_scale: Noise | None = None
    noise_w: Noise | None = None


class SynthesizeRequest(msgspec.Struct):
    """The original backend's request (``{"text": "안녕하세요"}``), plus options."""

    text: SpokenText
    voice: str | None = None
    language: str | None = None
    speed: Speed = 1.0
    format: FormatName = "wav"
    noise_scale: Noise | None = None
    noise_w: Noise | None = None


class Voice(msgspec.Struct):
    name: str
    languages: list[str]
    """Base language codes the voice speaks (en, ko, …)."""


class VoiceList(msgspec.Struct):
    """The served tts version's voices. ``default``: what a request naming no voice (or
    an OpenAI voice name) gets; both empty when the model repository is not readable by
    this process (Triton elsewhere): then any name is passed on to the model."""

    default: str
    data: list[Voice]


def _version(model: str) -> str:
    name, version = parse_model_ref(model)
    return version if name == "tts" else ""


async def _first_and_rest(chunks: AsyncIterator[AudioChunk]
                          ) -> tuple[AudioChunk, AsyncIterator[AudioChunk]]:
    """Wait for the first chunk (errors surface here, before any byte is sent)."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise InvalidRequest("the input has nothing the voice can say", param="input") from None
    except BaseException:
        await chunks.aclose()
        raise
    return first, chunks


async def _audio_bytes(first: AudioChunk, rest: AsyncIterator[AudioChunk], fmt: str,
                       seconds: list[float] | None = None) -> AsyncIterator[bytes]:
    """Encoded audio as it is synthesised; ``seconds[0]`` adds up its duration."""
    encoder = AudioStreamEncoder(fmt, first.sample_rate)

    def encoded(chunk: AudioChunk) -> bytes:
        if seconds is not None:
            seconds[0] += chunk.samples.size / chunk.sample_rate
        return encoder.encode(chunk.samples)

    async with aclosing(rest):
        data = encoded(first)
        if data:
            yield data
        async for chunk in rest:
            data = encoded(chunk)
            if data:
                yield data
    tail = encoder.finish()
    if tail:
        yield tail


async def _sse_events(first: AudioChunk, rest: AsyncIterator[AudioChunk], fmt: str,
                      input_chars: int) -> AsyncIterator[bytes]:
    """OpenAI's speech events. ``usage``: input characters (the voices have no text
    tokenizer) and output audio in 20 ms frames."""
    seconds = [0.0]
    async for data in _audio_bytes(first, rest, fmt, seconds):
        yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
    frames = round(seconds[0] * 50)
    yield sse({"type": "speech.audio.done",
                "usage": {"input_tokens": input_chars, "output_tokens": frames,
                          "total_tokens": input_chars + frames}})


class SpeechController(Controller):
    tags = ["speech"]
    dependencies = {"tts": Provide(provide_tts, sync_to_thread=False)}

    @post("/v1/audio/speech", name="audio:speech", status_code=200,
          summary="Text to speech, streamed as it is synthesised (OpenAI-compatible)")
    async def speech(self, data: SpeechRequest, tts: TextToSpeechDep,
                     catalogue: CatalogueDep) -> Stream:
        if data.instructions and data.instructions.strip():
            raise InvalidRequest("instructions: the voices take no style prompt (choose "
                                 "another voice, speed or noise_scale)", param="instructions")
        fmt = output_format(data.response_format)
        catalogue.check_voice(data.voice)
        catalogue.check_speaks(data.voice, data.input, data.language)
        catalogue.check_noise(data.voice, noise_scale=data.noise_scale, noise_w=data.noise_w)
        chunks = tts.stream(data.input, voice=data.voice, speed=data.speed,
                            language=data.language, noise_scale=data.noise_scale,
                            noise_w=data.noise_w, version=_version(data.model),
                            request_id=current_request_id() or "")
        first, rest = await _first_and_rest(chunks)
        headers = {"X-Sample-Rate": str(output_rate(fmt, first.sample_rate))}
        if data.stream_format == "sse":
            return Stream(_sse_events(first, rest, fmt.name, len(data.input)),
                          media_type="text/event-stream", headers=headers)
        return Stream(_audio_bytes(first, rest, fmt.name),
                      media_type=media_type(fmt, first.sample_rate),
                      headers=headers)

    @post("/api/tts/synthesize", name="tts:synthesize", status_code=200,
          summary="Text to speech as one audio file (the original backend's endpoint)")
    async def synthesize(self, data: SynthesizeRequest, tts: TextToSpeechDep,
                         catalogue: CatalogueDep) -> Response[bytes]:
        fmt = output_format(data.format)
        catalogue.check_voice(data.voice)
        catalogue.check_speaks(data.voice, data.text, data.language)
        catalogue.check_noise(data.voice, noise_scale=data.noise_scale, noise_w=data.noise_w)
        speech = await tts.synthesize(data.text, voice=data.voice, speed=data.speed,
                                      language=data.language, noise_scale=data.noise_scale,
                                      noise_w=data.noise_w)
        if not speech.samples.size:
            raise InvalidRequest("the text has nothing the voice can say", param="text")
        body, content_type = await asyncio.to_thread(encode_audio, speech.samples,
                                                     speech.sample_rate, fmt.name)
        return Response(body, media_type=content_type, headers={
            "X-Sample-Rate": str(output_rate(fmt, speech.sample_rate)),
            "X-Audio-Duration": f"{speech.duration_s:.3f}",
            "X-Sentences": str(len(speech.sentences))})


@get("/api/tts/voices", name="tts:voices", summary="The voices the served tts version offers, "
     "with the languages each speaks")
async def list_voices(catalogue: CatalogueDep) -> VoiceList:
    return VoiceList(default=catalogue.effective_voice(None),
                     data=[Voice(name, languages) for name, languages in catalogue.listing()])
