"""``POST /v1/realtime/client_secrets``: mint an ephemeral client secret (``ek_``), as
OpenAI's API does, for a browser or app that must not hold a real API key.

The body is OpenAI's: ``expires_after: {"anchor": "created_at", "seconds": N}`` (10 to
600, default 60) and ``session``, a realtime session configuration (GA shape, or beta with
``OpenAI-Beta: realtime=v1``). The session goes through the very translation and checks
a ``session.update`` gets, now rather than when the secret is used, so a bad voice or an
unknown field is this request's 400. A user key mints for its own user; an admin key (or
open access) names the user with ``?user_id=``.

It lives in ``realtime`` (not ``auth``) because it checks a realtime session
configuration, and ``auth`` sits below ``realtime``; redeeming a secret is
:mod:`orchestrator.auth.client_secrets`, applying it :mod:`.transports.grants`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, post
from litestar.params import FromQuery, JSONBody

from orchestrator.auth.access import PrincipalDep
from orchestrator.auth.principal import Principal
from orchestrator.dependencies import RuntimeDep
from orchestrator.errors import Forbidden, InvalidRequest
from orchestrator.realtime.protocol.openai import dialect_of
from orchestrator.realtime.transports.session_check import check_session
from orchestrator.validation import UserId

DEFAULT_TTL_S, MIN_TTL_S, MAX_TTL_S = 60, 10, 600


class ExpiresAfter(msgspec.Struct, forbid_unknown_fields=True):
    anchor: Literal["created_at"] = "created_at"
    seconds: int = DEFAULT_TTL_S


class ClientSecretRequest(msgspec.Struct, forbid_unknown_fields=True):
    expires_after: ExpiresAfter | None = None
    session: dict[str, Any] | None = None
    """A realtime session configuration; ``model`` picks the LLM as ``?model=`` does."""


class ClientSecretOut(msgspec.Struct):
    value: str
    """The secret (``ek_…``), shown only here: only its hash is kept."""
    expires_at: int
    """Unix seconds."""
    session: dict[str, Any]
    """The session configuration the connection will start with."""


def ttl_seconds(expires_after: ExpiresAfter | None) -> int:
    seconds = DEFAULT_TTL_S if expires_after is None else expires_after.seconds
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise InvalidRequest(f"expires_after.seconds must be between {MIN_TTL_S} and "
                             f"{MAX_TTL_S}, not {seconds}", param="expires_after.seconds")
    return seconds


def minted_for(principal: Principal, user_id: str | None) -> str:
    """The user the secret acts for: a user key's own; an admin (or open access) names one."""
    if user_id is None:
        if principal.owner is None:
            raise InvalidRequest("an admin key (or open access) mints a client secret for a "
                                 "user: name one with ?user_id=", param="user_id")
        return principal.owner
    if not principal.can_act_for(user_id):
        raise Forbidden(f"this API key acts for user {principal.user_id!r} and cannot mint "
                        "client secrets for another user", param="user_id")
    return user_id


@post("/v1/realtime/client_secrets", name="realtime:client_secrets", status_code=200,
      tags=["access"], summary="Mint a client secret (ek_) that opens one realtime "
      "connection of one user, with a session configuration checked now")
async def create_client_secret(request: Request, runtime: RuntimeDep, principal: PrincipalDep,
                               data: JSONBody[ClientSecretRequest | None] = None,
                               user_id: FromQuery[UserId | None] = None) -> ClientSecretOut:
    data = data or ClientSecretRequest()
    ttl = ttl_seconds(data.expires_after)
    user = minted_for(principal, user_id)
    checked = check_session(runtime, dict(data.session or {}), dialect_of(request.headers),
                            user)
    minted = await runtime.client_secrets.mint(
        user, minted_by=principal.key_id, model=checked.model, session=checked.update,
        ttl_s=ttl)
    return ClientSecretOut(value=minted.secret,
                           expires_at=int(minted.record.expires_at.timestamp()),
                           session=checked.applied)
