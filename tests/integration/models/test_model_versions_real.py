"""The promote / roll back / refuse swap test on the real ``stt`` and ``llm`` models.

Two tiny random models of the real architectures (seeds 0 and 1) are exported through
the real export path as versions 1 and 2 into a private Triton. While client tasks send
steady requests, version 2 is promoted, then rolled back: no request may fail, and the
answers switch to the version Triton reports, whose manifest id the test checks. A
version 3 with a corrupt ONNX graph is refused and traffic is untouched.

Runs for each model whose spec exists (``export.specs.all_specs()``); skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from export.repository import ModelRepository
from export.specs import all_specs
from orchestrator.inference.client import TritonClient
from orchestrator.inference.server import EmbeddedTriton
from orchestrator.models.service import ModelAdmin, VersionRefused
from tests.support.mariadb import free_port
from tests.support.traffic import Traffic

pytestmark = [pytest.mark.triton, pytest.mark.slow, pytest.mark.asyncio]

MODELS = [pytest.param(m, marks=pytest.mark.skipif(m not in all_specs(), reason=f"no {m} spec "
                                                   "on this branch")) for m in ("stt", "llm")]


def export(model: str, source: Path, repository: Path) -> None:
    from export.cli import main

    assert main([model, "--source", str(source), "--repo", str(repository)]) == 0


def tiny_source(model: str, directory: Path, seed: int) -> Path:
    if model == "stt":
        from tests.support.stt import tiny_whisper_checkpoint

        return tiny_whisper_checkpoint(directory / f"whisper-{seed}.pt", seed=seed)
    from tests.support.tiny_llm import build_tiny_llama

    return build_tiny_llama(directory / f"llama-{seed}", seed=seed)


def request(model: str, client: TritonClient) -> Callable[[], Awaitable[str]]:
    """One real request; returns the version Triton reports answered it."""
    if model == "stt":
        from export.specs.stt import AUDIO, SPEC

        audio = np.random.default_rng(0).normal(0, 0.05, 16_000).astype(np.float32)

        async def send() -> str:
            return (await client.infer(SPEC, {AUDIO: audio})).model_version
        return send

    from export.specs.llm import MAX_TOKENS, PROMPT, SPEC

    async def send_llm() -> str:
        versions = {r.model_version async for r in client.stream(
            SPEC, {PROMPT: ["Hello there"], MAX_TOKENS: [4]})}
        (version,) = versions  # every streamed response of one request from one version
        return version
    return send_llm


@pytest.fixture(params=MODELS)
def served(request, tmp_path_factory) -> Iterator[tuple[str, ModelRepository, EmbeddedTriton]]:
    model = request.param
    base = tmp_path_factory.mktemp(f"versions-{model}")
    repository = ModelRepository(base / "repository")
    for seed in (0, 1):
        export(model, tiny_source(model, base, seed), repository.root)
    server = EmbeddedTriton(repository=repository.root, work_dir=base / "work",
                            grpc_port=free_port(), http_port=free_port(),
                            metrics_port=free_port())
    server.start(timeout_s=180)
    yield model, repository, server
    server.stop()


async def test_promote_rollback_and_refusal_under_steady_traffic(served):
    model, repository, server = served
    ids = {str(v): repository.manifest(model, v).id for v in repository.versions(model)}
    client = TritonClient(server.grpc_url, timeout_s=120)
    admin = ModelAdmin(repository, client, grace_s=0.5)
    send = request(model, client)

    async def answer() -> str:
        return ids[await send()]  # the manifest id of the version that answered

    try:
        await admin.promote(model, 1)
        async with Traffic(answer, tasks=2) as traffic:
            await traffic.until_answered_by(ids["1"], count=2, timeout_s=300)
            await admin.promote(model, 2)
            await traffic.until_answered_by(ids["2"], count=2, timeout_s=300)
            await admin.rollback(model)
            await traffic.until_answered_by(ids["1"], count=2, timeout_s=300)
        assert traffic.errors == []
        for task in range(traffic.tasks):
            assert traffic.phases(task) == [ids["1"], ids["2"], ids["1"]]
        print(f"\n{model}: {traffic.total()} requests across promote + rollback, 0 failed")

        # a broken version 3 (corrupt graph, re-signed) is refused; traffic stays on 1
        export(model, tiny_source(model, repository.root.parent, 2), repository.root)
        graph = max((repository.model_dir(model) / "3").rglob("*.onnx"),
                    key=lambda p: p.stat().st_size)
        graph.write_bytes(b"not an onnx graph")
        async with Traffic(answer, tasks=2) as traffic:
            with pytest.raises(VersionRefused, match=r"has changed since export.*unreadable ONNX"):
                await admin.promote(model, 3)
            await traffic.until_answered_by(ids["1"], count=2, timeout_s=300)
        assert traffic.errors == []
        assert {a for answers in traffic.answers for a in answers} == {ids["1"]}
        assert (await admin.describe(model)).served == 1
    finally:
        await client.close()
