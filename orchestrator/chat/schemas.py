"""OpenAI-compatible bodies of ``/v1/chat/completions`` and ``/v1/models``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from orchestrator.chat.refusals import refuse_unsupported
from orchestrator.models.refs import ModelRef

MAX_TOKENS_LIMIT = 4096
"""Largest max_tokens accepted (the model's own limit is its config parameter)."""


class TextPart(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["text"]
    text: str


FunctionName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class FunctionCallIn(msgspec.Struct, forbid_unknown_fields=True):
    name: FunctionName
    arguments: Annotated[str, msgspec.Meta(max_length=100_000)]
    """JSON text, as the model wrote it."""


class ToolCallIn(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: Literal["function"]
    function: FunctionCallIn


class ChatMessageIn(msgspec.Struct, forbid_unknown_fields=True):
    """A message: ``tool`` results answer an assistant's ``tool_calls`` (function
    calling, for models whose template has tools); ``name`` is refused by name (see
    :mod:`orchestrator.chat.refusals`)."""

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Annotated[str, msgspec.Meta(max_length=100_000)] | list[TextPart] | None = None
    tool_calls: Annotated[list[ToolCallIn], msgspec.Meta(min_length=1, max_length=32)] | None \
        = None
    tool_call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDefinition(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Shown to the model as given (unset fields left out)."""

    name: FunctionName
    description: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    parameters: dict[str, Any] | None = None
    """A JSON Schema object; the template shows it to the model."""
    strict: Annotated[bool, only(False)] | None = None


class Tool(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(msgspec.Struct, forbid_unknown_fields=True):
    name: FunctionName


class NamedToolChoice(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(msgspec.Struct, forbid_unknown_fields=True):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ResponseFormat(msgspec.Struct, forbid_unknown_fields=True):
    type: Literal["text"]


def only(value: Any) -> msgspec.Meta:
    """A field whose only accepted value is its no-op one (the schema says so)."""
    return msgspec.Meta(extra_json_schema={"const": value})


class ChatCompletionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The OpenAI request; ``top_k`` and ``repetition_penalty`` are extensions.

    No field is dropped unseen. OpenAI fields this server does not honour are accepted
    only with their no-op value (the schema lists that value), and any other value is a
    400 naming the field and why (:func:`orchestrator.chat.refusals.refuse_unsupported`,
    run on the raw body first); a field OpenAI does not define is a 400 too.
    """

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
    user: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    """Recorded in the request's log line (OpenAI: an end-user id for abuse tracking)."""
    safety_identifier: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    prompt_cache_key: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    """Accepted: prefix reuse is automatic (the llm model keeps recent streams' KV cache)."""
    tools: Annotated[list[Tool], msgspec.Meta(max_length=128)] | None = None
    """Honoured when the served model's chat template has tools (a 400 otherwise)."""
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # OpenAI fields accepted with their no-op value only:
    functions: Annotated[list[Any], msgspec.Meta(max_length=0)] | None = None
    function_call: Literal["none", "auto"] | None = None
    response_format: ResponseFormat | None = None
    logprobs: Annotated[bool, only(False)] | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=0)] | None = None
    logit_bias: Annotated[dict[str, float], msgspec.Meta(max_length=0)] | None = None
    presence_penalty: Annotated[float, msgspec.Meta(ge=0, le=0)] | None = None
    frequency_penalty: Annotated[float, msgspec.Meta(ge=0, le=0)] | None = None
    modalities: list[Literal["text"]] | None = None
    verbosity: Literal["medium"] | None = None
    service_tier: Literal["auto", "default"] | None = None
    store: Annotated[bool, only(False)] | None = None
    metadata: Annotated[dict[str, str], msgspec.Meta(max_length=0)] | None = None

    @classmethod
    def __refuse__(cls, raw: Any) -> None:
        refuse_unsupported(raw)


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


class FunctionCallOut(msgspec.Struct):
    name: str
    arguments: str


class ToolCallOut(msgspec.Struct):
    id: str
    function: FunctionCallOut
    type: str = "function"

    @classmethod
    def of(cls, call: Any) -> ToolCallOut:
        return cls(call.id, FunctionCallOut(call.name, call.arguments))


class ToolCallDelta(msgspec.Struct):
    index: int
    id: str
    function: FunctionCallOut
    type: str = "function"


class AssistantMessage(msgspec.Struct):
    content: str | None
    role: str = "assistant"
    tool_calls: list[ToolCallOut] | None = None


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
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: Literal["chat.completion.chunk"]
    """Required (no default), so omit_defaults cannot leave it out."""
    usage: Usage | None = None
    """Only in the last chunk, and only with stream_options.include_usage."""


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
