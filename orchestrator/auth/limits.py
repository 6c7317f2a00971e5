"""Per-key limits: requests per minute, input audio seconds per minute, open realtime
sessions.

Rates are token buckets that refill continuously (a key may burst up to a minute's
allowance, then goes at the steady rate). Headers use OpenAI's names
(``x-ratelimit-limit-requests``, ``-remaining-``, ``-reset-``; ``-audio-seconds`` for
audio), and a refusal is :class:`RateLimited` with ``Retry-After``.

With ``REDIS_URL`` the buckets and the session slots live in Redis and every replica
enforces the same allowance (:mod:`orchestrator.shared.limits`); without it, or while
Redis does not answer, they live in this process and behind N replicas a key can reach N
times each limit (docs/access-control.md says so). Open access (AUTH_MODE=off with no
key) is unlimited.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.auth.principal import Principal
from orchestrator.errors import RateLimited
from orchestrator.settings import Settings
from orchestrator.shared.connection import Unavailable
from orchestrator.telemetry.metrics import RATE_LIMITED

if TYPE_CHECKING:
    from orchestrator.shared.limits import SharedLimits

REALTIME_CHARGE_S = 1.0
"""Realtime audio is charged to a shared bucket once this much has arrived, rather than
one Redis call per 20 ms chunk."""
_CLOSING: set[asyncio.Task] = set()
"""Charges of ended sockets' last audio, in flight."""


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, secs = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass
class Bucket:
    capacity: float
    per_second: float
    level: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.capacity

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now

    def take(self, amount: float, now: float) -> float:
        """Take ``amount``; 0.0 when taken, else the seconds until it could be. One
        charge larger than the whole allowance passes on a full bucket and leaves it in
        debt, so a long upload is slow to repeat rather than never accepted."""
        self._refill(now)
        if self.level >= min(amount, self.capacity):
            self.level -= amount
            return 0.0
        return (min(amount, self.capacity) - self.level) / self.per_second

    def headers(self, unit: str, now: float) -> dict[str, str]:
        self._refill(now)
        return {f"x-ratelimit-limit-{unit}": f"{self.capacity:g}",
                f"x-ratelimit-remaining-{unit}": str(max(0, math.floor(self.level))),
                f"x-ratelimit-reset-{unit}": _duration((self.capacity - self.level)
                                                       / self.per_second)}


class RateLimiter:
    def __init__(self, settings: Settings, shared: SharedLimits | None = None) -> None:
        self.shared = shared
        self.requests_per_minute = settings.rate_limit_requests_per_minute
        self.audio_per_minute = settings.rate_limit_audio_seconds_per_minute
        self.realtime_sessions = settings.rate_limit_realtime_sessions
        self._requests: dict[str, Bucket] = {}
        self._audio: dict[str, Bucket] = {}
        self._open: dict[str, int] = {}

    async def request(self, principal: Principal) -> dict[str, str]:
        """Count one request; the headers to send, or RateLimited."""
        if principal.key_id is None or not self.requests_per_minute:
            return {}
        return await self._take(self._requests, principal.key_id, self.requests_per_minute,
                                1.0, "requests", "requests per minute")

    async def audio(self, principal: Principal, seconds: float) -> dict[str, str]:
        """Charge ``seconds`` of input audio; the headers, or RateLimited."""
        if principal.key_id is None or not self.audio_per_minute or seconds <= 0:
            return {}
        return await self._take(self._audio, principal.key_id, self.audio_per_minute,
                                seconds, "audio-seconds", "seconds of audio per minute")

    def audio_meter(self, principal: Principal) -> AudioMeter:
        """A realtime socket's meter (call ``close`` when the socket ends)."""
        return AudioMeter(self, principal,
                          REALTIME_CHARGE_S if self.shared is not None else 0.0)

    def realtime_limits(self, principal: Principal) -> list[dict[str, Any]]:
        """The key's request allowance now, as OpenAI's ``rate_limits.updated`` lists it
        (empty when the key has no limit). With Redis, as of this replica's last charge
        to the key, refilled since."""
        bucket = self._requests.get(principal.key_id or "")
        if bucket is None:
            return []
        bucket._refill(time.monotonic())
        return [{"name": "requests", "limit": int(bucket.capacity),
                 "remaining": max(0, math.floor(bucket.level)),
                 "reset_seconds": round((bucket.capacity - bucket.level) / bucket.per_second,
                                        3)}]

    async def open_realtime(self, principal: Principal) -> Callable[[], None]:
        """Take one of the key's concurrent realtime sessions; returns its release."""
        key = principal.key_id
        if key is None or not self.realtime_sessions:
            return lambda: None
        slot = uuid.uuid4().hex
        try:
            if self.shared is None:
                raise Unavailable
            full = not await self.shared.open_slot(key, self.realtime_sessions, slot)
        except Unavailable:  # this replica's own count (all it holds, shared or not)
            full = self._open.get(key, 0) >= self.realtime_sessions
            if not full and self.shared is not None:
                self.shared.hold(key, slot)
        if full:
            RATE_LIMITED.labels("realtime-sessions").inc()
            raise RateLimited(f"this key already has {self.realtime_sessions} realtime "
                              f"sessions open (RATE_LIMIT_REALTIME_SESSIONS); close one first",
                              headers={"x-ratelimit-limit-realtime-sessions":
                                       str(self.realtime_sessions),
                                       "x-ratelimit-remaining-realtime-sessions": "0"})
        self._open[key] = self._open.get(key, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[key] -= 1
                if not self._open[key]:
                    del self._open[key]
                if self.shared is not None:
                    self.shared.close_slot(key, slot)

        return release

    async def _take(self, buckets: dict[str, Bucket], key: str, per_minute: float,
                    amount: float, unit: str, what: str) -> dict[str, str]:
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = Bucket(float(per_minute), per_minute / 60.0)
        try:
            if self.shared is None:
                raise Unavailable
            level, wait = await self.shared.take(unit, key, bucket.capacity,
                                                 bucket.per_second, amount)
            # Mirrored here: the headers, rate_limits.updated and an outage's fallback
            # all start from the shared level.
            bucket.level, bucket.updated = level, time.monotonic()
        except Unavailable:  # in process: per replica until Redis answers again
            wait = bucket.take(amount, time.monotonic())
        now = time.monotonic()
        headers = bucket.headers(unit, now)
        if wait:
            RATE_LIMITED.labels(unit).inc()
            retry = max(1, math.ceil(wait))
            raise RateLimited(f"rate limit of {per_minute:g} {what} reached for this key; "
                              f"retry in {retry} s",
                              headers={**headers, "retry-after": str(retry),
                                       "retry-after-ms": str(math.ceil(wait * 1000))})
        return headers


class AudioMeter:
    """Charges a realtime socket's input audio: each chunk in process, or about a second
    at a time in Redis (the chunk that finds the allowance spent is the one refused)."""

    def __init__(self, limiter: RateLimiter, principal: Principal, batch_s: float) -> None:
        self.limiter, self.principal, self.batch_s = limiter, principal, batch_s
        self.pending = 0.0

    async def __call__(self, seconds: float) -> None:
        self.pending += seconds
        if self.pending >= self.batch_s:
            charge, self.pending = self.pending, 0.0
            await self.limiter.audio(self.principal, charge)

    def close(self) -> None:
        """The socket ended: charge what is left in the background (so short sockets
        are not free); nothing can be refused any more."""
        if self.pending <= 0:
            return
        charge, self.pending = self.pending, 0.0

        async def rest() -> None:
            with contextlib.suppress(RateLimited):
                await self.limiter.audio(self.principal, charge)

        task = asyncio.create_task(rest())
        _CLOSING.add(task)  # held until done: a task nobody holds may be collected
        task.add_done_callback(_CLOSING.discard)
