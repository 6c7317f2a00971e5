"""storage.memory on a real Milvus server (the embedded standalone of tests.support.
milvus_server), as replicas share it: what one client writes or deletes, another sees on
its next search; HNSW index; rows survive a reopen; the dimension check."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from storage.errors import SchemaMismatch, StorageUnavailable
from storage.memory import MemoryStore
from tests.integration.memory.test_memory_store import DIM, HOSTILE_IDS, row, unit
from tests.support.milvus_server import MilvusServer


def _store(server: MilvusServer, collection: str, dimension: int = DIM) -> MemoryStore:
    store = MemoryStore(server.uri, collection, dimension, timeout_s=30)
    store.open()
    return store


@pytest.fixture
def collection(milvus_server: MilvusServer) -> Iterator[str]:
    from pymilvus import MilvusClient

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    client = MilvusClient(milvus_server.uri)  # not a store: it would load it first
    client.drop_collection(name, timeout=30)
    client.close()


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


def test_a_collection_not_loaded_is_down_for_health(milvus_server: MilvusServer,
                                                    collection: str) -> None:
    """What a restarted server shows while it loads the collection again: it answers, but
    searches fail, so the ping must fail too (released here, to get there at once)."""
    store = _store(milvus_server, collection)
    try:
        store._client.release_collection(collection)
        with pytest.raises(StorageUnavailable, match="not loaded"):
            store.ping()
        assert store.ping() == milvus_server.uri  # reopened: loaded again
    finally:
        store.close()


def test_dimension_mismatch_on_a_server(milvus_server: MilvusServer, collection: str) -> None:
    _store(milvus_server, collection).close()
    with pytest.raises(SchemaMismatch, match=f"{DIM}-dimensional.*384-dimensional"):
        _store(milvus_server, collection, 384)


def test_every_call_to_a_frozen_server_gives_up_within_the_timeout(
        milvus_server: MilvusServer, collection: str) -> None:
    """A server that accepts nothing and answers nothing (stopped, a dead network path):
    each call raises StorageUnavailable after the store's timeout instead of holding its
    worker thread for ever (the health probe's thread included: the probe's own timeout
    cannot cancel a thread)."""
    store = _store(milvus_server, collection)  # creating and loading take a few seconds
    store.upsert([row(1, "alice")])
    store.timeout_s = 2
    calls: dict[str, Callable[[], object]] = {
        "ping": store.ping,
        "search": lambda: store.search("alice", unit(1), top_k=3, min_score=-1.0),
        "search latest": lambda: store.search("alice", unit(1), top_k=3, min_score=-1.0,
                                              latest=True),
        "upsert": lambda: store.upsert([row(2, "alice")]),
        "delete turns": lambda: store.delete_turns([1]),
        "delete user": lambda: store.delete_user("alice"),
        "rows": store.rows,
    }
    outcomes: dict[str, str] = {}
    try:
        with milvus_server.frozen():
            for name, call in calls.items():
                outcomes[name] = _bounded(call, limit_s=15)
    finally:
        store.close()
    assert outcomes == dict.fromkeys(calls, "unavailable"), outcomes


def _bounded(call: Callable[[], object], limit_s: float) -> str:
    """What ``call`` did within ``limit_s``: "unavailable", "answered", or "hung"."""
    outcome = ["hung"]

    def run() -> None:
        try:
            call()
            outcome[0] = "answered"
        except StorageUnavailable:
            outcome[0] = "unavailable"

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)  # a hung call must not hold pytest
    worker.start()
    worker.join(limit_s)
    return outcome[0] if time.monotonic() - started < limit_s else "hung"
