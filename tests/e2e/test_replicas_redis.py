"""Two orchestrator processes with one REDIS_URL (and one MariaDB), as replicas behind a
balancer: a key's rate limit is one allowance across both, a key revoked through one fails
on the other within a second (not after AUTH_KEY_CACHE_S), and while Redis is down both
keep serving on their own limits and say so (/api/health degraded, a gauge); a session's
socket on one replica is replaced by a new one on the other as within one replica, and
the realtime session limit counts both replicas' sockets."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.test_serve import stop
from tests.support.redis import PrivateRedis
from tests.support.replicas import ADMIN, start_replicas, text_turn

ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _key(http: httpx.Client, base: str, user: str) -> dict[str, str]:
    """A new key of ``user``: its Authorization header."""
    return _new_key(http, base, user)[0]


def _new_key(http: httpx.Client, base: str, user: str) -> tuple[dict[str, str], str]:
    made = http.post(f"{base}/admin/keys", json={"user_id": user}, headers=ADMIN_AUTH)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}, made.json()["id"]


@pytest.mark.mariadb
def test_replicas_share_limits_and_revocations_through_redis(
        tmp_path: Path, database: str, redis_server_empty: PrivateRedis) -> None:
    (one, a, log_a), (two, b, log_b) = start_replicas(
        tmp_path, 2, DATABASE_URL=database, REDIS_URL=redis_server_empty.url,
        RATE_LIMIT_REQUESTS_PER_MINUTE="5", AUTH_KEY_CACHE_S="60", REDIS_LEASE_TTL_S="3")
    try:
        with httpx.Client(timeout=30) as http:
            for base in (a, b):
                health = http.get(f"{base}/api/health").json()
                assert health["checks"]["redis"]["status"] == "up", health

            # One allowance of 5 a minute for both, not 5 on each.
            alice = _key(http, a, "alice")
            answers = [http.get(f"{base}/api/users/alice/stats", headers=alice)
                       for base in (a, b, a, b, a, b)]
            assert [r.status_code for r in answers].count(200) == 5, \
                [r.status_code for r in answers]
            refused = answers[-1]
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert answers[-2].headers["x-ratelimit-remaining-requests"] == "0"

            # Revoked through a, cached on b for a minute: refused on b within a second.
            bob, bob_key_id = _new_key(http, a, "bob")
            for base in (a, b):
                assert http.get(f"{base}/api/users/bob/stats", headers=bob).status_code == 200
            assert http.delete(f"{a}/admin/keys/{bob_key_id}",
                               headers=ADMIN_AUTH).status_code == 200
            revoked_at = time.monotonic()
            while http.get(f"{b}/api/users/bob/stats", headers=bob).status_code != 401:
                assert time.monotonic() - revoked_at < 1.0, "b still accepts the revoked key"
                time.sleep(0.02)
            assert http.get(f"{a}/api/users/bob/stats", headers=bob).status_code == 401

            # Redis goes away: both keep serving, each on its own allowance, and say so.
            redis_server_empty.stop()
            carol = _key(http, a, "carol")
            for base in (a, b):
                statuses = [http.get(f"{base}/api/users/carol/stats",
                                     headers=carol).status_code for _ in range(6)]
                assert statuses.count(200) == 5, (base, statuses)  # per replica: 5 each
                health = http.get(f"{base}/api/health").json()
                assert health["status"] == "degraded", health
                assert health["checks"]["redis"]["status"] == "down"
                assert "per replica" in health["checks"]["redis"]["detail"]
                assert "voicechat_shared_state_fallback 1.0" in http.get(
                    f"{base}/metrics").text
            redis_server_empty.start()
            deadline = time.monotonic() + 10
            while any(http.get(f"{base}/api/health").json()["status"] != "ok"
                      for base in (a, b)):
                assert time.monotonic() < deadline, "the replicas never found Redis again"
                time.sleep(0.2)
            dave = _key(http, b, "dave")  # shared again: 5 in all
            statuses = [http.get(f"{base}/api/users/dave/stats", headers=dave).status_code
                        for base in (a, b, a, b, a, b)]
            assert statuses.count(200) == 5, statuses
    finally:
        outputs = [stop(one, log_a), stop(two, log_b)]
    for output in outputs:  # one line per outage, not one per request
        assert output.count("Redis does not answer") == 1, output[-3000:]
        assert output.count("Redis answers again") == 1


async def _alice(http: httpx.AsyncClient, base: str) -> tuple[str, dict[str, str]]:
    """A new key of alice's, made through ``base``: the key and its Authorization header."""
    made = await http.post(f"{base}/admin/keys", json={"user_id": "alice"}, headers=ADMIN_AUTH)
    key = made.json()["key"]
    return key, {"Authorization": f"Bearer {key}"}


async def _socket(base: str, key: str, session_id: str):  # type: ignore[no-untyped-def]
    ws = await websockets.connect(f"{base.replace('http', 'ws', 1)}/ws/alice/{session_id}",
                                  additional_headers={"Authorization": f"Bearer {key}"})
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 60))


async def _closed(ws) -> tuple[list[dict], int]:  # type: ignore[no-untyped-def]
    """The events a socket gets until the server closes it, and the close code."""
    events = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    return events, closed.value.rcvd.code


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.asyncio
async def test_one_socket_per_session_and_one_session_limit_across_replicas(
        tmp_path: Path, database: str, redis_server_empty: PrivateRedis,
        triton_server, tiny_stt) -> None:
    """A socket of a session opened on b replaces the one on a (error event, 4409), as on
    one replica; RATE_LIMIT_REALTIME_SESSIONS counts the sockets of both replicas."""
    (one, a, log_a), (two, b, log_b) = start_replicas(
        tmp_path, 2, DATABASE_URL=database, REDIS_URL=redis_server_empty.url,
        TRITON_URL=triton_server.grpc_url, MODEL_REPOSITORY=str(triton_server.repository),
        STT_ENABLED="true", RATE_LIMIT_REALTIME_SESSIONS="2")
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            key, auth = await _alice(http, a)
            sessions = [(await http.post(f"{a}/api/sessions/new", headers=auth)).json()[
                "session_id"] for _ in range(3)]
        first, created = await _socket(a, key, sessions[0])
        assert created["type"] == "session.created", created
        started = time.monotonic()
        second, created = await _socket(b, key, sessions[0])  # the client moved to b
        assert created["type"] == "session.created", created
        events, code = await _closed(first)
        assert code == 4409 and events[-1]["type"] == "error", (code, events)
        assert "replaces this one" in events[-1]["error"]["message"]
        assert time.monotonic() - started < 5  # a message, not the 15 s handover

        third, created = await _socket(a, key, sessions[1])  # 2 open: second and third
        assert created["type"] == "session.created", created
        fourth, refused = await _socket(b, key, sessions[2])  # b holds 1 itself
        assert refused["type"] == "error" and "2 realtime sessions" in \
            refused["error"]["message"], refused
        assert (await _closed(fourth))[1] == 4429
        for ws in (second, third):
            await ws.close()
    finally:
        outputs = [stop(one, log_a), stop(two, log_b)]
    assert "Redis does not answer" not in "".join(outputs)


@pytest.mark.triton
@pytest.mark.mariadb
@pytest.mark.asyncio
async def test_a_replica_killed_mid_conversation_loses_no_turn_and_the_session_goes_on(
        tmp_path: Path, database: str, redis_server_empty: PrivateRedis,
        triton_server, tiny_llm, tiny_stt) -> None:
    """kill -9 of the replica holding a session's socket: its committed turn is kept, and
    the client reconnects through the other replica once the dead one's lease has expired
    (REDIS_LEASE_TTL_S), with no operator; the conversation continues there."""
    (one, a, _), (two, b, log_b) = start_replicas(
        tmp_path, 2, DATABASE_URL=database, REDIS_URL=redis_server_empty.url,
        REDIS_LEASE_TTL_S="3", TRITON_URL=triton_server.grpc_url,
        MODEL_REPOSITORY=str(triton_server.repository), STT_ENABLED="true",
        LLM_ENABLED="true")
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            key, auth = await _alice(http, b)
            session_id = (await http.post(f"{b}/api/sessions/new", headers=auth)).json()[
                "session_id"]
            ws, created = await _socket(a, key, session_id)
            assert created["type"] == "session.created", created
            await _text_only(ws)
            first = await text_turn(ws, "Hello before the crash")
            assert first["type"] == "response.done", first

            one.kill()  # kill -9: no drain, no lease given back
            one.wait(30)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)

            started = time.monotonic()
            again, created = await _socket(b, key, session_id)
            assert created["type"] == "session.created", created
            waited = time.monotonic() - started
            await _text_only(again)
            second = await text_turn(again, "Hello after the crash")
            assert second["type"] == "response.done", second
            await again.close()
            turns = (await http.get(f"{b}/api/sessions/{session_id}/turns",
                                    headers=auth)).json()["data"]
        assert [(t["role"], t["text"]) for t in turns][::2] == [
            ("user", "Hello before the crash"), ("user", "Hello after the crash")]
        assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
        # the dead replica's lease expired (3 s), not the 15 s handover to a live holder
        assert waited < 10, f"the reconnect waited {waited:.1f} s for the dead replica's lease"
    finally:
        if one.poll() is None:
            one.kill()
        stop(two, log_b)


async def _text_only(ws) -> None:  # type: ignore[no-untyped-def]
    """Short text replies: the tiny model's words, no voice."""
    await ws.send(json.dumps({"type": "session.update", "session": {
        "modalities": ["text"], "max_response_output_tokens": 6}}))
    while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "session.updated":
        pass
