"""``POST /v1/chat/completions`` (SSE streaming or not) and ``GET /v1/models``.

Model names: ``llm`` (the promoted version) or ``llm:<version>`` (see orchestrator.models.refs).
The first chunk is awaited before the response starts, so errors that happen up front
(model not ready, prompt too long) are real HTTP errors; an error later in a stream
arrives as a ``data: {"error": …}`` event, as OpenAI does.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Stream

from orchestrator.chat.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
)
from orchestrator.chat.service import ChatChunk, ChatMessage, ChatService, SamplingParams
from orchestrator.dependencies import RuntimeDep, SettingsDep, provide_service
from orchestrator.errors import (
    AppError,
    InferenceUnavailable,
    NotFound,
)
from orchestrator.models.refs import version_for
from orchestrator.settings import Settings
from orchestrator.sse import HEADERS, sse, sse_error

LLM_MODEL = "llm"
log = logging.getLogger(__name__)


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


class ChatController(Controller):
    path = "/v1"
    tags = ["openai"]
    dependencies = {"chat": provide_service("llm", "the LLM")}

    # The handler's media type wins over a Stream's own (litestar 2), while a plain
    # Response keeps its own: so the handler says SSE and the JSON reply says JSON.
    @post("/chat/completions", name="chat:completions", status_code=200,
          media_type="text/event-stream",
          summary="OpenAI-compatible chat completion (SSE when stream=true)")
    async def completions(self, data: ChatCompletionRequest, chat: ChatDep,
                          settings: SettingsDep) -> Response[ChatCompletion] | Stream:
        params = sampling_params(data, settings)
        messages = chat_messages(data)
        if data.user or data.safety_identifier:
            log.info("chat completion for end user %r", data.user or data.safety_identifier)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not data.stream:
            result = await chat.complete(messages, params)
            return Response(ChatCompletion(
                id=completion_id, created=created, model=data.model,
                choices=[Choice(0, AssistantMessage(result.text), result.finish_reason)],
                usage=Usage.of(result)),
                media_type="application/json")
        chunks = chat.stream(messages, params)
        try:
            first = await anext(chunks)
        except BaseException:
            await chunks.aclose()
            raise
        include_usage = bool(data.stream_options and data.stream_options.include_usage)
        return Stream(self._events(chunks, first, completion_id, created, data.model,
                                   include_usage),
                      media_type="text/event-stream",
                      headers=HEADERS)

    @staticmethod
    async def _events(chunks: AsyncIterator[ChatChunk], first: ChatChunk, completion_id: str,
                      created: int, model: str, include_usage: bool) -> AsyncIterator[bytes]:
        def event(delta: Delta, finish: str | None = None, usage: Usage | None = None,
                  choices: bool = True) -> bytes:
            return sse(ChatCompletionChunk(
                id=completion_id, created=created, model=model, usage=usage,
                object="chat.completion.chunk",
                choices=[ChunkChoice(0, delta, finish)] if choices else []))

        try:
            yield event(Delta(role="assistant", content=""))
            chunk = first
            while True:
                usage = Usage.of(chunk)
                if chunk.text:
                    yield event(Delta(content=chunk.text))
                if chunk.finish_reason:
                    # OpenAI: usage only when asked for, in a last chunk with no choices
                    yield event(Delta(), chunk.finish_reason)
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


async def _model_cards(runtime: Any) -> list[ModelCard]:
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
