"""How a WebSocket is told why the server closes it: one mapping from an
:class:`~orchestrator.errors.AppError` to a close code, for the auth middleware, the
realtime transports and the live-socket registry alike.

====  ==================================================================================
1001  the server is shutting down (``ShuttingDown``): reconnect to another replica
4400  a bad request (``/v1/realtime``: a bad query parameter such as ``model``)
4401  missing, wrong or revoked API key
4403  forbidden: the path's user is not the session's (a key that may see both)
4404  unknown session, or one of a user this key does not act for (no existence leak)
4409  another socket opened this session and replaces this one (one socket per session)
4410  the session has ended (:class:`SessionGone`: at connect, or while the socket was open)
4429  rate limited (the key's RATE_LIMIT_REALTIME_SESSIONS connections are open already)
4503  speech-to-text is not served (without the LLM a session is a transcription one)
====  ==================================================================================

Any other error closes with the caller's ``default``.
"""

from __future__ import annotations

from orchestrator.errors import AppError, Conflict, ShuttingDown

CLOSE_GOING_AWAY, CLOSE_ENDED = 1001, 4410
CLOSE_INVALID, CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4400, 4401, 4403, 4404
CLOSE_REPLACED, CLOSE_RATE_LIMITED, CLOSE_UNAVAILABLE = 4409, 4429, 4503
_BY_STATUS = {400: CLOSE_INVALID, 401: CLOSE_UNAUTHORIZED, 403: CLOSE_FORBIDDEN,
              404: CLOSE_NOT_FOUND, 409: CLOSE_REPLACED, 429: CLOSE_RATE_LIMITED,
              503: CLOSE_UNAVAILABLE}


class SessionGone(Conflict):
    """The session has ended (the same ``conflict`` error as any other; it closes with
    4410 rather than 4409)."""


def close_code(exc: AppError, default: int = CLOSE_INVALID) -> int:
    """The close code that says why ``exc`` ends the socket."""
    if isinstance(exc, ShuttingDown):
        return CLOSE_GOING_AWAY
    if isinstance(exc, SessionGone):
        return CLOSE_ENDED
    return _BY_STATUS.get(exc.status, default)
