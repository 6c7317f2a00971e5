"""``POST /v1/embeddings``: OpenAI's embeddings API over the ``embedder`` model.

``model``: ``embedder`` or ``embedder:N``; OpenAI's names (``text-embedding-3-small``,
…) mean the promoted ``embedder`` version. ``encoding_format`` ``float`` or ``base64``
(little-endian float32, what the SDK decodes). ``dimensions`` is refused: the vectors are not
Matryoshka-trained, so cutting them would not keep their meaning.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from litestar import Controller, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from orchestrator.dependencies import service_unavailable
from orchestrator.errors import InvalidRequest
from orchestrator.memory.embedder import TritonEmbedder
from orchestrator.models.refs import ModelRef, version_for
from orchestrator.runtime import Runtime

EMBEDDER = "embedder"
MAX_INPUTS = 512
MAX_INPUT_CHARS = 8192  # the embedder reads its first max_seq_length tokens anyway
EmbedderDep = NamedDependency[TritonEmbedder]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_INPUT_CHARS, pattern=r"\S",
                                   description="not empty, not only spaces")]


class EmbeddingRequest(msgspec.Struct, forbid_unknown_fields=True):
    input: Text | Annotated[list[Text], msgspec.Meta(min_length=1, max_length=MAX_INPUTS)]
    model: ModelRef = EMBEDDER
    encoding_format: Literal["float", "base64"] = "float"
    user: Annotated[str, msgspec.Meta(max_length=256)] | None = None

    @classmethod
    def __refuse__(cls, raw: Any) -> None:
        if isinstance(raw, dict) and raw.get("dimensions") is not None:
            raise InvalidRequest("dimensions: this embedder's vectors cannot be shortened "
                                 "(they are not Matryoshka-trained); leave it out",
                                 param="dimensions")


class Embedding(msgspec.Struct):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(msgspec.Struct):
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
    object: str = "list"


def embedder_version(model: str) -> str:
    return version_for(model, EMBEDDER, openai_names=("text-embedding-",))


def provide_embedder(state: State) -> TritonEmbedder:
    """The embedder model's client, or a 503 saying why it is off."""
    runtime: Runtime = state.runtime
    if runtime.services.embedder is None:
        raise service_unavailable(runtime.settings, EMBEDDER, "the embedder model")
    return runtime.services.embedder


class EmbeddingsController(Controller):
    path = "/v1"
    tags = ["openai"]
    dependencies = {"embedder": Provide(provide_embedder, sync_to_thread=False)}

    @post("/embeddings", name="openai:embeddings", status_code=200,
          summary="OpenAI-compatible sentence embeddings (L2-normalised)")
    async def embeddings(self, data: EmbeddingRequest, embedder: EmbedderDep) -> EmbeddingList:
        texts = [data.input] if isinstance(data.input, str) else list(data.input)
        vectors = np.asarray(await embedder.embed(texts, version=embedder_version(data.model)),
                             np.float32)
        tokens = sum(len(t.split()) for t in texts)  # words: the tokenizer lives in Triton
        return EmbeddingList(data=[Embedding(i, _encode(v, data.encoding_format))
                                   for i, v in enumerate(vectors)],
                             model=data.model, usage=EmbeddingUsage(tokens, tokens))


def _encode(vector: Any, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, "<f4").tobytes()).decode()
    return [float(x) for x in vector]
