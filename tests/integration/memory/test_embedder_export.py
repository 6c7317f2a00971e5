"""Embedder export: parity against sentence-transformers (real all-MiniLM-L6-v2 and a tiny
random BERT), and the served Triton model against sentence-transformers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from export.embedder.cli import PARITY_SENTENCES
from export.embedder.runtime import OnnxEmbedder
from export.errors import ParityError
from export.repository import ModelRepository
from tests.support.memory_fixtures import export_embedder
from tests.support.tiny_embedder import build_tiny_sentence_bert

pytestmark = [pytest.mark.triton, pytest.mark.realweights]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_minilm_manifest_records_passing_parity(embedder: Path) -> None:
    manifest = json.loads((embedder / "manifest.json").read_text())
    figures = {p["name"]: p for p in manifest["parity"]}
    assert manifest["parity_passed"] is True
    assert figures["embedding_cosine"]["value"] >= 0.9999
    assert figures["padded_batch_vs_single_cosine"]["value"] >= 0.9999
    assert figures["tokenizer_ids"]["value"] == 0
    assert manifest["dimensions"]["embedding_dim"] == 384
    assert manifest["dimensions"]["pooling"] == "mean"
    assert manifest["extra"]["sentences"] == len(PARITY_SENTENCES)
    assert {"embedder.onnx", "tokenizer.json", "embedder.json", "model.py"} <= \
        set(manifest["files"])


def test_tiny_random_bert_with_cls_pooling_exports_with_parity(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    source = build_tiny_sentence_bert(tmp_path / "tiny", pooling="cls")
    manifest = export_embedder(source, tmp_path / "repo", None)
    assert manifest.parity_passed and manifest.dimensions["pooling"] == "cls"
    assert manifest.dimensions["embedding_dim"] == 32
    sentences = ["a tiny model", "작은 모델", "x " * 100]
    exported = OnnxEmbedder(tmp_path / "repo" / "embedder" / "1").embed(sentences)
    reference = SentenceTransformer(str(source), device="cpu").encode(
        sentences, normalize_embeddings=True)
    assert cosines(reference, exported).min() >= 0.9999
    assert np.allclose(np.linalg.norm(exported, axis=1), 1.0, atol=1e-5)


def test_export_failing_parity_leaves_no_version(tmp_path: Path) -> None:
    source = build_tiny_sentence_bert(tmp_path / "tiny", pooling="mean")
    with pytest.raises(ParityError, match="embedding_cosine"):
        export_embedder(source, tmp_path / "repo", None, min_cosine=1.5)
    assert ModelRepository(tmp_path / "repo").versions("embedder") == []


async def test_served_embedder_matches_sentence_transformers(embedder: Path, triton_server,  # type: ignore[no-untyped-def]
                                                             minilm_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from orchestrator.inference.client import TritonClient
    from orchestrator.memory.embedder import TritonEmbedder

    texts = [*PARITY_SENTENCES] * 6  # 90 texts: two requests of up to 64 rows
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(
        texts, normalize_embeddings=True)
    client = TritonClient(triton_server.grpc_url)
    try:
        embedder_client = TritonEmbedder(client)
        vectors = await embedder_client.embed(texts)
        # concurrent single-text requests are grouped by the dynamic batcher
        singles = await asyncio.gather(*(embedder_client.embed([t]) for t in texts[:15]))
    finally:
        await client.close()
    assert vectors.shape == (90, 384) and vectors.dtype == np.float32
    assert cosines(reference, vectors).min() >= 0.9999
    assert cosines(reference[:15], np.concatenate(singles)).min() >= 0.9999
