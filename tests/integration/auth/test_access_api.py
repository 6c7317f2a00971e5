"""Access control over REST with AUTH_MODE=required, on SQLite and a real MariaDB: every
route needs a key, a key acts for its own user only, admins for anyone, limits answer
429, browsers are checked, and only hashes are stored."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from orchestrator.auth.middleware import is_public
from orchestrator.realtime.audio import encode_wav
from storage.api_keys import KeyStore
from storage.conversations import NewTurn
from tests.integration.auth.conftest import ADMIN_KEY, Keys, make_key, required_settings
from tests.support.fake_voice import speak
from tests.support.settings import base_settings
from tests.support.tiny_voice import TinyVoice

pytestmark = pytest.mark.asyncio
bearer = Keys.bearer


def concrete(path: str) -> str:
    """A route path with each parameter filled in (ints with 1, the rest with 'x')."""
    return re.sub(r"\{[^}:]+:([a-z]+)\}", lambda m: "1" if m.group(1) == "int" else "x", path)


@asynccontextmanager
async def tiny_voice_api(sql_url: str, tmp_path: Path, voice: TinyVoice,
                         **overrides: object) -> AsyncIterator[AsyncTestClient]:
    """An app with keys required, answering uploads on the tiny real voice stack."""
    from orchestrator.app import create_app

    settings = voice.settings(required_settings(sql_url, tmp_path, **overrides))
    async with AsyncTestClient(app=create_app(settings)) as api:
        voice.pin(api.app.state.runtime)
        yield api


def spoken_wav(tmp_path: Path, seconds: float) -> bytes:
    """A spoken question, padded with silence to ``seconds``, as a WAV file."""
    speech = speak("What is the weather like", tmp_path)
    assert len(speech) <= seconds * 16000
    padded = np.concatenate([speech, np.zeros(int(seconds * 16000) - len(speech), np.float32)])
    return encode_wav(padded, 16000)[0]


def assert_error(r, status: int, code: str, fragment: str = "") -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    assert fragment in error["message"], error
    return error


async def alice_session(api, keys: Keys) -> str:  # type: ignore[no-untyped-def]
    r = await api.post("/api/sessions/new", json={"instructions": "alice's secret plan"},
                       headers=bearer(keys.alice))
    assert r.status_code == 201, r.text
    assert r.json()["user_id"] == "alice"
    return r.json()["session_id"]


# --- authentication -------------------------------------------------------------------

async def test_every_route_but_the_public_ones_needs_a_key(api) -> None:
    checked = 0
    for route in api.app.routes:
        if not isinstance(route, HTTPRoute) or is_public(route.path):
            continue
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            r = await api.request(method, concrete(route.path))
            assert r.status_code == 401, (method, route.path, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 25  # sessions, users, memory, /v1, speech, voice-chat, admin
    for path in ("/api/ping", "/api/health"):
        assert (await api.get(path)).status_code == 200
    doc = (await api.get("/schema/openapi.json")).json()  # Swagger's "Authorize" works
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert doc["security"] == [{"apiKey": []}]
    assert doc["paths"]["/api/ping"]["get"]["security"] == []  # no key needed


async def test_wrong_malformed_and_revoked_keys_are_401(api, keys: Keys) -> None:
    for headers in ({"Authorization": "Bearer vck_not-a-key"}, {"Authorization": keys.alice},
                    {"Authorization": f"Basic {keys.alice}"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer " + "x" * 5000},
                    {"Authorization": b"Bearer vck_\xff\xfe"}, {"X-Admin-Key": ""}):
        assert_error(await api.get("/api/users/alice/stats", headers=headers), 401,
                     "unauthorized")
    assert (await api.get("/api/users/alice/stats", headers=bearer(keys.alice))).is_success
    listed = (await api.get("/admin/keys?user_id=alice", headers=bearer(ADMIN_KEY))).json()
    key_id = listed["data"][0]["id"]
    r = await api.delete(f"/admin/keys/{key_id}", headers=bearer(ADMIN_KEY))
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    error = assert_error(await api.get("/api/users/alice/stats", headers=bearer(keys.alice)),
                         401, "unauthorized", "revoked")
    assert keys.alice not in error["message"]
    # the other keys are untouched
    assert (await api.get("/api/users/bob/stats", headers=bearer(keys.bob))).is_success


async def test_an_error_never_echoes_the_key(api) -> None:
    secret = "vck_" + "S" * 43
    r = await api.get("/api/users/alice/stats", headers={"Authorization": f"Token {secret}"})
    assert r.status_code == 401 and secret not in r.text


# --- isolation --------------------------------------------------------------------------

async def test_other_users_sessions_are_404_like_unknown_ones_and_stay_untouched(
        api, keys: Keys, store) -> None:  # type: ignore[no-untyped-def]
    sid = await alice_session(api, keys)
    await store.add_turn(sid, NewTurn("user", "my bank pin is 1234"))
    before = [t.text for t in (await store.list_turns(sid))[0]]
    for method, path in (("GET", f"/api/sessions/{sid}"), ("GET", f"/api/sessions/{sid}/stats"),
                         ("GET", f"/api/sessions/{sid}/turns"),
                         ("POST", f"/api/sessions/{sid}/end")):
        theirs = await api.request(method, path, headers=bearer(keys.bob))
        unknown = await api.request(method, path.replace(sid, "0" * 32),
                                    headers=bearer(keys.bob))
        assert theirs.status_code == unknown.status_code == 404, (path, theirs.text)
        assert theirs.json()["error"]["message"] == \
            unknown.json()["error"]["message"].replace("0" * 32, sid)
        assert "1234" not in theirs.text and "secret plan" not in theirs.text
    assert (await store.get_session(sid)).ended_at is None  # bob's "end" did nothing
    assert [t.text for t in (await store.list_turns(sid))[0]] == before
    mine = await api.get(f"/api/sessions/{sid}/turns", headers=bearer(keys.alice))
    assert [t["text"] for t in mine.json()["data"]] == before


async def test_other_users_statistics_and_memory_are_404(api, keys: Keys) -> None:
    await alice_session(api, keys)
    assert_error(await api.get("/api/users/alice/stats", headers=bearer(keys.bob)), 404,
                 "not_found", "user 'alice' not found")
    assert_error(await api.get("/api/users/nobody/stats", headers=bearer(keys.bob)), 404,
                 "not_found", "user 'nobody' not found")
    # Memory: isolation is decided before the service (off here) is asked.
    assert_error(await api.get("/api/users/alice/memory/search?q=a&top_k=100&min_score=-1",
                               headers=bearer(keys.bob)), 404, "not_found")
    assert_error(await api.get("/api/users/bob/memory/search?q=a", headers=bearer(keys.bob)),
                 503, "memory_unavailable")


async def test_sessions_cannot_be_created_for_another_user(api, keys: Keys, store) -> None:  # type: ignore[no-untyped-def]
    error = assert_error(await api.post("/api/sessions/new", json={"user_id": "alice"},
                                        headers=bearer(keys.bob)), 403, "forbidden")
    assert error["param"] == "user_id"
    stats = await store.user_stats("alice")
    assert stats.sessions == 0  # nothing stored
    r = await api.post("/api/sessions/new", json={"user_id": "bob"}, headers=bearer(keys.bob))
    assert r.status_code == 201 and r.json()["user_id"] == "bob"
    r = await api.post("/api/sessions/new", headers=bearer(keys.bob))
    assert r.status_code == 201 and r.json()["user_id"] == "bob"


@pytest.mark.triton
async def test_voice_chat_into_another_users_session_is_404_and_stores_nothing(
        sql_url, tmp_path, tiny_voice, store) -> None:  # type: ignore[no-untyped-def]
    async with tiny_voice_api(sql_url, tmp_path, tiny_voice) as api:
        await voice_chat_only_into_own_sessions(api, tmp_path, store)


async def voice_chat_only_into_own_sessions(api, tmp_path, store) -> None:  # type: ignore[no-untyped-def]
    keys = Keys(alice=(await make_key(api, "alice"))["key"],
                bob=(await make_key(api, "bob"))["key"], admin="")
    sid = await alice_session(api, keys)
    upload = {"file": ("q.wav", spoken_wav(tmp_path, 2.0), "audio/wav")}
    r = await api.post("/api/voice-chat", data={"session_id": sid}, files=upload,
                       headers=bearer(keys.bob))
    assert_error(r, 404, "not_found")
    assert (await store.list_turns(sid))[1] == 0
    r = await api.post("/api/voice-chat", data={"session_id": sid}, files=upload,
                       headers=bearer(keys.alice))
    assert r.status_code == 201, r.text
    assert (await store.list_turns(sid))[1] == 2


# --- administration --------------------------------------------------------------------

async def test_admin_keys_act_for_any_user(api, keys: Keys) -> None:
    sid = await alice_session(api, keys)
    for admin in (keys.admin, ADMIN_KEY):
        assert (await api.get(f"/api/sessions/{sid}/turns", headers=bearer(admin))).is_success
        assert (await api.get("/api/users/alice/stats", headers=bearer(admin))).is_success
        r = await api.post("/api/sessions/new", json={"user_id": "alice"},
                           headers=bearer(admin))
        assert r.status_code == 201 and r.json()["user_id"] == "alice"
    # the original header for the admin endpoints still works
    assert (await api.get("/admin/keys", headers={"X-Admin-Key": ADMIN_KEY})).is_success


async def test_key_administration_is_for_admins_only(api, keys: Keys) -> None:
    assert_error(await api.get("/admin/keys", headers=bearer(keys.alice)), 403, "forbidden")
    assert_error(await api.post("/admin/keys", json={"user_id": "alice", "admin": True},
                                headers=bearer(keys.alice)), 403, "forbidden")
    assert_error(await api.get("/admin/models", headers=bearer(keys.alice)), 403, "forbidden")
    created = await make_key(api, "carol")
    assert created["key"].startswith("vck_") and created["prefix"] == created["key"][:12]
    listing = (await api.get("/admin/keys", headers=bearer(keys.admin))).json()["data"]
    assert {k["user_id"] for k in listing} == {"alice", "bob", "ops", "carol"}
    assert all("key" not in k and created["key"] not in str(k) for k in listing)
    one = (await api.get(f"/admin/keys/{created['id']}", headers=bearer(keys.admin))).json()
    assert one["status"] == "active" and one["last_used_at"] is None
    assert_error(await api.delete("/admin/keys/key_nope", headers=bearer(keys.admin)), 404,
                 "not_found")
    assert_error(await api.post("/admin/keys", json={"user_id": "bad user!"},
                                headers=bearer(keys.admin)), 400, "invalid_request")


async def test_last_use_is_recorded(api, keys: Keys) -> None:
    assert (await api.get("/api/users/bob/stats", headers=bearer(keys.bob))).is_success
    for _ in range(100):  # the write runs off the request path
        listing = (await api.get("/admin/keys?user_id=bob", headers=bearer(ADMIN_KEY))).json()
        if listing["data"][0]["last_used_at"] is not None:
            break
        await asyncio.sleep(0.05)
    assert listing["data"][0]["last_used_at"] is not None


async def test_only_hashes_are_stored(api, store) -> None:  # type: ignore[no-untyped-def]
    created = await make_key(api, "dave")
    async with store.db.engine.connect() as conn:  # the test's own pool (its event loop)
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
    stored = " ".join(str(v) for row in rows for v in row.values())
    assert created["key"] not in stored and created["key"][12:] not in stored
    (row,) = [r for r in rows if r["id"] == created["id"]]
    assert row["secret_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()


# --- limits ---------------------------------------------------------------------------

async def test_request_rate_limit_answers_429_with_openai_headers(sql_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    settings = required_settings(sql_url, tmp_path, rate_limit_requests_per_minute=3)
    async with AsyncTestClient(app=create_app(settings)) as api:
        alice, bob = (await make_key(api, "alice"))["key"], (await make_key(api, "bob"))["key"]
        seen = []
        for _ in range(3):
            r = await api.get("/api/users/alice/stats", headers=bearer(alice))
            assert r.status_code == 200
            seen.append(int(r.headers["x-ratelimit-remaining-requests"]))
            assert r.headers["x-ratelimit-limit-requests"] == "3"
        assert seen == [2, 1, 0]
        r = await api.get("/api/users/alice/stats", headers=bearer(alice))
        assert_error(r, 429, "rate_limited", "3 requests per minute")
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        assert re.fullmatch(r"\d+(ms|s)|\d+m\d+s", r.headers["x-ratelimit-reset-requests"])
        # another key has its own allowance
        assert (await api.get("/api/users/bob/stats", headers=bearer(bob))).status_code == 200


@pytest.mark.triton
async def test_audio_seconds_limit_on_uploads(sql_url, tmp_path, tiny_voice, store) -> None:  # type: ignore[no-untyped-def]
    async with tiny_voice_api(sql_url, tmp_path, tiny_voice,
                              rate_limit_audio_seconds_per_minute=3.0) as api:
        key = (await make_key(api, "alice"))["key"]
        sid = (await api.post("/api/sessions/new", headers=bearer(key))).json()["session_id"]
        upload = {"file": ("q.wav", spoken_wav(tmp_path, 2.0), "audio/wav")}
        r = await api.post("/api/voice-chat", data={"session_id": sid}, files=upload,
                           headers=bearer(key))
        assert r.status_code == 201, r.text
        r = await api.post("/api/voice-chat", data={"session_id": sid}, files=upload,
                           headers=bearer(key))
        assert_error(r, 429, "rate_limited", "seconds of audio per minute")
        assert r.headers["x-ratelimit-limit-audio-seconds"] == "3"
        assert int(r.headers["retry-after"]) >= 1
    assert (await store.list_turns(sid))[1] == 2  # the refused upload stored nothing


# --- browsers ---------------------------------------------------------------------------

async def test_cross_site_requests_are_refused(api, keys: Keys, store) -> None:  # type: ignore[no-untyped-def]
    r = await api.post("/api/sessions/new", content=b'{"user_id": "alice"}',
                       headers={**bearer(keys.alice), "Content-Type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type", "application/json")
    r = await api.post("/api/sessions/new", json={}, headers={
        **bearer(keys.alice), "Origin": "https://evil.example"})
    assert_error(r, 403, "forbidden", "evil.example")
    assert (await store.user_stats("alice")).sessions == 0
    r = await api.post("/api/sessions/new", json={}, headers={
        **bearer(keys.alice), "Origin": "http://testserver.local"})  # same origin
    assert r.status_code == 201


async def test_open_mode_is_loopback_only(sql_url, tmp_path, store) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=r"AUTH_MODE.*loopback.*0\.0\.0\.0"):
        Settings.from_env({"AUTH_MODE": "off", "HOST": "0.0.0.0"})
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert Settings.from_env({"AUTH_MODE": "off", "HOST": host}).auth_mode == "off"
    assert Settings.from_env({}).auth_mode == "required"
    with pytest.raises(SettingsError, match="AUTH_MODE"):
        Settings.from_env({"AUTH_MODE": "maybe"})
    # Open mode: no key or any key is open access (SDKs always send one); a valid key
    # acts as itself, with its isolation.
    import dataclasses

    from litestar.testing import AsyncTestClient

    from orchestrator.app import create_app

    settings = dataclasses.replace(base_settings(), database_url=sql_url,
                                   data_dir=str(tmp_path / "data"), triton_url=None,
                                   memory_enabled=False)
    async with AsyncTestClient(app=create_app(settings)) as api:
        assert (await api.post("/api/sessions/new", json={"user_id": "x"})).status_code == 201
        assert (await api.get("/api/users/x/stats", headers=bearer("sk-unused"))).is_success
        y = (await KeyStore(store.db).create("y")).secret  # on the test's own pool
        assert_error(await api.get("/api/users/x/stats", headers=bearer(y)), 404, "not_found")
        r = await api.get("/admin/keys")
        assert_error(r, 401, "unauthorized", "admin key")
