"""Limits kept in a real redis-server, shared by two limiters as by two replicas."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.auth.principal import Principal
from orchestrator.errors import RateLimited
from orchestrator.telemetry.metrics import SHARED_STATE_FALLBACK
from tests.support.redis import PrivateRedis

ALICE = Principal(key_id="key_a", user_id="alice")


async def test_request_limit_is_one_allowance_across_replicas(replicas) -> None:
    one = await replicas(RATE_LIMIT_REQUESTS_PER_MINUTE="4")
    two = await replicas(RATE_LIMIT_REQUESTS_PER_MINUTE="4")
    await one.limits.request(ALICE)
    await two.limits.request(ALICE)
    await one.limits.request(ALICE)
    headers = await two.limits.request(ALICE)
    assert headers["x-ratelimit-remaining-requests"] == "0"  # the four are both's
    for limiter in (one.limits, two.limits):
        with pytest.raises(RateLimited) as over:
            await limiter.request(ALICE)
        assert over.value.headers["retry-after"] == "15"  # 4 a minute: one in 15 s
        assert over.value.headers["x-ratelimit-limit-requests"] == "4"
    # another key has its own allowance, on either replica
    assert await two.limits.request(Principal(key_id="key_b", user_id="bob"))


async def test_audio_seconds_are_charged_to_one_bucket(replicas) -> None:
    one = await replicas(RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE="60")
    two = await replicas(RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE="60")
    await one.limits.audio(ALICE, 50)
    with pytest.raises(RateLimited) as over:
        await two.limits.audio(ALICE, 20)  # 10 s left of 60, everywhere
    assert over.value.headers["retry-after"] == "10"
    assert (await two.limits.audio(ALICE, 5))["x-ratelimit-remaining-audio-seconds"] in {
        "4", "5"}  # refilled a little meanwhile (1 s a second)


async def test_realtime_slots_are_counted_across_replicas(replicas) -> None:
    one = await replicas(RATE_LIMIT_REALTIME_SESSIONS="2")
    two = await replicas(RATE_LIMIT_REALTIME_SESSIONS="2")
    first = await one.limits.open_realtime(ALICE)
    await two.limits.open_realtime(ALICE)
    with pytest.raises(RateLimited, match="2 realtime sessions"):
        await one.limits.open_realtime(ALICE)
    first()
    await asyncio.sleep(0.1)  # the release is sent in the background
    await one.limits.open_realtime(ALICE)
    with pytest.raises(RateLimited):
        await two.limits.open_realtime(ALICE)


async def test_a_crashed_replicas_slots_expire(replicas) -> None:
    crashed = await replicas(RATE_LIMIT_REALTIME_SESSIONS="1", REDIS_LEASE_TTL_S="3")
    other = await replicas(RATE_LIMIT_REALTIME_SESSIONS="1", REDIS_LEASE_TTL_S="3")
    await crashed.limits.open_realtime(ALICE)
    await asyncio.sleep(4)  # the heartbeat renews it: still taken after the TTL
    with pytest.raises(RateLimited):
        await other.limits.open_realtime(ALICE)
    crashed.shared._loop_task.cancel()  # dies without releasing: no heartbeat either
    await asyncio.sleep(3.5)
    await other.limits.open_realtime(ALICE)


async def test_redis_outage_falls_back_to_per_replica_limits_and_recovers(
        replicas, redis_server_empty: PrivateRedis) -> None:
    one = await replicas(RATE_LIMIT_REQUESTS_PER_MINUTE="2")
    two = await replicas(RATE_LIMIT_REQUESTS_PER_MINUTE="2")
    await one.limits.request(ALICE)
    await two.limits.request(ALICE)
    with pytest.raises(RateLimited):
        await one.limits.request(ALICE)
    assert await one.shared.probe()

    redis_server_empty.stop()
    # The first call that finds Redis gone still gets an answer, from this replica's
    # own bucket; it mirrors the shared level (0 left), so one's next request waits...
    with pytest.raises(RateLimited):
        await one.limits.request(ALICE)
    assert not one.shared.up
    with pytest.raises(RuntimeError, match="per replica"):
        await one.shared.probe()
    assert SHARED_STATE_FALLBACK._value.get() == 1
    # ...while a new key gets each replica's own allowance: 2 on one, 2 on two.
    bob = Principal(key_id="key_b", user_id="bob")
    for limiter in (one.limits, two.limits):
        await limiter.request(bob)
        await limiter.request(bob)
        with pytest.raises(RateLimited):
            await limiter.request(bob)
    assert not two.shared.up

    redis_server_empty.start()  # empty, as a Redis without persistence comes back
    await _until(lambda: one.shared.up and two.shared.up, 5)
    assert await one.shared.probe()
    assert SHARED_STATE_FALLBACK._value.get() == 0
    carol = Principal(key_id="key_c", user_id="carol")
    await one.limits.request(carol)
    await two.limits.request(carol)
    with pytest.raises(RateLimited):  # shared again: 2 in all
        await one.limits.request(carol)


async def _until(condition, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_realtime_audio_is_charged_a_second_at_a_time_and_in_full(replicas) -> None:
    one = await replicas(RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE="60")
    bucket = one.shared.key("bucket", "audio-seconds", ALICE.key_id or "")

    async def charged() -> float:  # from the bucket in Redis (refill: 1 s a second)
        level = await one.shared.client.hget(bucket, "level")
        return 60.0 - float(level) if level is not None else 0.0

    meter = one.limits.audio_meter(ALICE)
    for _ in range(40):  # 0.8 s in 20 ms chunks: not charged yet
        await meter(0.02)
    assert await charged() == 0.0
    for _ in range(10):  # a second reached: charged at once
        await meter(0.02)
    assert await charged() == pytest.approx(1.0, abs=0.01)
    await meter(0.5)
    meter.close()  # the socket ended with half a second uncharged: charged now
    await asyncio.sleep(0.1)
    assert await charged() == pytest.approx(1.5, abs=0.2)  # less what refilled meanwhile
