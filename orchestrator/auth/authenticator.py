"""API key -> :class:`Principal`, with a short cache so most requests touch no database.

A verified key is trusted for ``AUTH_KEY_CACHE_S`` seconds; revoking through this process
drops it from the cache at once. Revoking through another replica takes up to that long,
unless ``REDIS_URL`` is set: then the revocation is announced to every replica
(:mod:`orchestrator.shared.revocations`) and applies everywhere at once.
``last_used_at`` is written at most once a minute per key (it is a write per request
otherwise).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from orchestrator.auth.principal import BOOTSTRAP_KEY_ID, Principal
from orchestrator.errors import Unauthorized
from storage.api_keys import ApiKeyRecord, KeyStore, hash_secret

log = logging.getLogger(__name__)
TOUCH_EVERY_S = 60.0
CACHE_ENTRIES = 10_000
MAX_KEY_CHARS = 256


class Authenticator:
    def __init__(self, keys: KeyStore, *, admin_key: str | None, cache_s: float) -> None:
        self.keys = keys
        self._admin_key = admin_key
        self._cache_s = cache_s
        # secret hash -> (record or None for "no such key", when cached)
        self._cache: OrderedDict[str, tuple[ApiKeyRecord | None, float]] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._touches: set[asyncio.Task] = set()
        self.announce: Callable[[str], Awaitable[None]] | None = None
        """Tells the other replicas of a revocation (set with REDIS_URL)."""

    async def authenticate(self, secret: str) -> Principal:
        """The principal of a presented key; Unauthorized for a wrong or revoked one."""
        if not secret or len(secret) > MAX_KEY_CHARS or not secret.isascii():
            raise Unauthorized("invalid API key")
        if self._admin_key and hmac.compare_digest(secret.encode(), self._admin_key.encode()):
            return Principal(key_id=BOOTSTRAP_KEY_ID, user_id=None, admin=True)
        record = await self._lookup(secret)
        if record is None:
            raise Unauthorized("invalid API key")
        if record.revoked_at is not None:
            raise Unauthorized(f"API key {record.id} has been revoked")
        self._touch(record.id)
        return Principal(key_id=record.id, user_id=record.user_id, admin=record.admin)

    async def revoked(self, key_id: str) -> None:
        """The key was revoked through this process: forget it here and everywhere."""
        self.forget(key_id)
        if self.announce is not None:
            await self.announce(key_id)

    def forget(self, key_id: str) -> None:
        """Drop a key from the cache (it was revoked, here or on another replica)."""
        for digest, (record, _) in list(self._cache.items()):
            if record is not None and record.id == key_id:
                del self._cache[digest]

    def forget_all(self) -> None:
        """Empty the cache (revocations may have been missed)."""
        self._cache.clear()

    async def _lookup(self, secret: str) -> ApiKeyRecord | None:
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[1] < self._cache_s:
            return cached[0]
        record = await self.keys.find(secret)
        if self._cache_s > 0:
            self._cache[digest] = (record, now)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_ENTRIES:  # bounded: guesses cannot grow it
                self._cache.popitem(last=False)
        return record

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        self._touched[key_id] = now
        task = asyncio.create_task(self._write_touch(key_id, datetime.now(UTC)))
        self._touches.add(task)
        task.add_done_callback(self._touches.discard)

    async def _write_touch(self, key_id: str, when: datetime) -> None:
        try:
            await self.keys.touch(key_id, when)
        except Exception as exc:  # a lost last-used time must never fail a request
            log.warning("could not record the use of key %s: %s", key_id, exc)

    async def close(self) -> None:
        if self._touches:
            await asyncio.gather(*self._touches, return_exceptions=True)
