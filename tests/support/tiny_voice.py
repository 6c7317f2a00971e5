"""The smallest real voice stack on the session's Triton, for tests of what a client meets
(metrics, traces, access control, the voice bench) that need a real turn but no particular
reply: :func:`tests.support.realtime.tiny_voice_server` serves it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class TinyVoice:
    """The session's Triton with the smallest real voice stack, all real weights: Whisper
    tiny.en for ``stt``, SmolLM2-135M-Instruct for ``llm`` (it answers in English, which
    the voice speaks; the tiny random Llama's tokens may be any script) and the Piper
    voice en_US-joe-medium for ``tts``, each pinned to its version."""

    grpc_url: str
    repository: Path
    versions: dict[str, str]

    def fields(self, **overrides: Any) -> dict[str, Any]:
        """The settings that answer on these models: speech recognition, the LLM and the
        voice on, replies of at most 16 tokens (``overrides`` win)."""
        return {"triton_url": self.grpc_url, "model_repository": str(self.repository),
                "stt_enabled": True, "llm_enabled": True, "tts_enabled": True,
                "llm_max_tokens": 16, **overrides}

    def settings(self, base: Any, **overrides: Any) -> Any:
        """``base`` settings with :meth:`fields`."""
        return dataclasses.replace(base, **self.fields(**overrides))

    def pin(self, runtime: Any) -> None:
        """Requests that name no version go to these models' versions."""
        runtime.triton.default_versions.update(self.versions)


@pytest.fixture
def tiny_voice(triton_server, tiny_en_stt, smollm2, tts_model) -> TinyVoice:  # type: ignore[no-untyped-def]
    from tests.support.llm_fixtures import REAL_VERSION
    from tests.support.tts_fixtures import VERSION as TTS_VERSION

    return TinyVoice(triton_server.grpc_url, triton_server.repository,
                     {"stt": str(tiny_en_stt), "llm": str(REAL_VERSION),
                      "tts": str(TTS_VERSION)})


class PromptRecorder:
    """The real LLM port, keeping the messages of each request (a spy: every request still
    goes to the model)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.requests: list[list[Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)

    async def stream(self, messages: Any, params: Any, **options: Any) -> AsyncIterator[Any]:
        self.requests.append(list(messages))
        async for chunk in self.llm.stream(messages, params, **options):
            yield chunk
