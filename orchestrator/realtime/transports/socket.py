"""A Litestar WebSocket as a :class:`~.base.Transport` (``/ws`` and ``/v1/realtime``)."""

from __future__ import annotations

import contextlib

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from orchestrator.close_codes import close_code
from orchestrator.errors import AppError, websocket_error_event
from orchestrator.realtime.protocol.server_events import encoder


class SocketTransport:
    def __init__(self, socket: WebSocket) -> None:
        self.socket = socket

    async def receive(self) -> str | bytes | None:
        while True:
            try:
                message = await self.socket.receive()
            except WebSocketDisconnect:
                return None
            if message["type"] == "websocket.disconnect":
                return None
            if message.get("text") is not None:
                return message["text"]
            if message.get("bytes") is not None:
                return message["bytes"]

    async def send(self, payload: bytes) -> None:
        await self.socket.send_text(payload.decode())

    async def refuse(self, exc: AppError, code: int | None = None) -> None:
        await self.socket.send_text(encoder.encode(websocket_error_event(exc)).decode())
        await self.socket.close(code=close_code(exc) if code is None else code,
                                reason=exc.message[:120])

    async def close(self, reason: tuple[AppError, int] | None = None) -> None:
        if self.socket.connection_state == "disconnect":
            return
        with contextlib.suppress(Exception):  # the client may be gone already
            if reason is not None:
                await self.refuse(*reason)
            else:
                await self.socket.close()
