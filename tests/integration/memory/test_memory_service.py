"""Conversation memory end to end: real Triton embedder (all-MiniLM-L6-v2), Milvus Lite,
SQLite. Ranking on hand-built conversations, isolation between users, memories in the
voice-chat prompt, Milvus down -> chat goes on and health is degraded, reindex."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools

import numpy as np
import pytest

from orchestrator.chat.prompt import MEMORY_HEADER
from orchestrator.realtime.audio import encode_wav
from orchestrator.settings import Settings
from storage.conversations import ConversationStore, NewTurn
from storage.errors import SchemaMismatch
from storage.memory import MemoryStore
from tests.support.fake_voice import speak
from tests.support.metrics import sample

pytestmark = [pytest.mark.triton, pytest.mark.realweights]

ALICE_PAST = {
    "pet": "My dog is a golden retriever called Max.",
    "allergy": "I'm allergic to peanuts, so I never eat satay.",
    "job": "I work as a nurse at the city hospital, mostly night shifts.",
    "music": "My favourite band is Radiohead; I saw them live in 2017.",
    "trip": "We are flying to Japan next April to see the cherry blossoms.",
}
ALICE_REPLIES = ["Max sounds lovely!", "Good to know, I'll keep that in mind.",
                 "Night shifts must be tiring.", "Great band.", "That will be beautiful."]
BOB_PAST = ["My cat is called Luna and she sleeps all day.",
            "I'm a software engineer working on databases."]
QUERIES = {
    "pet": "What is the name of my pet?",
    "allergy": "Which foods should I avoid?",
    "job": "What do I do for a living?",
    "music": "What kind of music do I like?",
    "trip": "Where am I travelling in spring?",
}


async def on_app_loop(client, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Await ``fn(*args, **kwargs)`` on the app's event loop (its gRPC and SQL clients
    belong to that loop, which runs in the test client's portal thread)."""
    future = client.blocking_portal.start_task_soon(functools.partial(fn, *args, **kwargs))
    return await asyncio.wrap_future(future)


async def seed(store: ConversationStore) -> dict[str, int]:
    """Alice's and Bob's past sessions in SQL; returns turn ids by topic (bob_*: Bob's)."""
    ids: dict[str, int] = {}
    alice = await store.create_session("alice")
    for (topic, text), reply in zip(ALICE_PAST.items(), ALICE_REPLIES, strict=True):
        ids[topic] = (await store.add_turn(alice.id, NewTurn(role="user", text=text))).id
        await store.add_turn(alice.id, NewTurn(role="assistant", text=reply))
    bob = await store.create_session("bob")
    for i, text in enumerate(BOB_PAST):
        ids[f"bob_{i}"] = (await store.add_turn(bob.id, NewTurn(role="user", text=text))).id
    return ids


async def remember_all(runtime) -> int:  # type: ignore[no-untyped-def]
    turns = [t async for batch in runtime.conversations.iter_turns() for t in batch]
    return await runtime.services.memory.write(turns)



def question_wav(directory) -> bytes:  # type: ignore[no-untyped-def]
    return encode_wav(speak("What is the weather like", directory), 16000)[0]

async def test_right_past_turn_ranks_first_and_users_stay_apart(memory_client) -> None:  # type: ignore[no-untyped-def]
    runtime = memory_client.app.state.runtime
    ids = await on_app_loop(memory_client, seed, runtime.conversations)
    written = await on_app_loop(memory_client, remember_all, runtime)
    assert written == 2 * len(ALICE_PAST) + len(BOB_PAST)
    bob_ids = {ids["bob_0"], ids["bob_1"]}
    for topic, query in QUERIES.items():
        r = await memory_client.get("/api/users/alice/memory/search",
                                    params={"q": query, "top_k": 5, "min_score": -1})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert hits[0]["turn_id"] == ids[topic], (query, hits[:2])
        assert hits[0]["text"] == ALICE_PAST[topic] and hits[0]["role"] == "user"
        assert not bob_ids & {h["turn_id"] for h in hits}
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    r = await memory_client.get("/api/users/bob/memory/search",
                                params={"q": QUERIES["pet"], "min_score": -1, "top_k": 50})
    assert r.json()["hits"][0]["turn_id"] == ids["bob_0"]
    assert {h["turn_id"] for h in r.json()["hits"]} == bob_ids


async def test_hostile_user_ids_never_see_other_users(memory_client) -> None:  # type: ignore[no-untyped-def]
    runtime = memory_client.app.state.runtime
    await on_app_loop(memory_client, seed, runtime.conversations)
    await on_app_loop(memory_client, remember_all, runtime)
    memory = runtime.services.memory
    for hostile in ['alice" or user_id != "', 'alice\\" or user_id != "',
                    "alice' or '1'=='1", "", "ALICE", "alice ", "alice\n"]:
        assert await on_app_loop(memory_client, memory.search, hostile, QUERIES["pet"],
                                 top_k=50, min_score=-1.0) == []
    for invalid in ['alice" or user_id != "', "alice' or '1'=='1", "alice ", "*"]:
        r = await memory_client.get(f"/api/users/{invalid}/memory/search",
                                    params={"q": QUERIES["pet"]})
        assert r.status_code == 400, (invalid, r.text)
    r = await memory_client.get("/api/users/ALICE/memory/search",
                                params={"q": QUERIES["pet"], "min_score": -1})
    assert r.status_code == 200 and r.json()["hits"] == []


async def test_search_endpoint_validation(memory_client) -> None:  # type: ignore[no-untyped-def]
    r = await memory_client.get("/api/users/alice/memory/search", params={"q": "  "})
    assert r.status_code == 400 and "q" in r.json()["error"]["message"]
    r = await memory_client.get("/api/users/alice/memory/search")
    assert r.status_code == 400
    r = await memory_client.get("/api/users/al%22ice/memory/search", params={"q": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = await memory_client.get("/api/users/alice/memory/search", params={"q": "x",
                                                                         "top_k": 0})
    assert r.status_code == 400
    r = await memory_client.get("/api/users/alice/memory/search", params={"q": "x"})
    assert r.status_code == 200 and r.json()["hits"] == []


async def test_recall_threshold_and_excluded_session(memory_client) -> None:  # type: ignore[no-untyped-def]
    runtime = memory_client.app.state.runtime
    ids = await on_app_loop(memory_client, seed, runtime.conversations)
    await on_app_loop(memory_client, remember_all, runtime)
    memory = runtime.services.memory
    pet = await on_app_loop(memory_client, runtime.conversations.get_turn, ids["pet"])
    assert await on_app_loop(memory_client, memory.recall, "alice", QUERIES["pet"], 5, 0.0,
                             exclude_session_id=pet.session_id) == []
    strict = await on_app_loop(memory_client, memory.recall, "alice", QUERIES["pet"], 5, 0.99)
    assert strict == []
    hits = await on_app_loop(memory_client, memory.recall, "alice", QUERIES["pet"], 5, 0.3)
    assert hits and all(h.score >= 0.3 for h in hits) and hits[0].turn_id == ids["pet"]


@pytest.mark.triton
async def test_voice_chat_prompt_carries_memories_and_writes_the_new_turns(
        voice_memory_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    memory_client = voice_memory_client
    runtime = memory_client.app.state.runtime
    store = runtime.conversations
    weather = "I love hot sunny weather; rain makes me gloomy."
    written = _written()

    async def past_session():  # type: ignore[no-untyped-def]
        past = await store.create_session("carol")
        await runtime.services.memory.write([
            await store.add_turn(past.id, NewTurn(role="user", text=weather)),
            await store.add_turn(past.id, NewTurn(role="user", text="My sister lives in Oslo."))])
        return past, await store.create_session("carol")

    past, session = await on_app_loop(memory_client, past_session)
    r = await memory_client.post("/api/voice-chat", data={"session_id": session.id,
                                                          "format": "wav"},
                                 files={"file": ("q.wav", question_wav(tmp_path), "audio/wav")})
    assert r.status_code == 201, r.text
    llm = runtime.services.llm
    # Recalled memories go in front of the new user message (the system prompt stays the
    # same from turn to turn, so the next turn can reuse the cached prompt prefix).
    system, user = llm.requests[0][0], llm.requests[0][-1]
    assert system.role == "system" and MEMORY_HEADER not in system.content
    assert user.role == "user" and user.content.startswith(MEMORY_HEADER)
    assert f"- {weather}" in user.content and "Oslo" not in user.content
    assert r.json()["transcript"].lower().startswith("what is the weather like")
    assert user.content.endswith("\n\n" + r.json()["transcript"])
    # Voice-chat writes memory after the reply, off the request's path: wait for both turns.
    new_turns = {r.json()["user_turn_id"], r.json()["assistant_turn_id"]}
    for _ in range(100):
        hits = await on_app_loop(
            memory_client, runtime.services.memory.search, "carol", "what is the weather like",
            top_k=10, min_score=-1.0)
        if {h.turn_id for h in hits} >= new_turns:
            break
        await asyncio.sleep(0.1)
    assert {h.session_id for h in hits} == {past.id, session.id}
    assert {h.turn_id for h in hits} >= {r.json()["user_turn_id"],
                                         r.json()["assistant_turn_id"]}
    # /metrics counts them: the two past turns and the new user and assistant ones.
    page = (await memory_client.get("/metrics")).text
    assert sample(page, "voicechat_memory_writes_total", outcome="ok") - written == 4
    assert sample(page, "voicechat_turn_stage_seconds_count", stage="stt",
                  transport="voice_chat") >= 1


def _written() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("voicechat_memory_writes_total", {"outcome": "ok"}) or 0.0


@pytest.mark.triton
async def test_milvus_down_chat_goes_on_and_health_is_degraded(
        memory_settings: Settings, tiny_voice, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.memory.conftest import voice_memory_app

    down = dataclasses.replace(memory_settings, milvus_uri="http://127.0.0.1:1")
    async with voice_memory_app(down, tiny_voice) as client:
        llm = client.app.state.runtime.services.llm
        session = (await client.post("/api/sessions/new", json={"user_id": "dave"})).json()
        r = await client.post("/api/voice-chat", data={"session_id": session["session_id"],
                                                       "format": "wav"},
                              files={"file": ("q.wav", question_wav(tmp_path), "audio/wav")})
        assert r.status_code == 201, r.text
        assert r.json()["reply_text"].strip() and r.json()["audio"]
        assert not any(MEMORY_HEADER in m.content for m in llm.requests[0])
        turns = (await client.get(f"/api/sessions/{session['session_id']}/turns")).json()
        assert len(turns["data"]) == 2  # SQL has both turns
        health = await client.get("/api/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["checks"]["memory"]["status"] == "down"
        assert body["checks"]["memory"]["required"] is False
        assert "127.0.0.1:1" in body["checks"]["memory"]["detail"]
        assert body["checks"]["model:embedder"]["status"] == "up"
        r = await client.get("/api/users/dave/memory/search", params={"q": "weather"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "memory_unavailable"


async def test_closed_milvus_client_recovers(memory_client) -> None:  # type: ignore[no-untyped-def]
    runtime = memory_client.app.state.runtime
    memory = runtime.services.memory
    ids = await on_app_loop(memory_client, seed, runtime.conversations)
    await on_app_loop(memory_client, remember_all, runtime)
    memory.store._client.close()  # the connection dies under the service
    # chat path: no raise
    assert await on_app_loop(memory_client, memory.recall, "alice", QUERIES["job"], 3, 0.0) == []
    memory._next_try = 0.0  # skip the retry back-off
    hits = await on_app_loop(memory_client, memory.recall, "alice", QUERIES["job"], 3, 0.0)
    assert hits and hits[0].turn_id == ids["job"]
    assert (await memory_client.get("/api/health")).json()["checks"]["memory"]["status"] == "up"


async def test_memory_off_gives_503(memory_settings: Settings) -> None:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    off = dataclasses.replace(memory_settings, memory_enabled=False)
    async with AsyncTestClient(app=create_app(off)) as client:
        r = await client.get("/api/users/alice/memory/search", params={"q": "x"})
        assert r.status_code == 503 and "MEMORY_ENABLED" in r.json()["error"]["message"]


async def test_dimension_mismatch_stops_start_up(memory_settings: Settings) -> None:
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    store = MemoryStore(memory_settings.milvus_target, memory_settings.milvus_collection, 8)
    await asyncio.to_thread(store.open)
    await asyncio.to_thread(store.close)
    with pytest.raises(BaseException) as err:
        async with AsyncTestClient(app=create_app(memory_settings)):
            pass
    found = find(err.value, SchemaMismatch)
    assert found is not None, err.value
    assert "'voice_conversations'" in str(found) and "8-dimensional" in str(found) \
        and "384-dimensional" in str(found)


def find(exc: BaseException, kind: type) -> BaseException | None:
    """``kind`` in ``exc``, its exception group members or its causes."""
    if isinstance(exc, kind):
        return exc
    for inner in [*getattr(exc, "exceptions", ()), exc.__cause__, exc.__context__]:
        if inner is not None and (hit := find(inner, kind)) is not None:
            return hit
    return None


def test_reindex_rebuilds_an_identical_collection(memory_settings: Settings) -> None:
    from orchestrator.memory.cli import run
    from storage.database import Database

    async def populate() -> None:
        database = Database(memory_settings.sql_url)
        try:
            await seed(ConversationStore(database))
        finally:
            await database.close()

    asyncio.run(populate())
    settings = memory_settings
    args = argparse.Namespace(action="reindex", user_id=None, batch=256)
    assert run(args, settings) == 0
    before = read_rows(settings)
    assert len(before) == 2 * len(ALICE_PAST) + len(BOB_PAST)
    # small batches this time: a different batch layout must give the same collection
    assert run(argparse.Namespace(action="reindex", user_id=None, batch=3), settings) == 0
    assert_same(before, read_rows(settings))
    assert run(argparse.Namespace(action="reindex", user_id="alice", batch=4), settings) == 0
    assert_same(before, read_rows(settings))


def test_reindex_on_a_new_embedded_database_migrates_it(memory_settings: Settings,
                                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A first run (`make run` never served yet) has no tables: reindex creates them, as
    the service does at start-up, and finds nothing to index."""
    from orchestrator.memory.cli import run

    fresh = dataclasses.replace(memory_settings,
                                database_url=f"sqlite+aiosqlite:///{tmp_path / 'new.db'}",
                                milvus_uri=str(tmp_path / "new-milvus.db"))
    assert fresh.auto_migrate
    assert run(argparse.Namespace(action="reindex", user_id=None, batch=256), fresh) == 0
    assert read_rows(fresh) == []


def read_rows(settings: Settings) -> list[dict]:
    store = MemoryStore(settings.milvus_target, settings.milvus_collection, 384)
    store.open()
    try:
        return store.rows()
    finally:
        store.close()


def assert_same(before: list[dict], after: list[dict]) -> None:
    fields = ("id", "user_id", "session_id", "turn_id", "role", "text", "created_at")
    assert [[r[f] for f in fields] for r in after] == [[r[f] for f in fields] for r in before]
    a = np.array([r["embedding"] for r in before], np.float32)
    b = np.array([r["embedding"] for r in after], np.float32)
    assert np.abs(a - b).max() < 1e-5
