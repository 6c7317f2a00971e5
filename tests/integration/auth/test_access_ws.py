"""Access control on the realtime WebSocket (a real uvicorn socket): the key by header or
browser subprotocol, another user's session 404, concurrent and audio limits, Origin."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import numpy as np
import pytest
import websockets

from tests.integration.auth.conftest import ADMIN_KEY
from tests.support.realtime import LiveServer, refused, tiny_voice_server

pytestmark = [pytest.mark.asyncio, pytest.mark.triton]


@pytest.fixture
async def live(tmp_path, tiny_voice) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    async with tiny_voice_server(tmp_path, tiny_voice, auth_mode="required",
                                 admin_api_key=ADMIN_KEY, rate_limit_realtime_sessions=1,
                                 rate_limit_audio_seconds_per_minute=2.0) as server:
        yield server


async def key_for(live: LiveServer, user_id: str) -> str:
    return (await live.runtime.keys.create(user_id)).secret


def bearer(key: str) -> dict:
    return {"additional_headers": {"Authorization": f"Bearer {key}"}}



async def test_no_or_wrong_key_is_refused_with_4401(live) -> None:
    sid = await live.new_session("alice")
    async with live.connect("alice", sid) as client:
        error = await refused(client, 4401)
        assert error["code"] == "unauthorized" and error["type"] == "authentication_error"
    async with live.connect("alice", sid, **bearer("vck_wrong")) as client:
        assert (await refused(client, 4401))["code"] == "unauthorized"
    async with live.connect("alice", sid, subprotocols=[
            "realtime", "openai-insecure-api-key.vck_wrong"]) as client:
        assert client.ws.subprotocol == "realtime"  # accepted, so a browser sees the error
        assert (await refused(client, 4401))["code"] == "unauthorized"


async def test_header_and_browser_subprotocol_keys_connect(live) -> None:
    key = await key_for(live, "alice")
    sid = await live.new_session("alice")
    async with live.connect("alice", sid, **bearer(key)) as client:
        assert (await client.next())["type"] == "session.created"
    async with live.connect("alice", sid, subprotocols=[
            "realtime", f"openai-insecure-api-key.{key}"]) as client:
        assert client.ws.subprotocol == "realtime"  # never the key
        assert (await client.next())["type"] == "session.created"


async def test_another_users_session_is_4404_like_an_unknown_one(live) -> None:
    bob = await key_for(live, "bob")
    sid = await live.new_session("alice")
    for user, session in (("alice", sid), ("bob", sid), ("alice", "nope")):
        async with live.connect(user, session, **bearer(bob)) as client:
            error = await refused(client, 4404)
            assert error["message"] == f"session {session!r} not found"
    turns, _ = await live.runtime.conversations.list_turns(sid)
    assert turns == []
    async with live.connect("alice", sid, **bearer(ADMIN_KEY)) as client:  # admins may
        assert (await client.next())["type"] == "session.created"


async def test_concurrent_realtime_sessions_per_key(live) -> None:
    key, other = await key_for(live, "alice"), await key_for(live, "bob")
    first, second = await live.new_session("alice"), await live.new_session("alice")
    async with live.connect("alice", first, **bearer(key)) as client:
        assert (await client.next())["type"] == "session.created"
        async with live.connect("alice", second, **bearer(key)) as extra:
            error = await refused(extra, 4429)
            assert error["code"] == "rate_limited" and error["type"] == "rate_limit_error"
        bobs = await live.new_session("bob")
        async with live.connect("bob", bobs, **bearer(other)) as client_b:  # own allowance
            assert (await client_b.next())["type"] == "session.created"
    async with live.connect("alice", second, **bearer(key)) as client:  # released on close
        assert (await client.next())["type"] == "session.created"


async def test_audio_seconds_over_the_limit_get_an_error_event(live) -> None:
    key = await key_for(live, "alice")
    sid = await live.new_session("alice")
    second = base64.b64encode(np.zeros(24000, np.int16).tobytes()).decode()  # 1 s at 24 kHz
    async with live.connect("alice", sid, **bearer(key)) as client:
        assert (await client.next())["type"] == "session.created"
        for _ in range(2):
            await client.send("input_audio_buffer.append", audio=second)
        await client.send("input_audio_buffer.append", audio=second, event_id="over")
        error = await client.next()
        assert error["type"] == "error" and error["event_id"] == "over"
        assert error["error"]["code"] == "rate_limited"
        await client.send("input_audio_buffer.clear")  # the socket stays usable
        assert (await client.next())["type"] == "input_audio_buffer.cleared"


async def test_cross_site_websockets_are_refused(live) -> None:
    key = await key_for(live, "alice")
    sid = await live.new_session("alice")
    with pytest.raises(websockets.InvalidStatus) as refused_handshake:
        async with live.connect("alice", sid, origin="https://evil.example", **bearer(key)):
            pass
    assert refused_handshake.value.response.status_code == 403
    host = live.base_url.removeprefix("http://")
    async with live.connect("alice", sid, origin=f"http://{host}", **bearer(key)) as client:
        assert (await client.next())["type"] == "session.created"
