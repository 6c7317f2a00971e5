"""Server-sent events as the OpenAI endpoints stream them: ``data: <json>`` frames, and an
error met mid-stream sent as one more frame holding the error body (the response has
started, so it cannot become an HTTP status any more)."""

from __future__ import annotations

from typing import Any

import msgspec

from orchestrator.errors import AppError, describe, error_body

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No caching, and no buffering by a proxy in front (nginx), so events arrive at once."""


def sse(payload: Any) -> bytes:
    """One event: a Struct or a dict as JSON."""
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


def sse_error(exc: AppError) -> bytes:
    status, code, message = describe(exc)
    return sse(error_body(status, code, message))
