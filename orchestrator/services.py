"""The feature services of one process, typed: built at start-up, read by handlers.

A field is ``None`` when its feature is not available here, for whatever reason (its
setting is off, no Triton is configured); handlers answer 503 with the reason (each
feature's typed provider, through ``dependencies.service_unavailable``), and the voice
pipeline refuses what it cannot do. There is one meaning of "off": absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.chat.service import ChatService
    from orchestrator.memory.embedder import TritonEmbedder
    from orchestrator.memory.service import MemoryService
    from orchestrator.models.service import ModelAdmin
    from orchestrator.realtime.ports import AudioDecoder, AudioEncoder, PromptBuilder
    from orchestrator.speech.catalogue import ModelCatalogue
    from orchestrator.speech.stt import SpeechToText
    from orchestrator.speech.tts import TextToSpeech


@dataclass
class Services:
    stt: SpeechToText | None = None
    tts: TextToSpeech | None = None
    llm: ChatService | None = None
    memory: MemoryService | None = None
    embedder: TritonEmbedder | None = None
    """Sentence vectors of the ``embedder`` model (``POST /v1/embeddings``)."""
    models: ModelAdmin | None = None
    """Model administration (needs Triton)."""
    prompt: PromptBuilder | None = None
    """How voice replies build their prompt (token-budgeted by the served LLM's tokenizer)."""
    audio_decoder: AudioDecoder | None = None
    audio_encoder: AudioEncoder | None = None
    catalogue: ModelCatalogue | None = None
    """Voices and languages the served models offer (checked where they are set)."""

    def update(self, services: Mapping[str, Any]) -> None:
        """Replace some services (tests put fakes in); an unknown name is an error."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(services) - known)
        if unknown:
            raise AttributeError(f"no services {unknown}; known: {sorted(known)}")
        for name, service in services.items():
            setattr(self, name, service)

    def available(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]
