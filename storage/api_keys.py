"""API keys: created, found by secret, listed, revoked. Only hashes are stored.

A key's secret is 256 random bits, so a plain SHA-256 is the right hash (a slow password
hash buys nothing against a search space of 2**256, and would cost every request). The
row is found through the unique hash column and the hash is compared again in constant
time, so no timing tells an attacker how much of a guess matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.conversations import user_row
from storage.database import Database
from storage.errors import RecordNotFound
from storage.tables import ApiKey, utcnow

SECRET_PREFIX = "vck_"
"""Every key starts with this, so secret scanners and log redaction can spot one."""
SHOWN_PREFIX_CHARS = 12


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    user_id: str
    name: str | None
    prefix: str
    admin: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyRecord:
        return cls(row.id, row.user_id, row.name, row.prefix, row.admin, row.created_at,
                   row.last_used_at, row.revoked_at)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class NewKey:
    record: ApiKeyRecord
    secret: str
    """Shown once, at creation; only its hash is kept."""


class KeyStore:
    """Repository over ``api_keys``. Every method is one transaction."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(self, user_id: str, *, name: str | None = None,
                     admin: bool = False) -> NewKey:
        """A new key for ``user_id`` (the user is created on first sight)."""
        secret = new_secret()
        async with self.db.session() as s:
            now = utcnow()
            await user_row(s, user_id, now)  # the key's foreign key needs it first
            row = ApiKey(id="key_" + secrets.token_hex(8), user_id=user_id, name=name,
                         secret_hash=hash_secret(secret), prefix=secret[:SHOWN_PREFIX_CHARS],
                         admin=admin, created_at=now)
            s.add(row)
            await s.flush()
            return NewKey(ApiKeyRecord.of(row), secret)

    async def find(self, secret: str) -> ApiKeyRecord | None:
        """The key whose secret this is (revoked ones included), else None."""
        digest = hash_secret(secret)
        async with self.db.session() as s:
            row = await s.scalar(select(ApiKey).where(ApiKey.secret_hash == digest))
            if row is None or not hmac.compare_digest(row.secret_hash, digest):
                return None
            return ApiKeyRecord.of(row)

    async def get(self, key_id: str) -> ApiKeyRecord:
        async with self.db.session() as s:
            return ApiKeyRecord.of(await _row(s, key_id))

    async def list(self, user_id: str | None = None) -> list[ApiKeyRecord]:
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        async with self.db.session() as s:
            return [ApiKeyRecord.of(r) for r in await s.scalars(query)]

    async def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke a key; revoking twice keeps the first time (idempotent)."""
        async with self.db.session() as s:
            row = await _row(s, key_id)
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return ApiKeyRecord.of(row)

    async def touch(self, key_id: str, when: datetime | None = None) -> None:
        """Record a use (callers throttle this: it is a write)."""
        async with self.db.session() as s:
            row = await s.get(ApiKey, key_id)
            if row is not None:
                row.last_used_at = when or utcnow()


async def _row(s: AsyncSession, key_id: str) -> ApiKey:
    row = await s.get(ApiKey, key_id)
    if row is None:
        raise RecordNotFound(f"key {key_id!r} not found")
    return row
