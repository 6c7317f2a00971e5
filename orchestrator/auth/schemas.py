"""Bodies of the key administration endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from orchestrator.validation import PlainText, UserId
from storage.api_keys import ApiKeyRecord

KeyName = Annotated[PlainText, msgspec.Meta(max_length=128)]


class NewKeyRequest(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UserId
    name: KeyName | None = None
    admin: bool = False


class KeyOut(msgspec.Struct):
    id: str
    user_id: str
    name: str | None
    prefix: str
    """The key's first characters (the rest is never shown again)."""
    admin: bool
    status: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: ApiKeyRecord) -> KeyOut:
        return cls(id=r.id, user_id=r.user_id, name=r.name, prefix=r.prefix, admin=r.admin,
                   status="active" if r.active else "revoked", created_at=r.created_at,
                   last_used_at=r.last_used_at, revoked_at=r.revoked_at)


class KeyCreated(KeyOut):
    key: str = ""
    """The secret: shown in this response only, stored only as a hash."""


class KeyList(msgspec.Struct):
    data: list[KeyOut]
