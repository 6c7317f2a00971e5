"""The chat service: what every feature (chat API, realtime voice, voice-chat upload) calls.

    service = runtime.services.llm
    async for chunk in service.stream(messages, SamplingParams(max_tokens=200)):
        ...   # chunk.text is a delta of whole characters; the last has finish_reason

Leaving the ``async for`` early (break, exception, task cancellation, barge-in) cancels
generation on the server within one decoding step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from export.specs import llm as spec
from orchestrator.chat.tools import ToolTemplate
from orchestrator.request_context import current_request_id

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role | Literal["tool"]
    content: str
    tool_calls: tuple[dict, ...] = ()
    """An assistant message's function calls: ``{"call_id", "name", "arguments"}``."""
    tool_call_id: str | None = None
    """A ``tool`` message (a call's result): the call it answers."""


def plain_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages as the llm model's own template takes them: without function calls and
    their results (only a prompt rendered with a tool template can hold those)."""
    return [{"role": m.role, "content": m.content} for m in messages
            if m.role != "tool" and (m.content or not m.tool_calls)]


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

    def __init__(self, client, count_tokens: Callable[[str], int] | None = None,  # type: ignore[no-untyped-def]
                 tool_templates: Callable[[str], ToolTemplate | None] | None = None) -> None:
        self.client = client
        self.count_tokens = count_tokens or estimate_tokens
        self.tool_templates = tool_templates
        """Version pin -> that llm version's template when it offers tools."""

    async def stream(self, messages: Sequence[ChatMessage], params: SamplingParams,
                     prompt: str | None = None) -> AsyncIterator[ChatChunk]:
        """``prompt``: a prompt rendered here (function calling), sent instead of the
        messages, which are then not used."""
        values = {
            spec.MESSAGES: None if prompt is not None else [json.dumps(
                plain_messages(messages), ensure_ascii=False)],
            spec.PROMPT: None if prompt is None else [prompt],
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

    async def prefill(self, messages: Sequence[ChatMessage], params: SamplingParams,
                      prompt: str | None = None) -> ChatResult:
        """Read a prompt into the model's prefix cache ahead of a request sharing its
        start (a reply while the user still speaks): one token is generated and dropped,
        and the model pools the generator with the prompt it holds, so the later request
        appends only what differs. Never seeded (a seeded request is never pooled)."""
        return await self.complete(messages, dataclasses.replace(
            params, max_tokens=1, stop=(), seed=None), prompt)

    def tool_template(self, version: str) -> ToolTemplate | None:
        """The chat template of the llm version a request goes to, if it offers tools."""
        return self.tool_templates(version) if self.tool_templates is not None else None

    async def complete(self, messages: Sequence[ChatMessage], params: SamplingParams,
                       prompt: str | None = None) -> ChatResult:
        parts: list[str] = []
        last = ChatChunk("", "stop", 0, 0)
        async for chunk in self.stream(messages, params, prompt):
            parts.append(chunk.text)
            last = chunk
        return ChatResult("".join(parts), last.finish_reason or "stop", last.prompt_tokens,
                          last.completion_tokens, last.cached_tokens)


def estimate_tokens(text: str) -> int:
    """Upper-bound guess when no tokenizer is at hand (byte-level BPE: >= 1 byte a token
    for most text; 3 bytes a token is conservative for English, exact-ish for Korean)."""
    return len(text.encode("utf-8")) // 3 + 1


class ServedTokenCounter:
    """Counts tokens with the tokenizer of the ``llm`` version that serves unpinned
    requests: the promoted version (the client's pin, kept current from serving.json),
    else the newest exported one. Tokenizers are loaded once per version, so a promotion
    or rollback changes the count with the weights.

    With a remote Triton and no local repository it falls back to :func:`estimate_tokens`.
    """

    def __init__(self, repository: str | Path, pins: Mapping[str, str]) -> None:
        from export.repository import ModelRepository

        self.repository = ModelRepository(repository)
        self.pins = pins
        self._tokenizers: dict[int, Callable[[str], int] | None] = {}
        self._templates: dict[int, ToolTemplate | None] = {}

    def version(self) -> int | None:
        pinned = self.pins.get(spec.SPEC.name, "")
        if pinned.isdigit():
            return int(pinned)
        versions = self.repository.versions(spec.SPEC.name)
        return versions[-1] if versions else None

    def tool_template(self, version: str) -> ToolTemplate | None:
        """``version``: a request's pin (``""``: the served one)."""
        number = int(version) if version.isdigit() else self.version()
        if number is None:
            return None
        if number not in self._templates:
            self._templates[number] = ToolTemplate.load(
                self.repository.model_dir(spec.SPEC.name) / str(number))
        return self._templates[number]

    def __call__(self, text: str) -> int:
        version = self.version()
        if version is None:
            return estimate_tokens(text)
        if version not in self._tokenizers:
            self._tokenizers[version] = self._load(version)
        count = self._tokenizers[version]
        return count(text) if count is not None else estimate_tokens(text)

    def _load(self, version: int) -> Callable[[str], int] | None:
        from export.llm.generation import TOKENIZER_FILE

        path = self.repository.model_dir(spec.SPEC.name) / str(version) / TOKENIZER_FILE
        if not path.is_file():
            return None
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def build_chat_service(settings, triton) -> ChatService | None:  # type: ignore[no-untyped-def]
    """``runtime.services.llm``: None when the LLM is off or no Triton is configured."""
    if not settings.llm_enabled or triton is None:
        return None
    served = ServedTokenCounter(settings.model_repository, triton.default_versions)
    return ChatService(triton, served, served.tool_template)
