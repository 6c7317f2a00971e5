"""One live socket per session across replicas, and revocations reaching every replica,
through a real redis-server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orchestrator.auth.authenticator import Authenticator
from orchestrator.close_codes import CLOSE_ENDED
from orchestrator.errors import Unauthorized
from orchestrator.realtime.live import LiveSessions, LiveSocket
from orchestrator.shared.connection import SharedRedis
from orchestrator.shared.revocations import REVOKED_CHANNEL, follow_revocations
from storage.api_keys import KeyStore
from storage.database import Database
from storage.migrate import upgrade_async
from tests.support.redis import PrivateRedis


async def _socket(live: LiveSessions, session_id: str, claimed: asyncio.Event,
                  out: dict[str, LiveSocket]) -> None:
    """What a transport does: claim, serve until the server closes it, release."""
    socket = await live.claim(session_id)
    out["socket"] = socket
    claimed.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        if socket.reason is None:
            raise
    finally:
        live.release(socket)


async def _open(live: LiveSessions, session_id: str) -> tuple[asyncio.Task, LiveSocket]:
    claimed, out = asyncio.Event(), {}
    task = asyncio.create_task(_socket(live, session_id, claimed, out))
    await asyncio.wait_for(claimed.wait(), 20)
    return task, out["socket"]


async def test_a_second_socket_on_another_replica_replaces_the_first(replicas) -> None:
    one, two = await replicas(), await replicas()
    first_task, first = await _open(one.live, "sess_a")
    started = time.monotonic()
    second_task, second = await _open(two.live, "sess_a")
    assert first.reason is not None, "the socket on the first replica was not closed"
    assert first.reason[1] == 4409 and "replaces this one" in first.reason[0].message
    assert first_task.done() and second.reason is None
    assert time.monotonic() - started < 2  # a message and a release, not the handover time
    second_task.cancel()
    await asyncio.gather(second_task, return_exceptions=True)


async def test_ending_a_session_closes_its_socket_on_another_replica(replicas) -> None:
    one, two = await replicas(), await replicas()
    task, socket = await _open(one.live, "sess_b")
    await two.live.end("sess_b")
    await asyncio.wait_for(task, 2)
    assert socket.reason is not None and socket.reason[1] == CLOSE_ENDED


async def test_a_crashed_replicas_session_lease_expires(
        replicas, redis_server_empty: PrivateRedis) -> None:
    crashed = await replicas(REDIS_LEASE_TTL_S="3")
    other = await replicas(REDIS_LEASE_TTL_S="3")
    task, socket = await _open(crashed.live, "sess_c")
    await asyncio.sleep(4)  # past the TTL: the heartbeat keeps the lease
    lease = await other.shared.client.get(other.shared.key("session", "sess_c"))
    assert lease == socket.token
    # The replica dies: no heartbeat, no subscription, no release.
    crashed.shared._closing = True
    crashed.shared._loop_task.cancel()
    await asyncio.sleep(0.1)
    started = time.monotonic()
    other_task, other_socket = await _open(other.live, "sess_c")
    waited = time.monotonic() - started
    assert socket.reason is None  # nobody closed it: its replica is "gone"
    assert 0.5 < waited < 5, waited  # the lease's expiry (3 s), not the 15 s handover
    lease = await other.shared.client.get(other.shared.key("session", "sess_c"))
    assert lease == other_socket.token
    for t in (task, other_task):
        t.cancel()
    await asyncio.gather(task, other_task, return_exceptions=True)


@pytest.fixture
async def keys(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await upgrade_async(url)
    database = Database(url)
    yield KeyStore(database)
    await database.close()


async def test_a_revocation_reaches_another_replica_within_a_second(
        keys: KeyStore, redis_server_empty: PrivateRedis) -> None:
    made = await keys.create("alice")
    replicas = []
    for _ in range(2):
        shared = SharedRedis(redis_server_empty.url, lease_ttl_s=15)
        auth = Authenticator(keys, admin_key=None, cache_s=300)  # trusted 5 min if cached
        follow_revocations(shared, auth)
        await shared.start()
        replicas.append((shared, auth))
    (_, one), (_, two) = replicas
    try:
        await one.authenticate(made.secret)
        await two.authenticate(made.secret)  # cached on both
        await asyncio.sleep(0.2)  # both subscribed
        await keys.revoke(made.record.id)
        revoked_at = time.monotonic()
        await one.revoked(made.record.id)
        while True:
            try:
                await two.authenticate(made.secret)
            except Unauthorized as exc:
                assert "revoked" in exc.message
                break
            assert time.monotonic() - revoked_at < 1.0, "still accepted after a second"
            await asyncio.sleep(0.02)
    finally:
        for shared, auth in replicas:
            await auth.close()
            await shared.close()


async def test_voicechat_keys_revoke_tells_the_running_replicas(
        redis_server_empty: PrivateRedis) -> None:
    from orchestrator.auth.cli import _announce

    shared = SharedRedis(redis_server_empty.url, lease_ttl_s=15)
    forgotten: list[str] = []
    shared.subscribe(REVOKED_CHANNEL, forgotten.append)
    await shared.start()
    try:
        await asyncio.sleep(0.2)  # subscribed
        assert "every replica" in await _announce(redis_server_empty.url, "key_x")
        for _ in range(50):
            if forgotten:
                break
            await asyncio.sleep(0.02)
        assert forgotten == ["key_x"]
    finally:
        await shared.close()
    assert "does not answer" in await _announce("redis://127.0.0.1:1/0", "key_y")


async def test_during_an_outage_each_replica_decides_and_redis_settles_it_after(
        replicas, redis_server_empty: PrivateRedis) -> None:
    """Redis down: a session may get a socket on each replica (as without REDIS_URL).
    Redis back: the heartbeats write the leases again, one socket keeps the session and
    the other is closed as replaced."""
    one = await replicas(REDIS_LEASE_TTL_S="3")
    two = await replicas(REDIS_LEASE_TTL_S="3")
    redis_server_empty.stop()
    await one.shared.publish("probe", "x")  # each finds Redis gone
    await two.shared.publish("probe", "x")
    assert not one.shared.up and not two.shared.up
    task_one, socket_one = await _open(one.live, "sess_d")
    task_two, socket_two = await _open(two.live, "sess_d")
    assert socket_one.reason is None and socket_two.reason is None

    redis_server_empty.start()
    deadline = time.monotonic() + 10
    while socket_one.reason is None and socket_two.reason is None:
        assert time.monotonic() < deadline, "both sockets still serve the session"
        await asyncio.sleep(0.05)
    closed, kept = (socket_one, socket_two) if socket_one.reason else (socket_two, socket_one)
    assert closed.reason is not None and closed.reason[1] == 4409 and kept.reason is None
    lease = await one.shared.client.get(one.shared.key("session", "sess_d"))
    assert lease == kept.token
    for t in (task_one, task_two):
        t.cancel()
    await asyncio.gather(task_one, task_two, return_exceptions=True)
