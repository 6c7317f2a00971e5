"""``WS /ws/{user_id}/{session_id}`` and the ``/demo`` page.

The key is checked before the handshake completes (``orchestrator.auth.middleware``).
Refusals send an ``error`` event, then close with a code that says why:

====  ==================================================================================
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
from pathlib import Path
from typing import Any

from litestar import MediaType, Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath

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
    websocket_error_event,
)
from orchestrator.realtime.events import encoder
from orchestrator.realtime.live import CLOSE_ENDED, LiveSocket
from orchestrator.realtime.outbound import OutboundQueue, write_loop
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.session import RealtimeSession
from orchestrator.realtime.vad import load_model
from orchestrator.realtime.voice_chat import voice_chat
from orchestrator.realtime.wiring import voice_ports
from storage.conversations import SessionRecord
from storage.errors import RecordNotFound

log = logging.getLogger(__name__)
CLOSE_NOT_FOUND, CLOSE_FORBIDDEN, CLOSE_UNAVAILABLE = 4404, 4403, 4503
MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame a session reads; a larger one gets an ``error`` event and is dropped."""
TRANSPORT_MAX_FRAME_BYTES = 4 * MAX_FRAME_BYTES
"""The server's own frame limit (uvicorn closes with 1009 above it, with no event): higher,
so a frame somewhat over MAX_FRAME_BYTES is answered rather than cut off."""
DEMO_PAGE = Path(__file__).with_name("static") / "demo.html"


async def _refuse(socket: WebSocket, exc: AppError, code: int) -> None:
    await socket.send_text(encoder.encode(websocket_error_event(exc)).decode())
    await socket.close(code=code, reason=exc.message[:120])


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
    if record.ended_at is not None:
        await _refuse(socket, Conflict(f"session {session_id!r} has ended"), CLOSE_ENDED)
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
    live = await runtime.live_sessions.claim(session_id)
    try:
        await _serve(socket, runtime, record, ports, live,
                     meter=lambda seconds: runtime.limits.audio(principal, seconds))
    except asyncio.CancelledError:
        if live.reason is None:
            raise  # not ours: the server is shutting down
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        runtime.live_sessions.release(live)
        release()


async def _serve(socket: WebSocket, runtime: Any, record: SessionRecord, ports: VoicePorts,
                 live: LiveSocket, meter: Callable[[float], object]) -> None:
    settings = runtime.settings
    vad = await asyncio.to_thread(load_model, settings.vad_model_path)
    outbound = OutboundQueue(settings.realtime_send_queue)
    session = RealtimeSession(record, settings=settings, ports=ports,
                              store=runtime.conversations, outbound=outbound, vad=vad,
                              audio_meter=meter)
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


ROUTES = [realtime_connect, demo_page, voice_chat]
