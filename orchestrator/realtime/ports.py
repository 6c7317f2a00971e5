"""What the voice pipeline needs from other features, as structural types.

The realtime pipeline and ``POST /api/voice-chat`` talk only to these ports; the
services in ``Runtime.services`` (``stt``, ``llm``, ``tts``, ``memory``) satisfy them as
they are, and unit tests pass small fakes. :mod:`.wiring` builds the
bundle from a runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from storage.conversations import TurnRecord

if TYPE_CHECKING:
    from orchestrator.speech.catalogue import ModelCatalogue


class Transcription(Protocol):
    text: str
    language: str | None
    segments: Sequence[Any]


@runtime_checkable
class SpeechToText(Protocol):
    async def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                         prompt: str | None = None, task: str = "transcribe",
                         temperature: float = 0.0, version: str = "",
                         draft: Sequence[int] = (), recording: bool = False) -> Transcription:
        """``audio``: float32, 16 kHz, mono; ``draft``: a partial transcript's tokens;
        ``recording``: an upload, not a live turn."""
        ...


class ChatChunk(Protocol):
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None
    """Prompt tokens the model found in its prefix cache (an earlier turn, a prefill)."""


@runtime_checkable
class LanguageModel(Protocol):
    def stream(self, messages: list[Any], params: Any,
               prompt: str | None = None) -> AsyncIterator[ChatChunk]:
        """Closing the iterator early (``aclose`` / task cancel) cancels generation.
        ``prompt``: a prompt rendered by the caller (function calling), sent instead of
        the messages."""
        ...


class AudioChunk(Protocol):
    samples: np.ndarray
    sample_rate: int
    text: str


@runtime_checkable
class TextToSpeech(Protocol):
    def stream(self, text: str, *, voice: str | None = None,
               speed: float = 1.0) -> AsyncIterator[AudioChunk]:
        ...


class MemoryHit(Protocol):
    text: str


@runtime_checkable
class Memory(Protocol):
    async def remember(self, turns: list[TurnRecord]) -> None: ...

    async def forget(self, turn_ids: Sequence[int]) -> None: ...

    async def recall(self, user_id: str, query: str, top_k: int, min_score: float,
                     exclude_session_id: str | None = None) -> Sequence[MemoryHit]: ...


@runtime_checkable
class PromptBuilder(Protocol):
    """Builds the LLM request (``orchestrator/chat/prompt.py`` behind an adapter)."""

    def messages(self, *, instructions: str, history: Sequence[TurnRecord],
                 memories: Sequence[str], user_text: str, truncated: bool = False,
                 cursor: Any = None) -> list[Any]:
        """``truncated``: ``history`` is the newest part of the stored turns; ``cursor``: a
        :class:`~orchestrator.chat.prompt.HistoryCursor` kept across the conversation."""
        ...

    def sampling(self, *, max_tokens: int, temperature: float) -> Any: ...


class ReplySink(Protocol):
    """Where a reply's events go: the socket's send queue (``OutboundQueue``), or a
    collector (``turns.AudioCollector``). ``on_sent`` runs once the event has left."""

    async def put(self, event: Any, *, response_id: str | None = None,
                  on_sent: Callable[[], None] | None = None) -> None: ...

    async def drop_response(self, response_id: str) -> int: ...

    async def settled(self, response_id: str) -> None:
        """Return once what was put for ``response_id`` has left or been dropped."""
        ...


AudioDecoder = Callable[[bytes, str | None], np.ndarray]
"""(file bytes, format name or None to sniff) -> float32 16 kHz mono; raises InvalidAudio."""

AudioEncoder = Callable[[np.ndarray, int, str], tuple[bytes, str]]
"""(float32 samples, sample rate, format) -> (file bytes, media type); raises InvalidRequest."""


@dataclass(frozen=True, slots=True)
class VoicePorts:
    """Everything one voice conversation needs; ``None`` where a feature is off."""

    stt: SpeechToText | None
    llm: LanguageModel | None
    tts: TextToSpeech | None
    memory: Memory | None
    prompt: PromptBuilder
    decode_audio: AudioDecoder
    encode_audio: AudioEncoder
    catalogue: ModelCatalogue | None = None
    """Voices and languages on offer: a session's are checked when they are set."""
