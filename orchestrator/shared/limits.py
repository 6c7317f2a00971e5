"""Per-key limits kept in Redis, so N replicas enforce one allowance rather than N.

Each check is one Lua script (atomic: two replicas cannot both take the last token) that
reads the clock with Redis' ``TIME``, so replicas whose clocks disagree still refill a
bucket at one rate. Buckets behave as :class:`orchestrator.auth.limits.Bucket` does: a
full bucket lets one oversized charge through and goes into debt.

Realtime session slots are a sorted set per key of slot id -> expiry (server time, ms).
A slot lives while its replica's heartbeat renews it; a crashed replica's slots drop out
of the count once they expire, without anyone releasing them.
"""

from __future__ import annotations

from redis.asyncio import Redis

from orchestrator.shared.connection import SharedRedis

TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity, rate, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'level', 'updated')
local level = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(0, now - updated) * rate)
local need = math.min(amount, capacity)
local wait = 0
if level >= need then level = level - amount else wait = (need - level) / rate end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - level) / rate * 1000) + 1000)
return {tostring(level), tostring(wait)}
"""
"""KEYS: the bucket; ARGV: capacity, refill per second, amount. Returns the level after
and the seconds to wait (0: taken). Strings, because Redis truncates Lua numbers."""

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

OPEN_SLOT = _NOW_MS + """
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[2])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
"""
"""KEYS: the key's slots; ARGV: the limit, the slot id, TTL ms. 1: taken, 0: full."""

RENEW_SLOTS = _NOW_MS + """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""
"""KEYS: slot sets; ARGV: TTL ms, then the slot id of each key. ZADD rather than an
update, so slots taken while Redis was down (or lost with its data) are counted again."""


class SharedLimits:
    """Token buckets and realtime slots in Redis (``Unavailable`` while it is down)."""

    def __init__(self, shared: SharedRedis) -> None:
        self.shared = shared
        self._take = shared.client.register_script(TAKE)
        self._open = shared.client.register_script(OPEN_SLOT)
        self._renew = shared.client.register_script(RENEW_SLOTS)
        self._held: dict[str, str] = {}
        """Slot id -> key id, of the slots this replica holds (renewed by the heartbeat)."""
        shared.heartbeat(self._beat)

    async def take(self, unit: str, key_id: str, capacity: float, per_second: float,
                   amount: float) -> tuple[float, float]:
        """Charge ``amount``; (the level after, seconds to wait: 0.0 when taken)."""
        level, wait = await self.shared.run(lambda client: self._take(
            keys=[self.shared.key("bucket", unit, key_id)],
            args=[repr(capacity), repr(per_second), repr(amount)], client=client))
        return float(level), float(wait)

    async def open_slot(self, key_id: str, limit: int, slot: str) -> bool:
        """Take a realtime slot for ``key_id``; False when ``limit`` are open everywhere."""
        taken = await self.shared.run(lambda client: self._open(
            keys=[self.shared.key("slots", key_id)],
            args=[limit, slot, self.shared.lease_ttl_ms], client=client))
        if taken:
            self._held[slot] = key_id
        return bool(taken)

    def hold(self, key_id: str, slot: str) -> None:
        """Keep renewing a slot taken while Redis was down: it counts once Redis is back."""
        self._held[slot] = key_id

    def close_slot(self, key_id: str, slot: str) -> None:
        """Give the slot back (in the background: the caller is a ``finally``)."""
        self._held.pop(slot, None)
        self.shared.spawn(self.shared.run(
            lambda client: client.zrem(self.shared.key("slots", key_id), slot)))

    async def _beat(self, client: Redis) -> None:
        if not self._held:
            return
        slots = list(self._held.items())
        await self._renew(keys=[self.shared.key("slots", key) for _, key in slots],
                          args=[self.shared.lease_ttl_ms, *(slot for slot, _ in slots)],
                          client=client)
