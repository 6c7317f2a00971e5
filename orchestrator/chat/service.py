"""The chat service: what every feature (chat API, realtime voice, voice-chat upload) calls.

    service = runtime.services["llm"]
    async for chunk in service.stream(messages, SamplingParams(max_tokens=200)):
        ...   # chunk.text is a delta of whole characters; the last has finish_reason

Leaving the ``async for`` early (break, exception, task cancellation, barge-in) cancels
generation on the server within one decoding step.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from export.specs import llm as spec
from orchestrator.errors import ServiceDisabled
from orchestrator.request_context import current_request_id

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    version: str = ""
    """Model version to use; empty: the one Triton serves by policy (the latest)."""


@dataclass(frozen=True, slots=True)
class ChatChunk:
    text: str
    finish_reason: str | None
    """None until the last chunk: then "stop" (EOS or stop sequence) or "length"."""
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    """Prompt tokens the model reused from an earlier stream's KV cache."""


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


class ChatService:
    """Streams replies from the ``llm`` Triton model."""

    def __init__(self, client, count_tokens: Callable[[str], int] | None = None) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.count_tokens = count_tokens or estimate_tokens

    async def stream(self, messages: Sequence[ChatMessage], params: SamplingParams
                     ) -> AsyncIterator[ChatChunk]:
        values = {
            spec.MESSAGES: [json.dumps([{"role": m.role, "content": m.content}
                                        for m in messages], ensure_ascii=False)],
            spec.MAX_TOKENS: [params.max_tokens],
            spec.TEMPERATURE: [params.temperature],
            spec.TOP_P: [params.top_p],
            spec.TOP_K: [params.top_k],
            spec.REPETITION_PENALTY: [params.repetition_penalty],
            spec.SEED: None if params.seed is None else [params.seed],
            spec.STOP: [json.dumps(list(params.stop), ensure_ascii=False)] if params.stop
            else None,
        }
        responses = self.client.stream(spec.SPEC, values, version=params.version,
                                       request_id=current_request_id() or "")
        async with contextlib.aclosing(responses):
            async for result in responses:
                yield ChatChunk(text=result.text(spec.TEXT),
                                finish_reason=result.text(spec.FINISH_REASON) or None,
                                prompt_tokens=int(result.scalar(spec.PROMPT_TOKENS)),
                                completion_tokens=int(result.scalar(spec.COMPLETION_TOKENS)),
                                cached_tokens=int(result.scalar(spec.CACHED_TOKENS)))

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams
                       ) -> ChatResult:
        parts: list[str] = []
        last = ChatChunk("", "stop", 0, 0)
        async for chunk in self.stream(messages, params):
            parts.append(chunk.text)
            last = chunk
        return ChatResult("".join(parts), last.finish_reason or "stop", last.prompt_tokens,
                          last.completion_tokens, last.cached_tokens)


class DisabledChatService(ChatService):
    """Registered when the LLM is off: every call is a clear 503."""

    def __init__(self, reason: str) -> None:
        super().__init__(client=None)
        self.reason = reason

    async def stream(self, messages: Sequence[ChatMessage], params: SamplingParams
                     ) -> AsyncIterator[ChatChunk]:
        raise ServiceDisabled(self.reason)
        yield  # pragma: no cover  (makes this an async generator like the real one)


def estimate_tokens(text: str) -> int:
    """Upper-bound guess when no tokenizer is at hand (byte-level BPE: >= 1 byte a token
    for most text; 3 bytes a token is conservative for English, exact-ish for Korean)."""
    return len(text.encode("utf-8")) // 3 + 1


def repository_token_counter(repository: str | Path) -> Callable[[str], int] | None:
    """Token counter from the newest exported ``llm`` version's tokenizer.json, if local.

    The prompt is cut by the tokenizer of the weights that serve it; with a remote Triton
    (no local repository) the caller falls back to :func:`estimate_tokens`.
    """
    from export.llm.generation import TOKENIZER_FILE
    from export.repository import ModelRepository

    repo = ModelRepository(repository)
    versions = repo.versions("llm")
    if not versions:
        return None
    path = repo.model_dir("llm") / str(versions[-1]) / TOKENIZER_FILE
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def build_chat_service(settings, triton) -> ChatService:  # type: ignore[no-untyped-def]
    """The service registered as ``runtime.services["llm"]``."""
    if not settings.llm_enabled:
        return DisabledChatService("the LLM is disabled on this server (LLM_ENABLED=false)")
    if triton is None:
        return DisabledChatService("no inference server is configured (TRITON_URL)")
    return ChatService(triton, repository_token_counter(settings.model_repository))
