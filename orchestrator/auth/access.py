"""What a principal may see: another user's resources answer 404, as unknown ones do,
so ids leak nothing; creating a session for another user is refused (403)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide

from orchestrator.auth.principal import Principal
from orchestrator.errors import Forbidden, NotFound, Unauthorized
from storage.conversations import ConversationStore, SessionRecord


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


async def owned_session(store: ConversationStore, principal: Principal,
                        session_id: str) -> SessionRecord:
    """The session, when the principal may act for its user; else 404 like an unknown id."""
    record = await store.get_session(session_id)
    if not principal.can_act_for(record.user_id):
        raise NotFound(f"session {session_id!r} not found")
    return record


def session_user(principal: Principal, requested: str | None) -> str | None:
    """The user a new session belongs to (None: a new user id is made)."""
    if requested is None:
        return principal.default_user()
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
