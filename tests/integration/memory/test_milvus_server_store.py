"""storage.memory on a real Milvus server (the embedded standalone of tests.support.
milvus_server), as replicas share it: what one client writes or deletes, another sees on
its next search; HNSW index; rows survive a reopen; the dimension check."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from storage.errors import SchemaMismatch
from storage.memory import MemoryStore
from tests.integration.memory.test_memory_store import DIM, HOSTILE_IDS, row, unit
from tests.support.milvus_server import MilvusServer


def _store(server: MilvusServer, collection: str, dimension: int = DIM) -> MemoryStore:
    store = MemoryStore(server.uri, collection, dimension, timeout_s=30)
    store.open()
    return store


@pytest.fixture
def collection(milvus_server: MilvusServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    cleanup = _store(milvus_server, name)
    cleanup._client.drop_collection(name)
    cleanup.close()


def test_a_write_through_one_client_is_found_through_another(
        milvus_server: MilvusServer, collection: str) -> None:
    """Two stores are two replicas' connections. Without Strong reads the second client's
    search just after the write comes back empty (the server's bounded staleness)."""
    writer, reader = _store(milvus_server, collection), _store(milvus_server, collection)
    try:
        target = unit(100)
        writer.upsert([row(1, "alice", "s1", vector=target), row(2, "alice", "s2"),
                       row(3, "bob", "s1", vector=target)])
        hits = reader.search("alice", target, top_k=10, min_score=-1.0, latest=True)
        assert [h.turn_id for h in hits][:1] == [1]
        assert {h.turn_id for h in hits} == {1, 2} and {h.user_id for h in hits} == {"alice"}
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.turn_id for h in reader.search("alice", target, top_k=10, min_score=-1.0,
                                                 exclude_session_id="s1", latest=True)] == [2]
        assert reader.count() == 3
    finally:
        writer.close()
        reader.close()


@pytest.mark.parametrize("hostile", HOSTILE_IDS[:2])
def test_hostile_user_ids_match_nobody_else(milvus_server: MilvusServer, collection: str,
                                            hostile: str) -> None:
    store = _store(milvus_server, collection)
    try:
        target = unit(100)
        store.upsert([row(1, "a", vector=target), row(2, "b", vector=target)])
        assert store.search(hostile, target, top_k=10, min_score=-1.0, latest=True) == []
    finally:
        store.close()


def test_deletes_through_one_client_are_gone_for_another(
        milvus_server: MilvusServer, collection: str) -> None:
    writer, reader = _store(milvus_server, collection), _store(milvus_server, collection)
    try:
        target = unit(100)
        writer.upsert([row(1, "alice", vector=target), row(2, "alice", vector=target),
                       row(3, "bob", vector=target), row(4, "bob", vector=target)])
        writer.flush()  # sealed segments too must honour the deletes
        assert {h.turn_id for h in reader.search("alice", target, top_k=10, min_score=-1.0,
                                                 latest=True)} == {1, 2}
        writer.delete_turns([1])
        writer.delete_user("bob")
        assert [h.turn_id for h in reader.search("alice", target, top_k=10, min_score=-1.0,
                                                 latest=True)] == [2]
        assert reader.search("bob", target, top_k=10, min_score=-1.0, latest=True) == []
        assert [r["id"] for r in reader.rows()] == [2]
    finally:
        writer.close()
        reader.close()


def test_a_server_collection_is_hnsw_and_its_rows_survive_a_reopen(
        milvus_server: MilvusServer, collection: str) -> None:
    first = _store(milvus_server, collection)
    first.upsert([row(i, "alice") for i in (5, 1, 4, 2, 3)])
    first.close()
    again = _store(milvus_server, collection)
    try:
        index = again._client.describe_index(collection, "embedding")
        assert index["index_type"] == "HNSW" and index["metric_type"] == "IP", index
        assert [r["id"] for r in again.rows(batch=2)] == [1, 2, 3, 4, 5]  # pages by id
        assert again.ping() == milvus_server.uri
    finally:
        again.close()


def test_dimension_mismatch_on_a_server(milvus_server: MilvusServer, collection: str) -> None:
    _store(milvus_server, collection).close()
    with pytest.raises(SchemaMismatch, match=f"{DIM}-dimensional.*384-dimensional"):
        _store(milvus_server, collection, 384)
