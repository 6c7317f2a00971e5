"""The voice pipeline's ports, taken from ``Runtime.services`` (``orchestrator.services``).

=================  ==========================================================================
service            what it must provide (see :mod:`.ports`)
=================  ==========================================================================
``stt``            ``async transcribe(audio_16k_float32, *, language, prompt, ...)``
``llm``            ``stream(messages, params) -> AsyncIterator[ChatChunk]``
``tts``            ``stream(text, *, voice, speed) -> AsyncIterator[AudioChunk]`` (optional)
``memory``         ``remember(turns)`` / ``recall(...)`` (optional)
``prompt``         a :class:`~.ports.PromptBuilder`; default :class:`PlainPrompt`, or
                   :class:`ChatPrompt` over the chat feature's prompt builder
``audio_decoder``  ``(bytes, format|None) -> float32 16 kHz``; default WAV/PCM16 decoder
``audio_encoder``  ``(samples, rate, format) -> (bytes, media type)``; default WAV/PCM16
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.chat.prompt import build_messages
from orchestrator.chat.service import SamplingParams
from orchestrator.realtime.audio import decode_wav, encode_wav
from orchestrator.realtime.ports import VoicePorts
from storage.conversations import TurnRecord

if TYPE_CHECKING:  # the runtime builds these ports' services and imports this module
    from orchestrator.runtime import Runtime


class PlainPrompt:
    """:func:`orchestrator.chat.prompt.build_messages` without a token budget: system
    instructions, the stored turns (function calls and results too), the user's words
    with the recalled memories in front of them."""

    def messages(self, *, instructions: str, history: Sequence[TurnRecord],
                 memories: Sequence[str], user_text: str | None,
                 truncated: bool = False, cursor: Any = None) -> list[Any]:
        return build_messages(instructions=instructions, turns=list(history),
                              user_text=user_text or "", count_tokens=lambda _: 0,
                              budget_tokens=1 << 30, memories=list(memories),
                              truncated=truncated, cursor=cursor)

    def sampling(self, *, max_tokens: int, temperature: float) -> Any:
        return SamplingParams(max_tokens=max_tokens, temperature=temperature)


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """A :class:`~.ports.PromptBuilder` over the chat feature's
    ``orchestrator.chat.prompt.build_messages`` (token-budgeted) and its ``SamplingParams``.
    Wiring: ``ChatPrompt(build_messages, SamplingParams, runtime.services.llm.count_tokens,
    settings.llm_context_tokens)``."""

    build_messages: Callable[..., list[Any]]
    params_type: Callable[..., Any]
    count_tokens: Callable[[str], int]
    budget_tokens: int

    def messages(self, *, instructions: str, history: Sequence[TurnRecord],
                 memories: Sequence[str], user_text: str | None,
                 truncated: bool = False, cursor: Any = None) -> list[Any]:
        return self.build_messages(instructions=instructions, turns=list(history),
                                   user_text=user_text or "", count_tokens=self.count_tokens,
                                   budget_tokens=self.budget_tokens, memories=list(memories),
                                   truncated=truncated, cursor=cursor)

    def sampling(self, *, max_tokens: int, temperature: float) -> Any:
        return self.params_type(max_tokens=max_tokens, temperature=temperature)


def bounded_decoder(decode: Callable[..., Any], *, max_bytes: int,
                    max_seconds: float) -> Callable[[bytes, str | None], Any]:
    """An :data:`~.ports.AudioDecoder` over the speech feature's
    ``decode_audio(data, *, max_bytes, max_seconds)`` (it sniffs the format itself)."""

    def decoder(data: bytes, fmt: str | None = None) -> Any:
        return decode(data, max_bytes=max_bytes, max_seconds=max_seconds)

    return decoder


def voice_ports(runtime: Runtime) -> VoicePorts:
    services = runtime.services
    return VoicePorts(
        stt=services.stt, llm=services.llm, tts=services.tts,
        memory=services.memory,  # None unless MEMORY_ENABLED
        prompt=services.prompt or PlainPrompt(),
        decode_audio=services.audio_decoder or decode_wav,
        encode_audio=services.audio_encoder or encode_wav,
        catalogue=services.catalogue)
