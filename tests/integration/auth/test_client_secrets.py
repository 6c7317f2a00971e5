"""Ephemeral client secrets (``POST /v1/realtime/client_secrets``, ``ek_``): minted over
REST with AUTH_MODE=required on SQLite and a real MariaDB (only hashes stored, who may
mint for whom, the session checked at mint time, one use, expiry), then redeemed on a real
uvicorn socket: the secret opens ``/v1/realtime`` or ``/ws`` once, with its session
applied, and no other route; the official ``openai`` SDK mints and connects with one."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text, update

from orchestrator.auth.middleware import auth_middleware
from orchestrator.auth.principal import Principal
from orchestrator.errors import Unauthorized
from storage.client_secrets import ClientSecretRecord, ClientSecretStore, Refusal
from storage.database import Database
from storage.tables import ClientSecret, utcnow
from tests.integration.auth.conftest import ADMIN_KEY, Keys
from tests.support.realtime import (
    LiveServer,
    RealtimeClient,
    live_server,
    refused,
    tiny_voice_server,
)

pytestmark = pytest.mark.asyncio
bearer = Keys.bearer
MINT = "/v1/realtime/client_secrets"
PIRATE = {"type": "realtime", "instructions": "Speak like a pirate.",
          "audio": {"output": {"voice": "alloy"}}}


def assert_error(r, status: int, param: str | None = None, fragment: str = "") -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param, error
    assert fragment in error["message"], error
    return error


# --- minting over REST, on each SQL backend ---------------------------------------------

async def test_a_user_key_mints_a_secret_and_only_its_hash_is_stored(api, keys, sql_url) -> None:
    before = time.time()
    r = await api.post(MINT, json={"session": PIRATE}, headers=bearer(keys.alice))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"].startswith("ek_") and len(body["value"]) > 40
    assert before + 59 <= body["expires_at"] <= time.time() + 61
    session = body["session"]
    assert session["type"] == "realtime" and session["instructions"] == "Speak like a pirate."
    assert session["audio"]["output"]["voice"] == "alloy"
    assert "id" not in session  # no session exists before the secret is used

    database = Database(sql_url)
    try:
        async with database.session() as s:
            rows = (await s.execute(text("SELECT * FROM client_secrets"))).mappings().all()
    finally:
        await database.close()
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["secret_hash"] == hashlib.sha256(body["value"].encode()).hexdigest()
    assert not any(body["value"] in str(value) for value in row.values())
    assert row["user_id"] == "alice" and row["minted_by"].startswith("key_")
    assert row["used_at"] is None


async def test_who_mints_for_whom(api, keys) -> None:
    r = await api.post(MINT, params={"user_id": "bob"}, json={}, headers=bearer(keys.alice))
    assert_error(r, 403, "user_id", "another user")
    r = await api.post(MINT, params={"user_id": "alice"}, json={}, headers=bearer(keys.alice))
    assert r.status_code == 200, r.text
    for admin in (keys.admin, ADMIN_KEY):
        assert_error(await api.post(MINT, json={}, headers=bearer(admin)), 400, "user_id",
                     "?user_id=")
        r = await api.post(MINT, params={"user_id": "carol"}, json={}, headers=bearer(admin))
        assert r.status_code == 200, r.text
    assert (await api.post(MINT, json={})).status_code == 401  # no key at all


async def test_expires_after_is_bounded(api, keys) -> None:
    for seconds in (9, 601):
        r = await api.post(MINT, json={"expires_after": {"anchor": "created_at",
                                                         "seconds": seconds}},
                           headers=bearer(keys.alice))
        assert_error(r, 400, "expires_after.seconds", "between 10 and 600")
    r = await api.post(MINT, json={"expires_after": {"anchor": "created_at", "seconds": 600}},
                       headers=bearer(keys.alice))
    assert r.status_code == 200 and r.json()["expires_at"] >= time.time() + 598


@pytest.mark.parametrize(("session", "param"), [
    ({"type": "realtime", "colour": "blue"}, "session.colour"),
    ({"type": "translation"}, "session.type"),
    ({"type": "realtime", "model": "whisper"}, "session.model"),
    ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad",
                                                                   "threshold": 7}}}},
     "session.turn_detection.threshold"),
    ({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "shouting"}}}},
     "session.turn_detection.type"),
    ({"type": "realtime", "audio": {"output": {"format": {"type": "audio/mp3"}}}},
     "session.audio.output.format.type"),
])
async def test_a_bad_session_is_refused_at_mint_time(api, keys, session, param) -> None:
    r = await api.post(MINT, json={"session": session}, headers=bearer(keys.alice))
    assert_error(r, 400, param)


async def test_a_client_secret_opens_no_rest_or_admin_route(api, keys, sql_url) -> None:
    secret = (await api.post(MINT, json={}, headers=bearer(keys.alice))).json()["value"]
    sid = (await api.post("/api/sessions/new", json={},
                          headers=bearer(keys.alice))).json()["session_id"]
    for method, path in (("GET", f"/api/sessions/{sid}"), ("GET", "/admin/keys"),
                         ("POST", MINT), ("GET", "/v1/models")):
        r = await api.request(method, path, headers=bearer(secret),
                              json={} if method == "POST" else None)
        error = assert_error(r, 401, None, "client secrets (ek_...) only open realtime")
        assert error["code"] == "unauthorized"
    database = Database(sql_url)
    try:
        async with database.session() as s:
            used = await s.scalar(select(ClientSecret.used_at))
    finally:
        await database.close()
    assert used is None  # a refused route does not spend it


async def test_a_secret_redeems_once_and_not_after_it_expires(sql_url) -> None:
    database = Database(sql_url)
    store = ClientSecretStore(database)
    try:
        minted = await store.mint("alice", minted_by="key_x", model="llm",
                                  session={"instructions": "hi"}, ttl_s=60)
        first = await store.redeem(minted.secret)
        assert isinstance(first, ClientSecretRecord) and first.user_id == "alice"
        assert first.session == {"instructions": "hi"} and first.used_at is not None
        assert await store.redeem(minted.secret) is Refusal.USED
        assert await store.redeem("ek_" + "x" * 43) is Refusal.UNKNOWN

        old = await store.mint("alice", minted_by=None, model="llm", session={}, ttl_s=10,
                               now=utcnow() - timedelta(seconds=11))
        assert await store.redeem(old.secret) is Refusal.EXPIRED
        fresh = await store.mint("alice", minted_by=None, model="llm", session={}, ttl_s=10)
        later = utcnow() + timedelta(seconds=10)
        assert await store.redeem(fresh.secret, now=later) is Refusal.EXPIRED

        racing = await store.mint("alice", minted_by=None, model="llm", session={}, ttl_s=60)
        outcomes = await asyncio.gather(*(store.redeem(racing.secret) for _ in range(8)))
        assert sum(isinstance(o, ClientSecretRecord) for o in outcomes) == 1
        assert outcomes.count(Refusal.USED) == 7
    finally:
        await database.close()


# --- redeeming on a real socket ----------------------------------------------------------

@pytest.fixture
async def live(tmp_path, tiny_voice) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    async with tiny_voice_server(tmp_path, tiny_voice, auth_mode="required",
                                 admin_api_key=ADMIN_KEY) as server:
        yield server


async def mint(live: LiveServer, key: str, **body: object) -> dict:
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        r = await http.post(MINT, json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json()



def realtime(live: LiveServer, secret: str, query: str = "") -> RealtimeClient:
    return RealtimeClient(f"{live.ws_url}/v1/realtime{query}",
                          additional_headers=bearer(secret))


async def test_a_secret_opens_v1_realtime_once_with_its_session(live) -> None:
    key = (await live.runtime.keys.create("alice")).secret
    secret = (await mint(live, key, session=PIRATE))["value"]
    async with realtime(live, secret) as client:
        created = await client.next()
        assert created["type"] == "session.created"
        updated = await client.next()
        assert updated["type"] == "session.updated", updated
        assert updated["session"]["instructions"] == "Speak like a pirate."
        assert updated["session"]["audio"]["output"]["voice"] == "alloy"
        session = await live.runtime.conversations.get_session(created["session"]["id"])
        assert session.user_id == "alice" and session.instructions == "Speak like a pirate."
    async with realtime(live, secret) as client:
        error = await refused(client, 4401)
        assert "used already" in error["message"]


async def test_a_secret_opens_ws_for_its_own_user_only(live) -> None:
    key = (await live.runtime.keys.create("alice")).secret
    mine, bobs = await live.new_session("alice"), await live.new_session("bob")
    secret = (await mint(live, key, session={"type": "realtime", "instructions": "Be brief."}))
    async with live.connect("bob", bobs, subprotocols=[
            "realtime", f"openai-insecure-api-key.{secret['value']}"]) as client:
        await refused(client, 4404)  # bob's session: as unknown (and the secret is spent)
    secret = (await mint(live, key, session={"type": "realtime", "instructions": "Be brief."}))
    async with live.connect("alice", mine, subprotocols=[
            "realtime", f"openai-insecure-api-key.{secret['value']}"]) as client:
        assert (await client.next())["type"] == "session.created"
        updated = await client.next()  # the engine's own events on /ws
        assert updated["type"] == "session.updated"
        assert updated["session"]["instructions"] == "Be brief."


async def test_an_expired_or_unknown_secret_is_refused(live) -> None:
    key = (await live.runtime.keys.create("alice")).secret
    secret = (await mint(live, key, expires_after={"anchor": "created_at", "seconds": 10}))
    async with live.runtime.database.session() as s:  # ten seconds later
        await s.execute(update(ClientSecret).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    async with realtime(live, secret["value"]) as client:
        assert "expired" in (await refused(client, 4401))["message"]
    async with realtime(live, "ek_" + "n" * 43) as client:
        assert (await refused(client, 4401))["message"] == "unknown client secret"


async def test_a_voice_the_server_lacks_is_refused_at_mint_time(tmp_path) -> None:
    from tests.support.offered import offered_repository

    repository = offered_repository(tmp_path / "repository")
    # No model is called: the voices offered are read from the repository's manifests.
    async with live_server(tmp_path, model_repository=str(repository),
                           memory_enabled=False) as server, \
            httpx.AsyncClient(base_url=server.base_url) as http:
        r = await http.post(MINT, params={"user_id": "alice"}, json={"session": {
            "type": "realtime", "audio": {"output": {"voice": "nonexistent-voice"}}}})
        assert_error(r, 400, "session.voice", "unknown voice")
        r = await http.post(MINT, params={"user_id": "alice"}, json={"session": {
            "type": "realtime", "audio": {"output": {"voice": "kss"}}}})
        assert r.status_code == 200, r.text


async def test_the_openai_sdk_mints_and_connects_with_a_client_secret(live) -> None:
    from openai import AsyncOpenAI

    key = (await live.runtime.keys.create("alice")).secret
    backend = AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key=key)
    if not hasattr(backend.realtime, "client_secrets"):
        pytest.skip("this openai SDK has no client.realtime.client_secrets")
    # The clock is read before the request: a loaded machine may take seconds to answer.
    asked_at = int(time.time())
    minted = await backend.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 120}, session=PIRATE)
    answered_at = time.time()
    assert minted.value.startswith("ek_")
    assert asked_at + 120 <= minted.expires_at <= answered_at + 121
    assert minted.session.instructions == "Speak like a pirate."
    browser = AsyncOpenAI(base_url=f"{live.base_url}/v1", api_key=minted.value,
                          websocket_base_url=f"{live.ws_url}/v1")
    async with browser.realtime.connect(model="gpt-realtime") as connection:
        assert (await connection.recv()).type == "session.created"
        updated = await connection.recv()
        assert updated.type == "session.updated"
        assert updated.session.instructions == "Speak like a pirate."


async def test_revoking_the_minting_key_withdraws_its_secrets(live) -> None:
    key = await live.runtime.keys.create("alice")
    secret = (await mint(live, key.secret))["value"]
    await live.runtime.keys.revoke(key.record.id)
    async with realtime(live, secret) as client:
        assert "has been revoked" in (await refused(client, 4401))["message"]


async def test_a_beta_shaped_session_applies_on_a_ga_connection(live) -> None:
    """Minted in the beta shape (``OpenAI-Beta: realtime=v1``), used by a GA client: the
    grant is kept in the engine's shape and rewritten for the connection's protocol."""
    key = (await live.runtime.keys.create("alice")).secret
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        r = await http.post(MINT, json={"session": {
            "instructions": "Whisper.", "voice": "alloy", "turn_detection": None,
            "input_audio_format": "g711_ulaw", "modalities": ["text"]}},
            headers={**bearer(key), "OpenAI-Beta": "realtime=v1"})
    assert r.status_code == 200, r.text
    beta = r.json()["session"]
    assert beta["voice"] == "alloy" and beta["turn_detection"] is None
    assert beta["input_audio_format"] == "g711_ulaw" and beta["modalities"] == ["text"]
    async with realtime(live, r.json()["value"]) as client:
        assert (await client.next())["type"] == "session.created"
        session = (await client.next())["session"]
    assert session["instructions"] == "Whisper." and session["output_modalities"] == ["text"]
    assert session["audio"]["input"]["turn_detection"] is None
    assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session["audio"]["output"]["voice"] == "alloy"


async def test_the_webrtc_offer_path_takes_a_client_secret(live) -> None:
    """``POST /v1/realtime/calls`` (the WebRTC transport's) is a realtime connection: the
    middleware redeems a client secret there, once, into a principal carrying the grant."""
    key = (await live.runtime.keys.create("alice")).secret
    minted = await mint(live, key, session={"type": "realtime", "instructions": "Hi."})
    seen: list[Principal] = []

    async def offer_handler(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        seen.append(scope["user"])

    middleware = auth_middleware(offer_handler)

    async def post(path: str) -> None:
        scope = {"type": "http", "method": "POST", "path": path, "app": live.app,
                 "headers": [(b"authorization", f"Bearer {minted['value']}".encode())]}
        await middleware(scope, None, None)  # type: ignore[arg-type]

    with pytest.raises(Unauthorized, match="only open realtime"):
        await post("/v1/realtime/callsx")
    await post("/v1/realtime/calls")
    [principal] = seen
    assert principal.user_id == "alice" and not principal.admin
    assert principal.client_secret is not None
    assert principal.client_secret.session == {"instructions": "Hi.", "type": "realtime"}
    assert principal.client_secret.model == "llm"
    with pytest.raises(Unauthorized, match="used already"):
        await post("/v1/realtime/calls")
