"""``POST /v1/embeddings`` through the official SDK over the real Triton embedder
(all-MiniLM-L6-v2 exported through the real path), against sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
from openai import AsyncOpenAI

pytestmark = [pytest.mark.triton, pytest.mark.realweights, pytest.mark.asyncio]
TEXTS = ["The weather is lovely today.", "오늘 날씨가 좋네요", "Triton serves the models."]


def sdk(client) -> AsyncOpenAI:  # type: ignore[no-untyped-def]
    base = str(client.base_url).rstrip("/")
    return AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-local", http_client=client)


async def test_sdk_embeddings_equal_sentence_transformers(memory_client, minilm_dir) -> None:
    from sentence_transformers import SentenceTransformer

    # the SDK asks for base64 by default and decodes it; "float" is asked for explicitly
    as_base64 = await sdk(memory_client).embeddings.create(
        model="text-embedding-3-small", input=TEXTS)
    as_float = await sdk(memory_client).embeddings.create(
        model="embedder", input=TEXTS, encoding_format="float")
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(
        TEXTS, normalize_embeddings=True)
    for response in (as_base64, as_float):
        vectors = np.array([d.embedding for d in response.data], np.float32)
        assert [d.index for d in response.data] == [0, 1, 2]
        assert vectors.shape == reference.shape == (3, 384)
        assert np.min(np.sum(vectors * reference, axis=1)) > 0.9999
    assert as_float.usage.prompt_tokens == sum(len(t.split()) for t in TEXTS)


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"input": "hi", "dimensions": 128}, 400, "dimensions"),
    ({"input": ""}, 400, "input"),
    ({"input": []}, 400, "input"),
    ({"input": "hi", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"input": "hi", "model": "llm"}, 404, "model"),
    ({"input": "hi", "extra": 1}, 400, "extra"),
])
async def test_bad_embedding_requests_name_the_field(memory_client, body, status,
                                                     param) -> None:
    r = await memory_client.post("/v1/embeddings", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
