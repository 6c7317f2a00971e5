"""Key revocations reach every replica at once: the replica that revokes publishes the
key id, every replica (itself included) drops it from its authenticator's cache, so the
key fails everywhere within a message's delay rather than after ``AUTH_KEY_CACHE_S``.

A message published while a replica was cut off from Redis never reaches it, so a
replica that sees Redis come back empties its whole key cache (the next request of each
key asks the database once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.auth.authenticator import Authenticator
    from orchestrator.shared.connection import SharedRedis

REVOKED_CHANNEL = "voicechat:keys:revoked"


def follow_revocations(shared: SharedRedis, auth: Authenticator) -> None:
    """Wire ``auth`` to forget keys revoked through any replica (before ``start``)."""
    shared.subscribe(REVOKED_CHANNEL, auth.forget)
    shared.on_recovery(auth.forget_all)

    async def announce(key_id: str) -> None:
        await shared.publish(REVOKED_CHANNEL, key_id)

    auth.announce = announce
