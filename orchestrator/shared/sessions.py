"""One live socket per session across replicas: a lease key per session.

The socket that serves a session holds ``session:<id>`` = its token (``SET NX PX``),
renewed by the heartbeat. A socket opening elsewhere finds the lease taken and publishes
a close request on :data:`CLOSE_CHANNEL`; the holder's replica closes its socket as it
would for a second socket in the same process (the error event, 4409, after its last
turn is stored), its release deletes the lease, and the newcomer takes it. Ending a
session publishes too, so its socket closes with 4410 wherever it is.

A crashed replica releases nothing: its leases expire after ``REDIS_LEASE_TTL_S``, and a
newcomer that waited the whole handover time takes the lease anyway (what one replica
does when an old socket will not go).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from redis.asyncio import Redis

from orchestrator.shared.connection import SharedRedis

CLOSE_CHANNEL = "voicechat:live:close"
ANY_HOLDER = "*"
"""A close request for whichever socket serves the session (it has ended)."""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Delete the lease only if it is still ours (a newcomer may have taken it over)."""

RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif not holder then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  else
    table.insert(lost, i)
  end
end
return lost
"""
"""KEYS: leases; ARGV: TTL ms, then each lease's token. Renews ours, takes back a lease
that vanished (Redis restarted empty, or it expired during an outage) and returns the
1-based positions of leases another socket now holds."""


class SessionLeases:
    """Lease calls raise ``Unavailable`` while Redis is down (then one replica decides)."""

    def __init__(self, shared: SharedRedis) -> None:
        self.shared = shared
        self._release = shared.client.register_script(RELEASE)
        self._renew = shared.client.register_script(RENEW)
        self._held: dict[str, str] = {}
        """Session id -> token of the leases this replica holds."""
        self.on_close_request: Callable[[str, str, str], None] = lambda *_: None
        """(session id, holder token or ANY_HOLDER, reason: replaced or ended)."""
        self.on_lost: Callable[[str, str], None] = lambda *_: None
        """(session id, token): another socket took over this replica's lease."""
        shared.subscribe(CLOSE_CHANNEL, self._message)
        shared.heartbeat(self._beat)

    async def claim(self, session_id: str, token: str) -> str | None:
        """Take the session's lease; None when taken, else the token holding it."""
        key = self._key(session_id)
        taken = await self.shared.run(lambda client: client.set(
            key, token, nx=True, px=self.shared.lease_ttl_ms))
        if taken:
            self._held[session_id] = token
            return None
        holder = await self.shared.run(lambda client: client.get(key))
        return holder or ""  # "" : it expired between the two calls; try again

    async def take(self, session_id: str, token: str) -> None:
        """Take the lease whoever holds it (after the handover time, or from this
        replica's own older socket)."""
        await self.shared.run(lambda client: client.set(
            self._key(session_id), token, px=self.shared.lease_ttl_ms))
        self._held[session_id] = token

    def hold(self, session_id: str, token: str) -> None:
        """A lease taken while Redis was down: the heartbeat claims it once Redis is back."""
        self._held[session_id] = token

    def release(self, session_id: str, token: str) -> None:
        if self._held.get(session_id) == token:
            del self._held[session_id]
        self.shared.spawn(self.shared.run(lambda client: self._release(
            keys=[self._key(session_id)], args=[token], client=client)))

    async def ask_close(self, session_id: str, holder: str, reason: str) -> None:
        """Ask the replica serving ``session_id`` with ``holder`` to close that socket."""
        await self.shared.publish(CLOSE_CHANNEL, json.dumps(
            {"session": session_id, "holder": holder, "reason": reason}))

    def _message(self, data: str) -> None:
        message = json.loads(data)
        self.on_close_request(message["session"], message["holder"], message["reason"])

    async def _beat(self, client: Redis) -> None:
        if not self._held:
            return
        held = list(self._held.items())
        lost = await self._renew(keys=[self._key(s) for s, _ in held],
                                 args=[self.shared.lease_ttl_ms, *(t for _, t in held)],
                                 client=client)
        for position in lost:
            session_id, token = held[int(position) - 1]
            if self._held.get(session_id) == token:
                del self._held[session_id]
            self.on_lost(session_id, token)

    def _key(self, session_id: str) -> str:
        return self.shared.key("session", session_id)
