"""Sessions API on SQLite and a real MariaDB: happy paths, statistics, bad input."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio


async def test_create_session_without_body_assigns_user(client) -> None:
    r = await client.post("/api/sessions/new")
    assert r.status_code == 201
    body = r.json()
    assert len(body["session_id"]) == 32 and len(body["user_id"]) == 32
    assert body["status"] == "active"
    assert body["websocket_path"] == f"/ws/{body['user_id']}/{body['session_id']}"


async def test_korean_and_emoji_round_trip(client) -> None:
    instructions = "친절하게 대답하세요 😀🎙️ — ñ"
    r = await client.post("/api/sessions/new", json={"user_id": "kim", "language": "ko",
                                                     "instructions": instructions})
    assert r.status_code == 201
    sid = r.json()["session_id"]
    r = await client.get(f"/api/sessions/{sid}")
    assert r.json()["instructions"] == instructions
