"""The process's Redis client, whether Redis answers now, and the one loop that keeps the
subscriptions and the lease heartbeats going.

Requests never wait on a Redis that is known to be down: :meth:`SharedRedis.run` raises
:class:`Unavailable` at once and the caller uses its in-process state (per-replica
limits, as without ``REDIS_URL``). The first failed call marks Redis down; the loop then
pings with backoff and marks it up again, re-registers what this replica holds (the next
heartbeat) and runs the recovery hooks (what a missed message may have left stale).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestrator.telemetry.metrics import SHARED_STATE_FALLBACK

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_ERRORS = (redis_errors.RedisError, OSError)
"""Failures after which this replica goes on alone: not only a lost connection, but also
a Redis that refuses (out of memory, a read-only replica after a failover, a wrong
password): serving on per-replica limits beats failing requests. Logged, and reported by
the health check, like an outage."""
TICK_S = 0.5
"""How often the loop wakes (messages are dispatched as they come): a Redis that came back
is noticed within this."""
BACKOFF_S = (0.2, 5.0)
"""First and longest wait between reconnect attempts."""
PREFIX = "voicechat:"


class Unavailable(Exception):
    """Redis does not answer: use this replica's own state."""


class SharedRedis:
    def __init__(self, url: str, *, lease_ttl_s: float, timeout_s: float = 0.5) -> None:
        # No retries inside redis-py: a request pays for one failed attempt at most, then
        # Redis is marked down and the loop below does the retrying.
        self.client: Redis = Redis.from_url(url, socket_timeout=timeout_s,
                                            socket_connect_timeout=timeout_s,
                                            retry=Retry(NoBackoff(), 0), decode_responses=True)
        self.lease_ttl_s = lease_ttl_s
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        """The same, as Redis' PX and the scripts take it."""
        self.replica = uuid.uuid4().hex[:12]
        self.up = False
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._heartbeats: list[Callable[[Redis], Awaitable[None]]] = []
        self._recoveries: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._backoff = BACKOFF_S[0]
        self._down_logged = False
        self._next_beat = 0.0
        self._closing = False

    def key(self, *parts: str) -> str:
        return PREFIX + ":".join(parts)

    # --- wiring (before start) ---------------------------------------------------------

    def subscribe(self, channel: str, handler: Callable[[str], None]) -> None:
        """Call ``handler`` with each message published on ``channel`` (by any replica)."""
        self._handlers[channel] = handler

    def heartbeat(self, beat: Callable[[Redis], Awaitable[None]]) -> None:
        """Run ``beat`` every third of the lease TTL while Redis answers (and at once when
        it comes back), so leases of this replica live as long as it does."""
        self._heartbeats.append(beat)

    def on_recovery(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` when Redis answers again after an outage."""
        self._recoveries.append(hook)

    async def start(self) -> None:
        with contextlib.suppress(Unavailable):
            await self.run(lambda client: client.ping(), probe=True)
            self._mark_up()
        self._loop_task = asyncio.create_task(self._loop(), name="redis-shared-state")

    async def close(self) -> None:
        self._closing = True
        if self._loop_task is not None:
            # redis-py can swallow a cancel that lands while it connects; the flag ends
            # the loop at its next tick then, and a second cancel covers the rest.
            for _ in range(2):
                self._loop_task.cancel()
                done, _ = await asyncio.wait({self._loop_task}, timeout=TICK_S * 4)
                if done:
                    break
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        await self.client.aclose()

    # --- calls --------------------------------------------------------------------------

    async def run(self, op: Callable[[Redis], Awaitable[T]], *, probe: bool = False) -> T:
        """``op(client)``; Unavailable while Redis is down (without trying, unless
        ``probe``) or when this call finds it gone."""
        if not self.up and not probe:
            raise Unavailable
        try:
            return await op(self.client)
        except REDIS_ERRORS as exc:
            self._mark_down(exc)
            raise Unavailable from exc

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Best-effort background call (a release, a publish): a failure is an outage the
        lease TTL covers, never an error of the request that caused it."""

        async def quietly() -> None:
            with contextlib.suppress(Unavailable):
                await coro

        task = asyncio.create_task(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self, channel: str, message: str) -> bool:
        try:
            await self.run(lambda client: client.publish(channel, message))
            return True
        except Unavailable:
            return False

    async def probe(self) -> str:
        """Health check: raises while this replica runs on its own state."""
        if not self.up:
            raise RuntimeError("Redis (REDIS_URL) does not answer: rate limits, realtime "
                               "session slots and session leases are per replica until it "
                               "does")
        await self.run(lambda client: client.ping())
        return "limits and session leases shared across replicas"

    # --- up and down --------------------------------------------------------------------

    def _mark_up(self) -> None:
        if self.up:
            return
        self.up = True
        self._backoff = BACKOFF_S[0]
        self._next_beat = 0.0  # re-register this replica's leases at once
        SHARED_STATE_FALLBACK.set(0)
        if self._down_logged:
            self._down_logged = False
            log.warning("Redis answers again: limits and session leases are shared again")
            for hook in self._recoveries:
                hook()

    def _mark_down(self, exc: BaseException) -> None:
        self.up = False
        SHARED_STATE_FALLBACK.set(1)
        if not self._down_logged:  # once per outage, not once per request
            self._down_logged = True
            log.warning("Redis does not answer (%s): falling back to per-replica limits "
                        "and session leases until it does", exc or type(exc).__name__)

    async def _loop(self) -> None:
        while not self._closing:
            try:
                await self._connected()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                self._mark_down(exc)
            except Exception:  # a handler's bug must not end the loop
                log.exception("shared state loop failed; restarting it")
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_S[1])

    async def _connected(self) -> None:
        """Subscribe, then dispatch messages and beat until the connection fails."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            if self._handlers:
                await pubsub.subscribe(*self._handlers)
            await self.client.ping()
            self._mark_up()
            while not self._closing:
                if self._handlers:
                    message = await pubsub.get_message(timeout=TICK_S)
                    if message is not None and message["type"] == "message":
                        self._dispatch(message["channel"], message["data"])
                else:
                    await asyncio.sleep(TICK_S)
                if not self.up:  # a request failed meanwhile: is it really gone?
                    await self.client.ping()
                    self._mark_up()
                if time.monotonic() >= self._next_beat:
                    for beat in self._heartbeats:
                        await beat(self.client)
                    self._next_beat = time.monotonic() + self.lease_ttl_s / 3
        finally:
            # Bounded: closing a subscription whose read was just cancelled can wait on
            # that read forever (redis-py), and shutdown must not.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await pubsub.aclose()

    def _dispatch(self, channel: str, data: str) -> None:
        handler = self._handlers.get(channel)
        if handler is None:
            return
        try:
            handler(data)
        except Exception:
            log.exception("handling a message on %s failed", channel)
