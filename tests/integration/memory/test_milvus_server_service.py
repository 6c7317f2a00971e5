"""The memory service and its endpoint on a real Milvus server (tests.support.
milvus_server) with the real embedder: store, search one user's turns, delete, a new
service instance sees the old vectors, and a server that goes away gives 503 (not a 500,
not a hang) until it is back."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from orchestrator.settings import Settings
from tests.integration.memory.test_memory_service import (
    ALICE_PAST,
    QUERIES,
    on_app_loop,
    remember_all,
    seed,
)
from tests.support.milvus_server import MilvusServer

pytestmark = [pytest.mark.triton, pytest.mark.realweights, pytest.mark.slow]


@pytest.fixture
def server_settings(memory_settings: Settings, milvus_server: MilvusServer) -> Settings:
    """Memory on the shared server, in a collection of this test's own."""
    return dataclasses.replace(memory_settings, milvus_uri=milvus_server.uri,
                               milvus_collection=f"t_{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def search(client, user: str, query: str) -> list[dict]:  # type: ignore[no-untyped-def]
    r = await client.get(f"/api/users/{user}/memory/search",
                         params={"q": query, "top_k": 20, "min_score": -1})
    assert r.status_code == 200, r.text
    return r.json()["hits"]


async def test_store_search_delete_and_a_new_instance_sees_the_old_vectors(
        server_settings: Settings) -> None:
    async with running(server_settings) as first:
        runtime = first.app.state.runtime
        assert runtime.services.memory.store.index_type == "HNSW"  # a server, not Lite
        ids = await on_app_loop(first, seed, runtime.conversations)
        await on_app_loop(first, remember_all, runtime)
        # Read at once, on the server's default (Bounded) reads this was empty.
        hits = await search(first, "alice", QUERIES["job"])
        assert hits[0]["turn_id"] == ids["job"] and hits[0]["text"] == ALICE_PAST["job"]
        assert len(hits) == 2 * len(ALICE_PAST)  # her turns and replies, none of Bob's
        assert not {ids["bob_0"], ids["bob_1"]} & {h["turn_id"] for h in hits}
        await on_app_loop(first, runtime.services.memory.forget, [ids["job"]])
        assert ids["job"] not in {h["turn_id"] for h in await search(first, "alice",
                                                                     QUERIES["job"])}
    async with running(server_settings) as second:  # a restart: a new service, same server
        hits = await search(second, "alice", QUERIES["pet"])
        assert hits[0]["turn_id"] == ids["pet"]
        assert len(hits) == 2 * len(ALICE_PAST) - 1
        assert {h["turn_id"] for h in await search(second, "bob", QUERIES["pet"])} == {
            ids["bob_0"], ids["bob_1"]}


async def test_a_server_that_goes_away_gives_503_until_it_is_back(
        server_settings: Settings, milvus_server: MilvusServer) -> None:
    async with running(server_settings) as client:
        runtime = client.app.state.runtime
        runtime.services.memory.retry_s = 1.0  # reconnect attempts, not minutes, in a test
        ids = await on_app_loop(client, seed, runtime.conversations)
        await on_app_loop(client, remember_all, runtime)
        milvus_server.stop()
        try:
            asked = time.monotonic()
            r = await client.get("/api/users/alice/memory/search", params={"q": "dog"})
            took = time.monotonic() - asked
            assert r.status_code == 503, r.text
            error = r.json()["error"]
            assert error["code"] == "memory_unavailable"
            assert "conversation memory is unavailable" in error["message"]
            assert str(milvus_server.port) in error["message"]  # where it looked
            assert took < 5, f"a down server took {took:.1f} s to answer"
            health = (await client.get("/api/health")).json()
            assert health["status"] == "degraded"
            assert health["checks"]["memory"]["status"] == "down"
        finally:
            milvus_server.start()
        # Back: the service reconnects by itself, and the turns are still there.
        # While it loads the collection again (tens of seconds), each try gets its answer
        # within the service's timeout (10 s), not after the whole load.
        deadline, tries = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            asked = time.monotonic()
            r = await client.get("/api/users/alice/memory/search",
                                 params={"q": QUERIES["pet"], "min_score": -1})
            tries.append((r.status_code, round(time.monotonic() - asked, 1)))
            if r.status_code == 200:
                break
            assert r.status_code == 503, r.text
            await asyncio.sleep(1)
        print(f"\nafter the restart (status, seconds): {tries}")
        assert r.status_code == 200, tries
        assert max(seconds for _, seconds in tries) < 20, tries  # a whole load: 25 s+
        assert r.json()["hits"][0]["turn_id"] == ids["pet"]
        health = (await client.get("/api/health")).json()
        assert health["checks"]["memory"]["status"] == "up"
