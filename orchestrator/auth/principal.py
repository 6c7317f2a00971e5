"""Who a request acts as."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOOTSTRAP_KEY_ID = "admin"
"""The key id reported for ADMIN_API_KEY (which has no row in ``api_keys``)."""


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: hashable although it holds a dict
class ClientSecretGrant:
    """What a redeemed client secret (``ek_``) grants: one realtime connection, set up
    with the session configuration it was minted with."""

    id: str
    """The secret's id (``cs_…``), never the secret."""
    model: str
    """The model the secret was minted for (``session.model``)."""
    session: dict[str, Any] = field(default_factory=dict)
    """The fields of a ``session.update`` in the engine's shape, checked at mint time."""


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str | None
    """The API key's id; None for open access (AUTH_MODE=off, no key sent)."""
    user_id: str | None
    """The user a key belongs to; None for the bootstrap admin key and open access."""
    admin: bool = False
    client_secret: ClientSecretGrant | None = None
    """Set when the request authenticated with a client secret instead of an API key."""

    @property
    def is_open(self) -> bool:
        return self.key_id is None

    @property
    def owner(self) -> str | None:
        """The only user whose records this principal reaches; None: any user (admins,
        open access). Also the user a new session belongs to when a request names none
        (None: a new user is made)."""
        return None if self.admin or self.is_open else self.user_id

    def can_act_for(self, user_id: str) -> bool:
        """Admins and open access act for anyone; a user key only for its own user."""
        return self.owner is None or self.owner == user_id


OPEN_ACCESS = Principal(key_id=None, user_id=None)
