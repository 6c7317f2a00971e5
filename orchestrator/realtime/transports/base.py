"""The seam between a client connection and the realtime pipeline.

A :class:`Transport` moves client frames in (a JSON event as ``str``, audio as
``bytes``) and encoded server events out; :func:`serve_session` runs the checks every
connection passes, then the session until the transport closes. How events are decoded
and encoded is the connection's :class:`EventCodec` (the engine's own events, or OpenAI's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.auth.principal import Principal
from orchestrator.close_codes import SessionGone
from orchestrator.errors import (
    AppError,
    PayloadTooLarge,
    ServiceDisabled,
    ShuttingDown,
)
from orchestrator.realtime.live import LiveSocket
from orchestrator.realtime.ports import VoicePorts
from orchestrator.realtime.protocol.outbound import OutboundQueue, write_loop
from orchestrator.realtime.protocol.session_types import SessionConfig
from orchestrator.realtime.session import RealtimeSession
from orchestrator.realtime.turns.vad import load_model
from orchestrator.realtime.wiring import voice_ports
from orchestrator.runtime import Runtime
from orchestrator.telemetry.metrics import REALTIME_SESSIONS
from storage.conversations import SessionRecord

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame a session reads; a larger one gets an ``error`` event and is dropped."""
TRANSPORT_MAX_FRAME_BYTES = 4 * MAX_FRAME_BYTES
"""The server's own frame limit (uvicorn closes with 1009 above it, with no event): higher,
so a frame somewhat over MAX_FRAME_BYTES is answered rather than cut off."""


class Transport(Protocol):
    """One client connection, as the pipeline sees it."""

    async def receive(self) -> str | bytes | None:
        """The next client frame: a JSON event (``str``) or audio (``bytes``); None once the
        client has gone."""
        ...

    async def send(self, payload: bytes) -> None:
        """One encoded server event."""
        ...

    async def refuse(self, exc: AppError, code: int | None = None) -> None:
        """Send ``exc`` as an ``error`` event and close (with ``code``, or the one
        :func:`~orchestrator.close_codes.close_code` gives)."""
        ...

    async def close(self, reason: tuple[AppError, int] | None = None) -> None:
        """The session is over: close (with ``reason``'s error event and close code when
        the server ends it), unless the client has gone already."""
        ...


@dataclass(frozen=True, slots=True)
class EventCodec:
    """How one connection talks: the engine's own events (``/ws``) or OpenAI's."""

    decode_event: Callable[[str], Any] | None = None
    server_events: Callable[[Callable[[], SessionConfig]], Callable[[Any], list[Any]]] | None \
        = None
    """Given the session's config, the translator of its outgoing events (None: as is)."""
    llm_version: str = ""
    name: str = "ws"
    """The protocol's label in metrics: ``ws`` or ``openai``."""


async def serve_session(transport: Transport, runtime: Runtime, principal: Principal,
                        record: SessionRecord, codec: EventCodec, *,
                        first_events: Sequence[str] = ()) -> None:
    """The checks every connection passes, then the session until the transport closes.
    ``first_events``: client events handled before the client's own (a client secret's
    ``session.update``, :mod:`.grants`)."""
    try:
        release = await admit(runtime, principal, record)
    except AppError as exc:
        await transport.refuse(exc)
        return
    await run_admitted(transport, runtime, principal, record, codec, release, first_events)


async def admit(runtime: Runtime, principal: Principal,
                record: SessionRecord) -> Callable[[], None]:
    """The checks every connection passes before its session starts; returns what frees
    its realtime slot. A transport that answers before it streams (WebRTC's SDP answer)
    calls this first, so a refusal is its HTTP status rather than a closed call."""
    if record.ended_at is not None:
        raise SessionGone(f"session {record.id!r} has ended")
    if runtime.draining:  # readiness says so too: the balancer sends it elsewhere
        raise ShuttingDown("the server is shutting down; connect again")
    ports = voice_ports(runtime)
    if ports.stt is None:  # without the LLM, the session is a transcription session
        raise ServiceDisabled("realtime sessions need speech-to-text, and it is not served")
    return await runtime.limits.open_realtime(principal)  # RateLimited over the key's sessions


async def run_admitted(transport: Transport, runtime: Runtime, principal: Principal,
                       record: SessionRecord, codec: EventCodec,
                       release: Callable[[], None], first_events: Sequence[str] = ()) -> None:
    """Serve an admitted connection until it closes, then free its slot (``release``).
    ``first_events`` are handled as the client's own right after ``session.created`` (the
    configuration a call was opened with)."""
    try:
        live = await runtime.live_sessions.claim(record.id)
    except BaseException:
        release()
        raise
    open_sockets = REALTIME_SESSIONS.labels(codec.name)
    open_sockets.inc()
    meter = runtime.limits.audio_meter(principal)
    try:
        await _serve(transport, runtime, record, voice_ports(runtime), live,
                     meter=meter, codec=codec, first_events=first_events)
    except asyncio.CancelledError:
        if live.reason is None:
            raise  # not ours: the server is shutting down
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        open_sockets.dec()
        meter.close()
        runtime.live_sessions.release(live)
        release()


async def _serve(transport: Transport, runtime: Runtime, record: SessionRecord,
                 ports: VoicePorts, live: LiveSocket,
                 meter: Callable[[float], Awaitable[object]],
                 codec: EventCodec, first_events: Sequence[str] = ()) -> None:
    settings = runtime.settings
    vad = await asyncio.to_thread(load_model, settings.vad_model_path)
    outbound = OutboundQueue(settings.realtime_send_queue)
    session = RealtimeSession(record, settings=settings, ports=ports,
                              store=runtime.conversations, outbound=outbound, vad=vad,
                              audio_meter=meter, decode_event=codec.decode_event,
                              llm_version=codec.llm_version)
    if codec.server_events is not None:  # nothing is sent before the session exists
        outbound.translate = codec.server_events(lambda: session.config)
    live.settle = session.settle
    writer = asyncio.create_task(write_loop(outbound, transport.send))
    try:
        await session.start()
        for text in first_events:  # after session.created, before any client frame
            await session.handle_text(text)
        await _receive(transport, session, outbound)
    finally:
        await session.close()
        await outbound.close()
        await writer
        await transport.close(live.reason)  # a reason: replaced, or the session ended


async def _receive(transport: Transport, session: RealtimeSession,
                   outbound: OutboundQueue) -> None:
    while not outbound.closed:
        payload = await transport.receive()
        if payload is None:
            return
        if len(payload) > MAX_FRAME_BYTES:
            await session.send_error(PayloadTooLarge(
                f"a frame of {len(payload)} bytes is over the {MAX_FRAME_BYTES} byte limit; "
                "send audio in smaller appends"))
        elif isinstance(payload, str):
            await session.handle_text(payload)
        else:
            await session.handle_bytes(payload)
