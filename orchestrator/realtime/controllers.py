"""The realtime routes: ``WS /ws/{user_id}/{session_id}``, ``WS /v1/realtime``,
``POST /api/voice-chat``, ``POST /v1/realtime/calls``, the Twilio phone bridge (each an
adapter in :mod:`.transports`) and the ``/demo`` page.

The key is checked before the handshake completes (``orchestrator.auth.middleware``).
Refusals send an ``error`` event, then close with a code that says why (the table is in
:mod:`orchestrator.close_codes`). Browsers send the key as the ``openai-insecure-api-key.KEY``
subprotocol next to ``realtime``; the server answers ``realtime``.
"""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, get

from orchestrator.realtime.transports.base import MAX_FRAME_BYTES, TRANSPORT_MAX_FRAME_BYTES
from orchestrator.realtime.transports.openai import openai_realtime
from orchestrator.realtime.transports.twilio.routes import twilio_media_stream, twilio_voice
from orchestrator.realtime.transports.upload import voice_chat
from orchestrator.realtime.transports.webrtc.routes import create_call, hangup_call
from orchestrator.realtime.transports.ws import realtime_connect

__all__ = ["MAX_FRAME_BYTES", "ROUTES", "TRANSPORT_MAX_FRAME_BYTES"]
DEMO_PAGE = Path(__file__).with_name("static") / "demo.html"


@get("/demo", name="realtime:demo", media_type=MediaType.HTML, include_in_schema=False)
async def demo_page() -> Response[bytes]:
    return Response(DEMO_PAGE.read_bytes(), media_type=MediaType.HTML)


ROUTES = [realtime_connect, openai_realtime, demo_page, voice_chat, create_call, hangup_call,
          twilio_voice, twilio_media_stream]
