"""Per-request context (request id) shared by logging and error bodies."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def new_request_id(incoming: str | None = None) -> str:
    """Keep a caller's id when it is sane (so traces join up), else make one."""
    if incoming and len(incoming) <= 128 and incoming.isprintable() and incoming.isascii():
        return incoming
    return uuid.uuid4().hex
