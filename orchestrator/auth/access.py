"""What a principal may see: another user's resources answer 404, as unknown ones do,
so ids leak nothing; creating a session for another user is refused (403).

Sessions are read with ``owner=principal.owner``: the store checks the owner on the row
it loads anyway (``storage.conversations``), so isolation costs no extra query."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide

from orchestrator.auth.principal import Principal
from orchestrator.errors import Forbidden, NotFound, Unauthorized


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):  # a route the middleware did not see
        raise Unauthorized("this route needs an API key")
    return principal


def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    return principal_of(request)


PRINCIPAL = Provide(provide_principal, sync_to_thread=False)
PrincipalDep = NamedDependency[Principal]


def check_user(principal: Principal, user_id: str) -> None:
    if not principal.can_act_for(user_id):
        raise NotFound(f"user {user_id!r} not found")


def session_user(principal: Principal, requested: str | None) -> str | None:
    """The user a new session belongs to (None: a new user id is made)."""
    if requested is None:
        return principal.owner
    if not principal.can_act_for(requested):
        raise Forbidden(f"this API key acts for user {principal.user_id!r} and cannot create "
                        f"sessions for another user", param="user_id")
    return requested


def require_admin(principal: Principal) -> None:
    if principal.admin:
        return
    if principal.is_open:
        raise Unauthorized("administration needs an admin key (ADMIN_API_KEY or "
                           "`voicechat keys create --admin`)")
    raise Forbidden("this API key is not an admin key")
