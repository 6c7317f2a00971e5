"""storage.memory on a real Milvus Lite file: schema, isolation, filters, dimension check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from storage.errors import SchemaMismatch, StorageUnavailable
from storage.memory import MemoryRow, MemoryStore, quote

DIM = 8
HOSTILE_IDS = ['a" or user_id != "', 'a\\" or user_id != "', "a' or 1==1 or '", 'a" || "1"=="1']


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def row(turn_id: int, user: str, session: str = "s1", vector: np.ndarray | None = None,
        text: str | None = None) -> MemoryRow:
    return MemoryRow(turn_id=turn_id, user_id=user, session_id=session, role="user",
                     text=text or f"turn {turn_id} of {user}",
                     created_at=datetime(2026, 1, 1, tzinfo=UTC),
                     embedding=unit(turn_id) if vector is None else vector)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = MemoryStore(str(tmp_path / "milvus.db"), "turns_test", DIM)
    s.open()
    yield s
    s.close()


def test_creation_is_idempotent_and_rows_survive_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "milvus.db")
    first = MemoryStore(path, "c", DIM)
    first.open()
    first.upsert([row(1, "alice"), row(2, "alice")])
    first.close()
    again = MemoryStore(path, "c", DIM)
    again.open()
    try:
        assert again.count() == 2
        assert [r["id"] for r in again.rows()] == [1, 2]
        fields = {r["turn_id"] for r in again.rows()}
        assert fields == {1, 2}
    finally:
        again.close()


def test_dimension_mismatch_names_collection_and_both_dimensions(tmp_path: Path) -> None:
    path = str(tmp_path / "milvus.db")
    MemoryStore(path, "voice_conversations", DIM).open()
    other = MemoryStore(path, "voice_conversations", 384)
    with pytest.raises(SchemaMismatch) as err:
        other.open()
    message = str(err.value)
    assert "'voice_conversations'" in message and f"{DIM}-dimensional" in message \
        and "384-dimensional" in message


def test_search_returns_only_the_users_turns_best_first(store: MemoryStore) -> None:
    target = unit(100)
    store.upsert([row(1, "alice", vector=target), row(2, "alice"), row(3, "bob", vector=target),
                  row(4, 'alice"', vector=target)])
    hits = store.search("alice", target, top_k=10, min_score=-1.0)
    assert hits[0].turn_id == 1
    assert {h.user_id for h in hits} == {"alice"} and {h.turn_id for h in hits} == {1, 2}
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    quoted = store.search('alice"', target, top_k=10, min_score=-1.0)
    assert [h.turn_id for h in quoted] == [4]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_user_ids_match_nobody_else(store: MemoryStore, hostile: str) -> None:
    target = unit(100)
    store.upsert([row(1, "a", vector=target), row(2, "b", vector=target)])
    assert store.search(hostile, target, top_k=10, min_score=-1.0) == []
    store.upsert([row(3, hostile, vector=target)])
    assert [h.turn_id for h in store.search(hostile, target, top_k=10, min_score=-1.0)] == [3]


def test_control_characters_are_refused_in_filters() -> None:
    with pytest.raises(ValueError):
        quote("a\n or true")


def test_threshold_top_k_and_excluded_session(store: MemoryStore) -> None:
    target = unit(100)
    store.upsert([row(1, "alice", "s1", vector=target), row(2, "alice", "s2", vector=target),
                  row(3, "alice", "s2", vector=-target)])
    assert [h.turn_id for h in store.search("alice", target, top_k=10, min_score=0.5,
                                            exclude_session_id="s1")] == [2]
    assert len(store.search("alice", target, top_k=1, min_score=-1.0)) == 1
    assert {h.turn_id for h in store.search("alice", target, top_k=10, min_score=0.5)} == {1, 2}


def test_unreachable_server_is_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable, match="unreachable"):
        MemoryStore("http://127.0.0.1:1", "c", DIM, timeout_s=2).open()


GRPC_SERVER_MIN_PING_INTERVAL_MS = 300_000
"""gRPC core's default for servers (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS):
a client that pings more often without data is sent GOAWAY too_many_pings. Milvus Lite's
server and Triton's (``--grpc-http2-min-recv-ping-interval-without-data``) keep it."""


def test_the_lite_channel_pings_no_more_often_than_the_lite_server_allows(store) -> None:
    """The options reach the live channel of a real Milvus Lite (pymilvus' own default,
    a ping every 10 s, drew GOAWAY too_many_pings about 80 s after start)."""
    options = store._client._get_connection()._grpc_options
    assert options["grpc.keepalive_time_ms"] >= GRPC_SERVER_MIN_PING_INTERVAL_MS, options
    assert options["grpc.keepalive_permit_without_calls"] is False
    store.upsert([row(1, "alice")])  # the channel works with them
    assert store.count() == 1
