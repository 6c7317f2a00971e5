"""ASGI middleware: request ids and one structured log line per HTTP request."""

from __future__ import annotations

import logging
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.request_context import (
    REQUEST_ID_HEADER,
    new_request_id,
    reset_request_id,
    set_request_id,
)

log = logging.getLogger("orchestrator.access")


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request an id (the caller's X-Request-ID when sane) and echo it back."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(REQUEST_ID_HEADER.encode())
        request_id = new_request_id(incoming.decode("latin-1") if incoming else None)
        token = set_request_id(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (REQUEST_ID_HEADER.encode(),
                                                   request_id.encode())]}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log.info("%s %s %s", scope.get("method"), scope.get("path"), status,
                         extra={"status": status, "method": scope.get("method"),
                                "path": scope.get("path"),
                                "ms": round((time.perf_counter() - started) * 1000, 2)})
            reset_request_id(token)

    return middleware
