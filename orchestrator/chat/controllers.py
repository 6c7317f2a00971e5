"""``POST /v1/chat/completions`` (SSE streaming or not) and ``GET /v1/models``.

Model names: ``llm`` (the promoted version) or ``llm:<version>`` (see orchestrator.models.refs).
The first chunk is awaited before the response starts, so errors that happen up front
(model not ready, prompt too long) are real HTTP errors; an error later in a stream
arrives as a ``data: {"error": …}`` event, as OpenAI does.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.response import Stream

from export.specs import llm as spec
from orchestrator.chat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCallOut,
    ModelCard,
    ModelList,
    NamedToolChoice,
    ToolCallDelta,
    ToolCallOut,
    Usage,
)
from orchestrator.chat.service import ChatChunk, ChatMessage, ChatService, SamplingParams
from orchestrator.chat.tools import (
    CLOSE,
    ToolCall,
    ToolCallParser,
    check_tool_choice,
    no_tool_calling,
    template_messages,
    tool_prompt,
)
from orchestrator.dependencies import RuntimeDep, SettingsDep, service_unavailable
from orchestrator.errors import (
    AppError,
    InferenceUnavailable,
    InvalidRequest,
    NotFound,
)
from orchestrator.models.refs import version_for
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.sse import HEADERS, sse, sse_error

LLM_MODEL = "llm"
log = logging.getLogger(__name__)


def provide_chat(state: State) -> ChatService:
    """The chat service (the LLM), or a 503 saying why it is off."""
    runtime: Runtime = state.runtime
    if runtime.services.llm is None:
        raise service_unavailable(runtime.settings, "llm", "the LLM")
    return runtime.services.llm


ChatDep = NamedDependency[ChatService]


def sampling_params(body: ChatCompletionRequest, settings: Settings) -> SamplingParams:
    version = version_for(body.model, LLM_MODEL)
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return SamplingParams(
        max_tokens=body.max_completion_tokens or body.max_tokens or settings.llm_max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        top_k=body.top_k or 0,
        repetition_penalty=body.repetition_penalty or 1.0,
        seed=body.seed, stop=stop, version=version)


def chat_messages(body: ChatCompletionRequest) -> list[ChatMessage]:
    # "developer" is OpenAI's newer name for the system role
    return [ChatMessage("system" if m.role == "developer" else m.role, m.text())
            for m in body.messages]


def check_messages(body: ChatCompletionRequest) -> None:
    """What OpenAI requires of function-calling messages, as 400s naming the field."""
    for i, m in enumerate(body.messages):
        where = f"messages[{i}]"
        if m.role == "tool" and (m.tool_call_id is None or m.content is None):
            raise InvalidRequest(f"{where}: a tool message needs tool_call_id and content",
                                 param=f"{where}.tool_call_id")
        if m.role != "tool" and m.tool_call_id is not None:
            raise InvalidRequest(f"{where}.tool_call_id: only tool messages have one",
                                 param=f"{where}.tool_call_id")
        if m.tool_calls is not None and m.role != "assistant":
            raise InvalidRequest(f"{where}.tool_calls: only assistant messages make calls",
                                 param=f"{where}.tool_calls")
        if m.content is None and m.tool_calls is None:
            raise InvalidRequest(f"{where}.content is required", param=f"{where}.content")


@dataclasses.dataclass(frozen=True)
class ToolRequest:
    prompt: str
    """Rendered with the served model's template, sent as the llm's prompt."""
    parser: ToolCallParser
    params: SamplingParams


def tool_request(body: ChatCompletionRequest, chat: ChatService,
                 params: SamplingParams) -> ToolRequest | None:
    """For a function-calling request: the prompt rendered with the served model's
    template, the parser of its reply and the sampling (a single call stops at its end);
    None for a plain chat request."""
    tool_messages = [f"messages[{i}].role" if m.role == "tool" else f"messages[{i}].tool_calls"
                     for i, m in enumerate(body.messages)
                     if m.role == "tool" or m.tool_calls is not None]
    if not body.tools and not tool_messages and body.tool_choice in (None, "none", "auto"):
        return None
    template = chat.tool_template(params.version)
    if template is None:
        raise no_tool_calling("tools" if body.tools else (tool_messages[0] if tool_messages
                                                         else "tool_choice"))
    tools = body.tools or []
    choice = body.tool_choice
    check_tool_choice({t.function.name for t in tools}, choice not in (None, "none", "auto"),
                      choice.function.name if isinstance(choice, NamedToolChoice) else None,
                      "tool_choice", "tool_choice.function.name")
    offered = [msgspec.to_builtins(t) for t in tools] if tools and choice != "none" else None
    single = body.parallel_tool_calls is False
    prompt, parser = tool_prompt(template, template_messages(body.messages), offered,
                                 msgspec.to_builtins(choice), 1 if single else None)
    if single and offered and len(params.stop) < spec.MAX_STOP_SEQUENCES:
        params = dataclasses.replace(params, stop=(*params.stop, CLOSE))
    return ToolRequest(prompt, parser, params)


class ChatController(Controller):
    path = "/v1"
    tags = ["openai"]
    dependencies = {"chat": Provide(provide_chat, sync_to_thread=False)}

    # The handler's media type wins over a Stream's own (litestar 2), while a plain
    # Response keeps its own: so the handler says SSE and the JSON reply says JSON.
    @post("/chat/completions", name="chat:completions", status_code=200,
          media_type="text/event-stream",
          summary="OpenAI-compatible chat completion (SSE when stream=true)")
    async def completions(self, data: ChatCompletionRequest, chat: ChatDep,
                          settings: SettingsDep) -> Response[ChatCompletion] | Stream:
        check_messages(data)
        params = sampling_params(data, settings)
        messages = chat_messages(data)
        tooling = tool_request(data, chat, params)
        prompt, parser = (tooling.prompt, tooling.parser) if tooling else (None, None)
        params = tooling.params if tooling else params
        if data.user or data.safety_identifier:
            log.info("chat completion for end user %r", data.user or data.safety_identifier)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not data.stream:
            result = await chat.complete(messages, params, prompt)
            message, finish = AssistantMessage(result.text), result.finish_reason
            if parser is not None:
                content, calls = parser.parse(result.text)
                content = content.strip()
                message = AssistantMessage(content or (None if calls else ""),
                                           tool_calls=[ToolCallOut.of(c) for c in calls]
                                           or None)
                finish = "tool_calls" if calls else finish
            return Response(ChatCompletion(
                id=completion_id, created=created, model=data.model,
                choices=[Choice(0, message, finish)], usage=Usage.of(result)),
                media_type="application/json")
        chunks = chat.stream(messages, params, prompt)
        try:
            first = await anext(chunks)
        except BaseException:
            await chunks.aclose()
            raise
        include_usage = bool(data.stream_options and data.stream_options.include_usage)
        return Stream(self._events(chunks, first, completion_id, created, data.model,
                                   include_usage, parser),
                      media_type="text/event-stream",
                      headers=HEADERS)

    @staticmethod
    async def _events(chunks: AsyncIterator[ChatChunk], first: ChatChunk, completion_id: str,
                      created: int, model: str, include_usage: bool,
                      parser: ToolCallParser | None) -> AsyncIterator[bytes]:
        def event(delta: Delta, finish: str | None = None, usage: Usage | None = None,
                  choices: bool = True) -> bytes:
            return sse(ChatCompletionChunk(
                id=completion_id, created=created, model=model, usage=usage,
                object="chat.completion.chunk",
                choices=[ChunkChoice(0, delta, finish)] if choices else []))

        def deltas(text: str, calls: list[ToolCall]) -> list[Delta]:
            out = [Delta(content=text)] if text else []
            first_index = len(parser.calls) - len(calls) if parser is not None else 0
            out += [Delta(tool_calls=[ToolCallDelta(first_index + i, c.id, FunctionCallOut(
                c.name, c.arguments))]) for i, c in enumerate(calls)]
            return out

        try:
            yield event(Delta(role="assistant", content=""))
            chunk = first
            while True:
                usage = Usage.of(chunk)
                if parser is None:
                    pieces = [Delta(content=chunk.text)] if chunk.text else []
                else:
                    pieces = deltas(*parser.feed(chunk.text))
                    if chunk.finish_reason:
                        pieces += deltas(*parser.finish())
                for delta in pieces:
                    yield event(delta)
                if chunk.finish_reason:
                    finish = "tool_calls" if parser is not None and parser.calls \
                        else chunk.finish_reason
                    # OpenAI: usage only when asked for, in a last chunk with no choices
                    yield event(Delta(), finish)
                    if include_usage:
                        yield event(Delta(), usage=usage, choices=False)
                    break
                chunk = await anext(chunks)
            yield b"data: [DONE]\n\n"
        except AppError as exc:
            yield sse_error(exc)
            yield b"data: [DONE]\n\n"
        finally:
            await chunks.aclose()  # a client that went away cancels generation


class ModelsController(Controller):
    path = "/v1/models"
    tags = ["openai"]

    @get("/", name="openai:models", summary="Served models and their ready versions")
    async def list_models(self, runtime: RuntimeDep) -> ModelList:
        return ModelList(data=await _model_cards(runtime))

    @get("/{model_id:str}", name="openai:model", summary="One served model (or version)")
    async def get_model(self, model_id: str, runtime: RuntimeDep) -> ModelCard:
        for card in await _model_cards(runtime):
            if card.id == model_id.replace("/", ":"):
                return card
        raise NotFound(f"model {model_id!r} is not served (GET /v1/models lists them)",
                       param="model")


async def _model_cards(runtime: Runtime) -> list[ModelCard]:
    if runtime.triton is None:
        raise InferenceUnavailable("no inference server is configured (TRITON_URL)")
    versions: dict[str, list[str]] = {}
    for entry in await runtime.triton.repository_index():
        if entry.get("state") == "READY" and entry.get("name"):
            versions.setdefault(entry["name"], []).append(str(entry.get("version", "")))
    cards = []
    for name in sorted(versions):
        ready = sorted((v for v in versions[name] if v), key=int)
        cards.append(ModelCard(id=name, versions=ready))
        cards += [ModelCard(id=f"{name}:{v}") for v in ready]
    return cards
