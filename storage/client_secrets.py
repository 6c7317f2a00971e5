"""Ephemeral client secrets (``ek_``): minted by a key holder for a browser or app, good for
ONE realtime connection of one user until they expire. Only hashes are stored.

Redeeming is one conditional UPDATE (``used_at IS NULL AND expires_at > now``), so two
connections racing with the same secret cannot both win, on any replica. When it matches
no row, a second read says why (unknown, used or expired) for the 401's message.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import select, update

from storage.api_keys import hash_secret
from storage.conversations import user_row
from storage.database import Database
from storage.tables import ClientSecret, utcnow

SECRET_PREFIX = "ek_"
"""Every client secret starts with this (OpenAI's prefix too), so the auth middleware,
log redaction and secret scanners can tell one from an API key."""


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def is_client_secret(secret: str) -> bool:
    return secret.startswith(SECRET_PREFIX)


@dataclass(frozen=True, slots=True)
class ClientSecretRecord:
    id: str
    user_id: str
    minted_by: str | None
    model: str
    session: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    @classmethod
    def of(cls, row: ClientSecret) -> ClientSecretRecord:
        return cls(row.id, row.user_id, row.minted_by, row.model, dict(row.session),
                   row.created_at, row.expires_at, row.used_at)


@dataclass(frozen=True, slots=True)
class MintedSecret:
    record: ClientSecretRecord
    secret: str
    """Shown once, in the mint response; only its hash is kept."""


class Refusal(Enum):
    """Why a secret did not redeem."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


class ClientSecretStore:
    """Repository over ``client_secrets``. Every method is one transaction."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def mint(self, user_id: str, *, minted_by: str | None, model: str,
                   session: dict[str, Any], ttl_s: int,
                   now: datetime | None = None) -> MintedSecret:
        """A new secret for ``user_id`` (the user is created on first sight), valid for
        ``ttl_s`` seconds from ``now``."""
        secret = new_secret()
        now = now or utcnow()
        async with self.db.session() as s:
            await user_row(s, user_id, now)  # the foreign key needs it first
            row = ClientSecret(id="cs_" + secrets.token_hex(8), secret_hash=hash_secret(secret),
                               user_id=user_id, minted_by=minted_by, model=model,
                               session=session, created_at=now,
                               expires_at=now + timedelta(seconds=ttl_s))
            s.add(row)
            await s.flush()
            return MintedSecret(ClientSecretRecord.of(row), secret)

    async def redeem(self, secret: str,
                     now: datetime | None = None) -> ClientSecretRecord | Refusal:
        """Mark the secret used, once: its record, or why it cannot be used."""
        digest = hash_secret(secret)
        now = now or utcnow()
        async with self.db.session() as s:
            result = await s.execute(
                update(ClientSecret)
                .where(ClientSecret.secret_hash == digest, ClientSecret.used_at.is_(None),
                       ClientSecret.expires_at > now)
                .values(used_at=now)
                .execution_options(synchronize_session=False))
            row = await s.scalar(select(ClientSecret).where(ClientSecret.secret_hash == digest))
            if row is None or not hmac.compare_digest(row.secret_hash, digest):
                return Refusal.UNKNOWN
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return ClientSecretRecord.of(row)
            return Refusal.USED if row.used_at is not None else Refusal.EXPIRED
