"""Authentication for every HTTP request and WebSocket handshake, before any handler.

In order:

1. **Origin** (browsers): a WebSocket, or a state-changing HTTP request, whose ``Origin``
   is neither this host nor in ``CORS_ORIGINS`` is refused (403; a WebSocket is closed
   before it opens). WebSockets are not covered by CORS, so this is their only guard.
2. **Media type**: a state-changing request with a body must be JSON or multipart, so a
   cross-site ``text/plain`` "simple request" cannot reach a JSON handler (415).
3. **Key**: ``Authorization: Bearer KEY`` (``X-Admin-Key: KEY`` is kept for admin
   clients); on WebSockets also the ``openai-insecure-api-key.KEY`` subprotocol that
   browsers use. A missing, wrong or revoked key is a 401. With ``AUTH_MODE=off`` a valid
   key still acts as itself (so its limits and isolation can be tried locally), and no
   key or any other one is open access: the OpenAI SDKs always send some key.
   A client secret (``ek_``, :mod:`.client_secrets`) is taken in the same places, but
   only where a realtime connection opens, and is spent by it.
4. **Request rate** per key (429 with ``Retry-After``); every authenticated response
   carries the ``x-ratelimit-*-requests`` headers.

A refused WebSocket is accepted, sent an ``error`` event and closed with 4401 (key) or
4429 (rate), so browsers (which cannot read a handshake status) learn why.
The principal is left in ``scope["user"]`` (``connection.user`` in handlers).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.auth import client_secrets
from orchestrator.auth.principal import OPEN_ACCESS, Principal
from orchestrator.close_codes import CLOSE_UNAUTHORIZED, close_code
from orchestrator.errors import (
    AppError,
    Forbidden,
    Unauthorized,
    UnsupportedMediaType,
    websocket_error_event,
)
from orchestrator.runtime import Runtime
from storage.client_secrets import is_client_secret

PUBLIC_PATHS = frozenset({"/api/ping", "/api/health", "/livez", "/readyz", "/metrics", "/demo",
                          # Twilio sends no Authorization header and posts a form: these
                          # authenticate themselves (the webhook's signature, the stream's
                          # token parameter), :mod:`orchestrator.realtime.transports.twilio`
                          "/v1/twilio/voice", "/v1/twilio/media-stream"})
PUBLIC_PREFIXES = ("/schema",)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_TYPES = ("application/json", "multipart/form-data", "application/sdp")
KEY_SUBPROTOCOL = "openai-insecure-api-key."
REALTIME_SUBPROTOCOL = "realtime"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def offered_subprotocols(scope: Scope) -> list[str]:
    return [p.strip() for p in scope.get("subprotocols") or [] if p.strip()]


def answer_subprotocol(scope: Scope) -> str | None:
    """The subprotocol to accept with: ``realtime`` when offered (never the key one)."""
    return REALTIME_SUBPROTOCOL if REALTIME_SUBPROTOCOL in offered_subprotocols(scope) else None


def auth_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or is_public(scope.get("path", "")) or (
                kind == "http" and scope.get("method") == "OPTIONS"):  # CORS preflight
            await app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        headers = _headers(scope)
        if not _origin_allowed(scope, headers, runtime.settings.cors_origins):
            origin = headers.get("origin", "")
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # HTTP 403 handshake
                return
            raise Forbidden(f"requests from origin {origin[:200]!r} are not allowed "
                            f"(CORS_ORIGINS)")
        if kind == "http":
            _check_media_type(scope, headers)
        try:
            principal = await _principal(scope, headers, runtime)
            limit_headers = await runtime.limits.request(principal)
        except AppError as exc:
            if kind == "websocket":
                await refuse_websocket(scope, receive, send, exc)
                return
            raise
        scope["user"], scope["auth"] = principal, principal.key_id
        if kind == "websocket" or not limit_headers:
            await app(scope, receive, send)
            return
        extra = [(k.encode(), v.encode()) for k, v in limit_headers.items()]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_limits)

    return middleware


async def refuse_websocket(scope: Scope, receive: Receive, send: Send, exc: AppError) -> None:
    """Accept, send the ``error`` event, close with the code for ``exc``."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept", "subprotocol": answer_subprotocol(scope),
                "headers": []})
    await send({"type": "websocket.send",
                "text": msgspec.json.encode(websocket_error_event(exc)).decode()})
    await send({"type": "websocket.close", "code": close_code(exc, CLOSE_UNAUTHORIZED),
                "reason": exc.message[:120]})


async def _principal(scope: Scope, headers: dict[str, str], runtime: Runtime) -> Principal:
    try:
        secret = _credential(scope, headers)
    except Unauthorized:
        if runtime.settings.auth_required:
            raise
        return OPEN_ACCESS
    return await principal_for(scope, secret, runtime)


async def principal_for(scope: Scope, secret: str | None, runtime: Runtime) -> Principal:
    """Who ``secret`` (an API key or a client secret, spent here) acts as; open access
    for none or a bad one when AUTH_MODE=off, else Unauthorized. For routes that find the
    credential themselves (a Twilio media stream's ``start`` message)."""
    required = runtime.settings.auth_required
    try:
        if secret is None:
            raise Unauthorized("missing API key: send Authorization: Bearer KEY "
                               "(voicechat keys create --user ID makes one)")
        if is_client_secret(secret):
            return await client_secrets.redeem(scope, secret, runtime.client_secrets,
                                               runtime.keys)
        return await runtime.auth.authenticate(secret)
    except Unauthorized:
        if required:
            raise
        return OPEN_ACCESS


def _credential(scope: Scope, headers: dict[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer KEY'")
        return token.strip()
    if "x-admin-key" in headers:
        return headers["x-admin-key"].strip()
    if scope["type"] == "websocket":
        for protocol in offered_subprotocols(scope):
            if protocol.startswith(KEY_SUBPROTOCOL):
                return protocol[len(KEY_SUBPROTOCOL):]
    return None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers") or []}


def _origin_allowed(scope: Scope, headers: dict[str, str], allowed: list[str]) -> bool:
    origin = headers.get("origin")
    if origin is None or (scope["type"] == "http" and scope.get("method") not in STATE_CHANGING):
        return True  # not a browser, or a read whose answer CORS already keeps from pages
    if "*" in allowed or origin in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == headers.get("host", "").lower()


def _check_media_type(scope: Scope, headers: dict[str, str]) -> None:
    if scope.get("method") not in STATE_CHANGING:
        return
    has_body = headers.get("content-length", "0").strip() not in ("", "0") or (
        "transfer-encoding" in headers)
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if has_body and not (media_type.startswith(BODY_TYPES) or media_type.endswith("+json")):
        raise UnsupportedMediaType(f"Content-Type must be application/json (or "
                                   f"multipart/form-data for uploads), not "
                                   f"{media_type[:100] or 'none'!r}")
