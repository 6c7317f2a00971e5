"""OpenAI-compatible bodies of ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from orchestrator.models.refs import ModelRef

MAX_TOKENS_LIMIT = 4096
"""Largest max_tokens accepted (the model's own limit is its config parameter)."""


class TextPart(msgspec.Struct):
    type: Literal["text"]
    text: str


class ChatMessageIn(msgspec.Struct):
    role: Literal["system", "user", "assistant", "developer"]
    content: Annotated[str, msgspec.Meta(max_length=100_000)] | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatCompletionRequest(msgspec.Struct):
    """The OpenAI request; ``top_k`` and ``repetition_penalty`` are extensions."""

    messages: Annotated[list[ChatMessageIn], msgspec.Meta(min_length=1, max_length=512)]
    model: ModelRef = "llm"
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS_LIMIT)] | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    # Lower bounds the model's float32 tensors can hold (5e-324 would arrive as 0).
    top_p: Annotated[float, msgspec.Meta(ge=1e-6, le=1)] | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    repetition_penalty: Annotated[float, msgspec.Meta(ge=0.01, le=10)] | None = None
    # the llm model's seed is a uint63 (INT64 tensor, never negative)
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    stop: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]],
        msgspec.Meta(max_length=4)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1
    user: str | None = None


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int
    """Prompt tokens served from the model's prefix cache (an earlier turn's KV cache)."""


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None

    @classmethod
    def of(cls, result: Any) -> Usage:
        """From a ChatChunk or ChatResult."""
        return cls(result.prompt_tokens, result.completion_tokens,
                   result.prompt_tokens + result.completion_tokens,
                   PromptTokensDetails(result.cached_tokens))


class AssistantMessage(msgspec.Struct):
    content: str
    role: str = "assistant"


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    object: str = "chat.completion"


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    object: str = "chat.completion.chunk"


class ModelCard(msgspec.Struct):
    id: str
    created: int = 0
    owned_by: str = "voicechat"
    object: str = "model"
    versions: list[str] = msgspec.field(default_factory=list)
    """Ready versions (extension); ``<model>/<version>`` pins one in a request."""


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"
