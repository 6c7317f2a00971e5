"""``WS /ws/{user_id}/{session_id}``: the engine's own events over a WebSocket."""

from __future__ import annotations

from litestar import WebSocket, websocket
from litestar.params import FromPath

from orchestrator.auth.access import principal_of
from orchestrator.auth.middleware import answer_subprotocol
from orchestrator.errors import Forbidden, NotFound
from orchestrator.realtime.transports.base import EventCodec, serve_session
from orchestrator.realtime.transports.grants import first_events
from orchestrator.realtime.transports.socket import SocketTransport
from storage.errors import RecordNotFound


@websocket("/ws/{user_id:str}/{session_id:str}", name="realtime:connect")
async def realtime_connect(socket: WebSocket, user_id: FromPath[str],
                           session_id: FromPath[str]) -> None:
    runtime = socket.app.state.runtime
    principal = principal_of(socket)
    await socket.accept(subprotocols=answer_subprotocol(socket.scope))
    transport = SocketTransport(socket)
    try:
        record = await runtime.conversations.get_session(session_id, owner=principal.owner)
    except RecordNotFound:
        await transport.refuse(NotFound(f"session {session_id!r} not found"))
        return
    if record.user_id != user_id:
        await transport.refuse(Forbidden(f"session {session_id!r} belongs to another user"))
        return
    await serve_session(transport, runtime, principal, record, EventCodec(),
                        first_events=first_events(principal, "engine"))
