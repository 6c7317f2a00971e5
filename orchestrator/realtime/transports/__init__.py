"""Transports: each client path reduced to "client events and audio in, server events and
audio out" against one realtime pipeline (:class:`~orchestrator.realtime.session.RealtimeSession`).

=====================  ===================================================================
``ws.py``              ``WS /ws/{user_id}/{session_id}``: the engine's own events
``openai.py``          ``WS /v1/realtime``: OpenAI's Realtime API (GA or beta events)
``upload.py``          ``POST /api/voice-chat``: one uploaded utterance, run to completion
``webrtc/``            ``POST /v1/realtime/calls``: OpenAI's WebRTC flow (aiortc)
``twilio/``            ``POST /v1/twilio/voice`` + ``WS /v1/twilio/media-stream``: phone calls
``socket.py``          the Litestar WebSocket as a :class:`~.base.Transport`
``inbound.py``         the bounded receive queue of the call transports (WebRTC, Twilio)
``session_check.py``   a session configuration checked before a connection exists
``base.py``            the :class:`~.base.Transport` protocol and the loop every socket runs
=====================  ===================================================================

A new transport (WebRTC, a phone bridge) is one adapter file here: it implements
:class:`~.base.Transport` (receive a text event or audio bytes, send an encoded event,
refuse with an error, close) and calls :func:`~.base.serve_session`, optionally with an
:class:`~.base.EventCodec` that translates events to its own protocol.
"""
