"""``POST /v1/twilio/voice`` (Twilio's incoming-call webhook) and
``WS /v1/twilio/media-stream`` (the call's bidirectional media stream).

Twilio can send neither an Authorization header nor a query string on the stream, so
both routes authenticate themselves (the auth middleware lets them through):

* the webhook checks ``X-Twilio-Signature`` with ``TWILIO_AUTH_TOKEN`` (403 when it does
  not match; with no token set it is refused unless ``AUTH_MODE=off``), then mints a
  client secret (``ek_``, single use, ``STREAM_TOKEN_TTL_S``) for ``TWILIO_USER_ID`` and
  answers TwiML that connects the call to the stream with the secret as the ``token``
  ``<Parameter>``;
* the stream reads ``connected`` and ``start``, then authenticates ``token`` from
  ``start.customParameters`` as the middleware would a key (a client secret, spent
  here, or an API key, for TwiML written by hand) and closes 4401 without a good one.

Each call is a new stored session of the principal's user (``TWILIO_USER_ID`` for an
admin key or open access, or a ``user_id`` parameter), unless a ``session_id`` parameter
continues one of that user's (the webhook passes its own ``?session_id=`` on).
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from litestar import Request, Response, WebSocket, post, websocket
from litestar.params import FromQuery

from orchestrator.auth.middleware import principal_for
from orchestrator.auth.principal import Principal
from orchestrator.close_codes import CLOSE_INVALID
from orchestrator.errors import AppError, Forbidden, InvalidRequest, Unauthorized
from orchestrator.realtime.transports import grants
from orchestrator.realtime.transports.base import EventCodec, serve_session
from orchestrator.realtime.transports.openai import LLM_MODEL, openai_session
from orchestrator.realtime.transports.twilio import protocol
from orchestrator.realtime.transports.twilio.call import TwilioCall, read_text
from orchestrator.runtime import Runtime
from orchestrator.settings import Settings
from orchestrator.validation import is_user_id

log = logging.getLogger(__name__)
STREAM_PATH = "/v1/twilio/media-stream"
STREAM_TOKEN_TTL_S = 60
"""How long the webhook's client secret stays good: Twilio opens the stream at once."""
START_TIMEOUT_S = 10.0
"""How long a new stream may take to send ``start``."""
G711_SESSION = ('{"type": "session.update", "session": {"input_audio_format": "g711_ulaw", '
                '"output_audio_format": "g711_ulaw"}}')
"""A phone line carries μ-law at 8 kHz both ways: the session speaks it as is."""
CODEC = EventCodec(name="twilio")


@post("/v1/twilio/voice", name="twilio:voice", status_code=200, tags=["realtime"],
      summary="Twilio's incoming-call webhook: TwiML that connects the call to "
      "WS /v1/twilio/media-stream")
async def twilio_voice(request: Request,
                       session_id: FromQuery[str | None] = None) -> Response[str]:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    form = await request.form()
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    scheme, host = public_origin(request, settings)
    if settings.twilio_auth_token:
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"{scheme}://{host}{request.scope['path']}" + (f"?{query}" if query else "")
        if not protocol.signed_by_twilio(settings.twilio_auth_token, url, params,
                                         request.headers.get("x-twilio-signature")):
            raise Forbidden("X-Twilio-Signature does not match this request (is "
                            "TWILIO_AUTH_TOKEN the account's, and TWILIO_PUBLIC_URL the "
                            "origin Twilio calls?)")
    elif settings.auth_required:
        raise Forbidden("set TWILIO_AUTH_TOKEN: without it this webhook cannot tell Twilio "
                        "from anyone else")
    if runtime.draining:  # the stream would be refused: say so rather than go silent
        return Response(protocol.say("This line is restarting. Please call again in a "
                                     "minute."), media_type="text/xml")
    minted = await runtime.client_secrets.mint(
        settings.twilio_user_id, minted_by=None, model=LLM_MODEL, session={},
        ttl_s=STREAM_TOKEN_TTL_S)
    parameters = {"token": minted.secret}
    if session_id:
        parameters["session_id"] = session_id
    log.info("twilio call %s: connecting its stream", dict(params).get("CallSid"))
    return Response(protocol.connect_stream(stream_url(host), parameters), media_type="text/xml")


def public_origin(request: Request, settings: Settings) -> tuple[str, str]:
    """(scheme, host) Twilio reached this server at."""
    if settings.twilio_public_url:
        parts = urlsplit(settings.twilio_public_url)
        return parts.scheme, parts.netloc
    headers = request.headers
    scheme = headers.get("x-forwarded-proto") or request.url.scheme
    host = headers.get("x-forwarded-host") or headers.get("host") or request.url.netloc
    return scheme.split(",")[0].strip(), host.split(",")[0].strip()


def stream_url(host: str) -> str:
    """Twilio streams only to ``wss://``."""
    return f"wss://{host}{STREAM_PATH}"


@websocket(STREAM_PATH, name="twilio:media-stream")
async def twilio_media_stream(socket: WebSocket) -> None:
    runtime: Runtime = socket.app.state.runtime
    await socket.accept()
    try:
        start = await asyncio.wait_for(_started(socket), START_TIMEOUT_S)
    except TimeoutError:
        await _close(socket, CLOSE_INVALID, "no start message arrived")
        return
    except protocol.BadStart as exc:
        await _close(socket, CLOSE_INVALID, str(exc))
        return
    if start is None:
        return  # gone before it started
    call = TwilioCall(socket, start.stream_sid, start.call_sid)
    parameters = start.parameters
    try:
        principal = await _authenticate(socket, runtime, parameters.get("token"))
        await runtime.limits.request(principal)
        user_id = parameters.get("user_id")
        if user_id is not None and not is_user_id(user_id):
            raise InvalidRequest(f"user_id {user_id[:64]!r} is not a user id", param="user_id")
        if user_id is None and principal.owner is None:
            user_id = runtime.settings.twilio_user_id
        record = await openai_session(runtime, principal, parameters.get("session_id"),
                                      user_id)
    except AppError as exc:
        await call.refuse(exc)
        return
    log.info("twilio call %s: session %s", start.call_sid or start.stream_sid, record.id)
    await serve_session(call, runtime, principal, record, CODEC,
                        first_events=[*grants.first_events(principal, "engine"), G711_SESSION])


async def _started(socket: WebSocket) -> protocol.StreamStart | None:
    """Read up to ``start`` (``connected`` comes first; media before ``start`` has no
    stream to belong to and is dropped)."""
    while True:
        text = await read_text(socket)
        if text is None:
            return None
        message = protocol.decode(text)
        if message is None or message["event"] != "start":
            if message is not None and message["event"] not in ("connected", "media"):
                log.info("twilio stream: ignored %r before start", message["event"][:40])
            continue
        return protocol.parse_start(message)


async def _authenticate(socket: WebSocket, runtime: Runtime, token: str | None) -> Principal:
    if token is None and runtime.settings.auth_required:
        raise Unauthorized("the stream has no 'token' parameter: connect calls through "
                           "POST /v1/twilio/voice, or send a key as <Parameter name=\"token\">")
    return await principal_for(socket.scope, token, runtime)


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    log.info("twilio stream refused: %s", reason)
    await socket.close(code=code, reason=reason[:120])

