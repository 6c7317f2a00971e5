"""``WS /ws/{user_id}/{session_id}``, ``WS /v1/realtime`` and the ``/demo`` page.

``/v1/realtime`` is OpenAI's Realtime API (:mod:`.openai_protocol`), for the official
SDKs: ``?model=`` picks the LLM (``llm``, ``llm:N``; OpenAI's realtime model names mean
the promoted ``llm``), the user is the key's (an admin key or open access may name one
with ``?user_id=``), and each connection starts a new stored session unless
``?session_id=`` continues one of the user's.

The key is checked before the handshake completes (``orchestrator.auth.middleware``).
Refusals send an ``error`` event, then close with a code that says why:

====  ==================================================================================
4400  a bad query parameter (``/v1/realtime``: ``model``)
4401  missing, wrong or revoked API key
4404  unknown session, or one of a user this key does not act for (no existence leak)
4403  the path's user is not the session's user (a key that may see both)
4409  another socket opened this session and replaces this one (one socket per session)
4410  the session has ended (at connect, or ended while the socket was open)
4429  the key has RATE_LIMIT_REALTIME_SESSIONS connections open already
4503  speech-to-text or the LLM is not served
====  ==================================================================================

Browsers send the key as the ``openai-insecure-api-key.KEY`` subprotocol next to
``realtime``; the server answers ``realtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import MediaType, Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery

from orchestrator.auth.access import principal_of
from orchestrator.auth.middleware import CLOSE_RATE_LIMITED, answer_subprotocol
from orchestrator.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceDisabled,
    ShuttingDown,
    websocket_error_event,
)
from orchestrator.models.refs import version_for
from orchestrator.realtime.protocol.events import SessionConfig, encoder
from orchestrator.realtime.live import CLOSE_ENDED, CLOSE_GOING_AWAY, LiveSocket
from orchestrator.realtime.protocol.openai import (
    ClientTranslator,
    ServerTranslator,
    dialect_of,
)
from orchestrator.realtime.protocol.outbound import OutboundQueue, write_loop
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.session import RealtimeSession
from orchestrator.realtime.turns.vad import load_model
from orchestrator.realtime.transports.upload import voice_chat
from orchestrator.realtime.wiring import voice_ports
from orchestrator.telemetry.metrics import REALTIME_SESSIONS
from storage.conversations import SessionRecord
from storage.errors import RecordNotFound

log = logging.getLogger(__name__)
CLOSE_INVALID, CLOSE_NOT_FOUND, CLOSE_FORBIDDEN, CLOSE_UNAVAILABLE = 4400, 4404, 4403, 4503
LLM_MODEL = "llm"
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame a session reads; a larger one gets an ``error`` event and is dropped."""
TRANSPORT_MAX_FRAME_BYTES = 4 * MAX_FRAME_BYTES
"""The server's own frame limit (uvicorn closes with 1009 above it, with no event): higher,
so a frame somewhat over MAX_FRAME_BYTES is answered rather than cut off."""
DEMO_PAGE = Path(__file__).with_name("static") / "demo.html"


async def _refuse(socket: WebSocket, exc: AppError, code: int) -> None:
    await socket.send_text(encoder.encode(websocket_error_event(exc)).decode())
    await socket.close(code=code, reason=exc.message[:120])


@dataclass(frozen=True, slots=True)
class Protocol:
    """How one connection talks: the engine's own events (``/ws``) or OpenAI's."""

    decode_event: Callable[[str], Any] | None = None
    server_events: Callable[[Callable[[], SessionConfig]], Callable[[Any], list[Any]]] | None \
        = None
    """Given the session's config, the translator of its outgoing events (None: as is)."""
    llm_version: str = ""
    name: str = "ws"
    """The protocol's label in metrics: ``ws`` or ``openai``."""


@websocket("/ws/{user_id:str}/{session_id:str}", name="realtime:connect")
async def realtime_connect(socket: WebSocket, user_id: FromPath[str],
                           session_id: FromPath[str]) -> None:
    runtime = socket.app.state.runtime
    principal = principal_of(socket)
    await socket.accept(subprotocols=answer_subprotocol(socket.scope))
    try:
        record = await runtime.conversations.get_session(session_id, owner=principal.owner)
    except RecordNotFound:
        await _refuse(socket, NotFound(f"session {session_id!r} not found"), CLOSE_NOT_FOUND)
        return
    if record.user_id != user_id:
        await _refuse(socket, Forbidden(f"session {session_id!r} belongs to another user"),
                      CLOSE_FORBIDDEN)
        return
    await _run(socket, runtime, principal, record, Protocol())


@websocket("/v1/realtime", name="realtime:openai")
async def openai_realtime(socket: WebSocket, model: FromQuery[str] = "llm",
                          session_id: FromQuery[str | None] = None,
                          user_id: FromQuery[str | None] = None) -> None:
    runtime = socket.app.state.runtime
    principal = principal_of(socket)
    await socket.accept(subprotocols=answer_subprotocol(socket.scope))
    try:
        version = llm_version(model)
        record = await _openai_session(runtime, principal, session_id, user_id)
    except AppError as exc:
        code = {404: CLOSE_NOT_FOUND, 403: CLOSE_FORBIDDEN}.get(exc.status, CLOSE_INVALID)
        await _refuse(socket, exc, code)
        return
    dialect = dialect_of(socket.headers)
    protocol = Protocol(
        decode_event=ClientTranslator(dialect, model=model),
        server_events=lambda config: ServerTranslator(
            dialect, model=model, config=config,
            rate_limits=lambda: runtime.limits.realtime_limits(principal)),
        llm_version=version, name="openai")
    await _run(socket, runtime, principal, record, protocol)


def llm_version(model: str) -> str:
    """``?model=``: ``llm`` or ``llm:N``; OpenAI's realtime model names mean the promoted
    ``llm``; another served model's name is a 404."""
    return version_for(model, LLM_MODEL, openai_names=("gpt-", "o1-", "o3-", "o4-"))


async def _openai_session(runtime: Any, principal: Any, session_id: str | None,
                          user_id: str | None) -> SessionRecord:
    if user_id is not None and not principal.can_act_for(user_id):
        raise Forbidden(f"this key does not act for user {user_id!r}", param="user_id")
    if session_id is None:  # with the defaults POST /api/sessions/new gives a session
        settings = runtime.settings
        return await runtime.conversations.create_session(
            user_id or principal.owner, language=settings.default_language,
            voice=settings.default_voice)
    try:
        record = await runtime.conversations.get_session(session_id, owner=principal.owner)
    except RecordNotFound:
        raise NotFound(f"session {session_id!r} not found", param="session_id") from None
    if user_id is not None and record.user_id != user_id:
        raise Forbidden(f"session {session_id!r} belongs to another user", param="session_id")
    return record


async def _run(socket: WebSocket, runtime: Any, principal: Any, record: SessionRecord,
               protocol: Protocol) -> None:
    """The checks every connection passes, then the session until the socket closes."""
    if record.ended_at is not None:
        await _refuse(socket, Conflict(f"session {record.id!r} has ended"), CLOSE_ENDED)
        return
    if runtime.draining:  # readiness says so too: the balancer sends it elsewhere
        await _refuse(socket, ShuttingDown("the server is shutting down; connect again"),
                      CLOSE_GOING_AWAY)
        return
    ports = voice_ports(runtime)
    if ports.stt is None or ports.llm is None:
        await _refuse(socket, ServiceDisabled("realtime voice chat needs speech-to-text and "
                                              "the LLM, and one of them is not served"),
                      CLOSE_UNAVAILABLE)
        return
    try:
        release = runtime.limits.open_realtime(principal)
    except RateLimited as exc:
        await _refuse(socket, exc, CLOSE_RATE_LIMITED)
        return
    live = await runtime.live_sessions.claim(record.id)
    open_sockets = REALTIME_SESSIONS.labels(protocol.name)
    open_sockets.inc()
    try:
        await _serve(socket, runtime, record, ports, live,
                     meter=lambda seconds: runtime.limits.audio(principal, seconds),
                     protocol=protocol)
    except asyncio.CancelledError:
        if live.reason is None:
            raise  # not ours: the server is shutting down
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        open_sockets.dec()
        runtime.live_sessions.release(live)
        release()


async def _serve(socket: WebSocket, runtime: Any, record: SessionRecord, ports: VoicePorts,
                 live: LiveSocket, meter: Callable[[float], object], protocol: Protocol,
                 ) -> None:
    settings = runtime.settings
    vad = await asyncio.to_thread(load_model, settings.vad_model_path)
    outbound = OutboundQueue(settings.realtime_send_queue)
    session = RealtimeSession(record, settings=settings, ports=ports,
                              store=runtime.conversations, outbound=outbound, vad=vad,
                              audio_meter=meter, decode_event=protocol.decode_event,
                              llm_version=protocol.llm_version)
    if protocol.server_events is not None:  # nothing is sent before the session exists
        outbound.translate = protocol.server_events(lambda: session.config)
    live.settle = session.settle
    writer = asyncio.create_task(
        write_loop(outbound, lambda payload: socket.send_text(payload.decode())))
    try:
        await session.start()
        await _receive(socket, session, outbound)
    finally:
        await session.close()
        await outbound.close()
        await writer
        if socket.connection_state != "disconnect":
            with contextlib.suppress(Exception):  # the client may be gone already
                if live.reason is not None:  # replaced, or the session ended
                    await _refuse(socket, *live.reason)
                else:
                    await socket.close()


async def _receive(socket: WebSocket, session: RealtimeSession, outbound: OutboundQueue) -> None:
    while not outbound.closed:
        try:
            message = await socket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        payload = message.get("text") if message.get("text") is not None else message.get("bytes")
        if payload is not None and len(payload) > MAX_FRAME_BYTES:
            await session.conversation.send_error(PayloadTooLarge(
                f"a frame of {len(payload)} bytes is over the {MAX_FRAME_BYTES} byte limit; "
                "send audio in smaller appends"))
        elif message.get("text") is not None:
            await session.handle_text(message["text"])
        elif message.get("bytes") is not None:
            await session.handle_bytes(message["bytes"])


@get("/demo", name="realtime:demo", media_type=MediaType.HTML, include_in_schema=False)
async def demo_page() -> Response[bytes]:
    return Response(DEMO_PAGE.read_bytes(), media_type=MediaType.HTML)


ROUTES = [realtime_connect, openai_realtime, demo_page, voice_chat]
