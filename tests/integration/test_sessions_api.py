"""Sessions API on SQLite and a real MariaDB: happy paths, statistics, bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from orchestrator.settings import Settings
from storage.conversations import NewTurn
from storage.errors import RecordNotFound
from tests.support.offered import offered_repository

pytestmark = pytest.mark.asyncio

JSON = {"content-type": "application/json"}


async def snapshot(store) -> list[dict]:
    """Every stored user (of those tests create), session count and turn."""
    rows = []
    for user in ("alice", "bob"):
        try:
            stats = await store.user_stats(user)
        except RecordNotFound:
            continue
        rows.append({"user": user, "sessions": stats.sessions, "turns": stats.turns})
    async for batch in store.iter_turns():
        rows += [{"turn": t.id, "text": t.text, "session": t.session_id} for t in batch]
    return rows


async def new_session(client, **body) -> dict:
    r = await client.post("/api/sessions/new", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def assert_error(r, status: int, code: str, fragment: str = "") -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == r.headers["x-request-id"]
    assert fragment in error["message"]
    return error


async def test_create_session_without_body_assigns_user(client) -> None:
    r = await client.post("/api/sessions/new")
    assert r.status_code == 201
    body = r.json()
    assert len(body["session_id"]) == 32 and len(body["user_id"]) == 32
    assert body["status"] == "active"
    assert body["websocket_path"] == f"/ws/{body['user_id']}/{body['session_id']}"


async def test_session_fields_and_korean_emoji_round_trip(client) -> None:
    instructions = "친절하게 대답하세요 😀🎙️ — ñ\nsecond line"
    body = await new_session(client, user_id="kim", language="ko", voice="ko-voice",
                             instructions=instructions)
    r = await client.get(f"/api/sessions/{body['session_id']}")
    assert r.status_code == 200
    got = r.json()
    assert (got["user_id"], got["language"], got["voice"]) == ("kim", "ko", "ko-voice")
    assert got["instructions"] == instructions


async def test_end_is_idempotent(client) -> None:
    sid = (await new_session(client, user_id="alice"))["session_id"]
    first = (await client.post(f"/api/sessions/{sid}/end")).json()
    second = (await client.post(f"/api/sessions/{sid}/end")).json()
    assert first["status"] == second["status"] == "ended"
    assert first["ended_at"] == second["ended_at"]


async def test_stats_and_turn_pages(client, store) -> None:
    sid = (await new_session(client, user_id="alice"))["session_id"]
    await store.add_turn(sid, NewTurn("user", "one", stt_ms=120, prompt_tokens=7))
    await store.add_turn(sid, NewTurn("assistant", "two", llm_first_token_ms=30,
                                      completion_tokens=4, incomplete_reason="repetition"))
    await store.add_turn(sid, NewTurn("user", "three", stt_ms=80, prompt_tokens=3))
    stats = (await client.get(f"/api/sessions/{sid}/stats")).json()
    assert (stats["turns"], stats["user_turns"], stats["assistant_turns"]) == (3, 2, 1)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (10, 4)
    assert stats["average_latency_ms"]["stt_ms"] == 100.0
    assert stats["average_latency_ms"]["llm_first_token_ms"] == 30.0
    user = (await client.get("/api/users/alice/stats")).json()
    assert (user["sessions"], user["turns"], user["active_sessions"]) == (1, 3, 1)
    page = (await client.get(f"/api/sessions/{sid}/turns?limit=2")).json()
    assert [t["text"] for t in page["data"]] == ["one", "two"]
    assert [t["incomplete_reason"] for t in page["data"]] == [None, "repetition"]
    assert (page["total"], page["has_more"]) == (3, True)
    page = (await client.get(f"/api/sessions/{sid}/turns?limit=2&offset=2")).json()
    assert [t["text"] for t in page["data"]] == ["three"] and page["has_more"] is False


async def test_unknown_ids_are_404(client) -> None:
    for method, path in [("GET", "/api/sessions/nope"), ("GET", "/api/sessions/nope/stats"),
                         ("POST", "/api/sessions/nope/end"), ("GET", "/api/sessions/nope/turns"),
                         ("GET", "/api/users/nobody/stats")]:
        assert_error(await client.request(method, path), 404, "not_found")


async def test_malformed_json_and_wrong_types_are_400(client, store) -> None:
    await new_session(client, user_id="alice")
    before = await snapshot(store)
    cases = [
        (b'{"user_id": ', "malformed"),
        (b'[1, 2, 3]', "Expected `object"),
        (b'{"user_id": 42}', "user_id"),
        (b'{"language": ["en"]}', "language"),
        (b'{"unknown_field": 1}', "unknown_field"),
        ("\xff\xfe".encode("latin-1"), ""),
    ]
    for raw, fragment in cases:
        r = await client.post("/api/sessions/new", content=raw, headers=JSON)
        error = assert_error(r, 400, "invalid_request")
        assert fragment.lower() in error["message"].lower() or fragment == "malformed"
    for query in ("limit=0", "limit=100000", "offset=-1", "limit=abc"):
        r = await client.get(f"/api/sessions/x/turns?{query}")
        assert_error(r, 400, "invalid_request")
    assert await snapshot(store) == before


async def test_hostile_strings_are_refused_and_nothing_changes(client, store) -> None:
    sid = (await new_session(client, user_id="alice"))["session_id"]
    await store.add_turn(sid, NewTurn("user", "keep me"))
    before = await snapshot(store)
    hostile = [
        {"user_id": "alice'; DROP TABLE users; --"},
        {"user_id": "a" * 10_000},
        {"user_id": "bob\x00"},
        {"language": "en; DELETE FROM turns"},
        {"voice": "../../etc/passwd"},
        {"instructions": "x" * 10_000},
        {"instructions": "bell \x07 and escape \x1b[31m"},
    ]
    for body in hostile:
        r = await client.post("/api/sessions/new", json=body)
        assert_error(r, 400, "invalid_request", next(iter(body)))
    for path in ("/api/sessions/' OR 1=1 --/stats", "/api/users/" + "u" * 10_000 + "/stats",
                 "/api/sessions/%00/turns"):
        r = await client.get(path)
        assert r.status_code in (400, 404), r.text
        assert "error" in r.json()
    assert await snapshot(store) == before


async def test_sql_metacharacters_in_allowed_text_are_stored_verbatim(client) -> None:
    text = "Robert'); DROP TABLE sessions;-- 😀 \"quoted\" \\ %_"
    sid = (await new_session(client, user_id="alice", instructions=text))["session_id"]
    assert (await client.get(f"/api/sessions/{sid}")).json()["instructions"] == text
    assert (await client.get("/api/users/alice/stats")).json()["sessions"] == 1


async def test_oversized_body_is_413(client, settings) -> None:
    big = b'{"instructions": "' + b"x" * (settings.max_request_bytes + 10) + b'"}'
    r = await client.post("/api/sessions/new", content=big, headers=JSON)
    assert_error(r, 413, "payload_too_large")


async def test_request_id_is_echoed_or_assigned(client) -> None:
    r = await client.get("/api/ping", headers={"x-request-id": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    r = await client.get("/api/ping", headers={"x-request-id": "bad\tid" * 40})
    assert r.headers["x-request-id"] != "bad\tid" * 40 and len(r.headers["x-request-id"]) == 32


async def test_health_reports_sql(client) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["sql"]["status"] == "up" and body["checks"]["sql"]["required"]


async def test_openapi_schema_lists_the_routes(client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in ("/api/ping", "/api/health", "/api/sessions/new",
                 "/api/sessions/{session_id}/stats", "/api/users/{user_id}/stats"):
        assert path in paths


# --- voices and languages the served models offer ------------------------------------------

@pytest.fixture
async def offered_client(settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    from orchestrator.app import create_app

    served = dataclasses.replace(settings, model_repository=str(
        offered_repository(tmp_path / "repository")))
    async with AsyncTestClient(app=create_app(served)) as c:
        yield c


async def test_voice_and_language_must_be_offered_by_the_served_models(offered_client,
                                                                       store) -> None:
    before = await snapshot(store)
    r = await offered_client.post("/api/sessions/new", json={"user_id": "bob",
                                                                "voice": "nonexistent-voice"})
    error = assert_error(r, 400, "invalid_request", "nonexistent-voice")
    assert error["param"] == "voice" and "joe, kss" in error["message"]
    r = await offered_client.post("/api/sessions/new", json={"user_id": "bob", "language": "zz"})
    error = assert_error(r, 400, "invalid_request", "unsupported language 'zz'")
    assert error["param"] == "language" and "en, ko" in error["message"]
    assert await snapshot(store) == before  # nothing stored
    for body in ({"voice": "kss", "language": "ko"}, {"voice": "alloy", "language": "en-US"}):
        r = await offered_client.post("/api/sessions/new", json=body)
        assert r.status_code == 201, (body, r.text)


async def test_the_served_voices_are_listed_with_their_languages(offered_client,
                                                                  client) -> None:
    r = await offered_client.get("/api/tts/voices")
    assert r.status_code == 200, r.text
    assert r.json() == {"default": "joe", "data": [{"name": "joe", "languages": ["en"]},
                                                   {"name": "kss", "languages": ["ko"]}]}
    # No model repository to read: nothing is known (any voice name goes to the model).
    r = await client.get("/api/tts/voices")
    assert r.status_code == 200 and r.json()["data"] == [], r.text


async def test_no_turn_is_stored_after_the_session_ended(client, store) -> None:
    from storage.errors import SessionEnded

    sid = (await new_session(client, user_id="alice"))["session_id"]
    await store.add_turn(sid, NewTurn("user", "before the end"))
    assert (await client.post(f"/api/sessions/{sid}/end")).status_code == 200
    with pytest.raises(SessionEnded):
        await store.add_turn(sid, NewTurn("user", "after the end"))
    turns = (await client.get(f"/api/sessions/{sid}/turns")).json()["data"]
    assert [t["text"] for t in turns] == ["before the end"]


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=-1", "limit=0",
                                   "limit=501", "offset=2147483648"])
async def test_out_of_range_paging_is_a_400_naming_the_parameter(client, query) -> None:
    sid = (await new_session(client, user_id="alice"))["session_id"]
    r = await client.get(f"/api/sessions/{sid}/turns?{query}")
    assert_error(r, 400, "invalid_request", query.split("=")[0])


@pytest.mark.parametrize("path", ["/api/sessions/new", "/v1/chat/completions"])
async def test_deeply_nested_json_is_a_400_not_a_500(client, path, caplog) -> None:
    body = b'{"a":' * 20000 + b"1" + b"}" * 20000
    r = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_request", "nested too deeply")
    assert "Traceback" not in caplog.text
